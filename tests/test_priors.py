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


# ---- survivors of the mutmut re-run (docs/mutation-testing.md) ---------------------------------

import hashlib  # noqa: E402
import json  # noqa: E402
import locale  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402

from laat.priors import check_not_hand_edited, prior_form  # noqa: E402


def test_prior_form_reads_the_shape_of_the_scores():
    assert prior_form(np.zeros((3, 2))) == "per_class" and prior_form([[1.0, 2.0]]) == "per_class"
    assert prior_form([1.0, 2.0]) == "shared" and prior_form(np.zeros(4)) == "shared"


def test_the_fingerprint_is_the_documented_hash_of_scores_rounded_to_six_decimals():
    """Files already exported must keep reading as unedited: sha256 of the compact JSON list of
    [feature, score] (per class: [class, feature, score]) with scores rounded to 6 decimals, first 16 hex."""

    def by_hand(canon: str) -> str:
        return hashlib.sha256(canon.encode()).hexdigest()[:16]

    signed = Prior(["a", "b"], [1 / 3, -2.0], source="llm").to_dict()["fingerprint"]
    assert signed == by_hand('[["a",0.333333],["b",-2.0]]')
    per_class = make_per_class(mean=[[1 / 3, 0.0], [0.0, 2 / 3], [-1.0, 10.0]], spread=None, samples=[])
    assert per_class.to_dict()["fingerprint"] == by_hand(
        '[["setosa","a",0.333333],["setosa","b",0.0],["versicolor","a",0.0],["versicolor","b",0.666667],'
        '["virginica","a",-1.0],["virginica","b",10.0]]'
    )


def test_aligned_keeps_source_provenance_and_spread_of_either_shape():
    oracle = make(source="oracle", provenance={"dataset": "toy"})
    assert oracle.aligned(["b", "a", "c"]).source == "oracle"
    p = make_per_class(source="oracle", provenance={"dataset": "toy"})
    q = p.aligned(["b", "a"])  # no classes: the prior's own class order
    assert q.classes == p.classes and q.source == "oracle" and q.provenance == {"dataset": "toy"}
    assert q.spread == [[0.0, 0.5], [1.0, 0.0], [0.0, 0.0]] and q.mean == [[-1.5, 7.0], [2.0, 0.0], [10.0, -3.0]]


def test_refused_views_name_the_method_to_use_instead():
    with pytest.raises(PriorError, match=r"; spreads\(\) is for a signed prior, use class_spreads\(\)$"):
        make_per_class().spreads()


def test_generated_note_and_edit_messages_name_a_placeholder_dataset_when_none_is_known():
    d = make(provenance={}).to_dict()
    assert "edit conf/base/priors/<dataset>.yml and run with prior_source=expert" in d["note"]
    with pytest.raises(PriorError) as err:
        check_not_hand_edited({**d, "mean": [1.0, 1.0, 1.0]})
    assert str(err.value) == (
        "<dict>: this generated prior was edited by hand (its scores no longer match its fingerprint), "
        "so they would pass for the 'llm' source's own. To keep them, edit conf/base/priors/<dataset>.yml "
        "and run with prior_source=expert; delete this file to regenerate it."
    )
    with pytest.raises(PriorError, match=r"^p\.json: this generated prior was edited by hand"):
        Prior.from_dict({**d, "mean": [1.0, 1.0, 1.0]}, origin="p.json")


def test_a_fingerprint_over_unreadable_scores_is_never_a_match():
    for fp in ("", "0123456789abcdef"):
        with pytest.raises(PriorError, match="edited by hand"):
            check_not_hand_edited({"fingerprint": fp, "source": "llm", "features": ["a"], "mean": ["x"]})


@pytest.fixture
def ascii_locale():
    """The C locale, whose default text encoding is ASCII (as on a machine without a UTF-8 locale)."""
    old = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert locale.getencoding().lower() in {"ascii", "ansi_x3.4-1968"}
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, old)


def test_prior_files_are_utf8_whatever_the_locale(tmp_path, ascii_locale):
    p = make(features=["café", "b", "c"])
    q = Prior.load(p.save_yaml(tmp_path / "p.yml"))
    assert q.features == p.features and q.source == "llm"
    assert "café" in (tmp_path / "p.yml").read_bytes().decode("utf-8")
    # a JSON prior written by another tool with the characters as UTF-8, not \u escapes
    (tmp_path / "p.json").write_bytes(json.dumps(p.to_dict(), ensure_ascii=False).encode("utf-8"))
    assert Prior.load(tmp_path / "p.json").features == p.features


