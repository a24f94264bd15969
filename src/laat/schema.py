"""Pandera schema generated from dataset metadata, and a readable validation report.

Validation is lazy: one pass collects *every* failure (column, check, example rows), so a
user fixing a broken CSV sees all problems at once rather than one per run.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from laat.datasets import BOOLEAN_HINT, DatasetMeta, as_text, boolean_values

MAX_EXAMPLES = 5


class DataValidationError(ValueError):
    """Raised when a dataset violates its metadata schema; the message lists every failure."""

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


def build_schema(meta: DatasetMeta, target_required: bool = True):
    """A `pandera.DataFrameSchema` for the raw CSV of `meta` (columns as read by pandas).

    New rows to score may come without the target (``target_required=False``); a target
    column that is there is still checked.
    """
    import pandera.pandas as pa

    columns: dict[str, pa.Column] = {}
    for f in meta.features:
        if f.type == "categorical":
            allowed = list(f.categories)
            columns[f.name] = pa.Column(
                object,
                checks=pa.Check.isin(allowed, name="allowed_categories"),
                nullable=f.nullable,
                coerce=False,
            )
        elif f.type == "boolean":
            columns[f.name] = pa.Column(
                checks=pa.Check(
                    lambda s: boolean_values(s).notna(), name="boolean_values", error=f"boolean_values ({BOOLEAN_HINT})"
                ),
                nullable=f.nullable,
            )
        else:
            checks = []
            if f.min is not None:
                checks.append(pa.Check.ge(f.min, name=f"min_{f.min:g}"))
            if f.max is not None:
                checks.append(pa.Check.le(f.max, name=f"max_{f.max:g}"))
            if f.type == "integer":
                checks.append(
                    pa.Check(lambda s: s.dropna() % 1 == 0, name="whole_numbers", error="values must be whole numbers")
                )
            columns[f.name] = pa.Column(float, checks=checks, nullable=f.nullable, coerce=True)
    check = "target_values" if meta.target.kind == "regression" else "target_labels"
    columns[meta.target.column] = pa.Column(
        checks=pa.Check(
            lambda s: meta.target.codes(s).notna(), name=check, error=f"{check} ({meta.target.expected()})"
        ),
        nullable=False,
        required=target_required,
    )
    return pa.DataFrameSchema(columns, strict=False, ordered=False, name=meta.name)


def validation_report(
    df: pd.DataFrame,
    meta: DatasetMeta,
    min_rows_per_class: int = 1,
    why: str = "both classes are needed to train",
    target_required: bool = True,
) -> dict[str, Any]:
    """Validate lazily and return a JSON-ready report: {dataset, status, n_rows, failures}.

    Besides the schema, the table must have rows and each class at least
    ``min_rows_per_class`` of them (``why`` says what needs them), so a table too small for
    the split fails here, before any LLM call, rather than in the split.
    """
    import pandera.errors as pe

    schema = build_schema(meta, target_required)
    failures: list[dict[str, Any]] = []
    try:
        schema.validate(_as_text_categories(df, meta), lazy=True)
    except pe.SchemaErrors as err:
        failures = _summarise(err.failure_cases)
    failures += class_size_failures(df, meta, min_rows_per_class, why)
    return {
        "dataset": meta.name,
        "status": "passed" if not failures else "failed",
        "n_rows": int(len(df)),
        "n_columns": int(df.shape[1]),
        "failures": failures,
    }


def class_size_failures(df: pd.DataFrame, meta: DatasetMeta, min_rows_per_class: int, why: str) -> list[dict[str, Any]]:
    """Report entries (with a ``message``) for an empty table or a class with too few rows.

    For a regression target the table as a whole needs ``min_rows_per_class`` rows.
    """
    entry = {"column": meta.target.column, "n_failures": 1, "example_rows": [], "example_values": []}
    if len(df) == 0:
        return [{**entry, "check": "not_empty", "message": "the table has no rows (a header only?)"}]
    if meta.target.column not in df.columns:
        return []  # reported by the schema as a missing column
    codes = meta.target.codes(df[meta.target.column])
    if meta.target.kind == "regression":  # the split draws rows, not rows per class
        n = int(codes.notna().sum())
        if n >= min_rows_per_class:
            return []
        return [
            {
                **entry,
                "check": "rows",
                "message": f"target {meta.target.column!r} has {n} valid rows; {min_rows_per_class} are needed ({why})",
            }
        ]
    counts = codes.value_counts()
    short = [(c, int(counts.get(float(i), 0))) for i, c in enumerate(meta.target.classes)]
    short = [(c, n) for c, n in short if n < min_rows_per_class]
    return [
        {
            **entry,
            "check": "rows_per_class",
            "example_values": [c],
            "message": f"class {c!r} of target {meta.target.column!r} has {n} rows; "
            f"{min_rows_per_class} are needed ({why})",
        }
        for c, n in short
    ]


def _as_text_categories(df: pd.DataFrame, meta: DatasetMeta) -> pd.DataFrame:
    """Categorical columns as stripped text (`laat.datasets.as_text`) so 'isin' compares strings.

    pandas reads a column of digits as int; the metadata names categories as strings.
    """
    out = df.copy()
    for col in [f.name for f in meta.features if f.type == "categorical"]:
        if col in out.columns:
            out[col] = as_text(out[col])
    return out


def _summarise(cases: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per (column, check), with a count and a few example rows and values.

    A value that fails to coerce also trips the dtype and range checks that run after it;
    those echoes are dropped so each problem is reported once, where it starts.
    """
    cases = cases.copy()
    missing = cases["check"] == "column_in_dataframe"
    cases.loc[missing, "column"] = cases.loc[missing, "failure_case"]
    uncoercible = set(cases.loc[cases["check"].astype(str).str.startswith("coerce_dtype"), "column"])
    echo = cases["column"].isin(uncoercible) & (
        cases["check"].astype(str).str.startswith("dtype(")
        | cases["failure_case"].astype(str).str.startswith("TypeError(")
    )
    out = []
    for (column, check), grp in cases[~echo].groupby(["column", "check"], sort=False, dropna=False):
        idx = [None if pd.isna(i) else int(i) for i in grp["index"].head(MAX_EXAMPLES)]
        vals = [None if pd.isna(v) else str(v) for v in grp["failure_case"].head(MAX_EXAMPLES)]
        out.append(
            {
                "column": str(column),
                "check": str(check),
                "n_failures": int(len(grp)),
                "example_rows": idx,
                "example_values": vals,
            }
        )
    return out


def format_report(report: dict[str, Any]) -> str:
    """Human-readable summary of a failed report (one line per failed check)."""
    lines = [
        f"dataset {report['dataset']!r} failed validation "
        f"({len(report['failures'])} failed checks, {report['n_rows']} rows):"
    ]
    for f in report["failures"]:
        if "message" in f:
            lines.append(f"  - {f['message']}")
            continue
        if f["check"] == "column_in_dataframe":
            lines.append(f"  - column {f['column']!r}: check column_in_dataframe failed (column is missing)")
            continue
        rows = ", ".join("?" if r is None else str(r) for r in f["example_rows"])
        vals = ", ".join(repr(v) for v in f["example_values"])
        lines.append(
            f"  - column {f['column']!r}: check {f['check']} failed {f['n_failures']}x (rows {rows}; values {vals})"
        )
    return "\n".join(lines)


def validate(df: pd.DataFrame, meta: DatasetMeta) -> pd.DataFrame:
    """Return `df` unchanged if valid, else raise `DataValidationError` listing every failure."""
    report = validation_report(df, meta)
    if report["status"] != "passed":
        raise DataValidationError(format_report(report), report)
    return df
