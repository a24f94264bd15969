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


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_one_input_and_one_hidden_unit_and_a_wider_padding(kind):
    """fan_in 1 (one feature, or the MLP's output layer with hidden=1) keeps PyTorch's bias
    bound of 1; padding to d_pad beyond the widest model leaves exact zeros."""
    params, _ = init_params(kind, [1, 3], [4, 5], hidden=1, d_pad=6)
    W = params["W" if kind == "lr" else "W1"]
    assert W.shape[1] == 6
    assert torch.count_nonzero(W[0, 1:]) == 0 and torch.count_nonzero(W[1, 3:]) == 0
    torch.manual_seed(4)
    first = nn.Linear(1, 1)
    assert torch.equal(W[0, 0, 0], first.weight[0, 0].detach())
    bias = params["b" if kind == "lr" else "b1"][0, 0, 0]
    assert torch.equal(bias, first.bias[0].detach()) and float(bias) != 0.0
    if kind == "mlp":
        out = nn.Linear(1, 1)  # hidden=1: the second layer has fan_in 1 too
        assert torch.equal(params["W2"][0, 0, 0], out.weight[0, 0].detach())
        assert torch.equal(params["b2"][0, 0, 0], out.bias[0].detach()) and float(params["b2"][0, 0, 0]) != 0.0
