"""The Prior object: validation, JSON/YAML round trips, expert edits, oracle and random builders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from laat.datasets import encode, labels, load_dataset, load_metadata
from laat.priors import Prior, PriorError, as_prior, oracle_prior, oracle_prior_from_frame, random_prior


def make(**kw) -> Prior:
    base = dict(
        features=["a", "b", "c"],
        mean=[7.4, -1.0, 0.0],
        spread=[0.5, 0.0, 1.0],
        source="llm",
        provenance={"model": "m", "strategy": "direct", "prompt": "long text"},
        samples=[[7.0, -1.0, 1.0], [7.8, -1.0, -1.0]],
    )
    base.update(kw)
    return Prior(**base)


def test_views_and_interface():
    p = make()
    assert p.scores() == {"a": 7.4, "b": -1.0, "c": 0.0}
    assert p.spreads() == {"a": 0.5, "b": 0.0, "c": 1.0}
    assert Prior(["x"], [3]).spread == [0.0]
    assert len(p) == 3 and p.label == "llm"


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"source": "gpt"}, "source 'gpt' is not one of"),
        ({"mean": [11, 0, 0]}, "score for 'a' is 11.0, outside"),
        ({"mean": [float("nan"), 0, 0]}, "score for 'a' is nan"),
        ({"mean": [1, 2]}, "mean has 2 values for 3 features"),
        ({"features": ["a", "a", "c"]}, "more than once: ['a']"),
        ({"spread": [-1, 0, 0]}, "spread for 'a' is -1.0"),
        ({"samples": [[1, 2]]}, "sample 0 has 2 values"),
    ],
)
def test_invalid_priors_fail_with_the_culprit_named(kw, msg):
    with pytest.raises(PriorError, match=msg.replace("(", r"\(").replace("[", r"\[")):
        make(**kw)


def test_check_and_align_by_name():
    p = make()
    q = p.aligned(["c", "a", "b"])
    assert q.mean == [0.0, 7.4, -1.0] and q.samples[0] == [1.0, 7.0, -1.0]
    with pytest.raises(PriorError, match=r"missing \['d'\], unknown \['c'\]"):
        p.check_features(["a", "b", "d"])


def test_json_round_trip(tmp_path):
    p = make()
    q = Prior.load_json(p.save_json(tmp_path / "p.json"))
    assert q == p
    assert as_prior(p.to_dict()) == p


def test_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"source": "llm", "features": ["a"]}')
    with pytest.raises(PriorError, match=r"bad.json: prior is missing keys \['mean'\]"):
        Prior.load_json(bad)
    with pytest.raises(PriorError, match="no prior file"):
        Prior.load_json(tmp_path / "absent.json")


def test_yaml_round_trip_keeps_the_source_when_unedited(tmp_path):
    p = make()
    text = p.to_yaml()
    assert "source: llm" in text and "Glucose" not in text and "long text" not in text
    q = Prior.load_yaml(p.save_yaml(tmp_path / "p.yml"))
    assert q.source == "llm" and q.mean == p.mean and q.spread == p.spread
    assert not q.provenance.get("edited")


def test_edited_yaml_becomes_an_edited_expert_prior(tmp_path):
    p = make()
    path = p.save_yaml(tmp_path / "p.yml")
    path.write_text(path.read_text().replace("a: 7.4", "a: 9"))
    q = Prior.load_yaml(path)
    assert q.scores()["a"] == 9.0
    assert q.source == "expert" and q.provenance["edited"] is True and q.provenance["edited_from"] == "llm"
    assert q.label == "expert-edited"
    assert q.provenance["draft_provenance"]["model"] == "m"


def test_hand_written_yaml_is_expert_and_cannot_claim_llm():
    q = Prior.from_yaml("scores:\n  a: 3\n  b: -2\n")
    assert q.source == "expert" and q.mean == [3.0, -2.0]
    with pytest.raises(PriorError, match="must have source 'expert', not 'llm'"):
        Prior.from_yaml("source: llm\nscores:\n  a: 3\n")


@pytest.mark.parametrize(
    "text, msg",
    [
        ("scores:\n  a: high\n", "score for 'a' is 'high'"),
        ("scores:\n  a: 12\n", "score for 'a' is 12.0, outside"),
        ("a: 1\n", "expected a mapping with a `scores:`"),
        ("scores: [1, 2\n", "not valid YAML"),
        ("scores:\n  a: 1\nspread:\n  b: 1\n", "`spread` names features not in `scores`"),
    ],
)
def test_bad_yaml_is_reported(text, msg):
    with pytest.raises(PriorError, match=msg.replace("[", r"\[")):
        Prior.from_yaml(text, origin="x.yml")


def test_shipped_expert_prior_matches_diabetes():
    meta = load_metadata("conf/base/datasets/diabetes.yml")
    p = Prior.load("conf/base/priors/diabetes.yml")
    assert p.source == "expert"
    p.check_features(meta.encoded_columns)
    assert p.scores()["Glucose"] == max(p.mean)


def test_random_prior_is_seeded_integer_and_labelled():
    feats = [f"f{i}" for i in range(20)]
    a, b, c = random_prior(feats, 1), random_prior(feats, 1), random_prior(feats, 2)
    assert a.mean == b.mean and a.mean != c.mean
    assert a.source == "random" and "RANDOM" in a.provenance["note"]
    assert all(float(m).is_integer() and -10 <= m <= 10 for m in a.mean)


def test_oracle_recovers_signs_and_scale_on_synthetic_data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"up": rng.uniform(0, 5, 2000), "down": rng.uniform(-1, 1, 2000), "noise": rng.normal(size=2000)})
    logit = 1.5 * X["up"] - 4 * X["down"] - 3.5
    y = (rng.uniform(size=2000) < 1 / (1 + np.exp(-logit))).astype(int)
    p = oracle_prior(X, y)
    s = p.scores()
    assert s["up"] > 3 and s["down"] == -10.0 and abs(s["noise"]) < 1.5
    assert p.source == "oracle" and "upper bound for evaluation only" in p.provenance["note"]


def test_oracle_on_diabetes_ranks_glucose_first_and_handles_missing_values():
    meta = load_metadata("conf/base/datasets/diabetes.yml")
    df = load_dataset(meta)
    p = oracle_prior_from_frame(df, meta)
    assert p.features == meta.encoded_columns and max(p.scores(), key=p.scores().get) == "Glucose"
    X = encode(df, meta)
    X.iloc[:10, 1] = np.nan
    assert oracle_prior(X, labels(df, meta), meta).source == "oracle"
    with pytest.raises(PriorError, match="both classes"):
        oracle_prior(X, np.zeros(len(X)), meta)
    with pytest.raises(PriorError, match="768 rows but 5 labels"):
        oracle_prior(X, np.ones(5), meta)


def test_json_form_carries_a_fingerprint_and_refuses_edited_scores():
    from laat.priors import Prior, PriorError

    p = Prior(features=["a", "b"], mean=[1.0, -2.0], source="llm", provenance={"dataset": "toy"})
    d = p.to_dict()
    assert "conf/base/priors/toy.yml" in d["note"] and Prior.from_dict(d).mean == p.mean
    with pytest.raises(PriorError, match=r"edited by hand.*conf/base/priors/toy.yml.*prior_source=expert"):
        Prior.from_dict({**d, "mean": [1.0, 3.0]})
    # A dict without a fingerprint (built in code, or written before fingerprints) is accepted.
    assert Prior.from_dict({k: v for k, v in d.items() if k != "fingerprint"}).mean == p.mean


# ---- round trips over generated priors (hypothesis; mutation testing: docs/mutation-testing.md) --

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# feature names as encoding produces them (column, or column=category) plus YAML-awkward ones
_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: s == s.strip()
)
_scores = st.floats(-10.0, 10.0, allow_nan=False)


@st.composite
def priors(draw):
    features = draw(st.lists(_names, min_size=1, max_size=8, unique=True))
    d = len(features)
    samples = draw(st.lists(st.lists(_scores, min_size=d, max_size=d), min_size=0, max_size=3))
    mean = draw(st.lists(_scores, min_size=d, max_size=d))
    spread = draw(st.lists(st.floats(0.0, 5.0), min_size=d, max_size=d))
    return Prior(
        features=features,
        mean=mean,
        spread=spread,
        source=draw(st.sampled_from(["llm", "oracle", "random"])),
        provenance={"model": draw(_names), "n": draw(st.integers(0, 99))},
        samples=samples,
    )


@settings(max_examples=60, deadline=None, derandomize=True)
@given(priors())
def test_json_round_trip_is_lossless_for_any_prior(p):
    import json

    q = Prior.from_dict(json.loads(json.dumps(p.to_dict())))
    assert (q.features, q.mean, q.spread, q.source, q.samples, q.provenance) == (
        p.features,
        p.mean,
        p.spread,
        p.source,
        p.samples,
        p.provenance,
    )


@settings(max_examples=60, deadline=None, derandomize=True)
@given(priors())
def test_unedited_yaml_round_trip_keeps_names_source_and_the_written_scores(p):
    q = Prior.from_yaml(p.to_yaml())
    assert q.features == p.features and q.source == p.source and not q.provenance.get("edited")
    np.testing.assert_allclose(q.mean, p.mean, rtol=0, atol=6e-5)  # YAML keeps 4 decimals (round half even)
    np.testing.assert_allclose(q.spread, p.spread, rtol=0, atol=6e-5)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(priors(), st.data())
def test_any_changed_score_in_yaml_makes_an_edited_expert_prior(p, data):
    import yaml

    doc = yaml.safe_load(p.to_yaml())
    f = data.draw(st.sampled_from(p.features))
    old = doc["scores"][f]
    doc["scores"][f] = data.draw(_scores.filter(lambda v: abs(v - old) > 1e-3))
    q = Prior.from_yaml(yaml.safe_dump(doc))
    assert q.source == "expert" and q.provenance["edited"] and q.provenance["edited_from"] == p.source
    assert q.label == "expert-edited" and q.spread == [0.0] * len(p)


def test_a_mean_with_more_than_four_decimals_is_not_taken_for_an_edit():
    p = Prior(["a", "b"], [23 / 3, -1.0], source="llm", samples=[[7, -1], [8, -1], [8, -1]])
    q = Prior.from_yaml(p.to_yaml())
    assert q.source == "llm" and q.label == "llm" and q.mean == [7.6667, -1.0]


# ---- files, provenance and messages (mutation testing) -----------------------------------------

from pathlib import Path  # noqa: E402

# Written by to_yaml on main (0224ed8): files already exported must keep reading as
# unedited, so the fingerprint (rounding, JSON form, hash length) may not change.
EXPORTED_YAML = """\
source: llm
scores:
  a: 7.4
  b: -1
  c: 0