def test_save_yaml_creates_missing_parent_folders(tmp_path):
    path = make().save_yaml(tmp_path / "a" / "b" / "p.yml")
    assert Prior.load(path).mean == make().mean


def test_exported_yaml_body_in_full_and_the_header_explains_each_shape():
    text = make().to_yaml()
    header, body = text.split("source: llm\n")
    assert body == EXPORTED_YAML.split("source: llm\n")[1].replace("  model: m\n", "  model: m\n  strategy: direct\n")
    assert "# raises the probability of the positive class (for a regression target: raises the\n# target" in header
    per_class = make_per_class().to_yaml()
    assert "# raises the probability of the class it is listed under, negative" in per_class
    assert "positive class" not in per_class


def test_yaml_messages_start_with_the_origin_and_say_where(tmp_path):
    cases = [
        ("scores:\n  a: high\n", "x.yml: score for 'a' is 'high', not a number"),
        ("scores:\n  x: {a: 1}\n  y: {a: high}\n", "x.yml: class 'y' score for 'a' is 'high'"),
        ("scores:\n  a: 1\nspread: [1]\n", "x.yml: `spread` must be a mapping like `scores`"),
        ("scores:\n  a: 1\nspread:\n  b: 1\n", "x.yml: `spread` names features not in `scores`: ['b']"),
        (
            "scores:\n  x: {a: 1}\n  y: {a: 2}\nspread:\n  z: {a: 1}\n",
            "x.yml: `spread` names classes not in `scores`: ['z']",
        ),
        (
            "scores:\n  x: {a: 1}\n  y: {a: 2}\nspread:\n  x: {b: 1}\n",
            "x.yml: class 'x' `spread` names features not in",
        ),
        (
            "scores:\n  x: {a: 1}\n  y: {a: 2}\nspread:\n  x: [1]\n",
            "x.yml: class 'x' `spread` must be a mapping of feature",
        ),
        ("source: llm\nscores:\n  a: 3\n", "x.yml: a hand-written prior (no `fingerprint`) must have source 'expert'"),
    ]
    for text, msg in cases:
        with pytest.raises(PriorError) as err:
            Prior.from_yaml(text, origin="x.yml")
        assert str(err.value).startswith(msg), (text, str(err.value))
    with pytest.raises(PriorError, match=r"^<yaml>: score for 'a' is 'high'"):
        Prior.from_yaml("scores:\n  a: high\n")


# an independent reference for the oracle: the training pipeline's preprocessing and the
# regularised linear fits written out by hand (numpy; scipy's L-BFGS to a tight tolerance)


def _scaled_by_hand(X) -> np.ndarray:
    """Median-impute (0 for an all-missing column), then Min-Max scale each column to [0, 1]."""
    X = np.array(X, dtype=float)
    for j in range(X.shape[1]):
        col = X[:, j]
        miss = np.isnan(col)
        col[miss] = np.median(col[~miss]) if (~miss).any() else 0.0
        lo, hi = col.min(), col.max()
        X[:, j] = (col - lo) / (hi - lo) if hi > lo else 0.0
    return X


def _logistic_by_hand(X, codes, k: int, C: float) -> np.ndarray:
    """argmin C * sum_i -log p(y_i | x_i) + |W|^2 / 2, intercepts unpenalised; (1, d) for k = 2, else (k, d)."""
    from scipy.optimize import minimize

    codes = np.asarray(codes)
    n, d = X.shape
    m = 1 if k == 2 else k
    Y = (codes[:, None] == np.arange(k)[None, :]).astype(float)

    def loss_and_grad(theta):
        W, b = theta[: m * d].reshape(m, d), theta[m * d :]
        Z = X @ W.T + b
        if m == 1:
            nll = np.sum(np.logaddexp(0, Z[:, 0]) - Y[:, 1] * Z[:, 0])
            G = (1 / (1 + np.exp(-Z[:, 0])) - Y[:, 1])[:, None]
        else:
            Z = Z - Z.max(1, keepdims=True)
            logp = Z - np.log(np.exp(Z).sum(1, keepdims=True))
            nll, G = -np.sum(Y * logp), np.exp(logp) - Y
        grad = np.concatenate([(C * G.T @ X + W).ravel(), C * G.sum(0)])
        return C * nll + 0.5 * np.sum(W * W), grad

    res = minimize(loss_and_grad, np.zeros(m * (d + 1)), jac=True, method="L-BFGS-B", options={"gtol": 1e-10})
    return res.x[: m * d].reshape(m, d)


