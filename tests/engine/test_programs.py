"""The closed-form gradient programs (LR and MLP) against autograd's double back-prop and
finite differences."""

import pytest
import torch
from engine_cases import F64, attribution_term, data

from laat.attribution import laat_loss, normalized_target
from laat.engine.init import init_params
from laat.engine.lr_program import LRProgram
from laat.engine.mlp_program import MLPProgram
from laat.engine.objective import autograd_gradients
from laat.engine.stacked import forward

pytestmark = pytest.mark.usefixtures("one_torch_thread")


CASES = [(k, a, c) for k in ("lr", "mlp") for a in ("grad", "input_x_grad") for c in (False, True)]


@pytest.mark.parametrize("kind,attribution,with_conf", CASES)
def test_closed_form_gradients_equal_double_backprop(kind, attribution, with_conf):
    x, y = data()
    R, n, d = x.shape
    rw = torch.rand(R, n, dtype=F64)
    rw[:, -2:] = 0  # padded rows
    rw = rw / rw.sum(1, keepdim=True)
    t_hat = torch.nn.functional.normalize(torch.randn(R, d, dtype=F64), dim=1)
    conf = torch.rand(R, d, dtype=F64) if with_conf else None
    st = attribution_term(kind, attribution, t_hat, [0.0, 5.0, 100.0], conf)
    params, _ = init_params(kind, [d] * R, [1, 2, 3], hidden=7, dtype=F64)
    prog = (LRProgram if kind == "lr" else MLPProgram)(params, st, n)
    prog.load(x, y, rw)
    prog.analytic_grads()
    ref = autograd_gradients(prog, st)
    mine = dict(zip(ref, [g.reshape(ref[k].shape) for k, g in zip(ref, prog.grads)]))
    for k in ref:
        torch.testing.assert_close(mine[k], ref[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "n,d,hidden",
    [(9, 5, 7), (12, 8, 20), (1, 5, 7), (2, 6, 30), (2, 45, 7), (3, 50, 40), (12, 8, 40), (20, 6, 30), (9, 45, 50)],
)
@pytest.mark.parametrize("with_conf", [False, True])
def test_mlp_grad_attribution_layouts_equal_double_backprop(n, d, hidden, with_conf):
    """Every layout of the MLP's 'grad' step (chosen by shape): h and its mask side by side
    or apart, dW1 with or without the dz pass, the cosine's small products padded or not."""
    R = 3
    x, y = data(R=R, n=max(n, 2), d=d, seed=n + d)
    x, y = x[:, :n].contiguous(), y[:, :n].contiguous()
    rw = torch.rand(R, n, dtype=F64)
    if n > 2:
        rw[:, -1] = 0  # a padded row
    rw = rw / rw.sum(1, keepdim=True)
    t_hat = torch.nn.functional.normalize(torch.randn(R, d, dtype=F64), dim=1)
    conf = torch.rand(R, d, dtype=F64) if with_conf else None
    st = attribution_term("mlp", "grad", t_hat, [0.0, 5.0, 100.0], conf)
    params, _ = init_params("mlp", [d] * R, [1, 2, 3], hidden=hidden, dtype=F64)
    prog = MLPProgram(params, st, n)
    prog.load(x, y, rw)
    assert prog.joint == (n * hidden < 400)
    assert prog.dz_free == (not prog.joint and d * (2 * n + hidden) < 2 * n * hidden)
    prog.analytic_grads()
    ref = autograd_gradients(prog, st)
    for k, g in zip(ref, prog.grads):
        torch.testing.assert_close(g.reshape(ref[k].shape), ref[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_closed_form_gradient_matches_finite_differences(kind):
    """The gradient written in closed form is the derivative of the loss (no autograd involved)."""
    x, y = data(R=1, n=6, d=4, seed=5)
    t_hat = normalized_target([7.4, 6.8, 3.2, -1.0]).unsqueeze(0)
    st = attribution_term(kind, "grad", t_hat, [100.0])
    params, _ = init_params(kind, [4], [11], hidden=5, dtype=F64)
    rw = torch.full((1, 6), 1 / 6, dtype=F64)
    prog = (LRProgram if kind == "lr" else MLPProgram)(params, st, 6)
    prog.load(x, y, rw)
    prog.analytic_grads()

    def loss(p):
        return laat_loss(lambda inp: forward(kind, p, inp), x, y, t_hat, 100.0)[0].sum().item()

    base = {k: v.clone() for k, v in prog.std_params().items()}
    grads = dict(zip(base, prog.grads))
    eps = 1e-6
    for name, value in base.items():
        flat = value.reshape(-1)
        for i in range(0, flat.numel(), max(1, flat.numel() // 6)):
            up = {k: v.clone() for k, v in base.items()}
            dn = {k: v.clone() for k, v in base.items()}
            up[name].reshape(-1)[i] += eps
            dn[name].reshape(-1)[i] -= eps
            fd = (loss(up) - loss(dn)) / (2 * eps)
            assert grads[name].reshape(-1)[i].item() == pytest.approx(fd, rel=1e-5, abs=1e-7), (name, i)


def test_dead_mlp_gets_finite_gradients():
    """All ReLUs off: the attribution is the zero vector, and its gradient must stay finite (0)."""
    x, y = data(R=2, n=5, d=3, dtype=torch.float32)
    st = attribution_term("mlp", "grad", normalized_target([4, -2, 1]).float().expand(2, 3).clone(), [100.0])
    params, _ = init_params("mlp", [3, 3], [0, 1], hidden=4)
    params["b1"].fill_(-100.0)
    prog = MLPProgram(params, st, 5)
    prog.load(x, y, torch.full((2, 5), 0.2))
    prog.analytic_grads()
    assert all(bool(torch.isfinite(g).all()) for g in prog.grads)
    assert float(prog.gW1.abs().sum()) == 0.0


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_a_loaded_batch_reads_back_exactly_at_any_row_count(kind):
    """load then batch gives back the same x, y and row weights (float64, not rounded), for
    one row and for a batch shorter than the program's capacity loaded after a longer one."""
    x, y = data(R=2, n=6, d=3, seed=37)
    rw = torch.rand(2, 6, generator=torch.Generator().manual_seed(38), dtype=F64)
    st = attribution_term(kind, "grad", normalized_target([1, -2, 3]).expand(2, 3).clone(), [10.0])
    params, _ = init_params(kind, [3, 3], [1, 2], hidden=4, dtype=F64)
    prog = (LRProgram if kind == "lr" else MLPProgram)(params, st, 6)
    for n in (1, 6, 4):
        prog.load(x[:, :n], y[:, :n], rw[:, :n])
        for got, want in zip(prog.batch(), (x[:, :n], y[:, :n], rw[:, :n])):
            assert got.dtype == F64 and torch.equal(got, want)
        prog.analytic_grads()
        ref = autograd_gradients(prog, st)
        for k, g in zip(ref, prog.grads):
            torch.testing.assert_close(g.reshape(ref[k].shape), ref[k], rtol=1e-10, atol=1e-12)
