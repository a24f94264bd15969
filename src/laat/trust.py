"""Prior trust: decide from the training rows how much LAAT should follow a prior.

A prior may be right, noisy or plain wrong (a hurried expert, an LLM that hallucinates).
At the paper's fixed gamma = 100 a sign-flipped prior drives ROC AUC far below chance, and
more rows do not rescue it. With 2-20 training rows, though, cross-validating gamma is too
noisy to catch a bad prior: on the reference datasets it still followed 28% / 19% of
sign-flipped priors at 5 / 10 rows per class and lost 4.5 / 3.3 AUC points to them
(benchmarks/bench_trust.py --alternatives). So the decision has two steps.

1. **Agreement gate.** Does the prior point the way the data points, beyond chance? The
   statistic is T = sum_j t_j * delta_j, with t the prior target at temperature ``test_tau``
   and delta_j the class-mean difference of feature j on the (Min-Max scaled) training rows.
   Its p-value is the share of priors with the same magnitudes but random signs that agree
   at least as well (all sign patterns when few features count, else seeded draws). A prior
   that does not pass (p >= alpha = 0.2) is ignored: gamma = 0, plain training.
2. **How much to follow.** With fewer than ``cv_min_per_class`` (10) rows in the smaller
   class, a prior that passed is followed at the full gamma with tau = 4 (a softer target
   than the paper's tau = 1; cross-validation on so few rows only added noise).
   From that size on, stratified k-fold cross-validation picks gamma and tau from a grid,
   plain training included, by pooled out-of-fold ROC AUC. AUC, not log-loss: unregularised
   few-shot models are over-confident, and a log-loss score prefers any timid model, which
   made it pick sign-flipped priors (measured: benchmarks/bench_trust.py --alternatives).

With one row per class Min-Max scaling turns every feature into 0/1 and nothing is left to
cross-validate; the gate decides alone, at a looser level (``alpha_one_shot`` = 0.3), and a
followed prior gets a sharper target (``tau_one_shot`` = 2), which measured best there. Two
rows cannot do much better: the gate sees only the signs of x_pos - x_neg, and on the
reference datasets those contradict even the oracle prior in about one split in five, so a
rule that follows the oracle in a share q of the splits follows its mirror image, the
sign-flipped prior, in about 1 - q. Every gate level trades the gain kept from a good prior
against the harm of a flipped one (``bench_trust.py --shots 1 --alpha-sweep``; measured in
benchmarks/README.md): 0.3 keeps about half of the oracle's gain for under 2 AUC points lost
to flipped and random priors, where 0.2 kept a third.

Everything here works on many problems at once (`decide_many`) so that the benchmark runs
every cross-validation fit of a sweep as one `laat.models.fit_many` batch;
`LAATClassifier(trust="auto")` is the one-problem case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from laat.jsonable import jsonable

EXACT_MAX_FEATURES = 14  # 2**14 sign patterns: exact p-values below this, seeded draws above


@dataclass(frozen=True)
class TrustSettings:
    """Constants of the trust rule; defaults measured in benchmarks/bench_trust.py.

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
    # Switches for the alternatives measured in the benchmark (the defaults are the kept rule):
    # veto_margin: below cv_min_per_class, drop a prior that passed the gate when cross-validated
    # AUC without it beats AUC with it by more than this margin (None: no veto; measured: it
    # gains < 0.5 AUC points on random priors, because a prior that agrees with the rows by
    # chance also fools cross-validation on them, and it costs some of a good prior's gain).
    veto_margin: float | None = None
    gate: bool = True  # False: no agreement gate (cross-validation alone decides)
    cv_score: Literal["auc", "log_loss"] = "auc"

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
        if self.veto_margin is not None and not (math.isfinite(self.veto_margin) and self.veto_margin >= 0):
            raise ValueError(f"TrustSettings.veto_margin must be >= 0 or None, got {self.veto_margin!r}")
        if self.cv_score not in ("auc", "log_loss"):
            raise ValueError(f"TrustSettings.cv_score must be 'auc' or 'log_loss', got {self.cv_score!r}")
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
        codes = np.arange(2 ** mag.size)[:, None] >> np.arange(mag.size)[None, :]
        signs = 1.0 - 2.0 * (codes & 1)
        return float(np.mean(signs @ mag >= obs - tol)), True
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_draws, 4096):
        m = min(4096, n_draws - start)
        signs = rng.integers(0, 2, size=(m, mag.size)) * 2.0 - 1.0
        hits += int(np.sum(signs @ mag >= obs - tol))
    return (hits + 1) / (n_draws + 1), False  # the observed pattern counts as one draw


