"""The benchmark pipeline on an in-memory catalog with a tiny sweep: every declared output is produced."""

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset
from matplotlib.figure import Figure

from laat_research.config import BenchmarkConfig
from laat_research.pipeline import create_pipeline

OUTPUTS = [
    "benchmark_results",
    "benchmark_results_csv",
    "benchmark_run_info",
    "benchmark_summary",
    "benchmark_auc_vs_k_overview",
    "benchmark_auc_vs_k_lr",
    "benchmark_auc_vs_k_mlp",
    "benchmark_auc_vs_k_trust_lr",
    "benchmark_auc_vs_k_trust_mlp",
    "benchmark_metrics",
]


def test_pipeline_runs_a_tiny_sweep(tmp_path):
    params = BenchmarkConfig(
        datasets=["bodyfat"],
        shots=[1, 2],
        repetitions=2,
        protocols=["few_shot"],
        methods=["laat_lr", "laat_trust_lr", "plain_lr", "lr"],
        prior_sources=["oracle", "random"],
        baselines={"grids": {"lr": {"C": [1.0], "l1_ratio": [0.0, 1.0]}}},
        n_jobs=1,
        progress=False,
        cache_dir=str(tmp_path / "cells"),
        metadata_dir="conf/base/datasets",
        data_root=".",
        expert_priors_dir="conf/base/priors",
    )
    catalog = DataCatalog(
        {
            "params:benchmark": MemoryDataset(params),
            # persisted, as in catalog_benchmark.yml, so the runner does not release them after use
            "benchmark_results": ParquetDataset(filepath=str(tmp_path / "results.parquet")),
            "benchmark_run_info": JSONDataset(filepath=str(tmp_path / "run_info.json")),
        }
    )
    out = {name: ds.load() for name, ds in SequentialRunner().run(create_pipeline(), catalog).items()}
    assert set(out) == set(OUTPUTS) - {"benchmark_results", "benchmark_run_info"}

    results = catalog.load("benchmark_results")
    # k x reps x (2 LAAT + 2 trust + 2 others)
    assert isinstance(results, pd.DataFrame) and len(results) == 2 * 2 * 6
    pd.testing.assert_frame_equal(out["benchmark_results_csv"], results)
    info = catalog.load("benchmark_run_info")
    assert info["cells_computed"] == 12 and info["config"]["datasets"] == ["bodyfat"]
    summary = out["benchmark_summary"]
    assert "| bodyfat | 2 |" in summary and "LAAT-LR [oracle]†" in summary
    assert "LAAT-LR trust [oracle]†" in summary and "## Trust mode: plain vs fixed vs trust" in summary
    for name in OUTPUTS[4:9]:
        assert isinstance(out[name], Figure)
    labels = {
        t.get_text()
        for ax in out["benchmark_auc_vs_k_trust_lr"].axes
        for t in (ax.get_legend().get_texts() if ax.get_legend() else [])
    }
    assert {"LAAT-LR trust [random]", "LAAT-LR [random]", "LR (torch, γ=0)", "LR"} <= labels
    metrics = out["benchmark_metrics"]
    assert metrics["few_shot.bodyfat.k2.lr.roc_auc"]["step"] == 0
    assert metrics["run.cells_total"]["value"] == 12.0
    # the MLP family is not in this sweep: its plot says so instead of failing
    assert "no few-shot rows" in out["benchmark_auc_vs_k_mlp"].texts[0].get_text()


def test_registry_exposes_benchmark_unnamespaced():
    from laat.pipeline_registry import register_pipelines

    pipe = register_pipelines()["benchmark"]
    assert "params:benchmark" in pipe.inputs()
    assert {"benchmark_results", "benchmark_summary"} <= pipe.all_outputs()
