"""The training objective BCE + gamma * L_att of one group of stacked models: its constants,
the gradient pieces both programs share, and the references the closed forms are tested
against (autograd's double back-prop through `laat.attribution`, and the loss values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from laat.attribution import EPS, attribution_loss, laat_loss
from laat.engine.stacked import forward, input_gradients


@dataclass
class AttributionTerm:
    """Per-group constants of the attribution term (R models of the group)."""

    kind: str
    attribution: str
    t_hat: Tensor  # (R, d) normalised, masked target
    gamma: Tensor  # (R,)
    n_feat: Tensor  # (R,) true widths
    scale: Tensor  # (R,) = 2 * gamma / d
    confidence: Tensor | None  # (R, d)
    active: bool  # any gamma > 0

    @property
    def fast(self) -> bool:
        """Cosine closed form applies: 'grad' attribution without confidence weights."""
        return self.active and self.attribution == "grad" and self.confidence is None

    @property
    def c_scale(self) -> Tensor:
        c = self.scale.unsqueeze(-1)
        return c if self.confidence is None else c * self.confidence


class GradientProgram(Protocol):
    """What the epoch loop needs of a program (`LRProgram`, `MLPProgram`): the stacked
    parameters and their gradient buffers (stepped by the optimizer in place), a batch
    loader, and gradients either in closed form or copied in from autograd."""

    params: list[Tensor]
    grads: list[Tensor]

    def load(self, x: Tensor, y: Tensor, rw: Tensor) -> None: ...

    def batch(self) -> tuple[Tensor, Tensor, Tensor]: ...

    def std_params(self) -> dict[str, Tensor]: ...

    def set_grads(self, g: dict[str, Tensor]) -> None: ...

    def analytic_grads(self) -> None: ...


def normalized_mse_grad(v: Tensor, ref_hat: Tensor, c_scale: Tensor, dim: int = -1) -> Tensor:
    """d/dv of sum(c_scale/2 * (normalize(v) - ref_hat)^2) along ``dim`` (general form)."""
    nrm = torch.linalg.vector_norm(v, dim=dim, keepdim=True)
    nc = nrm.clamp_min(EPS)
    vh = v / nc
    u = (vh - ref_hat) * c_scale
    proj = (vh * u).sum(dim=dim, keepdim=True) * (nrm > EPS)
    return (u - vh * proj) / nc


def row_ref(x: Tensor, t_hat: Tensor) -> Tensor:
    """normalize(t * x_i) per row: the input x gradient variant's per-row target."""
    ref = x * t_hat
    return ref / torch.linalg.vector_norm(ref, dim=-1, keepdim=True).clamp_min(EPS)


def autograd_gradients(prog: GradientProgram, st: AttributionTerm) -> dict[str, Tensor]:
    """The same gradient through `laat.attribution.laat_loss` (double back-prop)."""
    x, y, rw = prog.batch()
    with torch.enable_grad():
        p = {k: v.detach().clone().requires_grad_(True) for k, v in prog.std_params().items()}
        total, _, _ = laat_loss(
            lambda inp: forward(st.kind, p, inp),
            x,
            y,
            st.t_hat if st.active else None,
            st.gamma if st.active else 0.0,
            attribution=st.attribution,
            confidence=st.confidence,
            row_weight=rw,
            n_features=st.n_feat,
        )
        grads = torch.autograd.grad(total.sum(), list(p.values()))
    return dict(zip(p, grads))


def loss_values(prog: GradientProgram, st: AttributionTerm) -> Tensor:
    """(R, 2): row-weighted mean BCE and attribution loss at the current parameters."""
    x, y, rw = prog.batch()
    p = prog.std_params()
    f = forward(st.kind, p, x)
    bce = (torch.nn.functional.binary_cross_entropy_with_logits(f, y, reduction="none") * rw).sum(dim=1)
    G = input_gradients(st.kind, p, x)
    if st.attribution == "grad":
        att = attribution_loss(
            (G * rw.unsqueeze(-1)).sum(dim=1), st.t_hat, confidence=st.confidence, n_features=st.n_feat
        )
    else:
        att = attribution_loss(
            x * G, st.t_hat, kind="input_x_grad", x=x, confidence=st.confidence, row_weight=rw, n_features=st.n_feat
        )
    return torch.stack([bce, att], dim=1)
