"""Metrics for each task: a binary classifier's positive-class probabilities, a multiclass
classifier's class probabilities, a regressor's predictions.

One function per task, one dict of floats, so the evaluation node can hand it straight to
MLflow. Kept model-agnostic: it sees labels and predictions, never the estimator.
"""

from __future__ import annotations

import numpy as np

from laat.datasets import TaskKind

METRIC_NAMES = ("roc_auc", "accuracy", "f1", "precision", "recall", "log_loss", "brier")


def check_binary_inputs(y_true, p_yes, where: str = "metrics") -> tuple[np.ndarray, np.ndarray]:
    """Return (y as 0/1 ints, p as floats) or raise a ValueError saying what is wrong."""
    y = np.asarray(y_true).ravel()
    p = np.asarray(p_yes, dtype=float).ravel()
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"{where}: y_true has {y.shape[0]} rows but p_yes has {p.shape[0]}")
    if y.shape[0] == 0:
        raise ValueError(f"{where}: no rows to evaluate")
    if y.dtype == bool:
        y = y.astype(int)
    # a set, not np.unique: unique() sorts, which raises TypeError on mixed labels such as [0, 'yes']
    bad = sorted({v for v in y.tolist() if v not in (0, 1)}, key=str)
    if bad:
        raise ValueError(f"{where}: y_true must hold 0/1 labels (1 = positive class), found {bad[:5]}")
    y = y.astype(int)
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{where}: p_yes has {int((~np.isfinite(p)).sum())} non-finite values")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"{where}: p_yes must be probabilities in [0, 1], got range [{p.min():.4g}, {p.max():.4g}]")
    return y, p


def predict_labels(p_yes, threshold: float = 0.5) -> np.ndarray:
    """Hard labels: positive when p_yes >= threshold (the one rule metrics and fairness share)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return (np.asarray(p_yes, dtype=float) >= threshold).astype(int)


def binary_roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC of 0/1 labels (both classes present) as the Mann-Whitney statistic: the share of
    (positive, negative) pairs ranked right, ties counting half. Average ranks are exact
    half-integers, so this is the exact ratio rounded once; scikit-learn's trapezoid over the
    ROC curve agrees to ~1e-16 and costs 10-50x more (validation dominates small test sets,
    its curve the 45,000-row ones), which the benchmark pays per repetition and group."""
    from scipy.stats import rankdata

    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    rank_sum = float(rankdata(p)[pos].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def classification_metrics(y_true, p_yes, threshold: float = 0.5) -> dict[str, float]:
    """ROC AUC, accuracy, F1, precision, recall, log loss and Brier score.

    Precision (and F1) are 0 when nothing is predicted positive, rather than a warning
    and NaN, so a degenerate model scores badly instead of breaking the metrics log.
    Written with numpy to scikit-learn's formulas (tests hold them to its functions): the
    benchmark computes these for every repetition of every cell, and scikit-learn's input
    validation cost more than the LAAT fits themselves.
    """
    y, p = check_binary_inputs(y_true, p_yes, where="classification_metrics")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(
            f"classification_metrics: ROC AUC is undefined because y_true holds only class "
            f"{int(classes[0])} ({'positive' if classes[0] == 1 else 'negative'}) in all {y.size} rows; "
            "evaluate on a set that contains both classes"
        )
    y_hat = predict_labels(p, threshold)
    tp = int(np.count_nonzero((y_hat == 1) & (y == 1)))
    n_pred, n_true = int(y_hat.sum()), int(y.sum())
    eps = np.finfo(p.dtype).eps
    p_label = np.clip(np.where(y == 1, p, 1 - p), eps, 1 - eps)  # probability given to the true class
    labels_2 = np.stack((1 - y, y), axis=1).astype(p.dtype)
    return {
        "roc_auc": binary_roc_auc(y, p),
        "accuracy": float(np.mean(y == y_hat)),
        "f1": float(2 * tp / (n_true + n_pred)) if n_true + n_pred else 0.0,
        "precision": tp / n_pred if n_pred else 0.0,
        "recall": tp / n_true,
        "log_loss": float(np.mean(-np.log(p_label))),
        "brier": float(np.mean(np.sum((labels_2 - np.stack((1 - p, p), axis=1)) ** 2, axis=1)) * 0.5),
    }


# ---- every task ----------------------------------------------------------------------------

# The metric each task's champion is decided on; one home for it and for which way is better.
TASK_METRIC: dict[TaskKind, str] = {"binary": "roc_auc", "multiclass": "roc_auc_macro", "regression": "rmse"}
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})
MULTICLASS_METRIC_NAMES = ("roc_auc_macro", "roc_auc_weighted", "log_loss", "accuracy", "f1_macro")
REGRESSION_METRIC_NAMES = ("rmse", "mae", "r2")


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def check_multiclass_inputs(y_true, proba, where: str = "metrics") -> tuple[np.ndarray, np.ndarray]:
    """Return (class codes 0..k-1, (n, k) probabilities) or raise a ValueError saying what is wrong."""
    y = np.asarray(y_true).ravel()
    p = np.asarray(proba, dtype=float)
    if p.ndim != 2 or p.shape[1] < 3:
        raise ValueError(f"{where}: proba must be (rows, classes) with 3 or more classes, got shape {p.shape}")
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"{where}: y_true has {y.shape[0]} rows but proba has {p.shape[0]}")
    if y.shape[0] == 0:
        raise ValueError(f"{where}: no rows to evaluate")
    k = p.shape[1]
    bad = sorted({v for v in y.tolist() if v not in range(k)}, key=str)
    if bad:
        raise ValueError(f"{where}: y_true must hold class codes 0..{k - 1} (columns of proba), found {bad[:5]}")
    if not np.all(np.isfinite(p)) or p.min() < 0 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(f"{where}: every row of proba must be finite probabilities summing to 1")
    return y.astype(int), p


