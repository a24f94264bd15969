import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from laat.metrics import (
    METRIC_NAMES,
    MULTICLASS_METRIC_NAMES,
    REGRESSION_METRIC_NAMES,
    TASK_METRIC,
    check_binary_inputs,
    classification_metrics,
    higher_is_better,
    multiclass_metrics,
    predict_labels,
    regression_metrics,
)

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


@pytest.mark.parametrize(
    "y, p, msg",
    [
        ([0, 1, 1], [0.1, 0.2], "y_true has 3 rows but p_yes has 2"),
        ([0, 2], [0.1, 0.2], r"0/1 labels.*\[2\]"),
        ([0, 1], [0.1, 1.2], r"probabilities in \[0, 1\]"),
        ([0, 1], [0.1, np.nan], "non-finite"),
    ],
)
def test_bad_input_names_the_problem(y, p, msg):
    with pytest.raises(ValueError, match=msg):
        classification_metrics(y, p)


# ---- boundaries, types and messages (mutation testing: docs/mutation-testing.md) ---------------


def test_default_threshold_is_one_half_and_both_ends_of_the_unit_interval_are_allowed():
    assert predict_labels([0.5, 0.4999]).tolist() == [1, 0]
    assert predict_labels([0.0, 0.3], threshold=0.0).tolist() == [1, 1]
    assert predict_labels([1.0, 0.99], threshold=1.0).tolist() == [1, 0]
    assert predict_labels(np.array([0.7, 0.2])).dtype.kind == "i"  # 0/1 ints, not booleans
    with pytest.raises(ValueError, match=r"^threshold must be in \[0, 1\], got 1.5$"):
        predict_labels([0.5], threshold=1.5)


def test_probabilities_of_exactly_zero_and_one_are_valid():
    m = classification_metrics([0, 1, 0, 1], [0.0, 1.0, 0.2, 0.8])
    assert m["roc_auc"] == 1.0 and m["accuracy"] == 1.0


def test_boolean_and_object_typed_inputs_are_read_as_labels_and_probabilities():
    ref = classification_metrics(Y, P)
    assert classification_metrics(Y.astype(bool), P) == ref
    assert classification_metrics(Y, pd.Series(P, dtype=object)) == ref
    y, p = check_binary_inputs(Y.astype(float), P.tolist())
    assert y.dtype.kind == "i" and p.dtype == np.float64


def test_a_model_that_predicts_no_positive_gets_zeros_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(Y, np.full(len(Y), 0.1))
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0


@pytest.mark.parametrize("only,word", [(0, "negative"), (1, "positive")])
def test_single_class_message_names_the_class_and_the_fix(only, word):
    with pytest.raises(
        ValueError,
        match=rf"^classification_metrics: ROC AUC is undefined because y_true holds "
        rf"only class {only} \({word}\) in all 3 rows; evaluate on a set that "
        rf"contains both classes$",
    ):
        classification_metrics([only] * 3, [0.2, 0.3, 0.4])


@pytest.mark.parametrize(
    "y, p, msg",
    [
        ([], [], "no rows to evaluate"),
        (["0", "1"], [0.1, 0.2], r"y_true must hold 0/1 labels \(1 = positive class\), found \['0', '1'\]"),
        (np.array([0, 1, "yes", 2], dtype=object), [0.1] * 4, r"found \[2, 'yes'\]"),
        ([0, 1, 2, 3, 4, 5, 6, 7, 8], [0.1] * 9, r"found \[2, 3, 4, 5, 6\]$"),  # the first five
        ([0, 1, 1], [0.1, np.nan, np.inf], "p_yes has 2 non-finite values"),
        ([0, 1], [-0.1, 0.5], r"p_yes must be probabilities in \[0, 1\], got range \[-0.1, 0.5\]"),
    ],
)
def test_bad_input_messages_name_the_caller_and_the_problem(y, p, msg):
    with pytest.raises(ValueError, match="^classification_metrics: .*" + msg):
        classification_metrics(y, p)
    with pytest.raises(ValueError, match="^metrics: .*" + msg):  # the default caller name
        check_binary_inputs(y, p)


# ---- multiclass and regression ---------------------------------------------------------------

Y3 = np.array([0, 1, 2, 0, 1, 2, 2, 1])
P3 = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.1, 0.5, 0.4],
        [0.2, 0.2, 0.6],
        [0.3, 0.4, 0.3],
        [0.2, 0.6, 0.2],
        [0.1, 0.1, 0.8],
        [0.5, 0.3, 0.2],
        [0.3, 0.3, 0.4],
    ]
)


