"""The LAAT benchmark: datasets × protocols × k × repetitions × methods, paired, cached, parallel.

Kedro-free: `run_sweep(BenchmarkConfig(...))` returns the long results table;
`laat.benchmark.summary` turns it into the paper's tables, figures and MLflow metrics.
"""

from laat.benchmark.cells import CODE_VERSION, Cell, DatasetContext, prepare_dataset, run_cell
from laat.benchmark.config import BenchmarkConfig, PriorSpec
from laat.benchmark.summary import auc_vs_k_figures, key_metrics, paper_table, summary_markdown
from laat.benchmark.sweep import SweepResult, run_sweep

__all__ = [
    "CODE_VERSION",
    "BenchmarkConfig",
    "Cell",
    "DatasetContext",
    "PriorSpec",
    "SweepResult",
    "auc_vs_k_figures",
    "key_metrics",
    "paper_table",
    "prepare_dataset",
    "run_cell",
    "run_sweep",
    "summary_markdown",
]
