"""Prior trust for multiclass and regression: `laat.trust`'s rule with the task's statistic.

The same two steps as for binary targets, with `laat.trust.TrustSettings` constants:

1. **Agreement gate.** The data's direction is, for regression, the covariance of each
   (scaled) feature with the target; for multiclass, each class's mean minus the overall
   mean, a (k, d) array. A signed prior (regression, or per class) is tested as in
   `laat.trust`: T = sum t_hat * direction, against the same magnitudes with random signs
   (`laat.trust.sign_flip_p_value`; per class, each (class, feature) cell gets its own
   sign). A *shared* multiclass prior has no sign, so its magnitudes |t_hat_j| are tested
   against how far the classes spread on feature j (||direction[:, j]||), with the features'
   magnitudes permuted instead. p >= alpha: the prior is ignored (gamma = 0).
2. **Follow or not.** A prior that passed is followed at gamma with the settings' ``tau``;
   from ``CV_MIN_PER_CLASS`` rows in the smallest class (regression: ``CV_MIN_ROWS`` rows),
   k-fold cross-validation of plain vs followed decides, plain winning ties (macro
   one-vs-rest ROC AUC, or R^2, of the pooled out-of-fold predictions).

`decide_many` batches every cross-validation fit of many problems into one
`laat.multioutput.fit_multi` call, as `laat.trust.decide_many` does for binary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from laat.priors import prior_form
from laat.trust import DEFAULT_SETTINGS, TrustSettings, sign_flip_p_value

CV_MIN_ROWS = 20  # regression: rows from which cross-validation checks a prior that passed the gate
# multiclass: rows in the smallest class from which it cross-validates. 2, not binary's 10: at 5
# rows per class the gate alone followed 23% of random priors and lost 5.1 AUC points to them
# (3 tables, 20 reps); cross-validating from 2 rows lost none (benchmarks/README.md).
CV_MIN_PER_CLASS = 2
N_PERMUTATIONS = 2000


@dataclass
class MultiTrustProblem:
    """One training set, preprocessed as the model sees it."""

    X: np.ndarray  # (n, d) scaled
    y: np.ndarray  # (n,) class index 0..k-1, or the standardised target
    scores: np.ndarray  # (k, d) per class, or (d,) shared / regression
    task: str  # multiclass | regression
    n_outputs: int
    gamma: float
    seed: int = 0
    sample_weight: np.ndarray | None = None
    mask: np.ndarray | None = None  # (d,) True = feature used

    @property
    def prior_form(self) -> str:
        return prior_form(self.scores)

    def weights(self) -> np.ndarray:
        return np.ones(len(self.y)) if self.sample_weight is None else np.asarray(self.sample_weight, float)

    def n_rows(self) -> int:
        """Rows that limit cross-validation: the smallest class's, or all (regression)."""
        w = self.weights() > 0
        if self.task == "regression":
            return int(w.sum())
        counts = np.bincount(np.asarray(self.y, int)[w], minlength=self.n_outputs)
        return int(counts.min())


def data_direction(X: np.ndarray, y: np.ndarray, task: str, n_outputs: int, w: np.ndarray) -> np.ndarray:
    """Covariance of each feature with the target (d,), or class mean minus overall mean (k, d)."""
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64) / np.sum(w)
    mean = w @ X
    if task == "regression":
        yc = np.asarray(y, dtype=np.float64) - w @ np.asarray(y, dtype=np.float64)
        return (w * yc) @ (X - mean)
    out = np.zeros((n_outputs, X.shape[1]))
    for c in range(n_outputs):
        wc = w * (np.asarray(y) == c)
        if wc.sum() > 0:
            out[c] = wc @ X / wc.sum() - mean
    return out


def agreement_p_value(prob: MultiTrustProblem, settings: TrustSettings = DEFAULT_SETTINGS) -> tuple[float, float]:
    """(p-value, share of the weighted evidence that agrees) of the gate (module docstring)."""
    from laat.attribution import normalized_target

    direction = data_direction(prob.X, prob.y, prob.task, prob.n_outputs, prob.weights())
    t = normalized_target(np.asarray(prob.scores, dtype=np.float64), settings.test_tau, prob.mask).numpy()
    if prob.prior_form == "shared" and prob.task == "multiclass":
        spread = np.linalg.norm(direction, axis=0)
        a = np.abs(t)
        obs = float(a @ spread)
        rng = np.random.default_rng(prob.seed)
        perms = np.array([a[rng.permutation(len(a))] @ spread for _ in range(N_PERMUTATIONS)])
        p = (1 + int(np.sum(perms >= obs - 1e-12 * max(1.0, obs)))) / (N_PERMUTATIONS + 1)
        return float(p), float("nan")
    c = (t * direction).ravel()
    p, _ = sign_flip_p_value(c, n_draws=settings.n_draws, seed=prob.seed)
    total = float(np.abs(c).sum())
    return p, (float(np.abs(c[c > 0]).sum() / total) if total > 0 else float("nan"))


