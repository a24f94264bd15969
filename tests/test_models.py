"""Stacked LR/MLP training: closed-form gradients vs autograd, batched vs single fits,
gamma = 0 vs an ordinary PyTorch loop, and the attribution term's effect on what is learned."""

import numpy as np
import pytest
import torch
from torch import nn

from laat import models as M
from laat.attribution import laat_loss, normalized_target

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def data(R=3, n=9, d=5, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(R, n, d, generator=g, dtype=dtype)
    y = (torch.rand(R, n, generator=g) > 0.5).to(dtype)
    y[:, 0], y[:, 1] = 0, 1
    return x, y


def statics(kind, attribution, t_hat, gamma, confidence=None):
    R, d = t_hat.shape
    gam = torch.as_tensor(gamma, dtype=t_hat.dtype).expand(R).clone()
    n_feat = torch.full((R,), float(d), dtype=t_hat.dtype)
    return M._Statics(kind=kind, attribution=attribution, t_hat=t_hat, gamma=gam, n_feat=n_feat,
                      scale=2 * gam / n_feat, confidence=confidence, active=bool((gam > 0).any()))


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
    st = statics(kind, attribution, t_hat, [0.0, 5.0, 100.0], conf)
    params, _ = M.init_params(kind, [d] * R, [1, 2, 3], hidden=7, dtype=F64)
    prog = (M._LRProgram if kind == "lr" else M._MLPProgram)(params, st, n)
    prog.load(x, y, rw)
    prog.analytic_grads()
    ref = M._autograd_grads(prog, st)
    mine = dict(zip(ref, [g.reshape(ref[k].shape) for k, g in zip(ref, prog.grads)]))
    for k in ref:
        torch.testing.assert_close(mine[k], ref[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("n,d,hidden", [(9, 5, 7), (12, 8, 20), (1, 5, 7), (2, 6, 30), (2, 45, 7), (3, 50, 40),
                                        (12, 8, 40), (20, 6, 30), (9, 45, 50)])
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
    st = statics("mlp", "grad", t_hat, [0.0, 5.0, 100.0], conf)
    params, _ = M.init_params("mlp", [d] * R, [1, 2, 3], hidden=hidden, dtype=F64)
    prog = M._MLPProgram(params, st, n)
    prog.load(x, y, rw)
    assert prog.joint == (n * hidden < 400)
    assert prog.dz_free == (not prog.joint and d * (2 * n + hidden) < 2 * n * hidden)
    prog.analytic_grads()
    ref = M._autograd_grads(prog, st)
    for k, g in zip(ref, prog.grads):
        torch.testing.assert_close(g.reshape(ref[k].shape), ref[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_closed_form_gradient_matches_finite_differences(kind):
    """The gradient written in closed form is the derivative of the loss (no autograd involved)."""
    x, y = data(R=1, n=6, d=4, seed=5)
    t_hat = normalized_target([7.4, 6.8, 3.2, -1.0]).unsqueeze(0)
    st = statics(kind, "grad", t_hat, [100.0])
    params, _ = M.init_params(kind, [4], [11], hidden=5, dtype=F64)
    rw = torch.full((1, 6), 1 / 6, dtype=F64)
    prog = (M._LRProgram if kind == "lr" else M._MLPProgram)(params, st, 6)
    prog.load(x, y, rw)
    prog.analytic_grads()

    def loss(p):
        return laat_loss(lambda inp: M._forward(kind, p, inp), x, y, t_hat, 100.0)[0].sum().item()

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


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_init_is_pytorch_default_linear_init_per_seed(kind):
    params, _ = M.init_params(kind, [6, 6], [7, 8], hidden=10)
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


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_adam_equals_torch_optim_adam(fused, wd):
    if fused and M._FUSED_ADAM is None:
        pytest.skip("this torch build has no fused CPU Adam")
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(4, 3, generator=g), torch.randn(5, generator=g)]
    mine = [p.clone() for p in ps]
    grads = [torch.zeros_like(p) for p in ps]
    ref = [nn.Parameter(p.clone()) for p in ps]
    opt = torch.optim.Adam(ref, lr=1e-2, weight_decay=wd, foreach=False)
    adam = M._Adam(mine, grads, 1e-2, wd, fused=fused)
    for _ in range(25):
        step_grads = [torch.randn(p.shape, generator=g) for p in ps]
        for gr, sg, r in zip(grads, step_grads, ref):
            gr.copy_(sg)
            r.grad = sg.clone()
        adam.step()
        opt.step()
    for a, b in zip(mine, ref):
        torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6)


def plain_torch_fit(kind, x, y, seed, epochs, hidden=8):
    """An ordinary PyTorch training loop: the reference for gamma = 0."""
    torch.manual_seed(seed)
    d = x.shape[-1]
    net = nn.Linear(d, 1) if kind == "lr" else nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, foreach=False)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(net(x).squeeze(-1), y).backward()
        opt.step()
    return net


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_gamma_zero_equals_plain_pytorch_training(kind):
    x, y = data(R=1, n=12, d=5, seed=2, dtype=torch.float32)
    t = normalized_target([3, -2, 0, 1, 5])
    fit = M.fit_many(x, y, t, model=kind, gamma=0.0, hidden=8, epochs=200, seeds=[4])
    net = plain_torch_fit(kind, x[0], y[0], 4, 200)
    with torch.no_grad():
        torch.testing.assert_close(fit.logits(x)[0], net(x[0]).squeeze(-1), rtol=1e-4, atol=1e-4)
    # without a target the result is the same: gamma = 0 ignores the prior entirely
    again = M.fit_many(x, y, None, model=kind, gamma=0.0, hidden=8, epochs=200, seeds=[4])
    assert all(torch.equal(again.params[k], fit.params[k]) for k in fit.params)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_batched_fit_equals_single_fits_with_ragged_rows_and_widths(kind):
    g = torch.Generator().manual_seed(3)
    shapes = [(4, 3), (10, 6), (7, 6), (2, 5)]
    X = [torch.rand(n, d, generator=g) for n, d in shapes]
    Y = [torch.tensor([0.0, 1.0] * (n // 2) + [0.0] * (n % 2)) for n, _ in shapes]
    T = [normalized_target(torch.randint(-10, 11, (d,), generator=g)) for _, d in shapes]
    seeds = [11, 12, 13, 14]
    kw = dict(model=kind, gamma=[100.0, 30.0, 0.0, 100.0], hidden=6, epochs=60)
    many = M.fit_many(X, Y, T, seeds=seeds, **kw)
    for r, (n, d) in enumerate(shapes):
        one = M.fit_many([X[r]], [Y[r]], [T[r]], seeds=[seeds[r]], **{**kw, "gamma": kw["gamma"][r]})
        torch.testing.assert_close(many.select(r).logits(X[r])[0], one.logits(X[r])[0], rtol=1e-4, atol=1e-5)
        for k, v in one.params.items():
            torch.testing.assert_close(many.params[k][r][tuple(slice(0, s) for s in v[0].shape)], v[0],
                                       rtol=1e-4, atol=1e-5)


def test_mini_batches_batched_equals_single_and_groups_by_row_count():
    g = torch.Generator().manual_seed(4)
    rows = [40, 40, 25, 8]
    X = [torch.rand(n, 4, generator=g) for n in rows]
    Y = [(torch.rand(n, generator=g) > 0.5).float() for n in rows]
    t = normalized_target([5, -3, 0, 2])
    kw = dict(model="mlp", gamma=50.0, hidden=5, epochs=6, batch_size=16)
    many = M.fit_many(X, Y, t, seeds=[1, 2, 3, 4], **kw)
    for r in range(4):
        one = M.fit_many([X[r]], [Y[r]], t, seeds=[r + 1], **kw)
        torch.testing.assert_close(many.select(r).logits(X[r])[0], one.logits(X[r])[0], rtol=1e-4, atol=1e-5)
    full = M.fit_many([X[0]], [Y[0]], t, seeds=[1], **{**kw, "batch_size": None})
    assert not torch.allclose(full.logits(X[0]), many.select(0).logits(X[0]))  # shuffling happened


@pytest.mark.parametrize("kind", ["lr", "mlp"])
@pytest.mark.parametrize("attribution", ["grad", "input_x_grad"])
def test_autograd_and_closed_form_training_agree(kind, attribution):
    x, y = data(R=2, n=8, d=4, seed=6, dtype=torch.float32)
    t = normalized_target([4, -6, 1, 0])
    kw = dict(model=kind, attribution=attribution, gamma=100.0, hidden=6, epochs=40, seeds=[1, 2],
              confidence=[1.0, 0.5, 2.0, 1.0])
    fast = M.fit_many(x, y, t, grad_impl="analytic", **kw)
    slow = M.fit_many(x, y, t, grad_impl="autograd", **kw)
    torch.testing.assert_close(fast.logits(x), slow.logits(x), rtol=1e-3, atol=1e-4)


def test_strong_prior_on_uninformative_data_sets_the_weight_direction():
    g = torch.Generator().manual_seed(7)
    R, n, d = 4, 40, 6
    x = torch.rand(R, n, d, generator=g)
    y = (torch.rand(R, n, generator=g) > 0.5).float()  # labels unrelated to x
    t = normalized_target([6, -5, 4, 0, 0, 3], tau=3.0)
    cos = lambda fit: torch.nn.functional.cosine_similarity(fit.params["W"][..., 0], t.float().expand(R, d), dim=1)
    strong = M.fit_many(x, y, t, gamma=100.0, seeds=0)
    plain = M.fit_many(x, y, t, gamma=0.0, seeds=0)
    assert bool((cos(strong) > 0.999).all()), cos(strong)
    assert bool((cos(plain) < 0.9).all()), cos(plain)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_suppressed_features_get_exactly_zero_weight_and_attribution(kind):
    x, y = data(R=2, n=12, d=5, seed=8, dtype=torch.float32)
    y = (x[..., 1] > 0.5).float()  # feature 1 is the perfect predictor...
    t = normalized_target([0, 9, 2, 1, -3])
    mask = [True, False, True, True, True]  # ...and it is suppressed
    fit = M.fit_many(x, y, t, model=kind, gamma=100.0, hidden=6, feature_mask=mask, seeds=0,
                     weight_decay=0.01)
    W = fit.params["W" if kind == "lr" else "W1"]
    assert torch.count_nonzero(W[:, 1]) == 0
    assert torch.count_nonzero(fit.input_gradients(x)[..., 1]) == 0
    moved = x.clone()
    moved[..., 1] = 1 - moved[..., 1]
    assert torch.equal(fit.logits(moved), fit.logits(x))  # the feature has no influence at all


def test_history_records_the_attribution_loss_falling():
    x, y = data(R=2, n=10, d=4, seed=9, dtype=torch.float32)
    fit = M.fit_many(x, y, normalized_target([8, -2, 1, 0]), model="mlp", hidden=6, epochs=50, record_history=True)
    assert fit.history.shape == (50, 2, 2)
    assert bool((fit.history[-1, :, 1] < 0.2 * fit.history[0, :, 1]).all())


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_to_module_and_select_reproduce_the_stacked_logits(kind):
    x, y = data(R=3, n=6, d=4, seed=10, dtype=torch.float32)
    fit = M.fit_many(x, y, normalized_target([1, 2, 3, 4]), model=kind, hidden=5, epochs=5)
    with torch.no_grad():
        torch.testing.assert_close(fit.to_module(2)(x[2]).squeeze(-1), fit.logits(x)[2])
    torch.testing.assert_close(fit.select([2]).logits(x[2:])[0], fit.logits(x)[2])


@pytest.mark.parametrize("kwargs,match", [
    (dict(model="svm"), "model must be one of"),
    (dict(attribution="ig"), "attribution must be one of"),
    (dict(gamma=-1.0), "gamma must be finite and >= 0"),
    (dict(epochs=0), "epochs must be a positive integer"),
    (dict(lr=0.0), "lr must be a finite number > 0"),
    (dict(seeds=[1, 2]), "got 2 seeds for 3 models"),
    (dict(feature_mask=[False] * 4), r"models \[0, 1, 2\] have every feature masked"),
    (dict(target=[1.0, 2.0]), "target for model 0 has"),
    (dict(target=None), "target is None but gamma > 0"),
])
def test_bad_arguments_fail_with_a_clear_message(kwargs, match):
    x, y = data(R=3, n=6, d=4, dtype=torch.float32)
    args = dict(target=normalized_target([1, 2, 3, 4]))
    args.update(kwargs)
    target = args.pop("target")
    with pytest.raises(ValueError, match=match):
        M.fit_many(x, y, target, **args)


def test_labels_must_be_binary_and_rows_must_match():
    x, y = data(R=2, n=6, d=3, dtype=torch.float32)
    with pytest.raises(ValueError, match="only 0/1"):
        M.fit_many(x, y * 2, None, gamma=0.0)
    with pytest.raises(ValueError, match="row counts"):
        M.fit_many(x, y[:, :5], None, gamma=0.0)
    with pytest.raises(ValueError, match="sample_weight sums to 0 for models"):
        M.fit_many(x, y, None, gamma=0.0, sample_weight=np.zeros((2, 6)))


def test_bucketing_splits_costly_padding_and_keeps_results():
    # 20 wide models and 20 narrow ones: padding the narrow to 144 columns is not worth it,
    # while the three row counts of one width are merged.
    rows = [2] * 20 + [20] * 20 + [2] * 20 + [10] * 20
    widths = [144] * 40 + [8] * 40
    groups = M._groups(rows, widths, 128, "mlp", 100, bucket=True)
    assert len(groups) >= 2
    assert all(max(widths[i] for i in idx) == d for idx, _, d in groups)
    assert sorted(i for idx, _, _ in groups for i in idx) == list(range(80))
    assert M._groups(rows, widths, 128, "mlp", 100, bucket=False) == [(list(range(80)), 20, 144)]

    g = torch.Generator().manual_seed(5)
    X = [torch.rand(n, d, generator=g) for n, d in [(2, 30), (6, 30), (4, 3), (6, 3)]]
    Y = [torch.tensor([0.0, 1.0] * (x.shape[0] // 2)) for x in X]
    T = [normalized_target(torch.randint(-10, 11, (x.shape[1],), generator=g)) for x in X]
    a = M.fit_many(X, Y, T, model="mlp", hidden=6, epochs=30, bucket=True)
    b = M.fit_many(X, Y, T, model="mlp", hidden=6, epochs=30, bucket=False)
    for r, x in enumerate(X):
        torch.testing.assert_close(a.select(r).logits(x), b.select(r).logits(x), rtol=1e-4, atol=1e-5)


def test_minmax_stack_matches_sklearn_per_model():
    from sklearn.preprocessing import MinMaxScaler

    g = np.random.default_rng(0)
    train = g.normal(size=(3, 4, 5))
    train[:, :, 2] = 7.0  # constant on train: only shifted
    test = g.normal(size=(3, 6, 5))
    tr, te = M.minmax_stack(train, test)
    for r in range(3):
        sk = MinMaxScaler().fit(train[r])
        np.testing.assert_allclose(tr[r].numpy(), sk.transform(train[r]), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(te[r].numpy(), sk.transform(test[r]), rtol=1e-6, atol=1e-6)
    assert set(np.unique(tr[:, :, [0, 1, 3, 4]].numpy())) >= {0.0, 1.0}


def test_dead_mlp_gets_finite_gradients():
    """All ReLUs off: the attribution is the zero vector, and its gradient must stay finite (0)."""
    x, y = data(R=2, n=5, d=3, dtype=torch.float32)
    st = statics("mlp", "grad", normalized_target([4, -2, 1]).float().expand(2, 3).clone(), [100.0])
    params, _ = M.init_params("mlp", [3, 3], [0, 1], hidden=4)
    params["b1"].fill_(-100.0)
    prog = M._MLPProgram(params, st, 5)
    prog.load(x, y, torch.full((2, 5), 0.2))
    prog.analytic_grads()
    assert all(bool(torch.isfinite(g).all()) for g in prog.grads)
    assert float(prog.gW1.abs().sum()) == 0.0