def agreement_test(X, y, scores, *, tau: float = DEFAULT_SETTINGS.test_tau, sample_weight=None,
                   mask=None, n_draws: int = DEFAULT_SETTINGS.n_draws, seed: int = 0) -> Agreement:
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
    return Agreement(statistic=float(c.sum()), p_value=p, n_features=int(np.sum(np.abs(c) > 0)),
                     weighted_agreement=float(np.abs(c[c > 0]).sum() / total) if total > 0 else float("nan"),
                     exact=exact)


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


def _pending(prob: TrustProblem, s: TrustSettings) -> tuple[TrustDecision | None, Agreement, float, int]:
    """Run the gate; returns a final decision unless cross-validation is needed (None)."""
    y = np.asarray(prob.y).astype(int)
    w = np.ones(len(y)) if prob.sample_weight is None else np.asarray(prob.sample_weight, dtype=np.float64)
    n_min = int(min(np.sum((y == 1) & (w > 0)), np.sum((y == 0) & (w > 0))))
    one_shot = n_min <= 1
    alpha = s.alpha_one_shot if one_shot else s.alpha
    agr = agreement_test(prob.X, y, prob.scores, tau=s.test_tau, sample_weight=w, mask=prob.mask,
                         n_draws=s.n_draws)
    tau = s.tau_one_shot if one_shot else s.tau
    regime = "one_shot" if one_shot else ("few_shot" if n_min < s.cv_min_per_class else "cross_validated")
    common = dict(agreement=agr, alpha=alpha, n_smaller_class=n_min, regime=regime)
    if prob.gamma <= 0:
        return TrustDecision(gamma=0.0, tau=tau, followed=False, reason="gamma = 0 was requested: the prior "
                             "is not used, so there is nothing to trust", **common), agr, alpha, n_min
    if agr.n_features == 0 and s.gate:
        return TrustDecision(gamma=0.0, tau=tau, followed=False, reason=(
            "ignored the prior: no feature with a non-zero prior score differs between the classes in the "
            "training rows, so nothing can confirm it; trained without it (gamma = 0)"), **common), agr, alpha, n_min
    if s.gate and agr.p_value >= alpha:
        how = ("mostly contradict" if agr.weighted_agreement < 0.5 else "agree no better than chance with")
        return TrustDecision(gamma=0.0, tau=tau, followed=False, reason=(
            f"ignored the prior: its signs {how} the class differences of the {len(y)} training rows "
            f"(sign-flip p = {agr.p_value:.3f} >= {alpha:g}; {100 * agr.weighted_agreement:.0f}% of the "
            "weighted evidence agrees); trained without it (gamma = 0)"), **common), agr, alpha, n_min
    if regime == "few_shot" and s.veto_margin is not None:
        return None, agr, alpha, n_min  # cross-validate: followed vs plain
    if regime != "cross_validated":
        why = (f"its signs agree with the class differences of the training rows (sign-flip p = "
               f"{agr.p_value:.3f} < {alpha:g})" if s.gate else "the agreement gate is off")
        return TrustDecision(gamma=float(prob.gamma), tau=tau, followed=True, reason=(
            f"followed the prior: {why}; with {n_min} row(s) in the smaller class there is too little "
            f"data to tune on, so gamma = {prob.gamma:g}, tau = {tau:g}"), **common), agr, alpha, n_min
    return None, agr, alpha, n_min


def _folds(y: np.ndarray, w: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    rows = np.flatnonzero(w > 0)
    skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed % (2 ** 32))
    return [(rows[a], rows[b]) for a, b in skf.split(np.zeros(len(rows)), y[rows])]


