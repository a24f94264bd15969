"""Initial parameters of R stacked models: PyTorch's default ``nn.Linear`` init, seeded per model."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from laat.hyperparams import DEFAULTS


def _layout(kind: str, R: int, d: int, hidden: int) -> list[tuple[str, tuple[int, ...]]]:
    if kind == "lr":
        return [("W", (R, d, 1)), ("b", (R, 1, 1))]
    return [("W1", (R, d, hidden)), ("b1", (R, 1, hidden)), ("W2", (R, hidden, 1)), ("b2", (R, 1, 1))]


def _linear_init(fan_in: int, fan_out: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Exactly ``nn.Linear(fan_in, fan_out)``'s default init, drawn from ``g``."""
    w = torch.empty(fan_out, fan_in)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    b = torch.empty(fan_out).uniform_(-bound, bound, generator=g)
    return w, b


def init_params(
    kind: str,
    n_features: Sequence[int],
    seeds: Sequence[int],
    hidden: int = DEFAULTS.hidden,
    d_pad: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[dict[str, Tensor], list[torch.Generator]]:
    """PyTorch default Linear init for each model, seeded per model; returns generators too.

    Model r with seed s gets the same numbers as ``torch.manual_seed(s); nn.Linear(d, ...)``
    (LR), or the two Linear layers of the MLP created in order. The generator continues
    into mini-batch shuffling, so a batched fit equals R single fits. Padded features
    (beyond a model's width) start at exactly 0.
    """
    R = len(seeds)
    d_pad = max(n_features) if d_pad is None else d_pad
    params = {k: torch.zeros(shape, dtype=dtype) for k, shape in _layout(kind, R, d_pad, hidden)}
    gens = []
    for r, (seed, d) in enumerate(zip(seeds, n_features)):
        g = torch.Generator().manual_seed(int(seed))
        gens.append(g)
        if kind == "lr":
            w, b = _linear_init(d, 1, g)
            params["W"][r, :d, 0] = w[0]
            params["b"][r, 0, 0] = b[0]
        else:
            w1, b1 = _linear_init(d, hidden, g)
            w2, b2 = _linear_init(hidden, 1, g)
            params["W1"][r, :d, :] = w1.T
            params["b1"][r, 0, :] = b1
            params["W2"][r, :, 0] = w2[0]
            params["b2"][r, 0, 0] = b2[0]
    return params, gens
