"""Trust for multiclass and regression: the data's direction and the gate's p-values."""

from __future__ import annotations

import numpy as np
import pytest

from laat.trust import DEFAULT_SETTINGS
from laat.trust_multi import MultiTrustProblem, agreement_p_value, data_direction


def test_the_data_direction_is_a_covariance_or_class_means_minus_the_mean():
    rng = np.random.default_rng(0)
    X = rng.random((12, 3))
    y = rng.standard_normal(12)
    np.testing.assert_allclose(
        data_direction(X, y, "regression", 1, np.ones(12)), np.cov(X.T, y, bias=True)[-1, :3], rtol=1e-12
    )
    c = np.array([0, 1, 2] * 4)
    d = data_direction(X, c, "multiclass", 3, np.ones(12))
    np.testing.assert_allclose(d[1], X[c == 1].mean(0) - X.mean(0), rtol=1e-12)
    w = np.r_[np.ones(9), np.zeros(3)]  # zero-weight rows do not count
    np.testing.assert_allclose(
        data_direction(X, y, "regression", 1, w), data_direction(X[:9], y[:9], "regression", 1, np.ones(9)), rtol=1e-12
    )


def _two_class_signal(n_per_class=6, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1, 2], n_per_class)
    X = rng.random((len(y), 4)) * 0.2
    X[:, 0] += 0.8 * (y == 0)  # feature 0 marks class 0, feature 1 marks class 2
    X[:, 1] += 0.8 * (y == 2)
    return X, y


def test_the_gate_passes_a_right_per_class_prior_and_rejects_its_mirror_image():
    X, y = _two_class_signal()
    right = np.array([[10, 0, 0, 0], [-5, -5, 0, 0], [0, 10, 0, 0]], float)
    p_right, agree = agreement_p_value(
        MultiTrustProblem(X=X, y=y, scores=right, task="multiclass", n_outputs=3, gamma=100)
    )
    p_wrong, _ = agreement_p_value(
        MultiTrustProblem(X=X, y=y, scores=-right, task="multiclass", n_outputs=3, gamma=100)
    )
    assert p_right < DEFAULT_SETTINGS.alpha and agree > 0.9 and p_wrong > 0.9


def test_a_shared_prior_is_judged_by_magnitude_and_a_uniform_one_carries_no_evidence():
    X, y = _two_class_signal()
    prob = {"X": X, "y": y, "task": "multiclass", "n_outputs": 3, "gamma": 100}
    p_right, _ = agreement_p_value(MultiTrustProblem(scores=np.array([10.0, -10.0, 1.0, 1.0]), **prob))
    p_wrong, _ = agreement_p_value(MultiTrustProblem(scores=np.array([1.0, 1.0, 10.0, -10.0]), **prob))
    p_flat, _ = agreement_p_value(MultiTrustProblem(scores=np.full(4, 5.0), **prob))
    assert p_right < DEFAULT_SETTINGS.alpha <= p_wrong and p_flat == 1.0


@pytest.mark.parametrize("sign, passes", [(1.0, True), (-1.0, False)])
def test_the_regression_gate_reads_the_signs_against_the_covariance(sign, passes):
    rng = np.random.default_rng(3)
    X = rng.random((30, 5))
    y = X @ np.array([3.0, -2.0, 1.0, 0.0, 0.0]) + 0.1 * rng.standard_normal(30)
    p, _ = agreement_p_value(
        MultiTrustProblem(
            X=X, y=y, scores=sign * np.array([9.0, -7.0, 4.0, 0.0, 0.0]), task="regression", n_outputs=1, gamma=100
        )
    )
    assert (p < DEFAULT_SETTINGS.alpha) == passes