def multiclass_metrics(y_true, proba) -> dict[str, float]:
    """One-vs-rest ROC AUC (macro and class-size weighted), log loss, accuracy and macro F1.

    The predicted class is the most probable one. The AUCs need every class in ``y_true``.
    """
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    y, p = check_multiclass_inputs(y_true, proba, where="multiclass_metrics")
    k = p.shape[1]
    absent = sorted(set(range(k)) - set(y.tolist()))
    if absent:
        raise ValueError(
            f"multiclass_metrics: one-vs-rest ROC AUC is undefined because classes {absent} have no "
            f"rows in y_true; evaluate on a set that contains every class"
        )
    y_hat = p.argmax(axis=1)
    return {
        "roc_auc_macro": float(roc_auc_score(y, p, multi_class="ovr", average="macro", labels=list(range(k)))),
        "roc_auc_weighted": float(roc_auc_score(y, p, multi_class="ovr", average="weighted", labels=list(range(k)))),
        "log_loss": float(log_loss(y, p, labels=list(range(k)))),
        "accuracy": float(accuracy_score(y, y_hat)),
        "f1_macro": float(f1_score(y, y_hat, average="macro", labels=list(range(k)), zero_division=0)),
    }


def check_regression_inputs(y_true, y_pred, where: str = "metrics") -> tuple[np.ndarray, np.ndarray]:
    """Return (y, prediction) as finite floats or raise a ValueError saying what is wrong."""
    y = np.asarray(y_true, dtype=float).ravel()
    f = np.asarray(y_pred, dtype=float).ravel()
    if y.shape[0] != f.shape[0]:
        raise ValueError(f"{where}: y_true has {y.shape[0]} rows but y_pred has {f.shape[0]}")
    if y.shape[0] < 2:
        raise ValueError(f"{where}: {y.shape[0]} rows; R² needs at least 2")
    for name, v in (("y_true", y), ("y_pred", f)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{where}: {name} has {int((~np.isfinite(v)).sum())} non-finite values")
    return y, f


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    """Root mean squared error, mean absolute error (both in the target's unit) and R²."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, f = check_regression_inputs(y_true, y_pred, where="regression_metrics")
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, f))),
        "mae": float(mean_absolute_error(y, f)),
        "r2": float(r2_score(y, f)),
    }
