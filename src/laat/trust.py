"""Prior trust: decide from the training rows how much LAAT should follow a prior.

A prior may be right, noisy or wrong; at the paper's fixed gamma = 100 a sign-flipped prior
drives ROC AUC below chance. Two steps decide (measured history: docs/trust-history.md):

1. **Agreement gate.** A sign-flip test of the prior's target against the class-mean
   differences of the scaled training rows; a prior that does not agree beyond chance
   (p >= ``alpha``; ``alpha_one_shot`` with one row per class) is ignored (gamma = 0).
2. **How much to follow.** Below ``cv_min_per_class`` rows in the smaller class a passing
   prior is followed at the full gamma; from there on, cross-validated ROC AUC picks gamma
   and tau from a grid that includes plain training.

`fit_with_trust` is the one "decide, then fit" path: `LAATClassifier(trust="auto")` calls it
with one training set, the benchmark with every repetition of a cell at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from laat.jsonable import jsonable

EXACT_MAX_FEATURES = 14  # 2**14 sign patterns: exact p-values below this, seeded draws above


@dataclass(frozen=True)
class TrustSettings:
    """Constants of the trust rule; defaults measured in benchmarks/bench_trust.py (docs/trust-history.md).

    ``alpha``: the gate's significance level (``alpha_one_shot`` with one row per class);
    ``tau``: the target temperature of a followed prior; ``test_tau``: the temperature that
    weighs features in the gate; ``cv_min_per_class``: rows in the smaller class from which
    cross-validation picks gamma and tau; ``gamma_fractions`` scale the estimator's ``gamma``
    into that grid (gamma = 100 gives 1, 3, 10, 30, 100).
    """

    test_tau: float = 4.0
    alpha: float = 0.2
    alpha_one_shot: float = 0.3
    tau: float = 4.0
    tau_one_shot: float = 2.0
    cv_min_per_class: int = 10
    cv_folds: int = 5
    gamma_fractions: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
    cv_taus: tuple[float, ...] = (2.0, 4.0)
    n_draws: int = 20000

    def __post_init__(self) -> None:
        for name in ("test_tau", "tau", "tau_one_shot"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"TrustSettings.{name} must be > 0, got {v!r}")
        for name in ("alpha", "alpha_one_shot"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise ValueError(f"TrustSettings.{name} must be in (0, 1], got {v!r}")
        if self.cv_folds < 2 or self.cv_min_per_class < 2:
            raise ValueError("TrustSettings needs cv_folds >= 2 and cv_min_per_class >= 2")
        if not self.gamma_fractions or any(not 0 < f <= 1 for f in self.gamma_fractions):
            raise ValueError("TrustSettings.gamma_fractions must be fractions in (0, 1]")
        if not self.cv_taus or any(not (math.isfinite(t) and t > 0) for t in self.cv_taus):
            raise ValueError("TrustSettings.cv_taus must be positive temperatures")


DEFAULT_SETTINGS = TrustSettings()


# ---- step 1: agreement of the prior's signs with the data -------------------------------------


@dataclass
class Agreement:
    """Sign-flip test of the prior against the class-mean differences of the training rows."""

    statistic: float  # sum_j t_j delta_j
    p_value: float  # P(random-sign prior agrees at least as well)
    n_features: int  # features with both a non-zero prior and a class difference
    weighted_agreement: float  # share of sum |t_j delta_j| on features whose signs agree
    exact: bool  # all sign patterns enumerated (else seeded draws)


def class_mean_difference(X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Per-feature mean(positive rows) - mean(negative rows), weighted; the data's direction."""
    y = np.asarray(y).astype(bool)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if (w * y).sum() <= 0 or (w * ~y).sum() <= 0:
        raise ValueError("class_mean_difference needs rows with positive weight in both classes")
    return class_mean_differences(X, y[None, :], w)[0]


