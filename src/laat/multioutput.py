"""LAAT for k outputs: softmax (multiclass) and regression, R stacked models trained at once.

The binary engine (`laat.models`) writes its gradients by hand for speed; this module
trains with autograd, on stacked parameters (``W`` is ``(R, d, k)``) so that a benchmark's
repetitions or a trust mode's candidates still run as one program.

What the attribution is, per task (``G[r]`` below is model r's batch-mean input gradient
of its outputs on the training rows, shape (d, k), computed in closed form, and therefore
differentiable in the parameters exactly as double back-prop would make it):

- **regression** (k = 1): the binary rule. L_att = (1/d) ||normalize(G[:, 0]) - t_hat||^2
  with t_hat = normalize(sign(s) exp(|s|/tau)) of the signed prior s (effect on the target).
- **multiclass, per class** (``prior_form="per_class"``, a (k, d) prior): softmax is blind
  to adding the same function to every logit, so class c's attribution is that of the
  *centred* logit z_c - mean_j z_j. L_att = (1/(k d)) sum_c ||normalize(Gc[:, c]) - t_hat_c||^2,
  which has the binary range [0, 4/d], so the same gamma carries over.
- **multiclass, shared** (``prior_form="shared"``, a (d,) prior): one unsigned importance
  per feature, m_j = ||Gc[j, :]||_2 (how much feature j moves the class logits apart, in
  any direction), matched to |t_hat| (the sign of a shared score carries no meaning).
  L_att = (1/d) ||normalize(m) - |t_hat|||^2.

Measured in benchmarks/README.md (bench_multitask.py): per class is far better than shared.
Targets of a regression are standardised by the caller (`laat.estimator_multi`); the loss
is squared error or Huber on the standardised scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from laat.attribution import EPS, normalize
from laat.datasets import TASKS
from laat.hyperparams import DEFAULTS, LOSSES, MODELS, REGRESSOR_DEFAULTS
from laat.priors import PRIOR_FORMS

K_OUTPUT_TASKS = tuple(t for t in TASKS if t != "binary")  # binary is laat.engine's (one logit)


@dataclass
class MultiModel:
    """R trained k-output models; parameters stacked on axis 0 (float32)."""

    kind: str
    task: str
    params: dict[str, Tensor]

    @property
    def n_outputs(self) -> int:
        return self.params["W" if self.kind == "lr" else "W2"].shape[-1]

    def outputs(self, X) -> Tensor:
        """Logits (multiclass) or standardised predictions (regression): (R, n, k)."""
        p = self.params
        x = _stacked_inputs(X, p, self.kind)
        return forward(self.kind, p, x)

    def attribution(self, X, row_weight: Tensor | None = None) -> Tensor:
        """Batch-mean input gradient per output (R, d, k), centred over classes for multiclass."""
        x = _stacked_inputs(X, self.params, self.kind)
        w = torch.full(x.shape[:2], 1.0 / x.shape[1], dtype=x.dtype) if row_weight is None else row_weight
        G = mean_input_gradient(self.kind, self.params, x, w)
        return G - G.mean(-1, keepdim=True) if self.task == "multiclass" else G


def forward(kind: str, p: dict[str, Tensor], x: Tensor) -> Tensor:
    if kind == "lr":
        return torch.baddbmm(p["b"], x, p["W"])
    h = torch.relu(torch.baddbmm(p["b1"], x, p["W1"]))
    return torch.baddbmm(p["b2"], h, p["W2"])


def mean_input_gradient(kind: str, p: dict[str, Tensor], x: Tensor, w: Tensor) -> Tensor:
    """sum_i w_i * d outputs(x_i) / d x_i, shape (R, d, k); differentiable in ``p``.

    For the ReLU MLP the gradient of output c at row i is W1 diag(relu'(pre_i)) W2[:, c]; the
    ReLU mask has zero derivative, as autograd treats it, so weighting the masks by row
    first gives the batch mean in one product.
    """
    if kind == "lr":
        return p["W"] * w.sum(1)[:, None, None]
    active = (torch.baddbmm(p["b1"], x, p["W1"]) > 0).to(x.dtype)  # (R, n, h)
    m = torch.einsum("rn,rnh->rh", w, active)
    return torch.bmm(p["W1"], m.unsqueeze(-1) * p["W2"])


def attribution_loss(G: Tensor, target: Tensor, task: str, prior_form: str, mask: Tensor) -> Tensor:
    """Per-model attribution loss (R,), see the module docstring. ``target`` is t_hat, ``mask`` (R, d)."""
    d = mask.sum(-1).clamp_min(1)
    if task == "regression":
        return ((normalize(G[..., 0]) - target) ** 2).sum(-1) / d
    Gc = G - G.mean(-1, keepdim=True)
    if prior_form == "per_class":  # target (R, k, d)
        diff = normalize(Gc.transpose(1, 2)) - target
        return (diff**2).sum((-1, -2)) / (d * G.shape[-1])
    m = torch.sqrt((Gc**2).sum(-1) + EPS**2)  # (R, d); smooth at 0
    return ((normalize(m * mask) - target.abs()) ** 2).sum(-1) / d


def task_loss(out: Tensor, y: Tensor, w: Tensor, task: str, loss: str, huber_delta: float) -> Tensor:
    """Weighted mean task loss per model (R,); ``w`` sums to 1 per model."""
    if task == "multiclass":
        ce = torch.nn.functional.cross_entropy(out.transpose(1, 2), y.long(), reduction="none")
        return (ce * w).sum(-1)
    r = out[..., 0] - y
    if loss == "squared":
        per = r**2
    else:
        a = r.abs()
        per = torch.where(a <= huber_delta, r**2, 2 * huber_delta * a - huber_delta**2)
    return (per * w).sum(-1)  # squared: the MSE; Huber: 2x the usual so both agree below delta


def init_params(kind: str, d: int, k: int, seeds: Sequence[int], hidden: int) -> dict[str, Tensor]:
    """PyTorch's default Linear init per model, seeded per model (same numbers as nn.Linear)."""
    R = len(seeds)
    layers = [(d, k)] if kind == "lr" else [(d, hidden), (hidden, k)]
    names = [("W", "b")] if kind == "lr" else [("W1", "b1"), ("W2", "b2")]
    p = {}
    for (fan_in, fan_out), (wn, bn) in zip(layers, names):
        p[wn] = torch.empty(R, fan_in, fan_out)
        p[bn] = torch.empty(R, 1, fan_out)
    for r, s in enumerate(seeds):
        torch.manual_seed(int(s))
        for (fan_in, fan_out), (wn, bn) in zip(layers, names):
            lin = torch.nn.Linear(fan_in, fan_out)
            p[wn][r] = lin.weight.detach().T
            p[bn][r, 0] = lin.bias.detach()
    return p


def fit_multi(
    X,
    y,
    target=None,
    *,
    task: str,
    n_outputs: int,
    model: str = DEFAULTS.model,
    gamma: float | Sequence[float] = DEFAULTS.gamma,
    prior_form: str = "per_class",
    loss: str = REGRESSOR_DEFAULTS.loss,
    huber_delta: float = REGRESSOR_DEFAULTS.huber_delta,
    hidden: int = DEFAULTS.hidden,
    lr: float = DEFAULTS.lr,
    epochs: int = DEFAULTS.epochs,
    weight_decay: float = DEFAULTS.weight_decay,
    seeds: Sequence[int] = (0,),
    sample_weight=None,
    feature_mask=None,
) -> MultiModel:
    """Train R k-output LAAT models, full batch, with Adam.

    Args:
        X: (R, n, d) preprocessed inputs (Min-Max scaled on the training rows).
        y: (R, n) class indices 0..k-1 (multiclass) or standardised targets (regression).
        target: t_hat, normalised per class: (R, k, d) per class, (R, d) shared or regression;
            None only when every gamma is 0.
        gamma: one value or one per model.
        sample_weight: (R, n) >= 0 (0 = padding); the task loss and the attribution are
            weighted means over rows.
        feature_mask: (R, d) bool, False = feature removed (its weights stay 0).
    """
    _choice("task", task, K_OUTPUT_TASKS)
    _choice("model", model, MODELS)
    _choice("prior_form", prior_form, PRIOR_FORMS)
    _choice("loss", loss, LOSSES)
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    R, n, d = x.shape
    yt = torch.as_tensor(np.asarray(y, dtype=np.float32))
    sw = torch.ones(R, n) if sample_weight is None else torch.as_tensor(np.asarray(sample_weight, np.float32))
    w = sw / sw.sum(-1, keepdim=True).clamp_min(EPS)
    g = torch.as_tensor(np.broadcast_to(np.asarray(gamma, dtype=np.float32), (R,)).copy())
    mask = torch.ones(R, d) if feature_mask is None else torch.as_tensor(np.asarray(feature_mask, np.float32))
    if target is None and bool((g > 0).any()):
        raise ValueError("gamma > 0 needs a prior target")
    t = None if target is None else torch.as_tensor(np.asarray(target, dtype=np.float32))
    x = x * mask[:, None, :]
    p = init_params(model, d, n_outputs, seeds, hidden)
    first = "W" if model == "lr" else "W1"
    keep = mask[:, :, None]
    p[first] = p[first] * keep
    for v in p.values():
        v.requires_grad_(True)
    opt = torch.optim.Adam(list(p.values()), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        q = dict(p, **{first: p[first] * keep})
        total = task_loss(forward(model, q, x), yt, w, task, loss, huber_delta)
        if t is not None and bool((g > 0).any()):
            G = mean_input_gradient(model, q, x, w)
            total = total + g * attribution_loss(G, t, task, prior_form, mask)
        total.sum().backward()  # models are independent: the sum's gradient is each one's own
        opt.step()
    with torch.no_grad():
        p[first].mul_(keep)
    return MultiModel(kind=model, task=task, params={k: v.detach() for k, v in p.items()})


def _stacked_inputs(X, p: dict[str, Tensor], kind: str) -> Tensor:
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    R = p["W" if kind == "lr" else "W1"].shape[0]
    return x.unsqueeze(0).expand(R, -1, -1) if x.dim() == 2 else x


def _choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
