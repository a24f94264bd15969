"""Thin nodes over `laat_research`: run the sweep, then report it (tables, plots, MLflow metrics).

Heavy imports (torch, sklearn, joblib, dask) happen inside `laat_research` when a node runs,
not when Kedro imports this module at start-up.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from laat_research.config import BenchmarkConfig


def run_benchmark(params: BenchmarkConfig) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The whole sweep; finished cells come from the cell cache, so a rerun recomputes nothing.

    Returns the long results table twice (parquet for analysis, CSV as the MLflow artifact)
    and the run info (wall time, cells computed/cached, priors used, skipped cells).
    """
    from laat_research.sweep import run_sweep

    result = run_sweep(params)
    info = {**result.info, "config": params.model_dump(mode="json")}
    return result.results, result.results, info


def summarise(results: pd.DataFrame, run_info: dict[str, Any], params: BenchmarkConfig) -> str:
    """The paper-format Markdown report (mean ± std ×100) with LAAT's wins and losses."""
    from laat_research.summary import summary_markdown

    return summary_markdown(results, run_info, params.model_dump(mode="json"))


def plot_auc_vs_k(results: pd.DataFrame):
    """Five figures: overview (LAAT vs every baseline), LR family, MLP family, and fixed gamma
    vs trust mode for LR and for the MLP."""
    from laat_research.summary import auc_vs_k_figures

    figs = auc_vs_k_figures(results)
    return figs["overview"], figs["lr"], figs["mlp"], figs["trust_lr"], figs["trust_mlp"]


def benchmark_metrics(results: pd.DataFrame, run_info: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Mean ROC AUC per cell and the run counters, in kedro-mlflow's metrics-history format."""
    from laat_research.summary import key_metrics

    return {k: {"value": v, "step": 0} for k, v in key_metrics(results, run_info).items()}
