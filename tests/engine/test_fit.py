"""fit_many: gamma = 0 vs an ordinary PyTorch loop, batched vs single fits, closed form vs autograd
training, the attribution term's effect on what is learned, and bad arguments."""

import re

import numpy as np
import pytest
import torch
from engine_cases import F64, data
from torch import nn

from laat.attribution import normalized_target
from laat.engine.fit import fit_many

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    fit = fit_many(x, y, t, model=kind, gamma=0.0, hidden=8, epochs=200, seeds=[4])
    net = plain_torch_fit(kind, x[0], y[0], 4, 200)
    with torch.no_grad():
        torch.testing.assert_close(fit.logits(x)[0], net(x[0]).squeeze(-1), rtol=1e-4, atol=1e-4)
    # without a target the result is the same: gamma = 0 ignores the prior entirely
    again = fit_many(x, y, None, model=kind, gamma=0.0, hidden=8, epochs=200, seeds=[4])
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
    many = fit_many(X, Y, T, seeds=seeds, **kw)
    for r, (n, d) in enumerate(shapes):
        one = fit_many([X[r]], [Y[r]], [T[r]], seeds=[seeds[r]], **{**kw, "gamma": kw["gamma"][r]})
        torch.testing.assert_close(many.select(r).logits(X[r])[0], one.logits(X[r])[0], rtol=1e-4, atol=1e-5)
        for k, v in one.params.items():
            torch.testing.assert_close(
                many.params[k][r][tuple(slice(0, s) for s in v[0].shape)], v[0], rtol=1e-4, atol=1e-5
            )


