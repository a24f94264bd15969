"""The epoch loop of one group of stacked models: load the batch, take gradients, step Adam."""

from __future__ import annotations

import torch
from torch import Tensor

from laat.engine.lr_program import LRProgram
from laat.engine.mlp_program import MLPProgram
from laat.engine.objective import AttributionTerm, GradientProgram, autograd_gradients, loss_values
from laat.engine.optim import StackedAdam


def _normalise_rows(sw: Tensor) -> Tensor:
    return sw / sw.sum(dim=1, keepdim=True).clamp_min(torch.finfo(sw.dtype).tiny)


def train_group(
    params: dict[str, Tensor],
    gens,
    x,
    y,
    sw,
    st: AttributionTerm,
    *,
    lr,
    epochs,
    batch_size,
    weight_decay,
    grad_impl,
    record_history,
    fused_adam=None,
) -> Tensor | None:
    """Train one group's models in place of ``params``; returns history. Full batch unless
    rows > batch_size, then mini-batches shuffled by each model's own generator."""
    R, n, d = x.shape
    full = batch_size is None or n <= batch_size
    prog_cls = LRProgram if st.kind == "lr" else MLPProgram
    prog: GradientProgram = prog_cls(params, st, n if full else batch_size)
    opt = StackedAdam(prog.params, prog.grads, lr, weight_decay, fused=fused_adam)
    hist = torch.zeros(epochs, R, 2, dtype=x.dtype) if record_history else None
    if full:
        prog.load(x, y, _normalise_rows(sw))
    for epoch in range(epochs):
        if full:
            starts, perm = [0], None
        else:
            perm = torch.stack([torch.randperm(n, generator=g) for g in gens])
            starts = range(0, n, batch_size)
        for s in starts:
            if perm is not None:
                idx = perm[:, s : s + batch_size]
                prog.load(
                    torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, d)),
                    torch.gather(y, 1, idx),
                    _normalise_rows(torch.gather(sw, 1, idx)),
                )
            if hist is not None:
                with torch.no_grad():
                    hist[epoch] += loss_values(prog, st) / len(starts)
            if grad_impl == "analytic":
                prog.analytic_grads()
            else:
                prog.set_grads(autograd_gradients(prog, st))
            opt.step()
    for k, v in prog.std_params().items():
        params[k].copy_(v.reshape(params[k].shape))
    return hist
