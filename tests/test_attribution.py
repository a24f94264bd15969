"""Attribution functions and the attribution-matching loss against closed forms (spec §2, §9)."""

import math

import numpy as np
import pytest
import torch

from laat.attribution import (
    attribution_loss,
    batch_mean_gradient,
    get_attribution,
    input_x_gradient,
    laat_loss,
    normalize,
    normalized_target,
    prior_target,
)

S_AVG = [7.4, 6.8, 3.2, -1.0]


def lr_forward(w: torch.Tensor, b: torch.Tensor):
    return lambda x: x @ w + b


def mlp_params(d: int, h: int = 6, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(d, h, generator=g, dtype=dtype, requires_grad=True),
        torch.randn(h, generator=g, dtype=dtype, requires_grad=True),
        torch.randn(h, generator=g, dtype=dtype, requires_grad=True),
        torch.randn((), generator=g, dtype=dtype, requires_grad=True),
    ]


def mlp_forward(W1, b1, w2, b2):
    return lambda x: torch.relu(x @ W1 + b1) @ w2 + b2


def test_transform_zero_and_normalised_anchors():
    assert prior_target([0.0, 3.0, -3.0]).tolist()[0] == 0.0
    t = normalized_target([10, 8, 5, 0, -3]).numpy()
    np.testing.assert_allclose(t, [0.9909, 0.1341, 0.0067, 0.0, -0.0009], atol=6e-5)
    np.testing.assert_allclose(normalized_target(S_AVG).numpy(), [0.8766, 0.4811, 0.0131, -0.0015], atol=6e-5)


@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_stable_target_equals_normalised_raw_target(tau):
    s = [9, -4, 0, 2.5, -10]
    np.testing.assert_allclose(normalized_target(s, tau).numpy(), normalize(prior_target(s, tau)).numpy(), rtol=1e-12)


def test_small_tau_does_not_overflow_and_keeps_the_top_feature():
    raw = prior_target([10, 9, -1], tau=0.01)
    assert not torch.isfinite(raw).all()  # the naive form overflows...
    t = normalized_target([10, 9, -1], tau=0.01)
    assert torch.isfinite(t).all()  # ...the stable one keeps only the top feature
    np.testing.assert_allclose(t.numpy(), [1.0, 0.0, -0.0], atol=1e-12)


def test_larger_tau_softens_the_target():
    sharp, soft = normalized_target(S_AVG, 1.0), normalized_target(S_AVG, 4.0)
    assert soft[2] > 10 * sharp[2]  # the third feature matters far more at tau = 4