def class_mean_differences(X: np.ndarray, Y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`class_mean_difference` for a batch of labellings Y (B, n) of the same rows -> (B, d);
    the diagnostic's permutation test runs thousands at once."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    wp = Y * w[None, :]
    wn = (1.0 - Y) * w[None, :]
    return (wp @ X) / wp.sum(axis=1, keepdims=True) - (wn @ X) / wn.sum(axis=1, keepdims=True)


def sign_flip_p_value(contributions: np.ndarray, n_draws: int = 20000, seed: int = 0) -> tuple[float, bool]:
    """P(sum_j e_j |c_j| >= sum_j c_j) for independent random signs e_j; (p, exact)."""
    c = np.asarray(contributions, dtype=np.float64)
    obs = float(c.sum())
    mag = np.abs(c[np.abs(c) > 0])
    if mag.size == 0:
        return 1.0, True
    tol = 1e-9 * max(1.0, float(mag.sum()))
    if mag.size <= EXACT_MAX_FEATURES:
        codes = np.arange(2**mag.size)[:, None] >> np.arange(mag.size)[None, :]
        signs = 1.0 - 2.0 * (codes & 1)
        return float(np.mean(signs @ mag >= obs - tol)), True
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_draws, 4096):
        m = min(4096, n_draws - start)
        signs = rng.integers(0, 2, size=(m, mag.size)) * 2.0 - 1.0
        hits += int(np.sum(signs @ mag >= obs - tol))
    return (hits + 1) / (n_draws + 1), False  # the observed pattern counts as one draw


def agreement_test(
    X,
    y,
    scores,
    *,
    tau: float = DEFAULT_SETTINGS.test_tau,
    sample_weight=None,
    mask=None,
    n_draws: int = DEFAULT_SETTINGS.n_draws,
    seed: int = 0,
) -> Agreement:
    """How well the prior's signs (weighted by its target at ``tau``) match the class differences.

    ``X`` must be scaled as the model sees it (Min-Max on the training rows), so that the
    differences of different features are comparable; ``mask`` (True = used) drops
    suppressed features. The test conditions on the prior's magnitudes: only its signs are
    put to the test, which is what separates a right prior from a flipped one.
    """
    from laat.attribution import normalized_target

    delta = class_mean_difference(X, y, sample_weight)
    t = normalized_target(np.asarray(scores, dtype=np.float64), tau, mask).numpy()
    c = t * delta
    p, exact = sign_flip_p_value(c, n_draws=n_draws, seed=seed)
    total = float(np.abs(c).sum())
    return Agreement(
        statistic=float(c.sum()),
        p_value=p,
        n_features=int(np.sum(np.abs(c) > 0)),
        weighted_agreement=float(np.abs(c[c > 0]).sum() / total) if total > 0 else float("nan"),
        exact=exact,
    )


# ---- the decision ------------------------------------------------------------------------------


@dataclass
class TrustDecision:
    """What trust mode chose and why; ``to_dict`` is the JSON logged to MLflow."""

    gamma: float
    tau: float
    followed: bool
    regime: str  # one_shot | few_shot | cross_validated
    reason: str
    agreement: Agreement
    alpha: float
    n_smaller_class: int
    candidates: list[dict[str, float]] = field(default_factory=list)  # CV score per (gamma, tau)
    mode: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["agreement"] = asdict(self.agreement)
        return jsonable(d)


@dataclass
class TrustProblem:
    """One training set to decide on: preprocessed exactly as the model will see it."""

    X: np.ndarray  # (n, d) scaled
    y: np.ndarray  # (n,) 0/1
    scores: np.ndarray  # (d,) prior scores for the positive class
    gamma: float  # strength when the prior is followed
    seed: int = 0
    sample_weight: np.ndarray | None = None
    mask: np.ndarray | None = None  # True = feature used
    confidence: np.ndarray | None = None


@dataclass
class _Job:
    problem: int
    train: np.ndarray
    valid: np.ndarray
    gamma: float
    tau: float


def _weights(prob: TrustProblem) -> np.ndarray:
    """The problem's row weights (1 each when it has none)."""
    return np.ones(len(prob.y)) if prob.sample_weight is None else np.asarray(prob.sample_weight, dtype=np.float64)


