"""Figures for evaluation runs and the benchmark, returned as matplotlib ``Figure`` objects.

Figures are built with ``matplotlib.figure.Figure`` directly rather than pyplot: that uses
the Agg renderer for ``savefig`` regardless of the configured GUI backend, keeps no global
figure registry (no leaks when a pipeline makes hundreds), and still renders inline in a
notebook. Kedro's ``matplotlib.MatplotlibDataset`` saves them as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from laat.fairness import NONE_DECLARED
from laat.priors import SOURCES

PRIOR_COLOR, LEARNED_COLOR = "#d95f02", "#1b9e77"


def _l2(v: pd.Series) -> pd.Series:
    norm = float(np.linalg.norm(v.to_numpy(dtype=float)))
    return v / norm if norm > 1e-12 else v * 0.0


def check_prior_label(prior_label: str) -> None:
    """Refuse a plot label that does not say which kind of prior (`laat.priors.SOURCES`) it shows,
    so that a non-LLM prior is never mistaken for an LLM one."""
    if not any(k in prior_label.lower() for k in SOURCES):
        raise ValueError(
            f"prior_label {prior_label!r} must say what kind of prior this is: one of "
            f"{list(SOURCES)} (e.g. 'oracle prior')"
        )


def plot_attributions(
    prior: pd.Series,
    learned: pd.Series,
    title: str = "",
    *,
    prior_label: str,
    learned_label: str = "learned",
    top_n: int = 20,
) -> Figure:
    """Prior vs learned attributions per feature, each scaled to unit L2 norm.

    Unit norm is the scale the LAAT loss compares directions at, so bars of equal length
    mean agreement. With many features (myocardial has 144) only the ``top_n`` largest by
    either magnitude are drawn, and a note says how many are hidden. ``prior_label`` must
    name the prior's kind (llm/expert/oracle/random) so a non-LLM prior is never mistaken
    for an LLM one.
    """
    check_prior_label(prior_label)
    prior, learned = pd.Series(prior, dtype=float), pd.Series(learned, dtype=float)
    only_prior = [f for f in prior.index if f not in learned.index]
    only_learned = [f for f in learned.index if f not in prior.index]
    if only_prior or only_learned:
        raise ValueError(
            f"prior and learned attributions name different features: only in prior "
            f"{only_prior[:10]}, only in learned {only_learned[:10]}"
        )
    learned = learned.reindex(prior.index)
    p, lrn = _l2(prior), _l2(learned)
    denom = np.linalg.norm(prior) * np.linalg.norm(learned)
    cos = float(np.dot(prior, learned) / denom) if denom > 0 else float("nan")

    order = pd.concat([p.abs(), lrn.abs()], axis=1).max(axis=1).sort_values(ascending=False).index
    shown = list(order[:top_n])[::-1]  # largest at the top
    n = len(shown)
    fig = Figure(figsize=(8, 1.5 + 0.32 * n), layout="constrained")
    ax = fig.add_subplot()
    ypos = np.arange(n)
    h = 0.4
    ax.barh(ypos + h / 2, p[shown], height=h, color=PRIOR_COLOR, label=prior_label)
    ax.barh(ypos - h / 2, lrn[shown], height=h, color=LEARNED_COLOR, label=learned_label)
    ax.set_yticks(ypos, shown, fontsize=8 if n > 25 else 9)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel("attribution / ||attribution||₂")
    ax.legend(loc="lower right", fontsize=8)
    heading = title or "Prior vs learned attributions"
    ax.set_title(f"{heading}\ncosine similarity {cos:.3f}", fontsize=10)
    if len(order) > n:
        fig.text(
            0.01,
            0.005,
            f"showing the top {n} of {len(order)} features by |normalised attribution|",
            fontsize=7,
            style="italic",
        )
    return fig


def plot_roc(y_true, p_yes, label: str = "model") -> Figure:
    """ROC curve(s) with AUC in the legend; ``p_yes`` may be a mapping label -> probabilities."""
    from sklearn.metrics import roc_auc_score, roc_curve

    from laat.metrics import check_binary_inputs

    curves = dict(p_yes) if isinstance(p_yes, Mapping) else {label: p_yes}
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.add_subplot()
    for name, p in curves.items():
        y, p = check_binary_inputs(y_true, p, where=f"plot_roc({name!r})")
        if np.unique(y).size < 2:
            raise ValueError("plot_roc: y_true holds one class only; a ROC curve needs both")
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("ROC", fontsize=10)
    return fig


def plot_confusion_matrix(y_true, proba, classes: list[str], title: str = "") -> Figure:
    """Rows: the true class; columns: the most probable class; each cell its count and its share
    of the true class's rows (so a small class's errors are as visible as a large one's)."""
    from sklearn.metrics import confusion_matrix

    from laat.metrics import check_multiclass_inputs

    y, p = check_multiclass_inputs(y_true, proba, where="plot_confusion_matrix")
    if len(classes) != p.shape[1]:
        raise ValueError(f"plot_confusion_matrix: {len(classes)} class names for {p.shape[1]} probability columns")
    counts = confusion_matrix(y, p.argmax(axis=1), labels=list(range(len(classes))))
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    k = len(classes)
    fig = Figure(figsize=(2.5 + 0.8 * k, 2 + 0.8 * k), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{counts[i, j]}\n{share[i, j]:.0%}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k), classes, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "confusion matrix", fontsize=10)
    return fig


