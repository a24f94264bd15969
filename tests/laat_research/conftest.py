"""A tiny sweep configuration shared by the benchmark tests, and datasets prepared once."""

from __future__ import annotations

import pytest

from laat_research.cells import prepare_dataset
from laat_research.config import BenchmarkConfig

# One candidate per searched model (LR keeps both penalties), so tuned cells stay fast.
FAST_GRIDS = {
    "lr": {"C": [1.0], "l1_ratio": [1.0, 0.0]},
    "mlp": {"alpha": [1.0]},
    "rf": {"max_depth": [2], "n_estimators": [8]},
    "hgb": {"min_samples_leaf": [5]},
    "xgb": {"max_depth": [2]},
}


# Where this project keeps things (the caller's side, as conf/base/parameters_benchmark.yml says).
PROJECT_PATHS = dict(metadata_dir="conf/base/datasets", data_root=".", expert_priors_dir="conf/base/priors")


def tiny_config(cache_dir, **overrides) -> BenchmarkConfig:
    base = dict(
        **PROJECT_PATHS,
        datasets=["diabetes", "bodyfat"],
        shots=[1],
        repetitions=2,
        protocols=["few_shot", "skew"],
        methods=["laat_lr", "laat_mlp", "plain_lr", "lr", "mlp", "rf", "hgb", "xgb"],
        prior_sources=["oracle", "oracle_noise:0.5", "random", "expert"],
        baselines={"grids": FAST_GRIDS, "mlp_max_iter": 100},
        n_jobs=1,
        progress=False,
        skew={"test_fraction": 0.6, "repetitions": 1},  # quicker tuned skew cells
        cache_dir=str(cache_dir),
    )
    base.update(overrides)
    return BenchmarkConfig(**base)


@pytest.fixture(scope="session")
def contexts(project_root):
    """diabetes and bodyfat loaded, validated and encoded once, with oracle and expert priors."""
    import os

    old = os.getcwd()
    os.chdir(project_root)
    try:
        cfg = tiny_config("unused")
        return {ds: prepare_dataset(ds, cfg) for ds in cfg.datasets}
    finally:
        os.chdir(old)


@pytest.fixture(scope="session")
def swept(tmp_path_factory, contexts):
    """The tiny sweep, run once on local joblib (loky) workers, the default backend."""
    from laat_research.sweep import run_sweep

    cfg = tiny_config(tmp_path_factory.mktemp("cells"), n_jobs=2)
    first = run_sweep(cfg, contexts=contexts)
    assert first.info["backend"] == "joblib(n_jobs=2)"
    return cfg, first
