"""Prompts for multiclass and regression priors, and the per-class elicitation (fake endpoint
over real sockets; the real model is in test_local_llm)."""

from __future__ import annotations

import numpy as np
import pytest

from laat.datasets import parse_metadata
from laat.elicit import prompts as P
from laat.elicit import run_elicitation


def _meta(target: dict):
    return parse_metadata(
        {
            "name": "toy",
            "csv": "unused.csv",
            "task": "Which penguin species is this?",
            "target": target,
            "features": [
                {"name": "bill", "type": "numeric", "description": "Bill length in mm"},
                {
                    "name": "island",
                    "type": "categorical",
                    "description": "Island",
                    "categories": {"Biscoe": "Found on Biscoe", "Dream": "Found on Dream"},
                },
            ],
        }
    )


MULTI = {"column": "species", "classes": ["Adelie", "Chinstrap", "Gentoo"]}
NUMERIC = {"column": "mass", "type": "numeric"}


def test_a_class_is_asked_about_as_the_positive_class_of_a_one_vs_rest_view():
    meta = _meta(MULTI)
    view = P.one_vs_rest(meta, "Gentoo")
    assert view.target.kind == "binary" and view.positive_class == "Gentoo"
    assert view.encoded_columns == meta.encoded_columns and view.task == meta.task
    text = P.laat_prompt(view)
    assert 'for the class "Gentoo"' in text and "raises the probability of the class" in text
    assert 'positive if increasing it makes the class "Gentoo" more likely' in P.per_feature_prompt(view, "bill")
    with pytest.raises(ValueError, match="no class 'Emperor'; classes: \\['Adelie', 'Chinstrap', 'Gentoo'\\]"):
        P.one_vs_rest(meta, "Emperor")


@pytest.mark.parametrize(
    "builder",
    [
        P.laat_prompt,
        P.direct_prompt,
        lambda m: P.per_feature_prompt(m, "bill"),
        lambda m: P.yes_no_prompt(m, "bill", 1),
        lambda m: P.yes_no_prompt(m, "bill", 2, mirror=True),
        lambda m: P.elimination_prompt(m, m.encoded_columns, []),
    ],
)
def test_a_regression_prompt_asks_about_the_target_value_not_a_class(builder):
    text = builder(_meta(NUMERIC))
    assert '"mass"' in text
    assert "class" not in text and "probability" not in text and "likely" not in text


def test_the_regression_rules_say_what_a_signed_score_means():
    text = P.direct_prompt(_meta(NUMERIC))
    assert "feature-importance scores for a regression task" in text
    assert "increasing the feature raises the value of the target" in text
    assert 'for the target "mass"' in text


def test_a_multiclass_llm_prior_is_one_elicitation_per_class_stacked_in_class_order(fake_llm, fake_settings):
    meta = _meta(MULTI)
    with fake_llm(vary=True) as srv:
        e = run_elicitation(meta, fake_settings(srv.base_url, n_samples=2))
        again = run_elicitation(meta, fake_settings(srv.base_url, n_samples=2))
    p = e.prior
    assert p.source == "llm" and p.classes == MULTI["classes"] and p.features == meta.encoded_columns
    assert np.shape(p.mean) == (3, 3) and np.shape(p.samples) == (2, 3, 3)
    np.testing.assert_allclose(np.mean(p.samples, axis=0), p.mean)
    prompts = [r["messages"][-1]["content"] for r in srv.requests]
    for cls in MULTI["classes"]:  # two samples asked about each class, each in its own words
        assert sum(f'for the class "{cls}"' in t for t in prompts[:6]) == 2
        assert f'for the class "{cls}"' in p.provenance["per_class"][cls]["prompt"]
    assert p.provenance["calls"] == e.record["usage"]["calls"] == 6 and set(e.record["per_class"]) == set(
        MULTI["classes"]
    )
    # the same cache: a rerun pays nothing and gives the same prior
    assert again.prior.provenance["fresh_calls"] == 0 and again.prior.mean == p.mean and srv.n_chat == 6


def test_a_regression_llm_prior_is_signed_with_one_score_per_feature(fake_llm, fake_settings):
    meta = _meta(NUMERIC)
    with fake_llm() as srv:
        p = run_elicitation(meta, fake_settings(srv.base_url, n_samples=1)).prior
    assert p.classes is None and p.features == meta.encoded_columns and len(p.mean) == 3
    assert p.provenance["target_class"] is None and srv.n_chat == 1
    assert 'for the target "mass"' in srv.requests[0]["messages"][-1]["content"]


@pytest.mark.parametrize("dataset", ["wine", "diabetes_progression"])
def test_oracle_random_and_expert_priors_take_the_tasks_form_and_stay_labelled(dataset, tmp_path):
    from laat.datasets import load_dataset, load_metadata
    from laat.elicit.run import build_prior
    from laat.elicit.settings import ElicitationSettings

    meta = load_metadata(dataset, "conf/base/datasets")
    per_class = meta.target.kind == "multiclass"
    oracle = build_prior(meta, ElicitationSettings(source="oracle"), data=load_dataset(meta)).prior
    random = build_prior(meta, ElicitationSettings(source="random", seed=3)).prior
    for p, source in ((oracle, "oracle"), (random, "random")):
        assert p.source == source and p.features == meta.encoded_columns
        assert p.classes == (meta.target.classes if per_class else None)
        assert np.shape(p.mean) == ((3, len(meta.encoded_columns)) if per_class else (len(meta.encoded_columns),))
    path = tmp_path / "expert.yml"
    path.write_text(random.to_yaml())
    expert = build_prior(meta, ElicitationSettings(source="expert", expert_prior_path=str(path))).prior
    assert expert.classes == random.classes and expert.mean == random.mean


def test_a_per_class_expert_prior_for_a_regression_target_is_refused(tmp_path):
    from laat.datasets import load_metadata
    from laat.elicit.run import build_prior
    from laat.elicit.settings import ElicitationSettings
    from laat.priors import PriorError, random_prior

    meta = load_metadata("diabetes_progression", "conf/base/datasets")
    path = tmp_path / "expert.yml"
    path.write_text(random_prior(meta.encoded_columns, classes=["low", "high"]).to_yaml())
    with pytest.raises(
        PriorError,
        match="expert.yml: scores per class are for a multiclass target; 'diabetes_progression' is a regression task",
    ):
        build_prior(meta, ElicitationSettings(source="expert", expert_prior_path=str(path)))