def plot_residuals(y_true, y_pred, target: str, title: str = "") -> Figure:
    """Residual (true - predicted) against the prediction: a trend or a funnel shows what the
    model misses; the RMSE is in the title."""
    from laat.metrics import check_regression_inputs

    y, f = check_regression_inputs(y_true, y_pred, where="plot_residuals")
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(f, y - f, s=12, alpha=0.7, color=LEARNED_COLOR)
    ax.axhline(0, linestyle=":", color="grey", linewidth=1)
    ax.set_xlabel(f"predicted {target}")
    ax.set_ylabel(f"residual ({target} - predicted)")
    rmse = float(np.sqrt(np.mean((y - f) ** 2)))
    ax.set_title(f"{title + ': ' if title else ''}residuals (RMSE {rmse:.3g}, n={len(y)})", fontsize=10)
    return fig


def plot_metric_by_group(by_group: pd.DataFrame, metric: str) -> Figure:
    """One panel per sensitive feature, a bar per group, group sizes under the labels.

    ``by_group`` is the long table from ``laat.fairness.fairness_report``. Without rows (no
    sensitive features declared) the figure says so instead of drawing empty axes.
    """
    needed = {"feature", "group", "count", metric}
    missing = sorted(needed - set(by_group.columns))
    if missing:
        raise ValueError(f"plot_metric_by_group: by_group lacks columns {missing} (has {list(by_group.columns)})")
    if by_group.empty:
        fig = Figure(figsize=(4.5, 1.5), layout="constrained")
        fig.text(
            0.5,
            0.5,
            f"{metric} by group: {NONE_DECLARED}\n(no sensitive_features in the dataset metadata)",
            ha="center",
            va="center",
            fontsize=9,
        )
        return fig
    features = list(dict.fromkeys(by_group["feature"]))
    fig = Figure(figsize=(max(4.0, 3.2 * len(features)), 3.6), layout="constrained")
    axes = fig.subplots(1, len(features), squeeze=False, sharey=True)[0]
    for ax, feat in zip(axes, features):
        rows = by_group[by_group["feature"] == feat]
        x = np.arange(len(rows))
        vals = rows[metric].to_numpy(dtype=float)
        ax.bar(x, np.nan_to_num(vals), color="#7570b3")
        for xi, v in zip(x, vals):
            ax.text(
                xi, 0 if np.isnan(v) else v, "n/a" if np.isnan(v) else f"{v:.2f}", ha="center", va="bottom", fontsize=8
            )
        ax.set_xticks(x, [f"{g}\n(n={c})" for g, c in zip(rows["group"], rows["count"])], fontsize=8)
        ax.set_title(feat, fontsize=10)
    axes[0].set_ylabel(metric)
    fig.suptitle(f"{metric} by group", fontsize=10)
    return fig


def plot_auc_vs_shots(results: pd.DataFrame) -> Figure:
    """Benchmark curves: ROC AUC mean ± std over repeats vs shots k, a line per method,
    a panel per dataset. ``results`` has one row per run: dataset, k, method, roc_auc."""
    needed = {"dataset", "k", "method", "roc_auc"}
    missing = sorted(needed - set(results.columns))
    if missing:
        raise ValueError(f"plot_auc_vs_shots: results lack columns {missing} (has {list(results.columns)})")
    datasets = list(dict.fromkeys(results["dataset"]))
    methods = list(dict.fromkeys(results["method"]))
    ncols = min(3, len(datasets))
    nrows = int(np.ceil(len(datasets) / ncols))
    fig = Figure(figsize=(4.2 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    colors = {m: f"C{i % 10}" for i, m in enumerate(methods)}
    for ax, ds in zip(axes, datasets):
        stats = results[results["dataset"] == ds].groupby(["method", "k"])["roc_auc"].agg(["mean", "std"]).reset_index()
        for m in methods:
            s = stats[stats["method"] == m].sort_values("k")
            if s.empty:
                continue
            k, mu, sd = s["k"].to_numpy(float), s["mean"].to_numpy(), s["std"].fillna(0).to_numpy()
            ax.plot(k, mu, marker="o", markersize=3, color=colors[m], label=m)
            ax.fill_between(k, mu - sd, mu + sd, color=colors[m], alpha=0.15, linewidth=0)
        ks = sorted(results.loc[results["dataset"] == ds, "k"].unique())
        if ks and min(ks) > 0 and max(ks) / min(ks) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [f"{k:g}" for k in ks])
        ax.set_title(ds, fontsize=10)
        ax.set_xlabel("shots per class (k)")
        ax.set_ylabel("ROC AUC (mean ± std)")
        ax.grid(alpha=0.3)
    for ax in axes[len(datasets) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    return fig