def decide_many(problems: Sequence[TrustProblem], train_kwargs: dict[str, Any] | None = None,
                settings: TrustSettings = DEFAULT_SETTINGS) -> list[TrustDecision]:
    """Trust decisions for many training sets; every cross-validation fit runs in one batch.

    ``train_kwargs`` are the `laat.models.fit_many` settings of the final model (model kind,
    epochs, lr, ...), so candidates are judged as they would be trained.
    """
    from sklearn.metrics import roc_auc_score

    from laat.attribution import normalized_target
    from laat.models import fit_many

    decisions: list[TrustDecision | None] = []
    gates: list[tuple[Agreement, float, int]] = []
    jobs: list[_Job] = []
    for i, prob in enumerate(problems):
        dec, agr, alpha, n_min = _pending(prob, settings)
        decisions.append(dec)
        gates.append((agr, alpha, n_min))
        if dec is None:
            y = np.asarray(prob.y).astype(int)
            w = np.ones(len(y)) if prob.sample_weight is None else np.asarray(prob.sample_weight, float)
            for train, valid in _folds(y, w, min(settings.cv_folds, n_min), prob.seed):
                for g, tau in _candidates(prob, n_min, settings):
                    jobs.append(_Job(i, train, valid, g, tau))
    if jobs:
        X, Y, T, G, S, W, C, M = [], [], [], [], [], [], [], []
        for j in jobs:
            p = problems[j.problem]
            X.append(np.asarray(p.X, np.float32)[j.train])
            Y.append(np.asarray(p.y, np.float32)[j.train])
            T.append(normalized_target(p.scores, j.tau, p.mask).numpy())
            G.append(j.gamma)
            S.append(p.seed)
            W.append(np.ones(len(j.train), np.float32) if p.sample_weight is None
                     else np.asarray(p.sample_weight, np.float32)[j.train])
            d = np.asarray(p.X).shape[1]
            C.append(np.ones(d) if p.confidence is None else np.asarray(p.confidence, float))
            M.append(np.ones(d, bool) if p.mask is None else np.asarray(p.mask, bool))
        if all(problems[j.problem].confidence is None for j in jobs):
            C = None
        model = fit_many(X, Y, T, gamma=G, seeds=S, sample_weight=W, confidence=C, feature_mask=M,
                         **(train_kwargs or {}))
        import torch

        from laat.models import pad_stack

        xv, _, _ = pad_stack([np.asarray(problems[j.problem].X, np.float32)[j.valid] for j in jobs], "X", 2)
        with torch.no_grad():
            all_logits = model.logits(xv).double().numpy()
        oof: dict[tuple[int, float, float], np.ndarray] = {}
        for r, j in enumerate(jobs):
            key = (j.problem, j.gamma, j.tau)
            if key not in oof:
                oof[key] = np.full(len(problems[j.problem].y), np.nan)
            oof[key][j.valid] = all_logits[r, :len(j.valid)]
        for i, prob in enumerate(problems):
            if decisions[i] is not None:
                continue
            y = np.asarray(prob.y).astype(int)
            w = np.ones(len(y)) if prob.sample_weight is None else np.asarray(prob.sample_weight, float)
            rows = w > 0
            cands = []
            for g, tau in _candidates(prob, gates[i][2], settings):
                z = oof[(i, g, tau)][rows]
                if settings.cv_score == "auc":
                    score = float(roc_auc_score(y[rows], z, sample_weight=w[rows]))
                else:  # mean log-likelihood (minus log-loss)
                    score = float(-np.average(np.logaddexp(0.0, -np.where(y[rows] == 1, z, -z)), weights=w[rows]))
                cands.append({"gamma": g, "tau": tau, "cv_score": score})
            if gates[i][2] < settings.cv_min_per_class:
                decisions[i] = _veto(cands, gates[i], prob, settings)
            else:
                decisions[i] = _choose(cands, gates[i], prob, settings)
    return decisions  # type: ignore[return-value]


def decide(problem: TrustProblem, train_kwargs: dict[str, Any] | None = None,
           settings: TrustSettings = DEFAULT_SETTINGS) -> TrustDecision:
    """The decision for one training set (see `decide_many`)."""
    return decide_many([problem], train_kwargs, settings)[0]


