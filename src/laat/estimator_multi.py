"""k >= 3 classes for `LAATClassifier`, and `LAATRegressor`: both train with `laat.multioutput`.

A multiclass prior comes in one of two forms, told apart by its shape (names, not
positions, decide the alignment):

- **per class** (the default form, measured better): a `laat.priors.Prior` with ``classes``,
  a mapping ``{class: {feature: score}}``, a DataFrame with features as rows and classes as
  columns (the layout of ``feature_attributions_``), or a (k, d) array;
- **shared**: one score per feature (a signed `Prior`, a mapping, a Series or a sequence);
  only its magnitude is used (`laat.multioutput`).

A regression prior is signed: the effect of increasing the feature on the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from laat.estimator import LAATClassifier, align_by_name, fit_seed, resolve_prior
from laat.hyperparams import REGRESSOR_DEFAULT_LR, REGRESSOR_DEFAULTS, RegressorParams, validate_params
from laat.preprocess import minmax_scaler
from laat.priors import prior_form

_D = REGRESSOR_DEFAULTS


# ---- multiclass (called by LAATClassifier when y has 3 or more classes) --------------------------


def fit_multiclass(est: LAATClassifier, X, y, sample_weight=None, prior=None) -> LAATClassifier:
    """`LAATClassifier.fit` for k >= 3 classes (softmax LR or MLP, full batch)."""
    est._check_params()
    if est.attribution != "grad":
        raise ValueError(f"attribution={est.attribution!r} is binary-only; k >= 3 classes use 'grad'")
    if not (isinstance(est.confidence, str) and est.confidence == "none"):
        raise ValueError("confidence weights are binary-only; use confidence='none' with k >= 3 classes")
    if est.prior_class is not None:
        raise ValueError(
            "prior_class is for a binary prior; with k >= 3 classes give a per-class prior "
            "({class: {feature: score}}) or a shared one"
        )
    X, y = validate_data(est, X, y, dtype=[np.float64, np.float32])
    est.classes_, y_idx = np.unique(y, return_inverse=True)
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    names = est._feature_names()
    mask = est._suppress_mask(names)
    scores = _multiclass_scores(prior if prior is not None else est.prior, names, est.classes_)
    _require_prior(est.gamma, scores, mask)
    est.scaler_ = minmax_scaler().fit(X[sw > 0]) if est.scale else None
    Xs = est._scaled(X)
    k = len(est.classes_)
    est.model_, est.trust_, target = _train(est, Xs, y_idx, sw, scores, mask, "multiclass", k, {"lr": float(est.lr)})
    est.feature_mask_ = pd.Series(mask, index=names, name="used")
    cols = [str(c) for c in est.classes_]
    if target is None:
        est.prior_target_ = None
    elif target.ndim == 2:
        est.prior_target_ = pd.DataFrame(target.T, index=names, columns=cols)
    else:
        est.prior_target_ = pd.Series(np.abs(target), index=names, name="prior_target")
    G = _attribution(est.model_, Xs, sw)  # (d, k), centred over classes
    est.feature_attributions_ = pd.DataFrame(
        G / np.maximum(np.linalg.norm(G, axis=0), 1e-12), index=names, columns=cols
    )
    return est


def multiclass_logits(est: LAATClassifier, X) -> np.ndarray:
    check_is_fitted(est)
    X = validate_data(est, X, reset=False, dtype=[np.float64, np.float32])
    return _outputs64(est.model_, est._scaled(X))


def _multiclass_scores(prior, names: list[str], classes: np.ndarray) -> np.ndarray | None:
    """(k, d) per-class scores or (d,) shared scores, aligned by name; None without a prior."""
    labels = [str(c) for c in classes]
    if prior is None:
        return None
    if getattr(prior, "per_class", False):
        return prior.aligned(names, classes=labels).matrix()
    if isinstance(prior, pd.DataFrame):
        prior = {c: prior[c].to_dict() for c in prior.columns}
    if isinstance(prior, Mapping) and prior and all(isinstance(v, Mapping) for v in prior.values()):
        by_class = {str(c): v for c, v in prior.items()}
        missing = [c for c in labels if c not in by_class]
        extra = [c for c in by_class if c not in labels]
        if missing or extra:
            raise ValueError(
                f"a per-class prior must cover exactly the classes {labels}; missing {missing}, extra {extra}"
            )
        return np.stack([align_by_name(by_class[c], names, f"prior for class {c!r}") for c in labels])
    arr = None if isinstance(prior, (Mapping, pd.Series, str)) or hasattr(prior, "scores") else np.asarray(prior)
    if arr is not None and arr.ndim == 2:
        if arr.shape != (len(labels), len(names)):
            raise ValueError(
                f"a positional per-class prior must be (classes, features) = "
                f"({len(labels)}, {len(names)}), got {arr.shape}"
            )
        return arr.astype(np.float64)
    return resolve_prior(prior, names)[0]


# ---- regression ------------------------------------------------------------------------------------


class LAATRegressor(RegressorMixin, BaseEstimator):
    """Regressor trained with squared error (or Huber) + gamma * attribution-matching loss.

    The prior is the signed effect of increasing each feature on the target, in [-10, 10];
    LAAT aligns the batch-mean input gradient of the prediction with sign(s) exp(|s|/tau),
    as for a binary logit. The target is standardised on the training rows (the loss and
    ``huber_delta`` are in standard deviations); predictions are in the original units.

    Parameters
    ----------
    model : "lr" | "mlp"
    gamma, tau, trust : as in `laat.estimator.LAATClassifier`; ``trust="auto"`` tests the
        prior's signs against the features' covariance with the target and, from
        `laat.trust_multi.CV_MIN_ROWS` rows, cross-validates R^2 with and without it.
    loss : "squared" | "huber"
    huber_delta : float > 0, in standard deviations of the target.
    hidden, lr, epochs, weight_decay : model width and Adam settings (full batch). ``lr=None``
        takes `laat.hyperparams.REGRESSOR_DEFAULT_LR` for the model: 1e-1 for LR, whose
        weights must grow to several units for a standardised target (200 steps at 1e-2 left the oracle-prior fit on 30
        diabetes rows at test R^2 0.24 instead of 0.50), and 1e-2 for the MLP, which 1e-1
        drove to R^2 far below 0 (benchmarks/README.md, bench_multitask.py).
    prior : Prior (signed), Mapping[str, float], pandas Series or a sequence by position.
    suppress, scale, random_state : as in `LAATClassifier`.

    Attributes
    ----------
    feature_attributions_ : pandas Series, the normalised batch-mean input gradient.
    prior_target_ : pandas Series or None.
    trust_ : dict, what trust mode decided and why.
    y_mean_, y_scale_ : the target's standardisation.
    """

    def __init__(
        self,
        model: str = _D.model,
        gamma: float = _D.gamma,
        tau: float = _D.tau,
        trust: str = _D.trust,
        loss: str = _D.loss,
        huber_delta: float = _D.huber_delta,
        hidden: int = _D.hidden,
        lr: float | None = _D.lr,
        epochs: int = _D.epochs,
        weight_decay: float = _D.weight_decay,
        prior: Any = None,
        suppress: Sequence[str] = (),
        scale: bool = _D.scale,
        random_state: int | np.random.RandomState | None = None,
    ):
        self.model = model
        self.gamma = gamma
        self.tau = tau
        self.trust = trust
        self.loss = loss
        self.huber_delta = huber_delta
        self.hidden = hidden
        self.lr = lr
        self.epochs = epochs
        self.weight_decay = weight_decay
        self.prior = prior
        self.suppress = suppress
        self.scale = scale
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None, prior=None) -> LAATRegressor:
        """Fit on rows X and a numeric target y; ``prior`` here overrides the constructor's."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=True)
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if not np.any(sw > 0):
            raise ValueError("sample_weight is zero on every row: nothing to fit")
        y = np.asarray(y, dtype=np.float64)
        self.y_mean_ = float(np.average(y, weights=sw))
        sd = float(np.sqrt(np.average((y - self.y_mean_) ** 2, weights=sw)))
        self.y_scale_ = sd if sd > 0 else 1.0
        names = self._feature_names()
        mask = self._suppress_mask(names)
        p = prior if prior is not None else self.prior
        if getattr(p, "per_class", False):
            raise ValueError(f"a regression prior has one signed score per feature; this one is per class {p.classes}")
        scores = resolve_prior(p, names)[0]
        _require_prior(self.gamma, scores, mask)
        self.scaler_ = minmax_scaler().fit(X[sw > 0]) if self.scale else None
        Xs = self._scaled(X)
        self.lr_ = REGRESSOR_DEFAULT_LR[self.model] if self.lr is None else float(self.lr)
        extra = {"loss": self.loss, "huber_delta": float(self.huber_delta), "lr": self.lr_}
        self.model_, self.trust_, target = _train(
            self, Xs, (y - self.y_mean_) / self.y_scale_, sw, scores, mask, "regression", 1, extra
        )
        self.feature_mask_ = pd.Series(mask, index=names, name="used")
        self.prior_target_ = None if target is None else pd.Series(target, index=names, name="prior_target")
        g = _attribution(self.model_, Xs, sw)[:, 0]
        self.feature_attributions_ = pd.Series(
            g / max(float(np.linalg.norm(g)), 1e-12), index=names, name="attribution"
        )
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return _outputs64(self.model_, self._scaled(X))[:, 0] * self.y_scale_ + self.y_mean_

    def _check_params(self) -> None:
        """The knobs against `laat.hyperparams.RegressorParams`, the one home of their ranges."""
        validate_params(
            {
                name: getattr(self, name)
                for name in (
                    "model",
                    "gamma",
                    "tau",
                    "trust",
                    "loss",
                    "huber_delta",
                    "hidden",
                    "lr",
                    "epochs",
                    "weight_decay",
                    "scale",
                )
            },
            "LAATRegressor",
            RegressorParams,
        )
        if isinstance(self.suppress, str):
            raise ValueError(f"suppress must be a list of feature names, got the string {self.suppress!r}")

    _scaled = LAATClassifier._scaled
    _feature_names = LAATClassifier._feature_names
    _suppress_mask = LAATClassifier._suppress_mask


