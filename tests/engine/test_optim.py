"""The stacked Adam equals torch.optim.Adam, fused kernel or written out."""

import pytest
import torch
from torch import nn

from laat.engine.optim import FUSED_ADAM_KERNEL, StackedAdam


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_equals_torch_optim_adam(fused, wd):
    if fused and FUSED_ADAM_KERNEL is None:
        pytest.skip("this torch build has no fused CPU Adam")
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(4, 3, generator=g), torch.randn(5, generator=g)]
    mine = [p.clone() for p in ps]
    grads = [torch.zeros_like(p) for p in ps]
    ref = [nn.Parameter(p.clone()) for p in ps]
    opt = torch.optim.Adam(ref, lr=1e-2, weight_decay=wd, foreach=False)
    adam = StackedAdam(mine, grads, 1e-2, wd, fused=fused)
    for _ in range(25):
        step_grads = [torch.randn(p.shape, generator=g) for p in ps]
        for gr, sg, r in zip(grads, step_grads, ref):
            gr.copy_(sg)
            r.grad = sg.clone()
        adam.step()
        opt.step()
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6)
