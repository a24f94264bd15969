"""The objective's loss values (what ``record_history`` keeps) and its autograd reference,
against numbers written out by hand and a NumPy re-derivation that shares no code with
`laat.attribution`."""

import numpy as np
import pytest
import torch
from engine_cases import F64, attribution_term, data

from laat.engine.init import init_params
from laat.engine.lr_program import LRProgram
from laat.engine.mlp_program import MLPProgram
from laat.engine.objective import autograd_gradients, loss_values

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _program(kind, params, st, x, y, rw):
    prog = (LRProgram if kind == "lr" else MLPProgram)(params, st, x.shape[1])
    prog.load(x, y, rw)
    return prog


def _unit(v):
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, 1e-12)


def numpy_loss_values(kind, p, x, y, rw, t_hat, attribution, conf, n_feat):
    """(R, 2) row-weighted BCE and attribution loss, re-derived in NumPy float64."""
    p = {k: v.numpy() for k, v in p.items()}
    x, y, rw, t_hat, n_feat = (a.numpy() for a in (x, y, rw, t_hat, n_feat))
    if kind == "lr":
        f = (x @ p["W"])[..., 0] + p["b"][:, :, 0]
        G = np.broadcast_to(p["W"][:, None, :, 0], x.shape)
    else:
        z = x @ p["W1"] + p["b1"]
        f = (np.maximum(z, 0) @ p["W2"])[..., 0] + p["b2"][:, :, 0]
        G = ((z > 0) * p["W2"][:, None, :, 0]) @ np.swapaxes(p["W1"], 1, 2)  # sum_h W1[j,h] w2[h] m[h]
    bce = ((np.logaddexp(0.0, f) - y * f) * rw).sum(axis=1)  # log(1 + e^f) - y f
    c = np.ones_like(t_hat) if conf is None else conf.numpy()
    if attribution == "grad":
        g = (G * rw[..., None]).sum(axis=1)
        att = (c * (_unit(g) - _unit(t_hat)) ** 2).sum(axis=1) / n_feat
    else:
        per_row = (c[:, None, :] * (_unit(x * G) - _unit(t_hat[:, None, :] * x)) ** 2).sum(axis=2)
        att = (per_row * rw).sum(axis=1) / n_feat
    return np.stack([bce, att], axis=1)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
