"""The small-k rules and the LR grid whose l1 half is really searched (spec section 8.3)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from laat_research.baselines import PAPER_GRIDS, fit_baseline, grid_for, make_estimator, n_folds
from laat_research.config import BaselineSettings


def test_fold_rules():
    s = BaselineSettings()
    y = np.array([0] * 10 + [1] * 10)
    assert n_folds(np.array([0, 1]), 1, s) == 0  # k = 1: defaults
    assert n_folds(y, 5, s) == 5  # min(5, k)
    assert n_folds(np.array([0] * 3 + [1] * 3), 3, s) == 3
    # skew (k None): 5 folds, capped by the minority class
    assert n_folds(np.array([0] * 50 + [1] * 3), None, s) == 3
    assert n_folds(np.array([0] * 50 + [1] * 1), None, s) == 0


def test_every_paper_lr_candidate_fits_including_l1():
    rng = np.random.default_rng(0)
    X = rng.random((30, 5))
    y = (X[:, 0] + 0.3 * rng.random(30) > 0.6).astype(int)
    base = make_estimator("lr", 0)
    penalties = set()
    for params in ParameterGrid(PAPER_GRIDS["lr"]):
        est = clone(base).set_params(**params).fit(X, y)
        assert np.isfinite(est.predict_proba(X)).all()
        penalties.add(params["l1_ratio"])
    assert penalties == {0.0, 1.0}
    # strong l1 zeroes coefficients, which an l2-only search could never do
    sparse = clone(base).set_params(C=0.05, l1_ratio=1.0).fit(X, y)
    assert (sparse.coef_ == 0).any()


def test_k1_uses_defaults_and_k5_searches():
    rng = np.random.default_rng(0)
    X, y = rng.random((10, 3)), np.array([0, 1] * 5)
    s = BaselineSettings(grids={"rf": {"max_depth": [2, 3], "n_estimators": [4]}})
    _, info1 = fit_baseline("rf", X[:2], y[:2], k=1, settings=s, random_state=0)
    assert info1 == {"tuned": False, "cv_folds": 0, "best_params": "{}", "grid_size": 1}
    _, info5 = fit_baseline("rf", X, y, k=5, settings=s, random_state=0)
    assert info5["tuned"] and info5["cv_folds"] == 5 and info5["grid_size"] == 2
    assert grid_for("rf", s) == {"max_depth": [2, 3], "n_estimators": [4]}


def test_unknown_baseline_is_named():
    with pytest.raises(ValueError, match="catboost"):
        make_estimator("catboost", 0)


@pytest.mark.parametrize("name", ["lr", "xgb"])
def test_grid_search_chooses_and_refits_as_gridsearchcv(name):
    """The sweep's own search loop must be GridSearchCV's: same winner (ties to the first
    candidate, decision_function scores where the model has one), same refit model."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from laat_research.baselines import REDUCED_GRIDS, grid_search

    rng = np.random.default_rng(5)
    chosen = set()
    for rep in range(6 if name == "lr" else 2):
        n = 10 if rep % 2 else 40
        X = rng.random((n, 4))
        y = (X[:, 0] + 0.6 * rng.random(n) > 0.8).astype(int)
        y[:5], y[5:10] = 0, 1  # both classes in every fold
        est = make_estimator(name, rep)
        grid = {"C": [100, 1, 0.01, 1e-3], "l1_ratio": [1.0, 0.0]} if name == "lr" else REDUCED_GRIDS[name]
        want = GridSearchCV(
            est, grid, scoring="roc_auc", cv=StratifiedKFold(n_splits=5), n_jobs=1, error_score=np.nan
        ).fit(X, y)
        got, best = grid_search(est, grid, X, y, 5)
        assert best == want.best_params_
        assert np.array_equal(got.predict_proba(X), want.best_estimator_.predict_proba(X))
        chosen.add(tuple(sorted(best.items())))
    assert len(chosen) >= 2 or name != "lr"  # the LR check saw more than one winner
