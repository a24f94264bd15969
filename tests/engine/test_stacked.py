"""A fitted stack as ordinary modules and as a selection of its models."""

import re

import numpy as np
import pytest
import torch
from engine_cases import F64, data

from laat.attribution import normalized_target
from laat.engine.fit import fit_many
from laat.engine.stacked import StackedModel, forward

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_to_module_and_select_reproduce_the_stacked_logits(kind):
    x, y = data(R=3, n=6, d=4, seed=10, dtype=torch.float32)
    fit = fit_many(x, y, normalized_target([1, 2, 3, 4]), model=kind, hidden=5, epochs=5)
    with torch.no_grad():
        torch.testing.assert_close(fit.to_module(2)(x[2]).squeeze(-1), fit.logits(x)[2])
    torch.testing.assert_close(fit.select([2]).logits(x[2:])[0], fit.logits(x)[2])


def _fitted(kind, dtype=F64, record_history=False):
    """Three models of widths 4, 3, 4 (the second padded), trained a few epochs."""
    g = torch.Generator().manual_seed(40)
    X = [torch.rand(7, d, generator=g, dtype=dtype) for d in (4, 3, 4)]
    Y = [(torch.arange(7) % 2).to(dtype)] * 3
    T = [normalized_target([1, -2, 3, 1]), normalized_target([2, 1, -1]), normalized_target([0, 1, 2, -3])]
    return fit_many(
        X, Y, T, model=kind, hidden=5, epochs=5, seeds=[3, 4, 5], dtype=dtype, record_history=record_history
    )


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_mean_input_gradient_is_autograds_weighted_mean_over_rows(kind):
    """Against autograd's input gradient of the logits (float64), for inputs shared by all
    models (narrower than the padded width) and per model, uniform and given row weights."""
    fit = _fitted(kind)
    g = torch.Generator().manual_seed(41)
    shared = torch.rand(9, 3, generator=g, dtype=F64)  # 9 rows, 3 of the 4 padded features
    per_model = torch.rand(3, 9, 4, generator=g, dtype=F64)
    rw = torch.rand(3, 9, generator=g, dtype=F64)
    for X in (shared, per_model):
        x = fit._inputs(X).detach().requires_grad_(True)
        for w in (None, rw):
            weights = torch.full((3, 9), 1 / 9, dtype=F64) if w is None else w
            (ref,) = torch.autograd.grad((forward(kind, fit.params, x) * weights).sum(), x)
            got = fit.mean_input_gradient(X, row_weight=None if w is None else w.numpy())
            torch.testing.assert_close(got, ref.sum(dim=1), rtol=1e-12, atol=1e-14)
            assert got.shape == (3, 4) and got.dtype == F64


def test_the_relu_mask_is_off_at_exactly_zero_like_autograd():
    fit = _fitted("mlp")
    fit.params["b1"][:, :, 0] = 0.0  # hidden unit 0: pre-activation exactly 0 on a zero row
    x = torch.zeros(3, 1, 4, dtype=F64, requires_grad=True)
    (ref,) = torch.autograd.grad(forward("mlp", fit.params, x).sum(), x)
    torch.testing.assert_close(fit.input_gradients(x.detach()), ref, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_probabilities_modules_and_selection_keep_what_was_fitted(kind):
    fit = _fitted(kind, record_history=True)
    x = torch.rand(3, 6, 4, generator=torch.Generator().manual_seed(42), dtype=F64)
    logits = fit.logits(x)
    torch.testing.assert_close(fit.predict_proba(x), 1 / (1 + torch.exp(-logits)), rtol=1e-12, atol=1e-15)
    with torch.no_grad():  # model 0 by default
        torch.testing.assert_close(fit.to_module()(x[0]).squeeze(-1), logits[0], rtol=1e-12, atol=1e-14)
    module = fit.to_module(1)
    assert all(p.dtype == F64 for p in module.parameters())
    with torch.no_grad():
        torch.testing.assert_close(module(x[1, :, :3]).squeeze(-1), logits[1], rtol=1e-12, atol=1e-14)
    part = fit.select([2, 1])
    assert part.n_features == [4, 3] and part.seeds == [5, 4] and part.kind == kind
    assert part.hidden == (5 if kind == "mlp" else None)
    assert torch.equal(part.history, fit.history[:, [2, 1]])
    assert _fitted(kind).select(0).history is None
    bare = StackedModel(kind=kind, params=fit.params, n_features=fit.n_features, hidden=fit.hidden)
    assert bare.select([0]).seeds == []
    # float64 inputs to a float32 model are cast, as are (n, d) arrays
    small = _fitted(kind, dtype=torch.float32)
    torch.testing.assert_close(small.logits(x.numpy()), small.logits(x.float()))
    assert small.mean_input_gradient(x.numpy(), row_weight=np.full((3, 6), 1 / 6)).dtype == torch.float32


def test_inputs_of_the_wrong_shape_are_refused():
    fit = _fitted("lr")
    for bad in (torch.zeros(4, 6, 4), torch.zeros(2, 6, 4), torch.zeros(4)):
        with pytest.raises(ValueError, match=re.escape(f"expected inputs (n, d) or (3, n, d), got {tuple(bad.shape)}")):
            fit.logits(bad)
    with pytest.raises(ValueError, match=re.escape("inputs have 5 features, models were fitted on 4")):
        fit.logits(torch.zeros(6, 5))