def test_multiclass_metrics_match_sklearn_one_vs_rest_and_argmax():
    m = multiclass_metrics(Y3, P3)
    y_hat = P3.argmax(axis=1)  # [0, 1, 2, 1, 1, 2, 0, 2]: 5 of 8 right
    assert tuple(m) == MULTICLASS_METRIC_NAMES
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["roc_auc_macro"] == pytest.approx(np.mean([roc_auc_score(c == Y3, P3[:, c]) for c in range(3)]))
    weights = np.bincount(Y3) / len(Y3)
    assert m["roc_auc_weighted"] == pytest.approx(
        sum(w * roc_auc_score(c == Y3, P3[:, c]) for c, w in enumerate(weights))
    )
    assert m["log_loss"] == pytest.approx(-np.mean(np.log(P3[np.arange(8), Y3])))
    assert m["f1_macro"] == pytest.approx(f1_score(Y3, y_hat, average="macro"))


@pytest.mark.parametrize(
    "y, p, msg",
    [
        (Y3[:4], P3, "y_true has 4 rows but proba has 8"),
        (Y3, P3[:, :2], r"3 or more classes, got shape \(8, 2\)"),
        (np.where(Y3 == 2, 3, Y3), P3, r"class codes 0..2 .* found \[3\]"),
        (Y3, P3 * 2, "summing to 1"),
        (np.minimum(Y3, 1), P3, r"classes \[2\] have no rows"),
    ],
)
def test_bad_multiclass_inputs_say_what_is_wrong(y, p, msg):
    with pytest.raises(ValueError, match=msg):
        multiclass_metrics(y, p)


def test_regression_metrics_by_hand():
    y, f = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.0, 5.0])  # errors .5, 0, -1, 1
    m = regression_metrics(y, f)
    assert tuple(m) == REGRESSION_METRIC_NAMES
    assert m["rmse"] == pytest.approx(np.sqrt(2.25 / 4)) and m["mae"] == pytest.approx(2.5 / 4)
    assert m["r2"] == pytest.approx(1 - 2.25 / 5.0)  # total sum of squares around 2.5 is 5


@pytest.mark.parametrize(
    "y, f, msg",
    [
        ([1.0, 2.0], [1.0], "y_true has 2 rows but y_pred has 1"),
        ([1.0], [1.0], "1 rows; R² needs at least 2"),
        ([1.0, 2.0], [1.0, np.nan], "y_pred has 1 non-finite values"),
    ],
)
def test_bad_regression_inputs_say_what_is_wrong(y, f, msg):
    with pytest.raises(ValueError, match=msg):
        regression_metrics(y, f)


def test_every_task_has_a_champion_metric_it_computes_and_errors_are_lower_is_better():
    assert TASK_METRIC == {"binary": "roc_auc", "multiclass": "roc_auc_macro", "regression": "rmse"}
    assert {TASK_METRIC["binary"]} <= set(METRIC_NAMES) and TASK_METRIC["multiclass"] in MULTICLASS_METRIC_NAMES
    assert [higher_is_better(m) for m in ("roc_auc", "roc_auc_macro", "r2", "rmse", "mae", "log_loss")] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]


@pytest.mark.parametrize("kind", ["continuous", "tied", "extreme", "float32"])
def test_numpy_formulas_agree_with_sklearn_on_random_inputs(kind):
    """classification_metrics is written in numpy for speed: it must give scikit-learn's numbers
    (exactly, except ROC AUC, where the trapezoid and the rank statistic differ in the last bits)."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(2, 400))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        u = rng.random(n)
        p = {"continuous": u, "tied": np.round(u, 1), "extreme": np.round(u * 2) / 2}.get(kind)
        if kind == "float32":
            p = u.astype(np.float32).astype(float)
        m = classification_metrics(y, p, threshold=0.5)
        y_hat = predict_labels(p, 0.5)
        assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p), rel=0, abs=1e-12)
        assert m["accuracy"] == accuracy_score(y, y_hat)
        assert m["precision"] == precision_score(y, y_hat, zero_division=0)
        assert m["recall"] == recall_score(y, y_hat, zero_division=0)
        assert m["f1"] == f1_score(y, y_hat, zero_division=0)
        assert m["log_loss"] == log_loss(y, p, labels=[0, 1])
        assert m["brier"] == brier_score_loss(y, p)