# ---- shared by both --------------------------------------------------------------------------------


def _require_prior(gamma: float, scores: np.ndarray | None, mask: np.ndarray) -> None:
    if scores is None and gamma > 0:
        raise ValueError(
            f"gamma={gamma} needs a prior: pass prior=... to the constructor or to fit "
            "(or set gamma=0 for plain training)"
        )
    if scores is not None and gamma > 0 and not np.any(np.asarray(scores)[..., mask] != 0):
        raise ValueError("the prior is zero on every (unsuppressed) feature: nothing to align with")


def _train(est, Xs, y, sw, scores, mask, task: str, k: int, extra: dict):
    """Trust decision (unless trust='off') and the final fit; sets ``seed_``; returns (model, trust_, target)."""
    from laat.attribution import normalized_target
    from laat.multioutput import fit_multi
    from laat.trust import DEFAULT_SETTINGS, off_decision
    from laat.trust_multi import MultiTrustProblem, decide_many

    seed = est.seed_ = fit_seed(est.random_state)
    kwargs = {
        "model": est.model,
        "hidden": est.hidden,
        "epochs": est.epochs,
        "weight_decay": float(est.weight_decay),
    } | extra
    gamma, tau = float(est.gamma), float(est.tau)
    if isinstance(est.trust, str) and est.trust == "off":
        trust = off_decision(gamma, tau)
    elif scores is None or gamma == 0:
        trust = {
            "mode": "auto",
            "gamma": 0.0,
            "tau": tau,
            "followed": False,
            "reason": "gamma = 0 was requested: the prior is not used, so there is nothing to trust",
        }
    else:
        settings = DEFAULT_SETTINGS if isinstance(est.trust, str) else est.trust
        trust = decide_many(
            [
                MultiTrustProblem(
                    X=Xs,
                    y=y,
                    scores=scores,
                    task=task,
                    n_outputs=k,
                    gamma=gamma,
                    seed=seed,
                    sample_weight=sw,
                    mask=mask,
                )
            ],
            kwargs,
            settings,
        )[0]
        gamma, tau = trust["gamma"], trust["tau"]
    target = None if scores is None else normalized_target(scores, tau, mask).numpy()
    model = fit_multi(
        Xs[None],
        np.asarray(y, np.float32)[None],
        None if target is None else target[None],
        task=task,
        n_outputs=k,
        gamma=gamma,
        prior_form=prior_form(target),
        seeds=[seed],
        sample_weight=sw[None],
        feature_mask=mask[None],
        **kwargs,
    )
    return model, trust, target


def _outputs64(model, Xs: np.ndarray) -> np.ndarray:
    """Outputs (n, k) in float64, so that a row's score does not depend on its batch."""
    import torch

    from laat.multioutput import forward

    p = {k: v[:1].to(torch.float64) for k, v in model.params.items()}
    with torch.no_grad():
        return forward(model.kind, p, torch.tensor(Xs, dtype=torch.float64)[None])[0].numpy()


def _attribution(model, Xs: np.ndarray, sw: np.ndarray) -> np.ndarray:
    import torch

    rw = torch.tensor(sw / sw.sum(), dtype=torch.float32)[None]
    with torch.no_grad():
        return model.attribution(Xs, rw)[0].double().numpy()
