"""Config parsing fails with a message naming the bad value; noisy priors are seeded and exact."""

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from laat_research.config import METHODS, BenchmarkConfig, Method, PriorSpec
from laat_research.noise import flip_signs, randomise_entries

PATHS = dict(
    metadata_dir="conf/base/datasets",
    data_root=".",
    expert_priors_dir="conf/base/priors",
    cache_dir="data/07_model_output/benchmark/cells",
)


def test_prior_spec_round_trip():
    spec = PriorSpec.parse("oracle_noise:0.25")
    assert (spec.base, spec.noise, spec.flip, spec.kind) == ("oracle", 0.25, False, "oracle")
    assert PriorSpec.parse("llm_local_flip").kind == "llm"
    assert PriorSpec.parse("oracle_noise:0.5_flip").name == "oracle_noise:0.5_flip"


@pytest.mark.parametrize("bad", ["gpt4", "oracle_noise:1.5", "oracle_noise:x", "random_flipped"])
def test_bad_prior_source_is_named(bad):
    with pytest.raises(ValidationError, match="prior source"):
        BenchmarkConfig(prior_sources=[bad], **PATHS)


def test_method_names_round_trip_and_carry_family_model_and_trust():
    assert [Method.parse(m.name) for m in METHODS] == list(METHODS)
    assert len({m.name for m in METHODS}) == len(METHODS)
    assert Method.parse("laat_trust_mlp") == Method("laat", "mlp", trust=True)
    assert Method.parse("plain_lr") == Method("plain", "lr") and Method.parse("xgb") == Method("baseline", "xgb")
    assert Method.parse("laat_mlp").family_baseline.name == "mlp"
    assert [m.name for m in METHODS if m.uses_prior] == ["laat_lr", "laat_mlp", "laat_trust_lr", "laat_trust_mlp"]
    assert [m.name for m in METHODS if m.torch and not m.uses_prior] == ["plain_lr", "plain_mlp"]
    cfg = BenchmarkConfig(methods=["laat_trust_lr", "lr", "laat_trust_lr"], **PATHS)
    assert cfg.methods == [Method("laat", "lr", trust=True), Method("baseline", "lr")]  # parsed, deduplicated
    assert cfg.model_dump(mode="json")["methods"] == ["laat_trust_lr", "lr"]  # names again for YAML and MLflow
    assert BenchmarkConfig(**cfg.model_dump()).methods == cfg.methods


def test_unknown_method_and_grid_model_are_named():
    with pytest.raises(ValidationError, match="catboost"):
        BenchmarkConfig(methods=["laat_lr", "catboost"], **PATHS)
    with pytest.raises(ValidationError, match="svm"):
        BenchmarkConfig(baselines={"grids": {"svm": {"C": [1]}}}, **PATHS)


def test_shipped_parameters_validate():
    with open("conf/base/parameters_benchmark.yml", encoding="utf-8") as fh:
        cfg = BenchmarkConfig(**yaml.safe_load(fh)["benchmark"])
    assert cfg.shots == [1, 5, 10] and cfg.repetitions == 20 and cfg.seed == 69
    assert len(cfg.datasets) == 7 and {"llm_local", "oracle", "random"} <= set(cfg.prior_sources)


def test_paths_come_from_the_caller():
    with pytest.raises(ValidationError, match=r"(?s)metadata_dir\n  Field required.*cache_dir\n  Field required"):
        BenchmarkConfig()


def test_randomise_entries_redraws_exactly_the_ratio():
    s = np.full(20, 100.0)  # outside [-10, 10], so every re-drawn entry is visible
    out = randomise_entries(s, 0.25, np.random.default_rng(1))
    changed = out != 100.0
    assert changed.sum() == 5
    assert np.all((out[changed] >= -10) & (out[changed] <= 10) & (out[changed] == np.round(out[changed])))
    np.testing.assert_array_equal(out, randomise_entries(s, 0.25, np.random.default_rng(1)))
    np.testing.assert_array_equal(randomise_entries(s, 0.0, np.random.default_rng(1)), s)
    assert (randomise_entries(s, 1.0, np.random.default_rng(1)) != 100.0).all()
    with pytest.raises(ValueError, match="ratio"):
        randomise_entries(s, 1.2, np.random.default_rng(1))


def test_flip_keeps_magnitudes():
    np.testing.assert_array_equal(flip_signs([3.0, -2.0, 0.0]), [-3.0, 2.0, 0.0])


def test_prior_source_names_come_from_one_vocabulary():
    """Elicitation sources are the LLM backends plus the non-LLM sources of `laat.priors`, and
    every benchmark prior base maps onto a `Prior.source`."""
    from typing import get_args

    from laat.elicit.settings import Source
    from laat.priors import LLM_BACKENDS, NON_LLM_SOURCES, SOURCES
    from laat_research.config import PRIOR_BASES, PriorSpec

    assert set(get_args(Source)) == set(LLM_BACKENDS) | set(NON_LLM_SOURCES)
    assert sorted(PriorSpec.parse(base).kind for base in PRIOR_BASES) == sorted(SOURCES)