def _candidates(prob: TrustProblem, n_min: int, s: TrustSettings) -> list[tuple[float, float]]:
    if n_min < s.cv_min_per_class:  # few-shot veto: plain vs the prior followed outright
        return [(0.0, s.tau), (float(prob.gamma), s.tau)]
    return _grid(prob.gamma, s)


def _veto(cands: list[dict[str, float]], gate: tuple[Agreement, float, int], prob: TrustProblem,
          s: TrustSettings) -> TrustDecision:
    agr, alpha, n_min = gate
    plain, follow = cands[0]["cv_score"], cands[1]["cv_score"]
    common = dict(agreement=agr, alpha=alpha, n_smaller_class=n_min, regime="few_shot", candidates=cands)
    head = (f"its signs agree with the class differences of the training rows (sign-flip p = {agr.p_value:.3f}"
            f" < {alpha:g})")
    folds = min(s.cv_folds, n_min)
    if plain - follow > s.veto_margin:
        return TrustDecision(gamma=0.0, tau=s.tau, followed=False, reason=(
            f"ignored the prior: {head}, but the rows classify each other much better without it "
            f"({folds}-fold cross-validated ROC AUC {plain:.3f} vs {follow:.3f} with it, a gap above "
            f"{s.veto_margin:g}); trained without it (gamma = 0)"), **common)
    return TrustDecision(gamma=float(prob.gamma), tau=s.tau, followed=True, reason=(
        f"followed the prior: {head} and the rows do not contradict it ({folds}-fold cross-validated ROC AUC "
        f"{follow:.3f} with it vs {plain:.3f} without); with {n_min} rows in the smaller class that is too "
        f"little to tune on, so gamma = {prob.gamma:g}, tau = {s.tau:g}"), **common)


def _grid(gamma: float, s: TrustSettings) -> list[tuple[float, float]]:
    """Plain training first (it wins ties), then gamma ascending; tau only matters when gamma > 0."""
    gammas = sorted({round(float(gamma) * f, 10) for f in s.gamma_fractions})
    return [(0.0, s.tau)] + [(g, t) for g in gammas for t in s.cv_taus]


def _choose(cands: list[dict[str, float]], gate: tuple[Agreement, float, int], prob: TrustProblem,
            s: TrustSettings) -> TrustDecision:
    agr, alpha, n_min = gate
    best = cands[0]
    for c in cands[1:]:
        if c["cv_score"] > best["cv_score"] + 1e-12:
            best = c
    plain = cands[0]["cv_score"]
    followed = best["gamma"] > 0
    metric = "ROC AUC" if s.cv_score == "auc" else "log-likelihood"
    gate = (f"the prior's signs agree with the class differences of the training rows (sign-flip p = "
            f"{agr.p_value:.3f} < {alpha:g}); " if s.gate else "")
    head = f"{gate}{min(s.cv_folds, n_min)}-fold cross-validated {metric} over gamma x tau"
    if followed:
        reason = (f"followed the prior: {head} chose gamma = {best['gamma']:g}, tau = {best['tau']:g} "
                  f"({best['cv_score']:.3f} vs {plain:.3f} without the prior)")
    else:
        top = max(c["cv_score"] for c in cands[1:])
        reason = (f"ignored the prior: {head} found plain training at least as good ({plain:.3f} vs "
                  f"{top:.3f} at best with the prior); trained without it (gamma = 0)")
    return TrustDecision(gamma=float(best["gamma"]), tau=float(best["tau"]), followed=followed,
                         regime="cross_validated", reason=reason, agreement=agr, alpha=alpha,
                         n_smaller_class=n_min, candidates=cands)


def off_decision(gamma: float, tau: float) -> dict[str, Any]:
    """The ``trust_`` record of a fit with trust switched off (fixed gamma and tau)."""
    return {"mode": "off", "gamma": float(gamma), "tau": float(tau), "followed": bool(gamma > 0),
            "reason": f"trust='off': fixed gamma = {gamma:g}, tau = {tau:g} from the parameters, "
                      "whatever the data says about the prior"}
