"""Attribution functions and the LAAT attribution-matching loss (method spec §1-2).

Everything here is plain, differentiable torch: input gradients are taken with
``create_graph=True`` so that the loss reaches the model parameters (double back-prop).
The functions work on one model (inputs ``(n, d)``) or on R stacked models (inputs
``(R, n, d)``, logits ``(R, n)``): rows are axis -2, features axis -1. Rows must not
interact in the forward pass (no batch norm), otherwise per-row gradients are not
attributions of that row.

`laat.engine` trains with closed-form gradients of the same quantities; these functions
are the reference it is tested against and the generic path for other models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from laat.hyperparams import DEFAULTS, AttributionKind

EPS = 1e-12

Forward = Callable[[Tensor], Tensor]  # x (..., n, d) -> logits (..., n)


def normalize(v: Tensor, dim: int = -1, eps: float = EPS) -> Tensor:
    """v / max(||v||, eps): scale-free comparison; a zero vector stays zero."""
    return v / torch.linalg.vector_norm(v, dim=dim, keepdim=True).clamp_min(eps)


def prior_target(scores: Sequence[float] | np.ndarray | Tensor, tau: float = DEFAULTS.tau) -> Tensor:
    """Raw target t = sign(s) * exp(|s| / tau), with t = 0 where s = 0 (float64).

    Overflows for tiny tau; training uses `normalized_target`, which is identical after
    normalisation and cannot overflow.
    """
    s = _as_float64(scores)
    _check_tau(tau)
    return torch.sign(s) * torch.exp(s.abs() / tau)


def normalized_target(
    scores: Sequence[float] | np.ndarray | Tensor,
    tau: float = DEFAULTS.tau,
    mask: Sequence[bool] | np.ndarray | Tensor | None = None,
) -> Tensor:
    """normalize(t) along the last axis, computed stably (float64).

    exp(|s|/tau) is scale-shifted by max|s| before exponentiating; normalisation removes
    the shift. ``mask`` (True = keep) zeroes features before normalising, e.g. features
    whose attribution must be zero.
    """
    s = _as_float64(scores)
    _check_tau(tau)
    if mask is not None:
        s = s * torch.as_tensor(np.asarray(mask, dtype=bool), dtype=torch.bool).to(s.device)
    mag = s.abs()
    top = mag.amax(dim=-1, keepdim=True) if s.numel() else mag
    t = torch.sign(s) * torch.exp((mag - top) / tau)
    return normalize(t)


def batch_mean_gradient(
    forward: Forward, x: Tensor, row_weight: Tensor | None = None, create_graph: bool = True
) -> Tensor:
    """Batch-mean input gradient of the logit, shape (..., d): the paper's final variant.

    Equals the reference's (1/N^2) sum_i grad f(x_i) up to a positive scale, which the
    loss normalises away. ``row_weight`` (..., n) gives a weighted mean (padding rows get 0).
    """
    x = x.detach().requires_grad_(True)
    f = forward(x)
    w = _row_weight(f, row_weight)
    (grad,) = torch.autograd.grad((f * w).sum(), x, create_graph=create_graph)
    return grad.sum(dim=-2)


def input_x_gradient(forward: Forward, x: Tensor, create_graph: bool = True) -> Tensor:
    """Per-sample input x gradient, shape (..., n, d): the earlier (v1) variant.

    a_i = x_i * grad_{x_i} mean_j f(x_j); the 1/n factor is kept to match the definition
    even though each row is normalised later.
    """
    x = x.detach().requires_grad_(True)
    f = forward(x)
    (grad,) = torch.autograd.grad(f.mean(dim=-1).sum(), x, create_graph=create_graph)
    return x * grad


ATTRIBUTIONS: dict[str, Callable[..., Tensor]] = {
    "grad": batch_mean_gradient,
    "input_x_grad": input_x_gradient,
}


def get_attribution(name: str) -> Callable[..., Tensor]:
    try:
        return ATTRIBUTIONS[name]
    except KeyError:
        raise ValueError(f"unknown attribution {name!r}; choose one of {sorted(ATTRIBUTIONS)}") from None


def attribution_loss(
    attribution: Tensor,
    target: Tensor,
    *,
    kind: AttributionKind = DEFAULTS.attribution,
    x: Tensor | None = None,
    confidence: Tensor | None = None,
    row_weight: Tensor | None = None,
    n_features: int | Tensor | None = None,
) -> Tensor:
    """Attribution-matching loss per model, shape (...) (a scalar for one model).

    - ``kind="grad"``: (1/d) * sum_j c_j (normalize(g) - normalize(t))_j^2 with g (..., d).
      With c = 1 and g, t != 0 this is (2 - 2 cos(g, t)) / d.
    - ``kind="input_x_grad"``: rows a_i (..., n, d) against r_i = t * x_i, each row
      normalised separately, mean over rows (weighted by ``row_weight``).

    ``confidence`` (..., d) weighs features (1 = plain MSE); ``n_features`` overrides d
    (stacked models padded to a common width pass their true widths).
    """
    d = attribution.shape[-1] if n_features is None else n_features
    t_hat = normalize(target.to(attribution.dtype))
    c = 1.0 if confidence is None else confidence.to(attribution.dtype)
    if kind == "grad":
        sq = (c * (normalize(attribution) - t_hat) ** 2).sum(dim=-1)
        return sq / _as_width(d, sq)
    if kind == "input_x_grad":
        if x is None:
            raise ValueError("attribution_loss(kind='input_x_grad') needs the inputs x")
        ref = normalize(t_hat.unsqueeze(-2) * x)
        c_rows = c if confidence is None else c.unsqueeze(-2)
        per_row = (c_rows * (normalize(attribution) - ref) ** 2).sum(dim=-1)  # (..., n)
        w = _row_weight(per_row, row_weight)
        per_model = (per_row * w).sum(dim=-1)
        return per_model / _as_width(d, per_model)
    raise ValueError(f"unknown attribution {kind!r}; choose one of {sorted(ATTRIBUTIONS)}")


def laat_loss(
    forward: Forward,
    x: Tensor,
    y: Tensor,
    target: Tensor | None,
    gamma: float | Tensor,
    *,
    attribution: AttributionKind = DEFAULTS.attribution,
    confidence: Tensor | None = None,
    row_weight: Tensor | None = None,
    n_features: int | Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """(total, bce, att) per model: mean BCE-with-logits + gamma * attribution loss.

    The attribution term is built with double back-prop, so ``total.sum().backward()``
    trains every model. With gamma == 0 the attribution term is skipped (returned as 0).
    """
    f = forward(x)
    w = _row_weight(f, row_weight)
    bce = (F.binary_cross_entropy_with_logits(f, y.to(f.dtype), reduction="none") * w).sum(dim=-1)
    skip = target is None or (not torch.is_tensor(gamma) and float(gamma) == 0.0)
    if skip:
        att = torch.zeros_like(bce)
        return bce, bce, att
    if attribution == "grad":
        a = batch_mean_gradient(forward, x, row_weight=row_weight)
        att = attribution_loss(a, target, kind="grad", confidence=confidence, n_features=n_features)
    elif attribution == "input_x_grad":
        a = input_x_gradient(forward, x)
        att = attribution_loss(
            a, target, kind="input_x_grad", x=x, confidence=confidence, row_weight=row_weight, n_features=n_features
        )
    else:
        raise ValueError(f"unknown attribution {attribution!r}; choose one of {sorted(ATTRIBUTIONS)}")
    g = gamma.to(bce.dtype) if torch.is_tensor(gamma) else gamma
    return bce + g * att, bce, att


# ---- helpers ------------------------------------------------------------------------------


def _as_float64(scores) -> Tensor:
    s = torch.as_tensor(np.asarray(scores.detach().cpu() if torch.is_tensor(scores) else scores, dtype=np.float64))
    if not torch.isfinite(s).all():
        raise ValueError("prior scores must be finite numbers")
    return s


def _check_tau(tau: float) -> None:
    if not (isinstance(tau, (int, float)) and np.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a positive number, got {tau!r}")


def _row_weight(f: Tensor, row_weight: Tensor | None) -> Tensor:
    if row_weight is None:
        return torch.full_like(f, 1.0 / f.shape[-1])
    return row_weight.to(f.dtype)


def _as_width(d: int | Tensor, like: Tensor) -> Tensor | int:
    return d.to(like.dtype) if torch.is_tensor(d) else d
