"""Group fairness of a model's predictions, per sensitive feature.

A binary classifier gets selection rates, TPR/FPR and AUC per group; a multiclass one accuracy
and macro F1 per group; a regressor its error per group.

This module decides the groups and the metrics (some of them fairlearn's) and slices the
rows itself. Continuous sensitive features (age) are cut into a few readable bins
(``Age<30``, ``30<=Age<45``, ``Age>=45``) because a group per distinct age is mostly
groups of one. fairlearn is imported inside the functions: it takes seconds to import and
Kedro imports every pipeline module at startup.

Differences are max - min over the groups where the metric is defined. TPR is undefined
for a group with no positives (fairlearn would report 0 there, which inflates equalized
odds on small test sets), so such groups are left out of that difference rather than
counted as a perfect miss.

A dataset without sensitive features gets no gaps and a by-group table with its columns but
no rows, so the artifact reads back like any other; ``NONE_DECLARED`` is how every stage
says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from laat.metrics import (
    binary_roc_auc,
    check_binary_inputs,
    check_multiclass_inputs,
    check_regression_inputs,
    predict_labels,
)

GROUP_METRICS = ("count", "base_rate", "selection_rate", "accuracy", "tpr", "fpr", "roc_auc")
BY_GROUP_COLUMNS = ("feature", "group", *GROUP_METRICS)
MULTICLASS_BY_GROUP_COLUMNS = ("feature", "group", "count", "accuracy", "f1_macro")
REGRESSION_BY_GROUP_COLUMNS = ("feature", "group", "count", "rmse", "mae", "mean_error")
MISSING_GROUP = "missing"
NONE_DECLARED = "none declared"


# ---- groups ---------------------------------------------------------------------------------


def _is_continuous(s: pd.Series, n_bins: int) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.nunique(dropna=True) > n_bins


def _nice(v: float, integer: bool) -> float:
    """Round a quantile edge so the label reads like a person wrote it (30, not 29.75)."""
    if integer:
        return float(round(v))
    if v == 0:
        return 0.0
    digits = 2 - int(np.floor(np.log10(abs(v)))) - 1
    return float(round(v, digits))


def quantile_edges(values: pd.Series, n_bins: int = 3) -> list[float]:
    """Inner bin edges at the 1/n_bins quantiles, rounded and de-duplicated."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return []
    integer = bool(np.all(v % 1 == 0))
    qs = v.quantile(np.arange(1, n_bins) / n_bins).to_numpy()
    edges = sorted({_nice(q, integer) for q in qs})
    # an edge at or below the minimum would leave its lower bin empty
    return [e for e in edges if v.min() < e <= v.max()]


def _fmt(e: float) -> str:
    return f"{e:g}"