def decide_many(
    problems: Sequence[MultiTrustProblem],
    train_kwargs: dict[str, Any] | None = None,
    settings: TrustSettings = DEFAULT_SETTINGS,
    cv_min: int | None = None,
) -> list[dict[str, Any]]:
    """One decision per problem (a JSON-able dict: gamma, tau, followed, reason, p_value, ...).

    ``cv_min``: rows from which a prior that passed the gate is cross-validated (default
    `cv_min_rows`; the benchmark measures others).
    """
    decisions: list[dict[str, Any]] = []
    jobs = []  # (problem index, train rows, valid rows, gamma)
    for i, prob in enumerate(problems):
        p, agree = agreement_p_value(prob, settings)
        n = prob.n_rows()
        base = {
            "mode": "auto",
            "tau": settings.tau,
            "p_value": p,
            "weighted_agreement": agree,
            "alpha": settings.alpha,
            "n_rows": n,
            "prior_form": prob.prior_form,
        }
        settled = _gate_verdict(prob, p, n, settings, cv_min_rows(prob.task) if cv_min is None else cv_min)
        if settled is not None:
            decisions.append(base | settled)
            continue
        decisions.append(base | {"_pending": True})  # completed by _cross_validate
        jobs += [(i, train, valid, g) for train, valid in _folds(prob, settings) for g in (0.0, float(prob.gamma))]
    if jobs:
        _cross_validate(problems, decisions, jobs, train_kwargs or {}, settings)
    return decisions


def _gate_verdict(
    prob: MultiTrustProblem, p: float, n: int, settings: TrustSettings, cv_min: int
) -> dict[str, Any] | None:
    """gamma, followed and reason when the gate settles it; None when cross-validation must decide."""
    if prob.gamma <= 0:
        return {
            "gamma": 0.0,
            "followed": False,
            "reason": "gamma = 0 was requested: the prior is not used, so there is nothing to trust",
        }
    if p >= settings.alpha:
        return {
            "gamma": 0.0,
            "followed": False,
            "reason": (
                f"ignored the prior: it agrees no better than chance with the training rows ({_what(prob)}; "
                f"p = {p:.3f} >= {settings.alpha:g}); trained without it (gamma = 0)"
            ),
        }
    if n < cv_min:
        return {
            "gamma": float(prob.gamma),
            "followed": True,
            "reason": (
                f"followed the prior: it agrees with the training rows ({_what(prob)}; p = {p:.3f} < "
                f"{settings.alpha:g}); too few rows to cross-validate, so gamma = {prob.gamma:g}, "
                f"tau = {settings.tau:g}"
            ),
        }
    return None


def cv_min_rows(task: str) -> int:
    return CV_MIN_ROWS if task == "regression" else CV_MIN_PER_CLASS


def _what(prob: MultiTrustProblem) -> str:
    if prob.task == "regression":
        return "signs vs the features' covariance with the target"
    if prob.prior_form == "shared":
        return "magnitudes vs how far the classes' means spread, features permuted"
    return "signs vs each class's mean minus the overall mean"


def _folds(prob: MultiTrustProblem, settings: TrustSettings):
    from sklearn.model_selection import KFold, StratifiedKFold

    rows = np.flatnonzero(prob.weights() > 0)
    if prob.task == "regression":
        split = KFold(n_splits=settings.cv_folds, shuffle=True, random_state=prob.seed % 2**32)
        return [(rows[a], rows[b]) for a, b in split.split(rows)]
    k = min(settings.cv_folds, prob.n_rows())
    split = StratifiedKFold(n_splits=k, shuffle=True, random_state=prob.seed % 2**32)
    return [(rows[a], rows[b]) for a, b in split.split(rows, np.asarray(prob.y)[rows])]