def _pending(prob: TrustProblem, s: TrustSettings) -> tuple[TrustDecision | None, Agreement, float, int]:
    """Run the gate; returns a final decision unless cross-validation is needed (None)."""
    y = np.asarray(prob.y).astype(int)
    w = _weights(prob)
    n_min = int(min(np.sum((y == 1) & (w > 0)), np.sum((y == 0) & (w > 0))))
    one_shot = n_min <= 1
    alpha = s.alpha_one_shot if one_shot else s.alpha
    agr = agreement_test(prob.X, y, prob.scores, tau=s.test_tau, sample_weight=w, mask=prob.mask, n_draws=s.n_draws)
    regime = "one_shot" if one_shot else ("few_shot" if n_min < s.cv_min_per_class else "cross_validated")
    tau = s.tau_one_shot if one_shot else s.tau
    verdict = _gate_verdict(prob, agr, alpha, n_min, regime, tau)
    if verdict is None:
        return None, agr, alpha, n_min
    followed, reason = verdict
    decision = TrustDecision(
        gamma=float(prob.gamma) if followed else 0.0,
        tau=tau,
        followed=followed,
        reason=reason,
        agreement=agr,
        alpha=alpha,
        n_smaller_class=n_min,
        regime=regime,
    )
    return decision, agr, alpha, n_min


def _gate_verdict(
    prob: TrustProblem, agr: Agreement, alpha: float, n_min: int, regime: str, tau: float
) -> tuple[bool, str] | None:
    """(followed, reason) when the gate settles it; None when cross-validation must decide."""
    if prob.gamma <= 0:
        return False, "gamma = 0 was requested: the prior is not used, so there is nothing to trust"
    if agr.n_features == 0:
        return (
            False,
            "ignored the prior: no feature with a non-zero prior score differs between the classes in the "
            "training rows, so nothing can confirm it; trained without it (gamma = 0)",
        )
    if agr.p_value >= alpha:
        how = "mostly contradict" if agr.weighted_agreement < 0.5 else "agree no better than chance with"
        return (
            False,
            f"ignored the prior: its signs {how} the class differences of the {len(prob.y)} training rows "
            f"(sign-flip p = {agr.p_value:.3f} >= {alpha:g}; {100 * agr.weighted_agreement:.0f}% of the "
            "weighted evidence agrees); trained without it (gamma = 0)",
        )
    if regime != "cross_validated":
        why = f"its signs agree with the class differences of the training rows (sign-flip p = {agr.p_value:.3f} < {alpha:g})"
        return (
            True,
            f"followed the prior: {why}; with {n_min} row(s) in the smaller class there is too little "
            f"data to tune on, so gamma = {prob.gamma:g}, tau = {tau:g}",
        )
    return None


def _folds(y: np.ndarray, w: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    rows = np.flatnonzero(w > 0)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed % (2**32))
    return [(rows[a], rows[b]) for a, b in skf.split(np.zeros(len(rows)), y[rows])]


def decide_many(
    problems: Sequence[TrustProblem],
    train_kwargs: dict[str, Any] | None = None,
    settings: TrustSettings = DEFAULT_SETTINGS,
) -> list[TrustDecision]:
    """Trust decisions for many training sets; every cross-validation fit runs in one batch.

    ``train_kwargs`` are the `laat.engine.fit_many` settings of the final model (model kind,
    epochs, lr, ...), so candidates are judged as they would be trained.
    """
    decisions: list[TrustDecision | None] = []
    gates: list[tuple[Agreement, float, int]] = []
    jobs: list[_Job] = []
    for i, prob in enumerate(problems):
        dec, agr, alpha, n_min = _pending(prob, settings)
        decisions.append(dec)
        gates.append((agr, alpha, n_min))
        if dec is None:
            jobs += _cv_jobs(i, prob, n_min, settings)
    if jobs:
        oof = _out_of_fold_logits(problems, jobs, train_kwargs or {})
        for i, prob in enumerate(problems):
            if decisions[i] is None:
                decisions[i] = _choose(_cv_candidates(i, prob, oof, settings), gates[i], settings)
    return decisions  # type: ignore[return-value]


