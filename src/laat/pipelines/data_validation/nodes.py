"""Thin nodes over `laat.schema`: report first (always persisted), then a gate that stops the run."""

from __future__ import annotations

from typing import Any

import pandas as pd

from laat.datasets import parse_metadata
from laat.metadata_draft import require_no_placeholders
from laat.pipelines.training.nodes import TrainingParams
from laat.schema import DataValidationError, format_report, validation_report
from laat.splits import rows_per_class_needed


def check_dataset(raw: pd.DataFrame, metadata: dict[str, Any], training: TrainingParams) -> dict[str, Any]:
    """Validate every row and column lazily; the report is saved even when the data is bad."""
    require_no_placeholders(metadata)
    need, why = rows_per_class_needed(training.split.strategy, training.split.shots)
    return validation_report(raw, parse_metadata(metadata), min_rows_per_class=need, why=why)


def require_valid(raw: pd.DataFrame, report: dict[str, Any]) -> pd.DataFrame:
    """Pass the data on only if its report passed, so nothing downstream sees bad rows."""
    if report["status"] != "passed":
        raise DataValidationError(format_report(report), report)
    return raw
