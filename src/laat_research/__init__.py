"""The LAAT benchmark: datasets × protocols × k × repetitions × methods, paired, cached, parallel.

Kedro-free: `run_sweep(BenchmarkConfig(...))` returns the long results table;
`laat_research.summary` turns it into the paper's tables, figures and MLflow metrics.
Installed with the core but usable only with its extra: `pip install "laat[research]"`.
"""

from importlib.util import find_spec

from laat_research.cells import CODE_VERSION, Cell, DatasetContext, prepare_dataset, run_cell
from laat_research.config import BenchmarkConfig, PriorSpec
from laat_research.summary import auc_vs_k_figures, key_metrics, paper_table, summary_markdown
from laat_research.sweep import SweepResult, run_sweep

# Modules only the harness needs, installed by the `[research]` extra (pyproject.toml).
REQUIREMENTS = ("distributed", "xgboost")


def missing_requirements() -> list[str]:
    """The `[research]` extra's modules that are not installed (checked without importing them)."""
    return [name for name in REQUIREMENTS if find_spec(name) is None]


__all__ = [
    "REQUIREMENTS",
    "CODE_VERSION",
    "BenchmarkConfig",
    "Cell",
    "DatasetContext",
    "PriorSpec",
    "SweepResult",
    "auc_vs_k_figures",
    "key_metrics",
    "missing_requirements",
    "paper_table",
    "prepare_dataset",
    "run_cell",
    "run_sweep",
    "summary_markdown",
]