def test_mini_batches_batched_equals_single_and_groups_by_row_count():
    g = torch.Generator().manual_seed(4)
    rows = [40, 40, 25, 8]
    X = [torch.rand(n, 4, generator=g) for n in rows]
    Y = [(torch.rand(n, generator=g) > 0.5).float() for n in rows]
    t = normalized_target([5, -3, 0, 2])
    kw = dict(model="mlp", gamma=50.0, hidden=5, epochs=6, batch_size=16)
    many = fit_many(X, Y, t, seeds=[1, 2, 3, 4], **kw)
    for r in range(4):
        one = fit_many([X[r]], [Y[r]], t, seeds=[r + 1], **kw)
        torch.testing.assert_close(many.select(r).logits(X[r])[0], one.logits(X[r])[0], rtol=1e-4, atol=1e-5)
    full = fit_many([X[0]], [Y[0]], t, seeds=[1], **{**kw, "batch_size": None})
    assert not torch.allclose(full.logits(X[0]), many.select(0).logits(X[0]))  # shuffling happened


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_mini_batch_history_is_the_mean_over_one_pass_of_the_rows(kind):
    """With a step too small to move the parameters (lr 1e-12), an epoch of 4 shuffled
    mini-batches of 5 rows sees every row once, so its recorded mean BCE is the full batch's.
    So is LR's attribution loss (its input gradient w is the same on every batch)."""
    x, y = data(R=2, n=20, d=4, seed=35)
    t = normalized_target([3, -2, 1, 4])
    kw = dict(model=kind, gamma=30.0, hidden=5, lr=1e-12, epochs=2, seeds=[5, 6], record_history=True, dtype=F64)
    mini = fit_many(x, y, t, batch_size=5, **kw).history
    full = fit_many(x, y, t, batch_size=None, **kw).history
    columns = slice(None) if kind == "lr" else slice(0, 1)
    torch.testing.assert_close(mini[..., columns], full[..., columns], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
@pytest.mark.parametrize("attribution", ["grad", "input_x_grad"])
def test_autograd_and_closed_form_training_agree(kind, attribution):
    x, y = data(R=2, n=8, d=4, seed=6, dtype=torch.float32)
    t = normalized_target([4, -6, 1, 0])
    kw = dict(
        model=kind,
        attribution=attribution,
        gamma=100.0,
        hidden=6,
        epochs=40,
        seeds=[1, 2],
        confidence=[1.0, 0.5, 2.0, 1.0],
    )
    fast = fit_many(x, y, t, grad_impl="analytic", **kw)
    slow = fit_many(x, y, t, grad_impl="autograd", **kw)
    torch.testing.assert_close(fast.logits(x), slow.logits(x), rtol=1e-3, atol=1e-4)


def test_strong_prior_on_uninformative_data_sets_the_weight_direction():
    g = torch.Generator().manual_seed(7)
    R, n, d = 4, 40, 6
    x = torch.rand(R, n, d, generator=g)
    y = (torch.rand(R, n, generator=g) > 0.5).float()  # labels unrelated to x
    t = normalized_target([6, -5, 4, 0, 0, 3], tau=3.0)

    def cos(fit):
        return torch.nn.functional.cosine_similarity(fit.params["W"][..., 0], t.float().expand(R, d), dim=1)

    strong = fit_many(x, y, t, gamma=100.0, seeds=0)
    weak = fit_many(x, y, t, gamma=0.5, seeds=0)  # any gamma > 0 switches the term on
    plain = fit_many(x, y, t, gamma=0.0, seeds=0)
    assert bool((cos(strong) > 0.999).all()), cos(strong)
    assert bool((cos(weak) > 0.9).all()), cos(weak)
    assert bool((cos(plain) < 0.9).all()), cos(plain)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_suppressed_features_get_exactly_zero_weight_and_attribution(kind):
    x, y = data(R=2, n=12, d=5, seed=8, dtype=torch.float32)
    y = (x[..., 1] > 0.5).float()  # feature 1 is the perfect predictor...
    t = normalized_target([0, 9, 2, 1, -3])
    mask = [True, False, True, True, True]  # ...and it is suppressed
    fit = fit_many(x, y, t, model=kind, gamma=100.0, hidden=6, feature_mask=mask, seeds=0, weight_decay=0.01)
    W = fit.params["W" if kind == "lr" else "W1"]
    assert torch.count_nonzero(W[:, 1]) == 0
    assert torch.count_nonzero(fit.input_gradients(x)[..., 1]) == 0
    moved = x.clone()
    moved[..., 1] = 1 - moved[..., 1]
    assert torch.equal(fit.logits(moved), fit.logits(x))  # the feature has no influence at all


def test_history_records_the_attribution_loss_falling():
    x, y = data(R=2, n=10, d=4, seed=9, dtype=torch.float32)
    fit = fit_many(x, y, normalized_target([8, -2, 1, 0]), model="mlp", hidden=6, epochs=50, record_history=True)
    assert fit.history.shape == (50, 2, 2)
    assert bool((fit.history[-1, :, 1] < 0.2 * fit.history[0, :, 1]).all())


@pytest.mark.parametrize("kind", ["lr", "mlp"])
@pytest.mark.parametrize("attribution", ["grad", "input_x_grad"])
def test_integer_sample_weights_equal_repeating_rows(kind, attribution):
    """Weight k on a row is that row k times (every loss term is a row-weighted mean): ragged
    models, weights given as a list of vectors of different lengths, any positive scale."""
    g = torch.Generator().manual_seed(30)
    X = [torch.rand(5, 3, generator=g, dtype=F64), torch.rand(8, 4, generator=g, dtype=F64)]
    Y = [torch.tensor([0.0, 1, 1, 0, 1], dtype=F64), torch.tensor([1.0, 0, 0, 1, 1, 0, 1, 0], dtype=F64)]
    W = [np.array([3, 1, 0, 2, 1]), np.array([1, 2, 1, 1, 0, 3, 1, 2])]
    T = [normalized_target([4, -2, 1]), normalized_target([-1, 3, 5, 2])]
    kw = dict(model=kind, attribution=attribution, gamma=[20.0, 50.0], hidden=5, epochs=30, seeds=[7, 8], dtype=F64)
    weighted = fit_many(X, Y, T, sample_weight=[0.01 * w for w in W], **kw)
    for r in range(2):
        rep = torch.as_tensor(np.repeat(np.arange(len(W[r])), W[r]))
        one = fit_many([X[r][rep]], [Y[r][rep]], [T[r]], **{**kw, "gamma": kw["gamma"][r], "seeds": [7 + r]})
        for k, v in one.params.items():
            got = weighted.params[k][r][tuple(slice(0, s) for s in v[0].shape)]
            torch.testing.assert_close(got, v[0], rtol=1e-7, atol=1e-9)


def test_the_target_counts_only_by_its_direction_and_unmasked_features():
    """Any positive scale per model, shared (d,), (R, d) or a list; masked entries are dropped
    before normalising (the remaining ones keep their ratio)."""
    x, y = data(R=3, n=8, d=4, seed=31)
    t = torch.tensor([3.0, -1.0, 0.5, 2.0], dtype=F64)
    kw = dict(model="lr", gamma=[30.0, 60.0, 100.0], epochs=25, seeds=[1, 2, 3], dtype=F64)
    unit = fit_many(x, y, t / t.norm(), **kw)
    for target in ([7.0 * t, 0.02 * t, t], torch.stack([t, 3.0 * t, 0.5 * t]), 11.0 * t):
        again = fit_many(x, y, target, **kw)
        torch.testing.assert_close(again.params["W"], unit.params["W"], rtol=1e-9, atol=1e-12)
    mask = [True, True, False, True]
    t0 = torch.tensor([3.0, -1.0, 0.0, 2.0], dtype=F64)
    masked = fit_many(x, y, 5.0 * t, feature_mask=mask, **kw)
    zeroed = fit_many(x, y, t0 / t0.norm(), feature_mask=mask, **kw)
    torch.testing.assert_close(masked.params["W"], zeroed.params["W"], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_ragged_groups_and_their_history_equal_single_fits(kind):
    """Models split into several programs (two need mini-batches, each its own group narrower
    than the widest model; two full-batch models of different widths share one): parameters
    and the per-epoch history of each equal its fit alone, in float64."""
    g = torch.Generator().manual_seed(32)
    shapes = [(20, 3), (30, 6), (6, 2), (7, 5)]
    X = [torch.rand(n, d, generator=g, dtype=F64) for n, d in shapes]
    Y = [(torch.arange(n) % 2).to(F64) for n, _ in shapes]
    T = [normalized_target(torch.randint(-9, 10, (d,), generator=g)) for _, d in shapes]
    kw = dict(model=kind, gamma=40.0, hidden=4, epochs=8, batch_size=10, record_history=True, dtype=F64)
    many = fit_many(X, Y, T, seeds=[1, 2, 3, 4], **kw)
    assert many.history.dtype == F64 and many.history.shape == (8, 4, 2)
    for r, (n, d) in enumerate(shapes):
        one = fit_many([X[r]], [Y[r]], [T[r]], seeds=[r + 1], **kw)
        torch.testing.assert_close(many.history[:, r], one.history[:, 0], rtol=1e-9, atol=1e-12)
        for k, v in one.params.items():
            got = many.params[k][r][tuple(slice(0, s) for s in v[0].shape)]
            torch.testing.assert_close(got, v[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_float64_numpy_inputs_fit_like_float32_tensors(kind):
    """The pipeline passes float64 NumPy arrays (ragged lists, a shared feature mask longer
    than the narrower model): every input is cast to the fit's dtype first, so the fit equals
    one on the same values given as float32 tensors."""
    rng = np.random.default_rng(36)
    X = [rng.random((6, 4)), rng.random((5, 3))]
    Y = [np.array([0.0, 1, 0, 1, 1, 0]), np.array([1.0, 0, 1, 0, 1])]
    T = [np.array([3.0, -1.0, 2.0, 0.5]), np.array([1.0, 2.0, -2.0])]
    conf = [np.array([1.0, 0.3, 2.0, 1.0]), np.array([0.7, 1.0, 1.5])]
    sw = [rng.random(6) + 0.5, rng.random(5) + 0.5]
    mask = np.array([True, True, True, False])  # past model 1's 3 features: False, the padding
    kw = dict(model=kind, gamma=20.0, hidden=4, epochs=15, seeds=[2, 3], feature_mask=mask)
    fit = fit_many(X, Y, T, confidence=conf, sample_weight=sw, **kw)

    def f32(arrays):
        return [torch.as_tensor(a, dtype=torch.float32) for a in arrays]

    ref = fit_many(f32(X), f32(Y), f32(T), confidence=f32(conf), sample_weight=f32(sw), **kw)
    assert all(v.dtype == torch.float32 for v in fit.params.values())
    for k in fit.params:
        torch.testing.assert_close(fit.params[k], ref.params[k], rtol=1e-6, atol=1e-7)
    x3, y3 = rng.random((2, 6, 4)), np.stack([Y[0], Y[0][::-1]])  # stacked arrays, one shape
    kw3 = {**kw, "feature_mask": None}
    fit3 = fit_many(x3, y3, T[0], confidence=conf[0], sample_weight=np.stack([sw[0]] * 2), **kw3)
    ref3 = fit_many(*f32([x3, y3, T[0]]), confidence=f32(conf)[0], sample_weight=f32([sw[0]] * 2), **kw3)
    for k in fit3.params:
        torch.testing.assert_close(fit3.params[k], ref3.params[k], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_defaults_seeds_and_what_the_fit_keeps(kind):
    """seeds=0 and the closed-form gradients by default, an int seed s meaning s, s+1, ...,
    no history unless asked, the hidden width only for the MLP, float32 unless asked."""
    x, y = data(R=3, n=6, d=4, seed=33, dtype=torch.float32)
    t = normalized_target([2, -1, 0, 3])
    fit = fit_many(x, y, t, model=kind, hidden=5, epochs=20)
    explicit = fit_many(x, y, t, model=kind, hidden=5, epochs=20, seeds=0, grad_impl="analytic")
    assert all(torch.equal(fit.params[k], explicit.params[k]) for k in fit.params)
    assert fit.seeds == [0, 1, 2] and fit.history is None
    assert fit.hidden == (5 if kind == "mlp" else None)
    assert all(v.dtype == torch.float32 for v in fit.params.values())
    shifted = fit_many(x, y, t, model=kind, hidden=5, epochs=20, seeds=5)
    assert shifted.seeds == [5, 6, 7]
    alone = fit_many(x[2:], y[2:], t, model=kind, hidden=5, epochs=20, seeds=[7])
    # model 2 of the batch is the seed-7 fit: alone it runs in a batch of one, whose float32
    # sums may be ordered differently by the CPU's kernels, so close rather than bit-equal
    # (another seed's initialisation is nowhere near)
    for k in fit.params:
        torch.testing.assert_close(shifted.params[k][2:], alone.params[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["lr", "mlp"])
@pytest.mark.parametrize("attribution", ["grad", "input_x_grad"])
def test_a_constant_confidence_scales_gamma(kind, attribution):
    """The confidence weights multiply the attribution MSE: c = 2 everywhere is gamma doubled;
    a zero weight is allowed and changes the fit."""
    x, y = data(R=2, n=8, d=4, seed=34)
    t = normalized_target([5, -3, 1, 2])
    kw = dict(model=kind, attribution=attribution, hidden=5, epochs=25, seeds=[3, 4], dtype=F64)
    doubled = fit_many(x, y, t, gamma=50.0, **kw)
    weighted = fit_many(x, y, t, gamma=25.0, confidence=[2.0] * 4, **kw)
    for k in doubled.params:
        torch.testing.assert_close(weighted.params[k], doubled.params[k], rtol=1e-9, atol=1e-12)
    partial = fit_many(x, y, t, gamma=25.0, confidence=[2.0, 0.0, 2.0, 2.0], **kw)
    assert not torch.allclose(partial.logits(x), weighted.logits(x), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(model="svm"), "fit_many: invalid hyper-parameter model='svm'..."),
        (dict(attribution="ig"), "fit_many: invalid hyper-parameter attribution='ig'..."),
        (dict(gamma=-1.0), "gamma must be finite and >= 0, got -1.0"),
        (dict(gamma=float("nan")), "gamma must be finite and >= 0, got nan"),
        (dict(epochs=0), "fit_many: invalid hyper-parameter epochs=0..."),
        (dict(lr=0.0), "fit_many: invalid hyper-parameter lr=0.0..."),
        (dict(seeds=[1, 2]), "got 2 seeds for 3 models"),
        (dict(feature_mask=[False] * 4), "models [0, 1, 2] have every feature masked: nothing left to fit"),
        (dict(feature_mask=[[True] * 4, [False] * 4, [True] * 4]), "models [1] have every feature masked..."),
        (dict(target=[1.0, 2.0]), "target for model 0 has (2,) entries, the model has 4 features"),
        (dict(target=None), "target is None but gamma > 0: the attribution term needs a prior target"),
        (dict(target=[1.0, float("inf"), 2.0, 3.0]), "target must be finite (use attribution.normalized_target..."),
        (dict(confidence=[1.0, -0.5, 1.0, 1.0]), "confidence weights must be finite and >= 0"),
        (dict(confidence=[1.0, float("nan"), 1.0, 1.0]), "confidence weights must be finite and >= 0"),
        (dict(sample_weight=[[1.0] * 5 + [-1.0]] * 3), "sample_weight must be finite and >= 0"),
        (dict(sample_weight=[[1.0] * 5 + [float("inf")]] * 3), "sample_weight must be finite and >= 0"),
        (dict(sample_weight=np.ones((3, 5))), "sample_weight has row counts [5, 5, 5], X has [6, 6, 6]"),
        (dict(sample_weight=np.ones((2, 6))), "sample_weight has row counts [6, 6], X has [6, 6, 6]"),
        (dict(sample_weight=[[1.0] * 6, [1.0] * 6, [0.0] * 6]), "sample_weight sums to 0 for models [2]"),
        (dict(sample_weight=np.ones((3, 6, 1))), "sample_weight must be 2-D (one 1-D array per model) or a list..."),
        (dict(gamma=0.5, target=None), "target is None but gamma > 0: the attribution term needs a prior target"),
        (dict(hidden=0), "fit_many: invalid hyper-parameter hidden=0..."),
        (dict(batch_size=0), "fit_many: invalid hyper-parameter batch_size=0..."),
        (dict(weight_decay=-1.0), "fit_many: invalid hyper-parameter weight_decay=-1.0..."),
        (dict(grad_impl="exact"), "fit_many: invalid hyper-parameter grad_impl='exact'..."),
        (dict(X=np.zeros((6, 4))), "X must be 3-D (one 2-D array per model) or a list, got shape (6, 4)"),
        (dict(X=[np.zeros(4)] * 3), "X[0] must be 2-D, got shape (4,)"),
        (dict(y=np.zeros((3, 6, 1))), "y must be 2-D (one 1-D array per model) or a list, got shape (3, 6, 1)"),
        (dict(feature_mask=[True] * 3), "feature_mask for model 0 has (3,) entries, the model has 4 features"),
        (dict(confidence=[1.0] * 5), "confidence for model 0 has (5,) entries, the model has 4 features"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(kwargs, message):
    """The whole message, or its start where it ends in "..." (e.g. pydantic's wording)."""
    x, y = data(R=3, n=6, d=4, dtype=torch.float32)
    args = dict(X=x, y=y, target=normalized_target([1, 2, 3, 4]))
    args.update(kwargs)
    X, y, target = args.pop("X"), args.pop("y"), args.pop("target")
    pattern = re.escape(message[:-3]) if message.endswith("...") else re.escape(message) + "$"
    with pytest.raises(ValueError, match="^" + pattern):
        fit_many(X, y, target, **args)


def test_labels_must_be_binary_and_rows_must_match():
    x, y = data(R=3, n=6, d=3, dtype=torch.float32)
    for bad in (y * 2, y - 1, y * 0.5):  # 2s, -1s, 0.5s next to 0s and 1s
        with pytest.raises(ValueError, match="^y must contain only 0/1 labels$"):
            fit_many(x, bad, None, gamma=0.0)
    with pytest.raises(ValueError, match=re.escape("y has row counts [5, 5, 5], X has [6, 6, 6]")):
        fit_many(x, y[:, :5], None, gamma=0.0)
    with pytest.raises(ValueError, match=re.escape("y has row counts [6, 6], X has [6, 6, 6]")):
        fit_many(x, y[:2], None, gamma=0.0)
    with pytest.raises(ValueError, match=re.escape("y has row counts [6, 6, 5], X has [6, 6, 6]")):
        fit_many(x, [y[0], y[1], y[2, :5]], None, gamma=0.0)


@pytest.mark.parametrize("part", ["X", "confidence"])
def test_a_float64_fit_sees_changes_below_float32_resolution(part):
    """dtype=float64 means the inputs keep their float64 values: a change of 1e-10 (far below
    float32's ~6e-8 relative spacing near 1, far above float64's ~1e-16) must reach the fit. An
    input rounded through float32 first would make both fits bit-identical."""
    g = torch.Generator().manual_seed(41)
    # multiples of 1/64 (and 0.75 below): exact in float32, so rounding the nudged value to
    # float32 gives back the original exactly, not a neighbour
    X = torch.randint(1, 64, (2, 12, 4), generator=g).to(F64) / 64
    y = (torch.arange(12) % 2).to(F64).expand(2, 12)
    conf = torch.full((4,), 0.75, dtype=F64)
    nudged = {"X": X + 1e-10, "confidence": conf + 1e-10}[part]
    kw = dict(model="lr", gamma=10.0, epochs=20, seeds=[5, 6], dtype=F64)
    target = normalized_target(torch.tensor([2.0, -1.0, 3.0, 1.0]))
    base = fit_many(X, y, target, confidence=conf, **kw)
    moved = fit_many(**{"X": X, "confidence": conf, part: nudged}, y=y, target=target, **kw)
    assert base.params["W"].dtype == F64
    assert not torch.equal(base.params["W"], moved.params["W"])
    # still the same fit to well within float64 noise: the change is tiny, not a different path
    torch.testing.assert_close(base.params["W"], moved.params["W"], rtol=1e-6, atol=1e-8)
