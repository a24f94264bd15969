"""LAATClassifier: the scikit-learn face of LAAT.

``fit`` Min-Max scales the training rows, turns the prior (feature name -> score in
[-10, 10]) into the target sign(s) * exp(|s|/tau), and trains one model with
`laat.engine.fit_many` (R = 1: the same program the benchmark runs in batches).
With gamma = 0 it is plain BCE training of the same model. By default (``trust="auto"``)
the training rows first decide how much to follow the prior (`laat.trust`);
``trust="off"`` is the paper's fixed gamma.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from laat.attribution import normalize, normalized_target
from laat.engine import fit_many, forward
from laat.hyperparams import DEFAULTS, LAATParams, validate_params
from laat.preprocess import minmax_scaler, model_input
from laat.trust import DEFAULT_SETTINGS, TrustProblem, fit_with_trust, off_decision


@dataclass
class FitInputs:
    """What training needs, validated and preprocessed (see `LAATClassifier.prepare_fit_inputs`)."""

    X: np.ndarray  # (n, d) float32, Min-Max scaled on these rows
    y: np.ndarray  # (n,) 0/1 float32, 1 = classes_[1]
    sample_weight: np.ndarray  # (n,) float32
    names: list[str]  # feature names, in column order
    mask: np.ndarray  # (d,) False = suppressed
    scores: np.ndarray | None  # prior scores for classes_[1], None without a prior
    target: np.ndarray | None  # normalised exp target (tau applied, suppressed features 0)
    confidence: np.ndarray | None  # per-feature weights of the attribution loss
    seed: int


class LAATClassifier(ClassifierMixin, BaseEstimator):
    """Classifier trained with BCE (softmax cross-entropy for k >= 3 classes) + gamma * attribution loss.

    With k >= 3 classes (`laat.estimator_multi`): the prior is per class ({class: {feature:
    score}}, a per-class `Prior`, or a features x classes DataFrame) or shared (one score
    per feature, magnitude only); training is full batch with autograd, ``attribution`` must
    be "grad", ``confidence`` "none", ``prior_class`` None; ``predict_proba`` is (n, k),
    ``decision_function`` gives the k logits and ``feature_attributions_`` /
    ``prior_target_`` are features x classes DataFrames (per-class attribution of the centred
    logits).

    Parameters
    ----------
    Defaults, allowed values and ranges of the training knobs live in `laat.hyperparams`.

    model : "lr" | "mlp"
        Logistic regression, or an MLP with one hidden ReLU layer of ``hidden`` units.
    gamma : float >= 0
        Weight of the attribution loss (default: the paper's). 0 = plain training, no prior needed.
        With ``trust="auto"``: the weight used when the prior is followed (the top of the
        cross-validation grid).
    tau : float > 0
        Temperature of the target sign(s) * exp(|s| / tau); 1 reproduces the paper, larger
        values soften its "top-1-3 features only" sharpness. Used with ``trust="off"``;
        ``trust="auto"`` chooses it.
    trust : "auto" | "off" | laat.trust.TrustSettings
        "auto" (default): decide from the training rows how much to follow the prior
        (`laat.trust`): a prior whose signs do not agree with the data beyond chance is
        ignored (gamma = 0); one that does is followed, with gamma and tau cross-validated
        once the smaller class has 10 rows. It is the default because a wrong prior at a
        fixed gamma can push ROC AUC far below chance, and few users know how good their
        prior is (an LLM's, a quick expert guess). "off" (the paper): always follow the
        prior at ``gamma``/``tau``; use it for a prior you have checked, or to reproduce the
        paper. A ``TrustSettings`` is "auto" with other constants (e.g. a looser gate).
    attribution : "grad" | "input_x_grad"
        Batch-mean input gradient (paper's final variant) or per-row input x gradient.
    hidden, lr, epochs, batch_size, weight_decay
        Model width and Adam settings; defaults are the paper's, and their batch is full-batch
        in few-shot. ``batch_size=None``: always full batch.
    prior : Prior, Mapping[str, float], pandas Series, or a sequence (by position)
        Scores per feature name, for the class ``prior_class``. May also be given to ``fit``.
        Must cover exactly the model's features (``feature_names_in_``; ``x0``, ``x1``...
        for arrays without names).
    prior_class : label or None
        Class the prior's scores refer to; default ``classes_[1]`` (the positive class).
    confidence : "none" | "spread" | Mapping[str, float]
        Per-feature weights of the attribution loss: "spread" down-weights features on which
        the LLM samples disagreed, w = 1 / (1 + spread^2) normalised to mean 1; or explicit
        weights by name.
    suppress : sequence of feature names
        Features whose attribution must be zero (e.g. sensitive attributes). They are
        removed from the model: first-layer weights stay exactly 0 and their prior is 0.
    scale : bool
        Min-Max scale features, fitted on the training rows (paper's preprocessing).
    grad_impl : "analytic" | "autograd"
        Closed-form gradients (fast) or double back-prop through `laat.attribution`.
    random_state : int, RandomState or None
        Seeds initialisation and shuffling; fits with the same int are bit-identical on CPU.

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_ : as in scikit-learn (names only for DataFrames).
    feature_attributions_ : pandas Series
        Learned global attribution: the normalised batch-mean input gradient of the logit on
        the training rows (for LR, the normalised weight vector), whichever ``attribution``
        was trained. Directly comparable to ``prior_target_``.
    prior_target_ : pandas Series or None
        normalize(sign(s) exp(|s|/tau)) with suppressed features at 0; None without a prior.
    feature_mask_ : pandas Series of bool (False = suppressed).
    trust_ : dict
        The gamma and tau actually used and why: ``mode``, ``gamma``, ``tau``, ``followed``,
        ``reason`` (a sentence), and with ``trust="auto"`` also ``regime``, ``agreement``
        (sign-flip p-value of the prior against the class differences), ``alpha`` and the
        cross-validated AUC per candidate (``candidates``). JSON-serialisable.
    model_ : laat.engine.StackedModel with one model; ``model_.to_module()`` gives an nn.Module
        taking scaled inputs (``scaler_`` is the fitted MinMaxScaler, None if scale=False).
    """

    def __init__(
        self,
        model: str = DEFAULTS.model,
        gamma: float = DEFAULTS.gamma,
        tau: float = DEFAULTS.tau,
        trust: str = DEFAULTS.trust,
        attribution: str = DEFAULTS.attribution,
        hidden: int = DEFAULTS.hidden,
        lr: float = DEFAULTS.lr,
        epochs: int = DEFAULTS.epochs,
        batch_size: int | None = DEFAULTS.batch_size,
        weight_decay: float = DEFAULTS.weight_decay,
        prior: Any = None,
        prior_class: Any = None,
        confidence: str | Mapping[str, float] = DEFAULTS.confidence,
        suppress: Sequence[str] = (),
        scale: bool = DEFAULTS.scale,
        grad_impl: str = DEFAULTS.grad_impl,
        random_state: int | np.random.RandomState | None = None,
    ):
        self.model = model
        self.gamma = gamma
        self.tau = tau
        self.trust = trust
        self.attribution = attribution
        self.hidden = hidden
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.prior = prior
        self.prior_class = prior_class
        self.confidence = confidence
        self.suppress = suppress
        self.scale = scale
        self.grad_impl = grad_impl
        self.random_state = random_state

    # ---- sklearn plumbing --------------------------------------------------------------

    # ---- fit ---------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, prior=None) -> LAATClassifier:
        """Fit on training rows X (DataFrame or array) and binary labels y.

        ``prior`` here overrides the constructor's ``prior`` (handy outside grid search).
        With three or more classes, `laat.estimator_multi.fit_multiclass` trains instead.
        """
        if _n_classes(y) > 2:
            from laat.estimator_multi import fit_multiclass

            return fit_multiclass(self, X, y, sample_weight, prior)
        inp = self.prepare_fit_inputs(X, y, sample_weight, prior)
        if not _is_off(self.trust) and inp.scores is not None and self.gamma > 0:
            self.model_ = self._fit_with_trust(inp)
        else:
            self.trust_ = (
                off_decision(float(self.gamma), float(self.tau))
                if _is_off(self.trust)
                else {
                    "mode": "auto",
                    "gamma": 0.0,
                    "tau": float(self.tau),
                    "followed": False,
                    "reason": "gamma = 0 was requested: the prior is not used, so there is nothing to trust",
                }
            )
            self.model_ = fit_many(
                inp.X[None],
                inp.y[None],
                inp.target,
                gamma=float(self.gamma),
                seeds=[inp.seed],
                confidence=inp.confidence,
                feature_mask=inp.mask,
                sample_weight=inp.sample_weight[None],
                **self._train_kwargs(),
            )
        self.seed_ = inp.seed
        self.feature_mask_ = pd.Series(inp.mask, index=inp.names, name="used")
        self.prior_target_ = None if inp.target is None else pd.Series(inp.target, index=inp.names, name="prior_target")
        self.feature_attributions_ = pd.Series(
            _global_attribution(self.model_, inp.X, inp.sample_weight), index=inp.names, name="attribution"
        )
        return self

    def _fit_with_trust(self, inp: FitInputs):
        """Let the training rows decide gamma and tau (`laat.trust.fit_with_trust`); sets ``trust_``."""
        settings = DEFAULT_SETTINGS if isinstance(self.trust, str) else self.trust
        fit = fit_with_trust(
            [
                TrustProblem(
                    X=inp.X,
                    y=inp.y,
                    scores=inp.scores,
                    gamma=float(self.gamma),
                    seed=inp.seed,
                    sample_weight=inp.sample_weight,
                    mask=inp.mask,
                    confidence=inp.confidence,
                )
            ],
            self._train_kwargs(),
            settings,
        )
        self.trust_ = fit.decisions[0].to_dict()
        self.trust_["settings"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(settings).items()}
        inp.target = fit.targets[0]
        return fit.models[0]

    def _train_kwargs(self) -> dict[str, Any]:
        """fit_many settings taken from the parameters (all but gamma, data and seeds)."""
        return dict(
            model=self.model,
            attribution=self.attribution,
            hidden=self.hidden,
            lr=float(self.lr),
            epochs=self.epochs,
            batch_size=self.batch_size,
            weight_decay=float(self.weight_decay),
            grad_impl=self.grad_impl,
        )

    def prepare_fit_inputs(self, X, y, sample_weight=None, prior=None) -> FitInputs:
        """Validate and preprocess everything ``fit`` needs, without training.

        Sets ``classes_``, ``n_features_in_``, ``feature_names_in_`` and ``scaler_``. Kept
        apart from training so that a search over gamma/tau (or folds) can prepare once and
        train all candidates as one `fit_many` batch.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y", raise_unknown=True)
        if y_type not in ("binary", "multiclass"):
            raise ValueError(f"Only binary classification is supported. The type of the target is {y_type}.")
        self.classes_ = np.unique(y)
        if len(self.classes_) > 2:
            raise ValueError(
                "Only binary classification is supported. The type of the target is multiclass "
                f"({len(self.classes_)} classes: {list(self.classes_)[:10]}); LAAT aligns a single logit."
            )
        if len(self.classes_) < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); LAAT needs two classes to train")
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if len(np.unique(y[sw > 0])) < 2:
            raise ValueError("sample_weight leaves a single class with positive weight: need two classes")

        names = self._feature_names()
        mask = self._suppress_mask(names)
        scores, spreads = resolve_prior(prior if prior is not None else self.prior, names)
        if scores is None and self.gamma > 0:
            raise ValueError(
                f"gamma={self.gamma} needs a prior: pass prior={{feature: score}} to the constructor "
                "or to fit (or set gamma=0 for plain training)"
            )
        target = None
        if scores is not None:
            if self.prior_class is not None:
                if self.prior_class not in set(self.classes_.tolist()):
                    raise ValueError(
                        f"prior_class={self.prior_class!r} is not one of the classes {list(self.classes_)}"
                    )
                if self.prior_class == self.classes_[0]:
                    scores = -scores  # a score for the negative class is minus one for the positive
            if not np.any(scores[mask] != 0) and self.gamma > 0:
                raise ValueError("the prior is zero on every (unsuppressed) feature: nothing to align with")
            target = normalized_target(scores, self.tau, mask).numpy()

        self.scaler_ = minmax_scaler().fit(X[sw > 0]) if self.scale else None
        return FitInputs(
            X=self._scaled(X),
            y=(y == self.classes_[1]).astype(np.float32),
            sample_weight=sw.astype(np.float32),
            names=names,
            mask=mask,
            scores=scores,
            target=target,
            confidence=self._confidence_weights(names, spreads, mask),
            seed=fit_seed(self.random_state),
        )

    # ---- predict -----------------------------------------------------------------------

    def decision_function(self, X) -> np.ndarray:
        """Logit of ``classes_[1]``, shape (n,); with k >= 3 classes, the k logits (n, k)."""
        check_is_fitted(self)
        if len(self.classes_) > 2:
            from laat.estimator_multi import multiclass_logits

            return multiclass_logits(self, X)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return _logits64(self.model_, self._scaled(X))

    def predict_proba(self, X) -> np.ndarray:
        """[P(classes_[0]), P(classes_[1])] per row; (n, k) with k >= 3 classes."""
        z = self.decision_function(X)
        if z.ndim == 2:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        z = self.decision_function(X)
        if z.ndim == 2:
            return self.classes_[z.argmax(axis=1)]
        positive = z > 0
        return self.classes_[positive.astype(int)]

    # ---- helpers -----------------------------------------------------------------------

    def _scaled(self, X: np.ndarray) -> np.ndarray:
        return model_input(X, self.scaler_)

    def _feature_names(self) -> list[str]:
        if hasattr(self, "feature_names_in_"):
            return [str(c) for c in self.feature_names_in_]
        return [f"x{i}" for i in range(self.n_features_in_)]

    def _check_params(self) -> None:
        """The knobs against `laat.hyperparams.LAATParams` (one home of their ranges); the
        data-bound ones (prior, suppress, confidence weights) are checked where the data is."""
        validate_params({name: getattr(self, name) for name in LAATParams.model_fields}, "LAATClassifier")
        if isinstance(self.suppress, str):
            raise ValueError(f"suppress must be a list of feature names, got the string {self.suppress!r}")

    def _suppress_mask(self, names: list[str]) -> np.ndarray:
        wanted = [str(s) for s in (self.suppress or ())]
        unknown = [s for s in wanted if s not in names]
        if unknown:
            raise ValueError(f"suppress names features the model does not have: {unknown}")
        mask = np.array([n not in wanted for n in names])
        if not mask.any():
            raise ValueError("suppress lists every feature: nothing left to fit")
        return mask

    def _confidence_weights(self, names, spreads, mask) -> np.ndarray | None:
        if isinstance(self.confidence, Mapping):
            w = align_by_name(self.confidence, names, "confidence")
            if np.any(w < 0):
                bad = [n for n, v in zip(names, w) if v < 0]
                raise ValueError(f"confidence weights must be >= 0; negative for {bad}")
        elif self.confidence == "spread":
            if spreads is None:
                raise ValueError(
                    "confidence='spread' needs a prior with spreads (a Prior object from "
                    "several LLM samples); this prior has none"
                )
            w = 1.0 / (1.0 + spreads**2)
        else:
            return None
        if not np.any(w[mask] > 0):
            raise ValueError("confidence weights are zero on every used feature")
        return w / w[mask].mean()


# ---- module helpers ------------------------------------------------------------------------


def resolve_prior(prior, names: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Scores (and spreads, if the prior has them) aligned to ``names``."""
    if prior is None:
        return None, None
    spreads = None
    if hasattr(prior, "scores") and callable(prior.scores):
        scores = align_by_name(prior.scores(), names, "prior")
        if hasattr(prior, "spreads") and callable(prior.spreads):
            spreads = align_by_name(prior.spreads(), names, "prior spreads")
    elif isinstance(prior, (Mapping, pd.Series)):
        scores = align_by_name(dict(prior.items()), names, "prior")
    elif isinstance(prior, (Sequence, np.ndarray)) and not isinstance(prior, str):
        arr = np.asarray(prior, dtype=np.float64)
        if arr.ndim != 1 or len(arr) != len(names):
            raise ValueError(f"a positional prior needs one score per feature ({len(names)}), got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            bad = [n for n, v in zip(names, arr) if not np.isfinite(v)]
            raise ValueError(f"prior scores must be finite; bad for {bad}")
        scores = arr
    else:
        raise TypeError(
            f"prior must be a Prior, a mapping feature -> score, a pandas Series or a "
            f"sequence of scores; got {type(prior).__name__}"
        )
    return scores, spreads


def align_by_name(mapping: Mapping, names: list[str], what: str) -> np.ndarray:
    keys = [str(k) for k in mapping]
    missing = [n for n in names if n not in keys]
    extra = [k for k in keys if k not in names]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {_short(missing)}")
        if extra:
            parts.append(f"extra {len(extra)}: {_short(extra)}")
        raise ValueError(f"{what} must cover exactly the model's {len(names)} features; " + "; ".join(parts))
    by_key = {str(k): v for k, v in mapping.items()}
    values = []
    for n in names:
        v = by_key[n]
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v):
            raise ValueError(f"{what} value for feature {n!r} must be a finite number, got {v!r}")
        values.append(float(v))
    return np.asarray(values, dtype=np.float64)


def _short(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"


def fit_seed(random_state) -> int:
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, got {random_state}")
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _logits64(model, Xs: np.ndarray) -> np.ndarray:
    """Logits in float64 so that rows are scored independently of batch composition."""
    p = {k: v.to(torch.float64) for k, v in model.params.items()}
    x = torch.tensor(Xs, dtype=torch.float64).unsqueeze(0)
    with torch.no_grad():
        return forward(model.kind, p, x)[0].numpy()


def _global_attribution(model, Xs: np.ndarray, sw: np.ndarray) -> np.ndarray:
    """Normalised batch-mean input gradient on the training rows (comparable to the target)."""
    rw = torch.tensor(sw / sw.sum(), dtype=model.dtype).unsqueeze(0)
    with torch.no_grad():
        g = model.mean_input_gradient(Xs, row_weight=rw)[0]
    return normalize(g.to(torch.float64)).numpy()


def _n_classes(y) -> int:
    """Distinct labels of a multiclass y (0 for other target types: `_prepare` explains them)."""
    try:
        if type_of_target(y, input_name="y") != "multiclass":
            return 0
        return len(np.unique(np.asarray(y)))
    except (ValueError, TypeError):
        return 0


def _is_off(trust) -> bool:
    return isinstance(trust, str) and trust == "off"
