"""A fitted stack as ordinary modules and as a selection of its models."""

import pytest
import torch
from engine_cases import data

from laat.attribution import normalized_target
from laat.engine.fit import fit_many

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_to_module_and_select_reproduce_the_stacked_logits(kind):
    x, y = data(R=3, n=6, d=4, seed=10, dtype=torch.float32)
    fit = fit_many(x, y, normalized_target([1, 2, 3, 4]), model=kind, hidden=5, epochs=5)
    with torch.no_grad():
        torch.testing.assert_close(fit.to_module(2)(x[2]).squeeze(-1), fit.logits(x)[2])
    torch.testing.assert_close(fit.select([2]).logits(x[2:])[0], fit.logits(x)[2])