def _value(v) -> str:
    """1.0 -> '1' so a 0/1 column stored as float reads as 0/1."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def group_labels(
    values: pd.Series, name: str | None = None, n_bins: int = 3, edges: Sequence[float] | None = None
) -> pd.Series:
    """Readable group label per row, as an ordered categorical (bins in value order).

    Numeric columns with more than ``n_bins`` distinct values are binned (left-closed bins:
    ``e1<=x<e2``) at ``edges`` or, by default, at rounded quantiles; anything else keeps
    its values, labelled ``name=value``. Missing values get their own group.
    """
    name = name or str(values.name)
    s = pd.Series(values).reset_index(drop=True)
    if edges is not None or _is_continuous(s, n_bins):
        num = pd.to_numeric(s, errors="coerce")
        bad = s[num.isna() & s.notna()]
        if not bad.empty:
            raise ValueError(
                f"sensitive feature {name!r} is binned as numeric but holds "
                f"non-numeric values {bad.unique()[:5].tolist()}"
            )
        cuts = sorted(float(e) for e in (edges if edges is not None else quantile_edges(num, n_bins)))
        if not cuts:
            labels = [f"{name} all"]
        else:
            labels = (
                [f"{name}<{_fmt(cuts[0])}"]
                + [f"{_fmt(a)}<={name}<{_fmt(b)}" for a, b in zip(cuts, cuts[1:])]
                + [f"{name}>={_fmt(cuts[-1])}"]
            )
        idx = np.searchsorted(np.asarray(cuts), num.to_numpy(dtype=float), side="right")
        out = pd.Series([labels[i] for i in idx], dtype=object)
    else:
        values_sorted = sorted(s.dropna().unique().tolist(), key=lambda v: (str(type(v)), v))
        labels = [f"{name}={_value(v)}" for v in values_sorted]
        lookup = dict(zip(values_sorted, labels))
        out = s.map(lambda v: lookup.get(v) if pd.notna(v) else None).astype(object)
    missing_label = f"{name} {MISSING_GROUP}"
    if s.isna().any():
        out[s.isna().to_numpy()] = missing_label
        labels = [*labels, missing_label]
    present = [lab for lab in labels if lab in set(out)]
    return pd.Series(pd.Categorical(out, categories=present, ordered=True), name=name)


# ---- per-group metrics ------------------------------------------------------------------------


def _rate(y_pred: np.ndarray, mask: np.ndarray) -> float:
    return float(y_pred[mask].mean()) if mask.any() else float("nan")


def _tpr(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return _rate(y_pred, y_true == 1)


def _fpr(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return _rate(y_pred, y_true == 0)


def _base_rate(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true)))


def _roc_auc(y_true, y_pred, y_score) -> float:
    y_true = np.asarray(y_true)
    return binary_roc_auc(y_true, np.asarray(y_score, dtype=float)) if np.unique(y_true).size == 2 else float("nan")


def fairness_report(
    y_true,
    p_yes,
    sensitive: pd.DataFrame,
    threshold: float = 0.5,
    n_bins: int = 3,
    bins: Mapping[str, Sequence[float]] | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Per-group metrics and fairness gaps for every column of ``sensitive``.

    ``sensitive`` holds the raw sensitive columns, row-aligned (by position) with
    ``y_true`` (0/1) and ``p_yes``. ``bins`` fixes the edges of a numeric feature
    (e.g. ``{"Age": [30, 50]}``) so that groups stay the same across runs; otherwise
    edges are rounded quantiles of this data.

    Returns ``summary`` (``fairness.<feature>.<gap>`` -> float, for MLflow; a gap is
    omitted when fewer than two groups define it) and ``by_group`` (one row per feature
    and group: the ``BY_GROUP_COLUMNS``, for a CSV artifact). With no sensitive columns
    both are empty (the table keeps its columns).
    """
    from fairlearn.metrics import count, selection_rate
    from sklearn.metrics import accuracy_score

    y, p = check_binary_inputs(y_true, p_yes, where="fairness_report")
    return _report(
        y,
        predict_labels(p, threshold),
        sensitive,
        n_bins,
        bins,
        where="fairness_report",
        metrics={
            "count": count,
            "base_rate": _base_rate,
            "selection_rate": selection_rate,
            "accuracy": accuracy_score,
            "tpr": _tpr,
            "fpr": _fpr,
            "roc_auc": _roc_auc,
        },
        gaps={
            "demographic_parity_difference": ["selection_rate"],
            "equalized_odds_difference": ["tpr", "fpr"],
            "roc_auc_difference": ["roc_auc"],
        },
        sample_params={"roc_auc": {"y_score": p}},
    )


