"""Threshold and ranking metrics for a binary classifier's positive-class probabilities.

One function, one dict of floats, so the evaluation node can hand it straight to MLflow.
Kept model-agnostic: it sees labels and probabilities, never the estimator.
"""

from __future__ import annotations

import numpy as np

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
        raise ValueError(f"{where}: p_yes must be probabilities in [0, 1], got range "
                         f"[{p.min():.4g}, {p.max():.4g}]")
    return y, p


def predict_labels(p_yes, threshold: float = 0.5) -> np.ndarray:
    """Hard labels: positive when p_yes >= threshold (the one rule metrics and fairness share)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return (np.asarray(p_yes, dtype=float) >= threshold).astype(int)


def classification_metrics(y_true, p_yes, threshold: float = 0.5) -> dict[str, float]:
    """ROC AUC, accuracy, F1, precision, recall, log loss and Brier score.

    Precision (and F1) are 0 when nothing is predicted positive, rather than a warning
    and NaN, so a degenerate model scores badly instead of breaking the metrics log.
    """
    from sklearn.metrics import (accuracy_score, brier_score_loss, f1_score, log_loss,
                                 precision_score, recall_score, roc_auc_score)

    y, p = check_binary_inputs(y_true, p_yes, where="classification_metrics")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(
            f"classification_metrics: ROC AUC is undefined because y_true holds only class "
            f"{int(classes[0])} ({'positive' if classes[0] == 1 else 'negative'}) in all {y.size} rows; "
            "evaluate on a set that contains both classes")
    y_hat = predict_labels(p, threshold)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "accuracy": float(accuracy_score(y, y_hat)),
        "f1": float(f1_score(y, y_hat, zero_division=0)),
        "precision": float(precision_score(y, y_hat, zero_division=0)),
        "recall": float(recall_score(y, y_hat, zero_division=0)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
    }