@pytest.mark.parametrize("attribution", ["grad", "input_x_grad"])
@pytest.mark.parametrize("with_conf", [False, True])
def test_loss_values_equal_a_numpy_rederivation(kind, attribution, with_conf):
    """Uneven row weights (two padded rows at 0), confidence weights and true widths that are
    not the padded width: each enters the recorded BCE and attribution loss."""
    x, y = data(R=3, n=9, d=5, seed=12)
    R, n, d = x.shape
    g = torch.Generator().manual_seed(13)
    rw = torch.rand(R, n, generator=g, dtype=F64)
    rw[:, -2:] = 0
    rw = rw / rw.sum(1, keepdim=True)
    t_hat = torch.nn.functional.normalize(torch.randn(R, d, generator=g, dtype=F64), dim=1)
    conf = torch.rand(R, d, generator=g, dtype=F64) + 0.5 if with_conf else None
    st = attribution_term(kind, attribution, t_hat, [0.0, 5.0, 100.0], conf)
    st.n_feat = torch.tensor([5.0, 4.0, 3.0], dtype=F64)  # widths under the padded 5
    params, _ = init_params(kind, [d] * R, [1, 2, 3], hidden=6, dtype=F64)
    prog = _program(kind, params, st, x, y, rw)
    got = loss_values(prog, st)
    ref = numpy_loss_values(kind, prog.std_params(), x, y, rw, t_hat, attribution, conf, st.n_feat)
    assert got.shape == (R, 2)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_loss_values_by_hand():
    """LR with w = (3, 4), b = 0, target (1, 0), d = 2, rows x = (1, 0) and (1, 1) with labels
    0, 1 and weights 1/4, 3/4. Logits 3 and 7: BCE = 1/4 log(1 + e^3) + 3/4 (log(1 + e^7) - 7).
    'grad': g/|g| = (0.6, 0.8), L = ((0.6 - 1)^2 + 0.8^2) / 2 = 0.4; with confidence (1, 0)
    0.16 / 2 = 0.08. 'input_x_grad': row 1 gives a = (3, 0) against ref (1, 0), 0; row 2
    a = (3, 4) against ref (1, 0), 0.8; L = (1/4 * 0 + 3/4 * 0.8) / 2 = 0.3."""
    x = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]], dtype=F64)
    y = torch.tensor([[0.0, 1.0]], dtype=F64)
    rw = torch.tensor([[0.25, 0.75]], dtype=F64)
    t_hat = torch.tensor([[1.0, 0.0]], dtype=F64)
    params = {"W": torch.tensor([[[3.0], [4.0]]], dtype=F64), "b": torch.zeros(1, 1, 1, dtype=F64)}
    bce = 0.25 * np.log1p(np.exp(3.0)) + 0.75 * (np.log1p(np.exp(7.0)) - 7.0)
    for attribution, conf, att in [
        ("grad", None, 0.4),
        ("grad", torch.tensor([[1.0, 0.0]], dtype=F64), 0.08),
        ("input_x_grad", None, 0.3),
    ]:
        st = attribution_term("lr", attribution, t_hat, [1.0], conf)
        got = loss_values(_program("lr", {k: v.clone() for k, v in params.items()}, st, x, y, rw), st)
        np.testing.assert_allclose(got.numpy(), [[bce, att]], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
@pytest.mark.parametrize("attribution", ["grad", "input_x_grad"])
def test_autograd_gradients_are_the_derivative_of_the_numpy_objective(kind, attribution):
    """The double back-prop reference against central differences of BCE + gamma * L_att
    re-derived in NumPy, with uneven row weights, confidence and true widths under the padded
    width (the case of ragged models trained with grad_impl='autograd')."""
    x, y = data(R=3, n=7, d=5, seed=21)
    R, n, d = x.shape
    g = torch.Generator().manual_seed(22)
    rw = torch.rand(R, n, generator=g, dtype=F64)
    rw[:, -1] = 0
    rw = rw / rw.sum(1, keepdim=True)
    t_hat = torch.nn.functional.normalize(torch.randn(R, d, generator=g, dtype=F64), dim=1)
    conf = torch.rand(R, d, generator=g, dtype=F64) + 0.5
    gamma = np.array([0.0, 5.0, 100.0])
    st = attribution_term(kind, attribution, t_hat, gamma.tolist(), conf)
    st.n_feat = torch.tensor([5.0, 4.0, 3.0], dtype=F64)
    st.scale = 2 * st.gamma / st.n_feat
    params, _ = init_params(kind, [d] * R, [4, 5, 6], hidden=4, dtype=F64)
    prog = _program(kind, params, st, x, y, rw)
    base = {k: v.clone() for k, v in prog.std_params().items()}
    if kind == "mlp":  # no ReLU within reach of the finite-difference step
        assert float((x @ base["W1"] + base["b1"]).abs().min()) > 1e-4

    def objective(p):
        lv = numpy_loss_values(kind, p, x, y, rw, t_hat, attribution, conf, st.n_feat)
        return float((lv[:, 0] + gamma * lv[:, 1]).sum())

    got = autograd_gradients(prog, st)
    assert set(got) == set(base)
    eps = 1e-5  # worst mismatch measured at < 1/10 of the tolerance
    for name, value in base.items():
        assert got[name].shape == value.shape
        for i in range(value.numel()):
            up = {k: v.clone() for k, v in base.items()}
            dn = {k: v.clone() for k, v in base.items()}
            up[name].reshape(-1)[i] += eps
            dn[name].reshape(-1)[i] -= eps
            fd = (objective(up) - objective(dn)) / (2 * eps)
            assert got[name].reshape(-1)[i].item() == pytest.approx(fd, rel=1e-6, abs=1e-8), (name, i)
