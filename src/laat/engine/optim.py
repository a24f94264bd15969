"""Adam over stacked tensors: Adam is element-wise, so one Adam over R stacked models is R Adams."""

from __future__ import annotations

import torch
from torch import Tensor

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
FUSED_ADAM_KERNEL = getattr(torch, "_fused_adam_", None)


class StackedAdam:
    """torch.optim.Adam's update on a fixed list of tensors, without its per-step overhead.

    Uses the fused CPU kernel that ``torch.optim.Adam(fused=True)`` calls (one op for all
    tensors), else the single-tensor update written out. Both are tested against
    torch.optim.Adam.
    """

    def __init__(
        self, params: list[Tensor], grads: list[Tensor], lr: float, weight_decay: float, fused: bool | None = None
    ):
        self.params, self.grads, self.lr, self.wd = params, grads, lr, weight_decay
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.fused = (FUSED_ADAM_KERNEL is not None) if fused is None else fused
        self.step_t = torch.zeros((), dtype=torch.float32)
        self.t = 0

    def step(self) -> None:
        b1, b2 = ADAM_BETAS
        self.t += 1
        if self.fused:
            self.step_t.add_(1)
            FUSED_ADAM_KERNEL(
                self.params,
                self.grads,
                self.m,
                self.v,
                [],
                [self.step_t] * len(self.params),
                amsgrad=False,
                lr=self.lr,
                beta1=b1,
                beta2=b2,
                weight_decay=self.wd,
                eps=ADAM_EPS,
                maximize=False,
            )
            return
        bc1, bc2_sqrt = 1 - b1**self.t, (1 - b2**self.t) ** 0.5
        for p, g, m, v in zip(self.params, self.grads, self.m, self.v):
            if self.wd:
                g = g.add(p, alpha=self.wd)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / bc2_sqrt).add_(ADAM_EPS), value=-self.lr / bc1)