def cv_score(task: str, y: np.ndarray, out: np.ndarray, w: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC of logits ``out`` (n, k), or R^2 of predictions (n,)."""
    from scipy.special import softmax
    from sklearn.metrics import r2_score, roc_auc_score

    if task == "regression":
        return float(r2_score(y, out, sample_weight=w))
    return float(
        roc_auc_score(
            y, softmax(out, axis=1), multi_class="ovr", average="macro", labels=np.arange(out.shape[1]), sample_weight=w
        )
    )


def _cross_validate(problems, decisions, jobs, train_kwargs, settings) -> None:
    """Fit every cross-validation job, then complete the pending decisions: plain vs followed."""
    oof = _out_of_fold_outputs(problems, jobs, train_kwargs, settings)
    for i, prob in enumerate(problems):
        dec = decisions[i]
        if dec.pop("_pending", False):
            dec.update(_cv_verdict(prob, oof[(i, 0.0)], oof[(i, float(prob.gamma))], dec["p_value"], settings))


def _out_of_fold_outputs(problems, jobs, train_kwargs, settings) -> dict[tuple[int, float], np.ndarray]:
    """(problem, gamma) -> outputs (n, k) on the rows each fold held out; one `fit_multi` batch
    per (task, k, prior form, width), since it stacks models of one shape."""
    import torch

    from laat.multioutput import fit_multi

    groups: dict[tuple, list[int]] = {}
    for j, (i, *_rest) in enumerate(jobs):
        p = problems[i]
        groups.setdefault((p.task, p.n_outputs, p.prior_form, np.asarray(p.X).shape[1]), []).append(j)
    oof: dict[tuple[int, float], np.ndarray] = {}
    for (task, k, form, d), idx in groups.items():
        batch = _job_batch(problems, [jobs[j] for j in idx], d, settings)
        model = fit_multi(**batch, task=task, n_outputs=k, prior_form=form, **train_kwargs)
        with torch.no_grad():
            for r, j in enumerate(idx):
                i, _train, valid, g = jobs[j]
                p = problems[i]
                out = model.outputs(np.asarray(p.X, np.float32)[valid])[r].numpy()
                key = (i, g)
                if key not in oof:
                    oof[key] = np.full((len(p.y), k), np.nan)
                oof[key][valid] = out
    return oof


def _job_batch(problems, jobs, d: int, settings: TrustSettings) -> dict[str, Any]:
    """The `fit_multi` data arguments of jobs of one width ``d``: training rows zero-padded to
    the longest (weight 0), targets at the settings' tau, masks, gammas and seeds."""
    from laat.attribution import normalized_target

    n_max = max(len(train) for _i, train, _valid, _g in jobs)
    X = np.zeros((len(jobs), n_max, d), np.float32)
    Y = np.zeros((len(jobs), n_max), np.float32)
    W = np.zeros((len(jobs), n_max), np.float32)
    T, M, G, S = [], [], [], []
    for r, (i, train, _valid, g) in enumerate(jobs):
        p = problems[i]
        X[r, : len(train)] = np.asarray(p.X)[train]
        Y[r, : len(train)] = np.asarray(p.y)[train]
        W[r, : len(train)] = p.weights()[train]
        mask = np.ones(d, bool) if p.mask is None else np.asarray(p.mask, bool)
        T.append(normalized_target(np.asarray(p.scores, float), settings.tau, mask).numpy())
        M.append(mask)
        G.append(g)
        S.append(p.seed)
    return dict(X=X, y=Y, target=np.stack(T), gamma=G, seeds=S, sample_weight=W, feature_mask=np.stack(M))


def _cv_verdict(
    prob: MultiTrustProblem, plain_out: np.ndarray, follow_out: np.ndarray, p: float, settings: TrustSettings
) -> dict[str, Any]:
    """Follow the prior only if its cross-validated score beats plain training (plain wins ties)."""
    rows = prob.weights() > 0
    y, w = np.asarray(prob.y)[rows], prob.weights()[rows]

    def score(out: np.ndarray) -> float:
        out = out[rows]
        return cv_score(prob.task, y, out[:, 0] if prob.task == "regression" else out, w)

    plain, follow = score(plain_out), score(follow_out)
    metric = "R^2" if prob.task == "regression" else "macro ROC AUC"
    followed = follow > plain
    return {
        "gamma": float(prob.gamma) if followed else 0.0,
        "followed": followed,
        "candidates": [{"gamma": 0.0, "cv_score": plain}, {"gamma": float(prob.gamma), "cv_score": follow}],
        "reason": (
            f"{'followed' if followed else 'ignored'} the prior: it agrees with the training rows "
            f"({_what(prob)}; p = {p:.3f} < {settings.alpha:g}) and cross-validated "
            f"{metric} is {follow:.3f} with it vs {plain:.3f} without"
        ),
    }