def _ridge_by_hand(X, y, alpha: float) -> np.ndarray:
    """Ridge with an unpenalised intercept on the standardised target, in closed form."""
    Xc = X - X.mean(0)
    yc = (y - y.mean()) / y.std()
    return np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T @ yc)


def _synthetic(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"up": rng.uniform(0, 5, n), "down": rng.uniform(-1, 1, n), "noise": rng.normal(size=n)})
    X.iloc[: n // 15, 2] = np.nan
    return X, rng, 1.5 * X["up"] - 4 * X["down"] - 3.5


@pytest.mark.parametrize("C", [None, 0.1])
def test_oracle_coefficients_match_a_hand_written_fit_at_the_default_and_a_given_c(C):
    X, rng, logit = _synthetic()
    y = (rng.uniform(size=len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    p = oracle_prior(X, y) if C is None else oracle_prior(X, y, C=C)
    W = _logistic_by_hand(_scaled_by_hand(X), y, 2, 1.0 if C is None else C)
    # lbfgs stops at sklearn's tolerance (1e-4): agreement to 0.05 of a score, C's effect is larger
    np.testing.assert_allclose(p.provenance["raw_coef"], W[0], atol=0.05)
    np.testing.assert_allclose(p.mean, W[0] * 10 / np.abs(W).max(), atol=0.05)
    assert p.provenance["method"].startswith(f"sklearn LogisticRegression (l2, C={1.0 if C is None else C:g})")

    codes = np.digitize(logit + rng.normal(size=len(X)), np.quantile(logit, [1 / 3, 2 / 3]))
    mc = oracle_prior(X, codes, task="multiclass") if C is None else oracle_prior(X, codes, task="multiclass", C=C)
    W = _logistic_by_hand(_scaled_by_hand(X), codes, 3, 1.0 if C is None else C)
    assert mc.classes == ["0", "1", "2"]  # default: y's distinct values, as text
    np.testing.assert_allclose(mc.provenance["raw_coef"], W, atol=0.05)
    np.testing.assert_allclose(mc.mean, W * 10 / np.abs(W).max(), atol=0.05)


def test_oracle_regression_is_ridge_with_alpha_one_over_c_on_the_standardised_target():
    X, rng, logit = _synthetic()
    y = 3.0 * logit + 100.0 + rng.normal(size=len(X))
    p = oracle_prior(X, y, task="regression", C=0.1)
    coef = _ridge_by_hand(_scaled_by_hand(X), y.to_numpy(), alpha=10.0)
    np.testing.assert_allclose(p.provenance["raw_coef"], coef, atol=1e-8)
    np.testing.assert_allclose(p.mean, coef * 10 / np.abs(coef).max(), atol=1e-8)
    assert p.provenance["method"].startswith("sklearn Ridge (alpha=10) on median-imputed")
    for bad in (np.full(len(X), 2.0), np.r_[np.nan, y[1:]]):
        with pytest.raises(PriorError, match=r"^oracle_prior \(regression\) needs a finite, non-constant target$"):
            oracle_prior(X, bad, task="regression")


def test_oracle_multiclass_refuses_classes_that_do_not_name_every_label():
    X, rng, logit = _synthetic()
    codes = np.digitize(logit, np.quantile(logit, [0.25, 0.5, 0.75]))  # 4 distinct values
    with pytest.raises(PriorError, match=r"needs every one of >= 3 classes \['a', 'b', 'c'\] in y, got 4 distinct"):
        oracle_prior(X, codes, task="multiclass", classes=["a", "b", "c"])
    with pytest.raises(PriorError, match=r"needs every one of >= 3 classes \['0', '1'\] in y, got 2 distinct"):
        oracle_prior(X, (codes > 1).astype(int), task="multiclass")


def test_oracle_binary_names_the_labels_it_got_and_fits_to_convergence():
    from sklearn.exceptions import ConvergenceWarning

    X, rng, logit = _synthetic()
    with pytest.raises(PriorError, match=r"needs both classes 0 and 1 in y, got \[0\]$"):
        oracle_prior(X, np.zeros(len(X)))
    meta = load_metadata("conf/base/datasets/myocardial.yml")  # 144 columns: > 100 lbfgs steps at C = 100
    df = load_dataset(meta)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        p = oracle_prior_from_frame(df, meta, C=100.0)
    assert p.provenance["dataset"] == "myocardial" and p.features == meta.encoded_columns


def test_oracle_takes_an_array_with_meta_naming_its_columns_and_checks_a_frame_against_meta():
    meta = load_metadata("conf/base/datasets/diabetes.yml")
    df = load_dataset(meta)
    X, y = encode(df, meta), labels(df, meta)
    p = oracle_prior(X.to_numpy(), y, meta)
    assert p.features == meta.encoded_columns and p.provenance["dataset"] == "diabetes"
    assert p.mean == oracle_prior(X, y, meta).mean
    with pytest.raises(PriorError, match=r"columns \['x0',.* are not dataset 'diabetes''s encoded columns"):
        oracle_prior(X.set_axis([f"x{i}" for i in range(X.shape[1])], axis=1), y, meta)


def test_a_json_prior_that_is_not_json_is_reported_with_its_path(tmp_path):
    (tmp_path / "p.json").write_text('{"source": "llm",', encoding="utf-8")
    with pytest.raises(PriorError, match=r"^\S*p\.json: not valid JSON \("):
        Prior.load_json(tmp_path / "p.json")


def test_timestamps_are_utc_to_the_second_and_every_number_list_is_checked_by_name():
    created = random_prior(["a"]).provenance["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", created), created
    with pytest.raises(PriorError, match=r"^prior spread holds 'x', not a number$"):
        make(spread=[0.0, "x", 0.0])
    with pytest.raises(PriorError, match=r"^prior sample 1 holds True, not a number$"):
        make(samples=[[1.0, 1.0, 1.0], [1.0, True, 1.0]])


def test_an_oracle_on_constant_columns_scores_zero_and_an_unnamed_array_is_refused():
    X = pd.DataFrame({"a": [1.0] * 6, "b": [2.0] * 6})
    assert oracle_prior(X, [0, 1] * 3).mean == [0.0, 0.0]
    with pytest.raises(PriorError, match=r"^oracle_prior needs a DataFrame or `meta` to name the columns$"):
        oracle_prior(X.to_numpy(), [0, 1] * 3)


def test_oracle_provenance_source_kind_a_binary_oracle_stays_signed_and_small_coefficients_still_scale():
    X, rng, logit = _synthetic()
    y = (rng.uniform(size=len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    p = oracle_prior(X, y, classes=["no", "yes"], C=1e-3)  # class names of a binary task: still a signed prior
    assert p.classes is None and p.provenance["source_kind"] == "oracle"
    assert np.abs(p.provenance["raw_coef"]).max() < 1 and np.abs(p.mean).max() == 10.0


def test_oracle_multiclass_fits_to_convergence():
    """40 near-collinear columns at C = 1e4: lbfgs needs more than sklearn's default 100 steps."""
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 1)) + 0.05 * rng.normal(size=(150, 40))
    logit = 30 * (X[:, 0] - X[:, 1]) + X[:, 2]
    codes = np.digitize(logit + rng.normal(size=150), np.quantile(logit, [1 / 3, 2 / 3]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        p = oracle_prior(pd.DataFrame(X).add_prefix("x"), codes, task="multiclass", C=1e4)
    assert p.classes == ["0", "1", "2"] and np.abs(p.matrix()).max() == 10.0


def test_a_single_number_for_mean_or_spread_is_refused_with_the_value():
    with pytest.raises(PriorError, match=r"^prior mean must be a list of numbers, got 3\.0$"):
        Prior(["a"], 3)
    with pytest.raises(PriorError, match=r"^prior spread must be a list of numbers, got 0\.5$"):
        Prior(["a"], [3], spread=0.5)


def test_oracle_provenance_in_full():
    X, rng, logit = _synthetic(n=90)
    y = (rng.uniform(size=len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    prov = oracle_prior(X, y).provenance
    assert set(prov) == {"source_kind", "note", "task", "method", "dataset", "n_rows", "raw_coef", "created_at"}
    assert prov["n_rows"] == 90 and prov["task"] == "binary" and prov["dataset"] is None
    assert prov["method"] == (
        "sklearn LogisticRegression (l2, C=1) on median-imputed, Min-Max-scaled one-hot data; coef * 10 / max|coef|"
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", prov["created_at"])