def test_mask_zeroes_features_before_normalising():
    t = normalized_target([10, 8, 5], mask=[False, True, True])
    assert t[0] == 0.0 and math.isclose(float(t.norm()), 1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_tau_is_refused(bad):
    with pytest.raises(ValueError, match="tau"):
        normalized_target(S_AVG, bad)


def test_non_finite_scores_are_refused():
    with pytest.raises(ValueError, match="finite"):
        normalized_target([1.0, float("nan")])


def test_lr_loss_is_cosine_closed_form_independent_of_x_b_and_norm():
    torch.manual_seed(0)
    d = 6
    s = torch.randint(-10, 11, (d,)).double()
    t = prior_target(s)
    w = torch.randn(d, dtype=torch.float64)
    expected = (2 - 2 * torch.nn.functional.cosine_similarity(w, t, dim=0)) / d
    for scale, b, n in [(1.0, 0.0, 4), (7.0, -3.0, 11), (0.01, 2.0, 2)]:
        x = torch.rand(n, d, dtype=torch.float64) * 5
        g = batch_mean_gradient(lr_forward(w * scale, torch.tensor(b)), x)
        assert torch.allclose(attribution_loss(g, t), expected)


def test_lr_anchor_from_the_paper_spec():
    w = torch.ones(4, dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    x = torch.rand(5, 4, dtype=torch.float64)
    t = prior_target(S_AVG)
    g = batch_mean_gradient(lr_forward(w, b), x)
    cos = torch.nn.functional.cosine_similarity(g, t, dim=0)
    loss = attribution_loss(g, t)
    assert round(float(cos.detach()), 4) == 0.6847
    assert round(float(loss.detach()), 4) == 0.1577
    gw, gb = torch.autograd.grad(loss, [w, b], allow_unused=True)
    assert gb is None or float(gb.abs()) == 0.0  # the bias never enters the attribution
    assert float(gw.abs().sum()) > 0


def test_lr_loss_extremes():
    t = prior_target(S_AVG)
    assert float(attribution_loss(3 * t, t)) == pytest.approx(0.0, abs=1e-12)
    assert float(attribution_loss(-t, t)) == pytest.approx(4 / 4)


def test_mlp_loss_reaches_first_layer_weights():
    W1, b1, w2, b2 = mlp_params(4)
    x = torch.rand(8, 4, dtype=torch.float64)
    loss = attribution_loss(batch_mean_gradient(mlp_forward(W1, b1, w2, b2), x), prior_target(S_AVG))
    (gW1,) = torch.autograd.grad(loss, [W1])
    assert float(gW1.abs().max()) > 1e-6


@pytest.mark.parametrize("kind", ["grad", "input_x_grad"])
def test_regularizer_gradient_matches_finite_differences(kind):
    x = torch.rand(7, 4, dtype=torch.float64)
    t = prior_target(S_AVG)
    attr = get_attribution(kind)

    def reg(W1, b1, w2, b2):
        a = attr(mlp_forward(W1, b1, w2, b2), x)
        return attribution_loss(a, t, kind=kind, x=x)

    assert torch.autograd.gradcheck(reg, tuple(mlp_params(4, seed=3)), eps=1e-6, atol=1e-6)


def test_input_x_gradient_of_lr_is_x_times_w_and_zero_features_drop_out():
    w = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 2.0], [0.5, 1.0, 0.0]], dtype=torch.float64)
    a = input_x_gradient(lr_forward(w, torch.tensor(0.3)), x)
    np.testing.assert_allclose(a.detach().numpy(), (x * w / 2).numpy())  # 1/N from the batch mean
    assert a[0, 1] == 0 and a[1, 2] == 0


def test_input_x_gradient_loss_is_zero_when_w_matches_target():
    t = prior_target(S_AVG)
    x = torch.rand(5, 4, dtype=torch.float64)
    a = input_x_gradient(lr_forward(2 * t, torch.tensor(0.0)), x)
    assert float(attribution_loss(a, t, kind="input_x_grad", x=x).detach()) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="needs the inputs x"):
        attribution_loss(a, t, kind="input_x_grad")


def test_confidence_weights_select_features():
    t = prior_target([5.0, 5.0, 0.0])
    g = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    plain = attribution_loss(g, t)
    assert torch.allclose(attribution_loss(g, t, confidence=torch.ones(3, dtype=torch.float64)), plain)
    only_first = attribution_loss(g, t, confidence=torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    expected = (g[0] / g.norm() - t[0] / t.norm()) ** 2 / 3
    assert torch.allclose(only_first, expected)


def test_stacked_models_are_attributed_independently():
    torch.manual_seed(1)
    R, n, d = 3, 5, 4
    W = torch.randn(R, d, 1, dtype=torch.float64)
    x = torch.rand(R, n, d, dtype=torch.float64)
    g = batch_mean_gradient(lambda inp: torch.bmm(inp, W).squeeze(-1), x)
    assert torch.allclose(g, W.squeeze(-1))  # mean of a constant gradient is that constant
    # input x gradient of stacked models: x * w_r / n per model, as for one model (not 1 / (R n))
    a = input_x_gradient(lambda inp: torch.bmm(inp, W).squeeze(-1), x)
    torch.testing.assert_close(a, x * W.transpose(1, 2) / n, rtol=1e-12, atol=0)


def test_laat_loss_with_zero_gamma_is_bce():
    W1, b1, w2, b2 = mlp_params(4)
    x = torch.rand(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0], dtype=torch.float64)
    f = mlp_forward(W1, b1, w2, b2)
    total, bce, att = laat_loss(f, x, y, prior_target(S_AVG), 0.0)
    assert torch.allclose(total, torch.nn.functional.binary_cross_entropy_with_logits(f(x), y))
    assert float(att) == 0.0
    total100, _, att100 = laat_loss(f, x, y, prior_target(S_AVG), 100.0)
    assert torch.allclose(total100, bce + 100 * att100) and float(att100.detach()) > 0


def test_unknown_attribution_is_refused():
    with pytest.raises(ValueError, match="unknown attribution 'ig'"):
        get_attribution("ig")


