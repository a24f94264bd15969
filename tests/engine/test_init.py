"""Initial parameters equal PyTorch's default nn.Linear init, seed by seed."""

import pytest
import torch
from torch import nn

from laat.engine.init import init_params


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_init_is_pytorch_default_linear_init_per_seed(kind):
    params, _ = init_params(kind, [6, 6], [7, 8], hidden=10)
    for r, seed in enumerate([7, 8]):
        torch.manual_seed(seed)
        if kind == "lr":
            lin = nn.Linear(6, 1)
            assert torch.equal(params["W"][r, :, 0], lin.weight[0].detach())
            assert torch.equal(params["b"][r, 0, 0], lin.bias[0].detach())
        else:
            l1, l2 = nn.Linear(6, 10), nn.Linear(10, 1)
            assert torch.equal(params["W1"][r], l1.weight.detach().T)
            assert torch.equal(params["b1"][r, 0], l1.bias.detach())
            assert torch.equal(params["W2"][r, :, 0], l2.weight[0].detach())
            assert torch.equal(params["b2"][r, 0, 0], l2.bias[0].detach())
