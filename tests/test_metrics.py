import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, brier_score_loss, f1_score, log_loss, precision_score,
                             recall_score, roc_auc_score)

from laat.metrics import METRIC_NAMES, classification_metrics, predict_labels

Y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
P = np.array([0.1, 0.6, 0.8, 0.4, 0.2, 0.9, 0.55, 0.3])


def test_matches_sklearn_on_a_tiny_example():
    m = classification_metrics(Y, P, threshold=0.5)
    y_hat = (P >= 0.5).astype(int)  # [0,1,1,0,0,1,1,0]
    assert set(m) == set(METRIC_NAMES)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(Y, P))
    assert m["accuracy"] == pytest.approx(accuracy_score(Y, y_hat)) == pytest.approx(4 / 8)
    assert m["precision"] == pytest.approx(precision_score(Y, y_hat)) == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(recall_score(Y, y_hat)) == pytest.approx(2 / 4)
    assert m["f1"] == pytest.approx(f1_score(Y, y_hat))
    assert m["log_loss"] == pytest.approx(log_loss(Y, P))
    assert m["brier"] == pytest.approx(brier_score_loss(Y, P))
    assert all(isinstance(v, float) for v in m.values())


def test_threshold_moves_hard_label_metrics_only():
    lo, hi = classification_metrics(Y, P, threshold=0.35), classification_metrics(Y, P, threshold=0.85)
    assert lo["roc_auc"] == hi["roc_auc"] and lo["brier"] == hi["brier"]
    assert lo["recall"] == pytest.approx(3 / 4) and hi["recall"] == pytest.approx(1 / 4)


def test_threshold_is_inclusive():
    assert predict_labels([0.5, 0.49999], 0.5).tolist() == [1, 0]


def test_nothing_predicted_positive_gives_zero_precision_not_nan():
    m = classification_metrics(Y, np.full(len(Y), 0.1))
    assert m["precision"] == 0.0 and m["f1"] == 0.0 and m["roc_auc"] == 0.5


@pytest.mark.parametrize("only", [0, 1])
def test_single_class_is_a_clear_error(only):
    with pytest.raises(ValueError, match=rf"ROC AUC is undefined.*only class {only}.*all 4 rows"):
        classification_metrics([only] * 4, [0.2, 0.3, 0.4, 0.9])


@pytest.mark.parametrize("y, p, msg", [
    ([0, 1, 1], [0.1, 0.2], "y_true has 3 rows but p_yes has 2"),
    ([0, 2], [0.1, 0.2], r"0/1 labels.*\[2\]"),
    ([0, 1], [0.1, 1.2], r"probabilities in \[0, 1\]"),
    ([0, 1], [0.1, np.nan], "non-finite"),
])
def test_bad_input_names_the_problem(y, p, msg):
    with pytest.raises(ValueError, match=msg):
        classification_metrics(y, p)