spread:
  a: 0.5
  b: 0
  c: 1
fingerprint: f323622b310cdc12
provenance:
  model: m
"""


def test_a_previously_exported_yaml_still_reads_as_unedited():
    q = Prior.from_yaml(EXPORTED_YAML)
    assert q.source == "llm" and q.label == "llm" and q.spread == [0.5, 0.0, 1.0]
    assert make().to_yaml().split("fingerprint: ")[1].startswith("f323622b310cdc12\n")


def test_save_creates_folders_and_load_picks_the_format_by_suffix(tmp_path):
    p = make(features=["café", "b", "c"])
    for name in ("p.json", "p.yml", "p.yaml"):
        path = tmp_path / "x" / "y" / name
        saver = p.save_json if name.endswith("json") else p.save_yaml
        assert saver(path) == path
        q = Prior.load(path)
        assert q.features == p.features and q.source == "llm" and q.mean == p.mean
    assert "café" in (tmp_path / "x" / "y" / "p.yml").read_text(encoding="utf-8")  # readable, not escaped
    with pytest.raises(PriorError, match=r"^no prior file at .*absent.yaml$"):
        Prior.load(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("scores: [1, 2]\n")
    with pytest.raises(PriorError, match=r"^\S*bad.yaml: expected a mapping with a `scores:` mapping"):
        Prior.load(tmp_path / "bad.yaml")


def test_yaml_leaves_out_prompts_and_records_but_keeps_other_provenance():
    p = make(provenance={"model": "m", "prompt": "p", "prompts": ["p1"], "record": {"x": 1}, "strategy": "s"})
    prov = Prior.from_yaml(p.to_yaml()).provenance
    assert prov == {"model": "m", "strategy": "s"}


def test_hand_written_and_edited_yaml_provenance_in_full():
    hand = Prior.from_yaml("scores:\n  a: 3\n  b: -2\nspread:\n  a: 0.5\n")
    assert hand.source == "expert" and hand.provenance == {"source_kind": "expert"} and hand.spread == [0.5, 0.0]
    edited = Prior.from_yaml(make().to_yaml().replace("a: 7.4", "a: 5"))
    assert set(edited.provenance) == {"edited", "edited_from", "source_kind", "draft_provenance", "imported_at"}
    assert edited.provenance["source_kind"] == "expert" and edited.provenance["imported_at"].endswith("+00:00")
    assert edited.provenance["draft_provenance"] == {"model": "m", "strategy": "direct"}


def test_random_prior_covers_both_ends_and_says_what_it_is():
    p = random_prior([f"f{i}" for i in range(400)])
    assert min(p.mean) == -10.0 and max(p.mean) == 10.0 and all(float(m).is_integer() for m in p.mean)
    assert p.mean == random_prior([f"f{i}" for i in range(400)], seed=0).mean  # seed 0 by default
    assert set(p.provenance) == {"source_kind", "seed", "note", "created_at"}
    assert p.provenance["source_kind"] == "random" and p.provenance["seed"] == 0
    assert p.provenance["created_at"].endswith("+00:00")  # UTC


def test_aligned_keeps_spread_samples_and_provenance_in_the_new_order():
    q = make().aligned(["c", "a", "b"])
    assert q.mean == [0.0, 7.4, -1.0] and q.spread == [1.0, 0.5, 0.0]
    assert q.samples == [[1.0, 7.0, -1.0], [-1.0, 7.8, -1.0]] and q.provenance == make().provenance


def test_feature_mismatch_in_either_direction_is_refused_with_the_default_place():
    with pytest.raises(
        PriorError,
        match=r"^prior \(llm\) does not match the dataset's encoded columns: "
        r"missing \['d'\], unknown \[\]$",
    ):
        make().check_features(["a", "b", "c", "d"])
    with pytest.raises(PriorError, match=r"missing \[\], unknown \['c'\]$"):
        make().check_features(["a", "b"])


def test_dict_and_validation_messages_in_full():
    with pytest.raises(PriorError, match=r"^<dict>: a prior must be a mapping, got list$"):
        Prior.from_dict([1, 2])
    with pytest.raises(PriorError, match=r"^<dict>: prior has no features$"):
        Prior.from_dict({"source": "llm", "features": [], "mean": []})
    with pytest.raises(PriorError, match=r"^<prior>: prior is missing keys \['mean'\]$"):
        as_prior({"source": "llm", "features": ["a"]})
    with pytest.raises(PriorError, match=r"^prior spread has 2 values for 3 features$"):
        make(spread=[0.0, 0.0])
    with pytest.raises(PriorError, match=r"^prior has no features$"):
        Prior([], [])
    assert Prior.from_dict({"source": "expert", "features": ["a"], "mean": [1]}).source == "expert"
    p = make()
    assert as_prior(p) is p


def test_provenance_with_numpy_values_and_paths_becomes_plain_json():
    p = make(provenance={"paths": [Path("a/b"), np.float32(0.5)], "n": np.int64(3), "where": Path("c")})
    assert p.to_dict()["provenance"] == {"paths": ["a/b", 0.5], "n": 3, "where": "c"}


# ---- per-class priors (multiclass) ------------------------------------------------------------


def make_per_class(**kw) -> Prior:
    base = dict(
        features=["a", "b"],
        classes=["setosa", "versicolor", "virginica"],
        mean=[[7.0, -1.5], [0.0, 2.0], [-3.0, 10.0]],
        spread=[[0.5, 0.0], [0.0, 1.0], [0.0, 0.0]],
        source="llm",
        samples=[[[7, -1], [0, 2], [-3, 10]], [[7, -2], [0, 2], [-3, 10]]],
    )
    base.update(kw)
    return Prior(**base)


def test_a_per_class_prior_gives_scores_by_class_and_refuses_the_signed_view():
    p = make_per_class()
    assert p.per_class and not make().per_class
    assert p.class_scores()["virginica"] == {"a": -3.0, "b": 10.0}
    assert p.class_spreads()["setosa"] == {"a": 0.5, "b": 0.0}
    assert p.matrix().shape == (3, 2) and make().matrix().shape == (3,)
    with pytest.raises(PriorError, match=r"one score vector per class .*use class_scores\(\)"):
        p.scores()
    with pytest.raises(PriorError, match=r"not one per class; use scores\(\)"):
        make().class_scores()


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"classes": ["only"]}, "at least 2 classes"),
        ({"classes": ["x", "x", "y"]}, "classes more than once: ['x']"),
        ({"mean": [[1, 2], [3, 4]]}, "mean must be 3 rows (one per class"),
        ({"mean": [[1, 2], [3, 4], [5]]}, "class 'virginica' mean has 1 values for 2 features"),
        ({"mean": [[1, 2], [3, 40], [5, 6]]}, "class 'versicolor' score for 'b' is 40.0, outside"),
        ({"samples": [[[1, 2]]]}, "sample 0 must be 3 rows"),
        ({"classes": None}, "is nested, but the prior has no `classes`"),
        ({"mean": [[1, "x"], [0, 0], [0, 0]]}, "prior mean holds 'x', not a number"),
    ],
)
def test_invalid_per_class_priors_name_the_culprit(kw, msg):
    with pytest.raises(PriorError, match=msg.replace("(", r"\(").replace("[", r"\[")):
        make_per_class(**kw)


def test_per_class_json_round_trip_and_a_hand_edit_is_refused(tmp_path):
    p = make_per_class()
    path = p.save_json(tmp_path / "p.json")
    assert Prior.load_json(path) == p
    assert "classes" not in make().to_dict()  # the signed form's JSON is unchanged
    path.write_text(path.read_text().replace("-3.0", "-4.0"))
    with pytest.raises(PriorError, match="edited by hand"):
        Prior.load_json(path)


def test_per_class_yaml_round_trip_and_an_edit_makes_it_expert():
    p = make_per_class()
    q = Prior.from_yaml(p.to_yaml())
    assert (q.source, q.classes, q.mean, q.spread) == ("llm", p.classes, p.mean, p.spread)
    edited = Prior.from_yaml(p.to_yaml().replace("b: 10", "b: 9"))
    assert edited.source == "expert" and edited.provenance["edited_from"] == "llm"
    assert edited.class_scores()["virginica"]["b"] == 9.0 and edited.spread == [[0.0, 0.0]] * 3


def test_hand_written_per_class_yaml_must_score_the_same_features_in_every_class():
    ok = Prior.from_yaml("scores:\n  x: {a: 1, b: 2}\n  y: {a: -1, b: 0}\n")
    assert ok.source == "expert" and ok.classes == ["x", "y"]
    with pytest.raises(PriorError, match=r"class 'y' lists features \['a'\], the first class lists \['a', 'b'\]"):
        Prior.from_yaml("scores:\n  x: {a: 1, b: 2}\n  y: {a: -1}\n")


def test_aligned_reorders_features_and_classes_and_checks_both():
    p = make_per_class()
    q = p.aligned(["b", "a"], classes=["virginica", "setosa", "versicolor"])
    assert q.mean == [[10.0, -3.0], [-1.5, 7.0], [2.0, 0.0]] and q.samples[1][1] == [-2.0, 7.0]
    with pytest.raises(PriorError, match=r"is for classes \['setosa', 'versicolor', 'virginica'\], the dataset"):
        p.aligned(["a", "b"], classes=["setosa", "other", "virginica"])
    with pytest.raises(PriorError, match="one signed score per feature, but the dataset has classes"):
        make().aligned(["a", "b", "c"], classes=["x", "y", "z"])


def test_random_and_oracle_priors_for_multiclass_and_regression_stay_labelled():
    from sklearn.datasets import load_diabetes, load_iris

    per_class = random_prior(["a", "b"], seed=4, classes=["x", "y", "z"])
    assert per_class.source == "random" and per_class.matrix().shape == (3, 2)
    assert random_prior(["a", "b"], seed=4).mean == make_signed_random(["a", "b"], 4)
    X, y = load_iris(return_X_y=True, as_frame=True)
    mc = oracle_prior(X, y, task="multiclass", classes=["setosa", "versicolor", "virginica"])
    assert mc.label == "oracle" and "FULL labelled dataset" in mc.provenance["note"]
    assert np.abs(mc.matrix()).max() == 10.0
    assert mc.class_scores()["setosa"]["petal length (cm)"] < 0 < mc.class_scores()["virginica"]["petal length (cm)"]
    Xr, yr = load_diabetes(return_X_y=True, as_frame=True)
    reg = oracle_prior(Xr, yr, task="regression")
    assert reg.classes is None and reg.scores()["bmi"] == 10.0 and reg.provenance["task"] == "regression"
    with pytest.raises(PriorError, match=r"needs every one of >= 3 classes \['a', 'b'\]"):
        oracle_prior(X, y, task="multiclass", classes=["a", "b"])
    with pytest.raises(PriorError, match="task 'ranking' is not one of"):
        oracle_prior(X, y, task="ranking")


def make_signed_random(features, seed):
    """The signed random prior's numbers as drawn before per-class priors existed."""
    return np.random.default_rng(seed).integers(-10, 11, size=len(features)).astype(float).tolist()