def _cv_jobs(i: int, prob: TrustProblem, n_min: int, s: TrustSettings) -> list[_Job]:
    """One fit per (fold, gamma, tau) of problem ``i``'s cross-validation."""
    y = np.asarray(prob.y).astype(int)
    folds = _folds(y, _weights(prob), min(s.cv_folds, n_min), prob.seed)
    return [_Job(i, train, valid, g, tau) for train, valid in folds for g, tau in _grid(prob.gamma, s)]


def _out_of_fold_logits(
    problems: Sequence[TrustProblem], jobs: list[_Job], train_kwargs: dict[str, Any]
) -> dict[tuple[int, float, float], np.ndarray]:
    """Fit every job in one `fit_many` batch; (problem, gamma, tau) -> logits of its held-out rows
    (NaN on rows no fold holds out)."""
    import torch

    from laat.engine import fit_many, pad_stack

    model = fit_many(**_job_batch(problems, jobs), **train_kwargs)
    xv, _, _ = pad_stack([np.asarray(problems[j.problem].X, np.float32)[j.valid] for j in jobs], "X", 2)
    with torch.no_grad():
        all_logits = model.logits(xv).double().numpy()
    oof: dict[tuple[int, float, float], np.ndarray] = {}
    for r, j in enumerate(jobs):
        key = (j.problem, j.gamma, j.tau)
        if key not in oof:
            oof[key] = np.full(len(problems[j.problem].y), np.nan)
        oof[key][j.valid] = all_logits[r, : len(j.valid)]
    return oof


def _job_batch(problems: Sequence[TrustProblem], jobs: list[_Job]) -> dict[str, Any]:
    """The `fit_many` data arguments of the jobs: each job's training rows, target, gamma and seed."""
    from laat.attribution import normalized_target

    X, Y, T, G, S, W, C, M = [], [], [], [], [], [], [], []
    for j in jobs:
        p = problems[j.problem]
        X.append(np.asarray(p.X, np.float32)[j.train])
        Y.append(np.asarray(p.y, np.float32)[j.train])
        T.append(normalized_target(p.scores, j.tau, p.mask).numpy())
        G.append(j.gamma)
        S.append(p.seed)
        W.append(
            np.ones(len(j.train), np.float32)
            if p.sample_weight is None
            else np.asarray(p.sample_weight, np.float32)[j.train]
        )
        d = np.asarray(p.X).shape[1]
        C.append(np.ones(d) if p.confidence is None else np.asarray(p.confidence, float))
        M.append(np.ones(d, bool) if p.mask is None else np.asarray(p.mask, bool))
    if all(problems[j.problem].confidence is None for j in jobs):
        C = None
    return dict(X=X, y=Y, target=T, gamma=G, seeds=S, sample_weight=W, confidence=C, feature_mask=M)


