"""k-output training: closed-form gradients of the new losses, the attribution, stacking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from laat.attribution import batch_mean_gradient, normalize, normalized_target
from laat.multioutput import (
    attribution_loss,
    fit_multi,
    forward,
    init_params,
    mean_input_gradient,
    task_loss,
)


def _data(R=2, n=9, d=4, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(R, n, d, generator=g, dtype=torch.float64)
    w = torch.rand(R, n, generator=g, dtype=torch.float64)
    return x, w / w.sum(-1, keepdim=True)


def _params64(kind, d, k, R=2, hidden=5):
    p = init_params(kind, d, k, seeds=list(range(R)), hidden=hidden)
    return {n: v.double().requires_grad_(True) for n, v in p.items()}


def _norm_grad(g: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """d ||g/|g| - t||^2 / dg = 2/|g| (I - n n^T)(n - t), n = g/|g| (hand derivation)."""
    nrm = g.norm(dim=-1, keepdim=True)
    n = g / nrm
    r = n - t
    return 2.0 / nrm * (r - n * (n * r).sum(-1, keepdim=True))


def test_softmax_ce_plus_per_class_penalty_has_the_hand_derived_gradient_for_lr():
    x, w = _data()
    R, _, d = x.shape
    k = 3
    p = _params64("lr", d, k)
    y = torch.tensor([[0, 1, 2, 0, 1, 2, 0, 1, 2], [2, 2, 1, 0, 0, 1, 2, 1, 0]])
    t = normalize(torch.randn(R, k, d, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    mask = torch.ones(R, d, dtype=torch.float64)
    gamma = 7.0
    z = forward("lr", p, x)
    G = mean_input_gradient("lr", p, x, w)
    loss = task_loss(z, y.double(), w, "multiclass", "squared", 1.0) + gamma * attribution_loss(
        G, t, "multiclass", "per_class", mask
    )
    gW, gb = torch.autograd.grad(loss.sum(), [p["W"], p["b"]])
    with torch.no_grad():
        P = torch.softmax(z, -1) - torch.nn.functional.one_hot(y, k).double()
        W = p["W"]
        Wc = W - W.mean(-1, keepdim=True)  # the LR's batch-mean gradient is W (weights sum to 1)
        dGc = _norm_grad(Wc.transpose(1, 2), t).transpose(1, 2) / (d * k)
        hand_W = x.transpose(1, 2) @ (w[..., None] * P) + gamma * (dGc - dGc.mean(-1, keepdim=True))
        hand_b = (w[..., None] * P).sum(1, keepdim=True)
    torch.testing.assert_close(gW, hand_W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gb, hand_b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss, delta", [("squared", 1.0), ("huber", 0.3)])
def test_squared_and_huber_plus_penalty_have_the_hand_derived_gradient_for_lr(loss, delta):
    x, w = _data(k=1)
    R, n, d = x.shape
    p = _params64("lr", d, 1)
    y = torch.randn(R, n, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    t = normalize(torch.tensor([[3.0, -1.0, 0.0, 2.0]] * R, dtype=torch.float64))
    mask = torch.ones(R, d, dtype=torch.float64)
    gamma = 11.0
    z = forward("lr", p, x)
    loss_v = task_loss(z, y, w, "regression", loss, delta) + gamma * attribution_loss(
        mean_input_gradient("lr", p, x, w), t, "regression", "per_class", mask
    )
    gW, gb = torch.autograd.grad(loss_v.sum(), [p["W"], p["b"]])
    with torch.no_grad():
        r = z[..., 0] - y
        dr = 2 * r if loss == "squared" else 2 * r.clamp(-delta, delta)
        hand_W = x.transpose(1, 2) @ (w * dr)[..., None] + gamma * _norm_grad(p["W"][..., 0], t)[..., None] / d
        hand_b = (w * dr).sum(1)[:, None, None]
    assert loss == "squared" or bool(((r.abs() > delta).any()) and (r.abs() < delta).any())  # both branches
    torch.testing.assert_close(gW, hand_W, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gb, hand_b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_closed_form_attribution_equals_double_backprop_with_its_parameter_gradient(kind):
    x, w = _data()
    k = 3
    p = _params64(kind, x.shape[-1], k)
    G = mean_input_gradient(kind, p, x, w)
    ref = torch.stack([batch_mean_gradient(lambda v, c=c: forward(kind, p, v)[..., c], x, w) for c in range(k)], -1)
    torch.testing.assert_close(G, ref, rtol=1e-12, atol=1e-14)
    first = "W" if kind == "lr" else "W1"
    (a,) = torch.autograd.grad((G**2).sum(), p[first], retain_graph=True)
    (b,) = torch.autograd.grad((ref**2).sum(), p[first])
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_per_class_loss_is_zero_when_aligned_and_the_shared_loss_ignores_signs():
    d = 4
    t = normalize(torch.tensor([[3.0, -1.0, 0.0, 2.0], [-1.0, 2.0, 1.0, 0.0], [-2.0, -1.0, -1.0, -2.0]]))
    Gc = (t - t.mean(0)).T[None]  # centred already: per-class target of centred attributions
    tc = normalize(t - t.mean(0))[None]
    mask = torch.ones(1, d)
    assert float(attribution_loss(Gc, tc, "multiclass", "per_class", mask)[0]) < 1e-12
    assert float(attribution_loss(-Gc, tc, "multiclass", "per_class", mask)[0]) == pytest.approx(4 / d)
    m = torch.linalg.vector_norm(Gc[0], dim=-1)
    shared = normalize(m)[None] * torch.tensor([[1.0, -1.0, 1.0, -1.0]])  # any signs
    assert float(attribution_loss(Gc, shared, "multiclass", "shared", mask)[0]) < 1e-12


@pytest.mark.parametrize("task, k", [("multiclass", 3), ("regression", 1)])
def test_a_stacked_fit_equals_single_fits(task, k):
    rng = np.random.default_rng(0)
    X = rng.random((3, 12, 5)).astype(np.float32)
    y = rng.integers(0, 3, (3, 12)) if task == "multiclass" else rng.standard_normal((3, 12))
    scores = rng.integers(-10, 11, (3, k, 5) if task == "multiclass" else (3, 5)).astype(float)
    T = np.stack([normalized_target(s, 2.0).numpy() for s in scores])
    kw = {"task": task, "n_outputs": k, "model": "mlp", "hidden": 8, "epochs": 30, "gamma": [0.0, 50.0, 100.0]}
    both = fit_multi(X, y, T, seeds=[4, 5, 6], **kw)
    for r in range(3):
        one = fit_multi(X[r : r + 1], y[r : r + 1], T[r : r + 1], seeds=[4 + r], **dict(kw, gamma=kw["gamma"][r]))
        for name, v in one.params.items():
            assert torch.equal(both.params[name][r], v[0]), name


def test_a_masked_feature_keeps_exactly_zero_weights_and_attribution():
    rng = np.random.default_rng(1)
    X = rng.random((1, 20, 4)).astype(np.float32)
    y = rng.integers(0, 3, (1, 20))
    T = normalized_target(rng.integers(-10, 11, (3, 4)).astype(float), 1.0, [True, False, True, True]).numpy()[None]
    m = fit_multi(
        X,
        y,
        T,
        task="multiclass",
        n_outputs=3,
        model="mlp",
        hidden=6,
        epochs=20,
        feature_mask=[[True, False, True, True]],
    )
    assert bool((m.params["W1"][0, 1] == 0).all())
    assert bool((m.attribution(X[0])[0, 1] == 0).all())