# ---- shapes, widths, dtypes and messages (mutation testing: docs/mutation-testing.md) -----------


def test_normalized_target_of_a_batch_normalises_each_row_on_its_own():
    # a shared shift would underflow the second row to zero next to the first row's 800
    rows = [[800.0, 10.0, -5.0], [1.0, -2.0, 0.5]]
    batch = normalized_target(rows, tau=1.0)
    assert batch.shape == (2, 3)
    for r, row in enumerate(rows):
        torch.testing.assert_close(batch[r], normalized_target(row, tau=1.0), rtol=1e-12, atol=0)
    assert normalized_target([]).shape == (0,)  # no features: an empty target, not an error


def test_scores_are_read_as_float64_whatever_their_type():
    ref = normalized_target([3.0, -1.0, 0.0], tau=2.0)
    assert ref.dtype == torch.float64
    for scores in (
        [3, -1, 0],
        np.array([3, -1, 0]),
        torch.tensor([3.0, -1.0, 0.0], requires_grad=True),
        torch.tensor([3.0, -1.0, 0.0], dtype=torch.float32),
    ):
        t = normalized_target(scores, tau=2.0)
        assert t.dtype == torch.float64
        torch.testing.assert_close(t, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["grad", "input_x_grad"])
def test_n_features_sets_the_width_the_loss_is_divided_by(kind):
    torch.manual_seed(0)
    W1, b1, w2, b2 = mlp_params(4)
    f = mlp_forward(W1, b1, w2, b2)
    x = torch.rand(6, 4, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1, 0], dtype=torch.float64)
    t = prior_target(S_AVG)
    _, _, att4 = laat_loss(f, x, y, t, 1.0, attribution=kind)
    _, _, att10 = laat_loss(f, x, y, t, 1.0, attribution=kind, n_features=10)
    _, _, att_t = laat_loss(f, x, y, t, 1.0, attribution=kind, n_features=torch.tensor(10))
    torch.testing.assert_close(att10, att4 * 4 / 10, rtol=1e-12, atol=0)
    torch.testing.assert_close(att_t, att10, rtol=1e-12, atol=0)
    g = torch.tensor([1.0, -2.0, 0.0, 0.5], dtype=torch.float64)
    full = attribution_loss(g, t)
    torch.testing.assert_close(attribution_loss(g, t, n_features=8), full / 2, rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["grad", "input_x_grad"])
def test_a_float32_model_gets_float32_losses_from_float64_targets_and_weights(kind):
    torch.manual_seed(0)
    W1, b1, w2, b2 = (p.detach().float().requires_grad_(True) for p in mlp_params(4))
    f = mlp_forward(W1, b1, w2, b2)
    x = torch.rand(6, 4)
    y = torch.tensor([0, 1, 1, 0, 1, 0], dtype=torch.float64)
    t = prior_target(S_AVG)  # float64
    conf = torch.tensor([1.0, 0.5, 1.0, 0.0], dtype=torch.float64)
    rw = torch.full((6,), 1 / 6, dtype=torch.float64)
    total, bce, att = laat_loss(
        f, x, y, t, torch.tensor(3.0, dtype=torch.float64), attribution=kind, confidence=conf, row_weight=rw
    )
    assert (total.dtype, bce.dtype, att.dtype) == (torch.float32,) * 3
    assert float(att.detach()) > 0


def test_bad_attribution_requests_say_what_is_wrong():
    t = prior_target(S_AVG)
    g = torch.ones(4, dtype=torch.float64)
    x = torch.rand(3, 4, dtype=torch.float64)
    choices = r"choose one of \['grad', 'input_x_grad'\]$"
    with pytest.raises(ValueError, match=r"^attribution_loss\(kind='input_x_grad'\) needs the inputs x$"):
        attribution_loss(g, t, kind="input_x_grad")
    with pytest.raises(ValueError, match=r"^unknown attribution 'ig'; " + choices):
        attribution_loss(g, t, kind="ig")
    with pytest.raises(ValueError, match=r"^unknown attribution 'ig'; " + choices):
        laat_loss(lambda inp: inp.sum(-1), x, torch.zeros(3, dtype=torch.float64), t, 1.0, attribution="ig")
    with pytest.raises(ValueError, match=r"^prior scores must be finite numbers$"):
        normalized_target([1.0, float("inf")])