def _cv_candidates(
    i: int, prob: TrustProblem, oof: dict[tuple[int, float, float], np.ndarray], s: TrustSettings
) -> list[dict[str, float]]:
    """Cross-validated ROC AUC of each (gamma, tau) of the grid, on the rows with weight."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(prob.y).astype(int)
    w = _weights(prob)
    rows = w > 0
    return [
        {
            "gamma": g,
            "tau": tau,
            "cv_score": float(roc_auc_score(y[rows], oof[(i, g, tau)][rows], sample_weight=w[rows])),
        }
        for g, tau in _grid(prob.gamma, s)
    ]


def decide(
    problem: TrustProblem, train_kwargs: dict[str, Any] | None = None, settings: TrustSettings = DEFAULT_SETTINGS
) -> TrustDecision:
    """The decision for one training set (see `decide_many`)."""
    return decide_many([problem], train_kwargs, settings)[0]


def _grid(gamma: float, s: TrustSettings) -> list[tuple[float, float]]:
    """Plain training first (it wins ties), then gamma ascending; tau only matters when gamma > 0."""
    gammas = sorted({round(float(gamma) * f, 10) for f in s.gamma_fractions})
    return [(0.0, s.tau)] + [(g, t) for g in gammas for t in s.cv_taus]


def _choose(cands: list[dict[str, float]], gate: tuple[Agreement, float, int], s: TrustSettings) -> TrustDecision:
    agr, alpha, n_min = gate
    best = cands[0]
    for c in cands[1:]:
        if c["cv_score"] > best["cv_score"] + 1e-12:
            best = c
    plain = cands[0]["cv_score"]
    followed = best["gamma"] > 0
    head = (
        f"the prior's signs agree with the class differences of the training rows (sign-flip p = "
        f"{agr.p_value:.3f} < {alpha:g}); {min(s.cv_folds, n_min)}-fold cross-validated ROC AUC over gamma x tau"
    )
    if followed:
        reason = (
            f"followed the prior: {head} chose gamma = {best['gamma']:g}, tau = {best['tau']:g} "
            f"({best['cv_score']:.3f} vs {plain:.3f} without the prior)"
        )
    else:
        top = max(c["cv_score"] for c in cands[1:])
        reason = (
            f"ignored the prior: {head} found plain training at least as good ({plain:.3f} vs "
            f"{top:.3f} at best with the prior); trained without it (gamma = 0)"
        )
    return TrustDecision(
        gamma=float(best["gamma"]),
        tau=float(best["tau"]),
        followed=followed,
        regime="cross_validated",
        reason=reason,
        agreement=agr,
        alpha=alpha,
        n_smaller_class=n_min,
        candidates=cands,
    )


@dataclass
class TrustedFit:
    """Decisions, prior targets (at each decision's tau) and fitted models, one per problem."""

    decisions: list[TrustDecision]
    targets: list[np.ndarray]
    models: list[Any]  # laat.engine.StackedModel holding one model each


def fit_with_trust(
    problems: Sequence[TrustProblem],
    train_kwargs: dict[str, Any] | None = None,
    settings: TrustSettings = DEFAULT_SETTINGS,
) -> TrustedFit:
    """Decide trust for each training set (`decide_many`), then fit each final model.

    Ignored priors give plain models, fitted as one batch over all problems so that each
    equals the model a plain (gamma = 0) fit of the same rows and seed gives; the followed
    problems are fitted as one batch with their own gamma and tau.
    """
    from laat.attribution import normalized_target

    kw = train_kwargs or {}
    decisions = decide_many(problems, kw, settings)
    targets = [normalized_target(p.scores, d.tau, p.mask).numpy() for p, d in zip(problems, decisions)]
    followed = [i for i, d in enumerate(decisions) if d.gamma > 0]
    plain = _fit(problems, None, 0.0, kw) if len(followed) < len(problems) else None
    final = None
    if followed:
        final = _fit(
            [problems[i] for i in followed], [targets[i] for i in followed], [decisions[i].gamma for i in followed], kw
        )
    models = [final.select(followed.index(i)) if d.gamma > 0 else plain.select(i) for i, d in enumerate(decisions)]
    return TrustedFit(decisions=decisions, targets=targets, models=models)


def _fit(problems: Sequence[TrustProblem], targets, gamma, train_kwargs: dict[str, Any]):
    """One `fit_many` batch over the problems' rows, seeds, weights, masks and confidences."""
    from laat.engine import fit_many

    def per_problem(field_name: str, default):
        values = [getattr(p, field_name) for p in problems]
        if all(v is None for v in values):
            return None
        return [default(p) if v is None else v for p, v in zip(problems, values)]

    return fit_many(
        [p.X for p in problems],
        [p.y for p in problems],
        targets,
        gamma=gamma,
        seeds=[p.seed for p in problems],
        sample_weight=per_problem("sample_weight", lambda p: np.ones(len(p.y), np.float32)),
        confidence=per_problem("confidence", lambda p: np.ones(np.shape(p.X)[1])),
        feature_mask=per_problem("mask", lambda p: np.ones(np.shape(p.X)[1], bool)),
        **train_kwargs,
    )


def off_decision(gamma: float, tau: float) -> dict[str, Any]:
    """The ``trust_`` record of a fit with trust switched off (fixed gamma and tau)."""
    return {
        "mode": "off",
        "gamma": float(gamma),
        "tau": float(tau),
        "followed": bool(gamma > 0),
        "reason": f"trust='off': fixed gamma = {gamma:g}, tau = {tau:g} from the parameters, "
        "whatever the data says about the prior",
    }
