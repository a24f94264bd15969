"""The non-LAAT baselines and the paper's small-k rules for tuning them (method spec section 6).

At k = 1 (two training rows) nothing can be cross-validated, so every model runs with its
defaults. From k = 2 on, GridSearchCV picks hyperparameters by ROC AUC with
cv = min(5, k) stratified folds (5 folds in the skew protocol).

Two grid sets:

- ``paper``: section 6 of the method spec. LogisticRegression searches C x {l1, l2} with
  the liblinear solver: the reference's lbfgs cannot fit l1, so its l1 half scored NaN and
  was silently skipped (spec section 8.3); here both penalties are really searched.
  HistGradientBoosting is not in the paper; its "paper" grid is this project's own.
- ``reduced`` (default): the paper's grids cost hours per dataset on a 2-core machine
  (MLP: 20 combinations x 5 folds x up to 1000 Adam epochs; XGBoost: 720 combinations),
  times 20 repetitions x 2 tuned k x 7 datasets. The reduced grids keep each model's most
  influential axis at two values inside the paper's ranges (2 candidates each);
  LogisticRegression keeps both penalties and C from 100 to 1e-3 (12 candidates).
  Even so, most of the default sweep's time (7 datasets, 20 repetitions, both protocols) is
  in these searches, the skew protocol's above all; LAAT's own cells take seconds
  (benchmarks/README.md, "bench_sweep.py").
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np

PAPER_GRIDS: dict[str, dict[str, list[Any]]] = {
    # l1_ratio 1 = penalty l1, 0 = l2 (scikit-learn >= 1.8 deprecates `penalty`)
    "lr": {"C": [100, 10, 1, 0.1, 0.01, 1e-3, 1e-4, 1e-5], "l1_ratio": [1.0, 0.0]},
    "mlp": {"alpha": [0.001, 0.01, 0.1, 1, 10], "learning_rate_init": [0.1, 0.01, 0.001, 0.0001]},
    "xgb": {
        "max_depth": [2, 4, 6, 8, 10],
        "reg_alpha": [1e-4, 1e-3, 0.01, 0.1, 1, 10],
        "reg_lambda": [1e-4, 1e-3, 0.01, 0.1, 1, 10],
        "learning_rate": [0.01, 0.03, 0.1, 0.3],
    },
    "rf": {"bootstrap": [True, False], "max_depth": [2, 4, 6, 8, 10], "n_estimators": [2, 4, 8, 16, 32, 64]},
    "hgb": {
        "learning_rate": [0.01, 0.03, 0.1, 0.3],
        "max_depth": [2, 4, None],
        "min_samples_leaf": [1, 5, 20],
        "l2_regularization": [0.0, 1.0],
    },
}

REDUCED_GRIDS: dict[str, dict[str, list[Any]]] = {
    # C down to 1e-3 only: below it l1 zeroes every weight (AUC 0.5, never chosen) and l2's
    # direction has (nearly) converged to the class-mean difference (about the same ranking and AUC).
    "lr": {"C": [100, 10, 1, 0.1, 0.01, 1e-3], "l1_ratio": [1.0, 0.0]},
    # lr 0.01 converges within max_iter; 1e-3/1e-4 run all 1000 epochs (most of the paper grid's cost).
    "mlp": {"alpha": [0.01, 1], "learning_rate_init": [0.01]},
    "xgb": {"max_depth": [2, 6]},
    "rf": {"max_depth": [2, 6], "n_estimators": [32]},
    # min_samples_leaf matters most at few rows: the default 20 cannot split 10-20 rows at all.
    "hgb": {"min_samples_leaf": [2, 5]},
}

DISPLAY = {"lr": "LR", "mlp": "MLP", "rf": "RF", "hgb": "HGB", "xgb": "XGB"}


def make_estimator(name: str, random_state: int, mlp_max_iter: int = 1000):
    """A default-configured baseline; single-threaded so that parallel cells do not oversubscribe."""
    if name == "lr":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(solver="liblinear", max_iter=1000, random_state=random_state)
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden_layer_sizes=(100,), max_iter=mlp_max_iter, random_state=random_state)
    if name == "rf":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(random_state=random_state, n_jobs=1)
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(random_state=random_state)
    if name == "xgb":
        from xgboost import XGBClassifier

        return XGBClassifier(n_jobs=1, verbosity=0, random_state=random_state, tree_method="hist")
    raise ValueError(f"unknown baseline {name!r}; known: {list(DISPLAY)}")


def grid_for(name: str, settings) -> dict[str, list[Any]]:
    """The grid a sweep uses for ``name`` under `BaselineSettings` (an override wins)."""
    if name in settings.grids:
        return {p: list(v) for p, v in settings.grids[name].items()}
    return {p: list(v) for p, v in (PAPER_GRIDS if settings.grid == "paper" else REDUCED_GRIDS)[name].items()}


def n_folds(y, k: int | None, settings) -> int:
    """Folds for the search, or 0 when the paper's rule says defaults.

    Few-shot (k given): defaults below ``min_k_for_search``, else min(max_cv, k). Skew
    (k None): max_cv, capped by the minority class so every fold holds both classes.
    """
    if k is not None and k < settings.min_k_for_search:
        return 0
    minority = int(np.bincount(np.asarray(y, dtype=int), minlength=2).min())
    folds = min(settings.max_cv, minority if k is None else min(k, minority))
    return folds if folds >= 2 else 0


def fit_baseline(name: str, X, y, *, k: int | None, settings, random_state: int):
    """Fit one baseline by the small-k rules; returns (fitted estimator, info for the results row)."""
    from sklearn.exceptions import ConvergenceWarning

    est = make_estimator(name, random_state, settings.mlp_max_iter)
    folds = n_folds(y, k, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*(Liblinear|lbfgs) failed to converge.*")
        if folds == 0:
            est.fit(X, y)
            return est, {"tuned": False, "cv_folds": 0, "best_params": "{}", "grid_size": 1}
        grid = grid_for(name, settings)
        if all(len(v) == 1 for v in grid.values()):  # one candidate: nothing to choose, no CV needed
            fixed = {p: v[0] for p, v in grid.items()}
            est.set_params(**fixed).fit(X, y)
            return est, {
                "tuned": False,
                "cv_folds": 0,
                "grid_size": 1,
                "best_params": json.dumps(fixed, sort_keys=True),
            }
        best_est, best = grid_search(est, grid, X, y, folds)
    size = int(np.prod([len(v) for v in grid.values()]))
    best = {p: (v.item() if isinstance(v, np.generic) else v) for p, v in best.items()}
    return best_est, {
        "tuned": True,
        "cv_folds": folds,
        "grid_size": size,
        "best_params": json.dumps(best, sort_keys=True),
    }


def grid_search(est, grid: dict[str, list[Any]], X, y, folds: int):
    """scikit-learn's ``GridSearchCV(est, grid, scoring="roc_auc", cv=StratifiedKFold(folds),
    error_score=nan)`` in a plain loop: the same candidates in the same order, folds, fits and
    scores (decision_function where the model has one, as its roc_auc scorer), the first of the
    best mean scores (a failed fit scores NaN, ranked last) and the winner refit on all rows.
    GridSearchCV's machinery (clones, validation, a scorer per fold) cost more than a small
    model's fits, 20 repetitions x every cell. Returns (refit estimator, best parameters)."""
    from sklearn.base import clone
    from sklearn.model_selection import ParameterGrid, StratifiedKFold

    from laat.metrics import binary_roc_auc

    X, y = np.asarray(X), np.asarray(y)
    splits = list(StratifiedKFold(n_splits=folds).split(X, y))
    candidates = list(ParameterGrid(grid))
    means = np.empty(len(candidates))
    for c, params in enumerate(candidates):
        scores = []
        for train, test in splits:
            try:
                model = clone(est).set_params(**params).fit(X[train], y[train])
            except Exception:  # error_score=nan: a candidate that cannot fit is never chosen
                scores.append(np.nan)
                continue
            yt = y[test]
            if np.unique(yt).size < 2:
                scores.append(np.nan)
                continue
            if hasattr(model, "decision_function"):
                score = model.decision_function(X[test])
            else:
                score = model.predict_proba(X[test])[:, list(model.classes_).index(1)]
            scores.append(binary_roc_auc((yt == 1).astype(int), np.asarray(score, dtype=float)))
        means[c] = np.average(scores)
    best = int(np.nanargmax(means)) if not np.isnan(means).all() else 0
    return clone(est).set_params(**candidates[best]).fit(X, y), candidates[best]