def multiclass_fairness_report(
    y_true,
    proba,
    sensitive: pd.DataFrame,
    n_bins: int = 3,
    bins: Mapping[str, Sequence[float]] | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Accuracy and macro F1 of the most probable class per group, and their largest gaps.

    Arguments and results as in `fairness_report` (columns ``MULTICLASS_BY_GROUP_COLUMNS``).
    """
    from fairlearn.metrics import count
    from sklearn.metrics import accuracy_score

    y, p = check_multiclass_inputs(y_true, proba, where="multiclass_fairness_report")
    return _report(
        y,
        p.argmax(axis=1),
        sensitive,
        n_bins,
        bins,
        where="multiclass_fairness_report",
        metrics={"count": count, "accuracy": accuracy_score, "f1_macro": _f1_macro},
        gaps={"accuracy_difference": ["accuracy"], "f1_macro_difference": ["f1_macro"]},
    )


def regression_fairness_report(
    y_true,
    y_pred,
    sensitive: pd.DataFrame,
    n_bins: int = 3,
    bins: Mapping[str, Sequence[float]] | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Error per group (RMSE, MAE, and the mean error: over- or under-prediction), and the
    largest gaps between groups.

    Arguments and results as in `fairness_report` (columns ``REGRESSION_BY_GROUP_COLUMNS``).
    """
    from fairlearn.metrics import count
    from sklearn.metrics import mean_absolute_error

    y, f = check_regression_inputs(y_true, y_pred, where="regression_fairness_report")
    return _report(
        y,
        f,
        sensitive,
        n_bins,
        bins,
        where="regression_fairness_report",
        metrics={"count": count, "rmse": _rmse, "mae": mean_absolute_error, "mean_error": _mean_error},
        gaps={"rmse_difference": ["rmse"], "mae_difference": ["mae"], "mean_error_difference": ["mean_error"]},
    )


def _f1_macro(y_true, y_pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def _rmse(y_true, y_pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_pred) - np.asarray(y_true)) ** 2)))


def _mean_error(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_pred) - np.asarray(y_true)))


def _report(
    y: np.ndarray,
    y_hat: np.ndarray,
    sensitive: pd.DataFrame,
    n_bins: int,
    bins: Mapping[str, Sequence[float]] | None,
    *,
    where: str,
    metrics: dict,
    gaps: dict[str, list[str]],
    sample_params: dict | None = None,
) -> tuple[dict[str, float], pd.DataFrame]:
    """Each metric on each sensitive column's groups (the rows of a group, in order, as
    fairlearn's ``MetricFrame`` slices them, which cost ~0.2 s per call: the benchmark makes one
    per skew repetition and cell); a gap is max - min of its metrics over the groups that
    define them (the largest, for a gap of several metrics)."""
    if not isinstance(sensitive, pd.DataFrame):
        raise TypeError(f"{where}: sensitive must be a DataFrame of sensitive columns, got {type(sensitive).__name__}")
    if len(sensitive) != len(y):
        raise ValueError(f"{where}: sensitive has {len(sensitive)} rows but y_true has {len(y)}")
    unknown = sorted(set(bins or {}) - set(map(str, sensitive.columns)))
    if unknown:
        raise ValueError(
            f"{where}: bins given for {unknown}, which are not sensitive columns {list(map(str, sensitive.columns))}"
        )
    columns = ["feature", "group", *metrics]
    summary: dict[str, float] = {}
    tables = []
    for col in sensitive.columns:
        name = str(col)
        groups = group_labels(sensitive[col], name=name, n_bins=n_bins, edges=(bins or {}).get(name))
        codes = groups.cat.codes.to_numpy()
        rows = {}
        for code, label in enumerate(groups.cat.categories):  # group_labels keeps only present groups
            rows[label] = _group_row(metrics, y, y_hat, codes == code, sample_params or {})
        table = pd.DataFrame.from_dict(rows, orient="index", columns=list(metrics)).astype(float)
        table["count"] = table["count"].astype(int)
        for gap, names in gaps.items():
            diffs = [table[m].max() - table[m].min() for m in names if table[m].notna().sum() >= 2]
            if diffs:
                summary[f"fairness.{name}.{gap}"] = float(max(diffs))
        table = table.reset_index(names="group")
        table.insert(0, "feature", name)
        tables.append(table[columns])
    if not tables:
        return summary, pd.DataFrame(columns=columns)
    return summary, pd.concat(tables, ignore_index=True)


def _group_row(metrics: dict, y: np.ndarray, y_hat: np.ndarray, mask: np.ndarray, sample_params: dict) -> dict:
    """Every metric on the rows in ``mask``; per-row extras (``y_score``) sliced alike."""
    return {
        m: fn(y[mask], y_hat[mask], **{k: np.asarray(v)[mask] for k, v in sample_params.get(m, {}).items()})
        for m, fn in metrics.items()
    }
