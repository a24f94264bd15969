"""Per-model Min-Max scaling of stacked data."""

import re

import numpy as np
import pytest
import torch

from laat.engine.inputs import as_tensor, minmax_stack, pad_stack, per_model_vector


def test_minmax_stack_matches_sklearn_per_model():
    from sklearn.preprocessing import MinMaxScaler

    g = np.random.default_rng(0)
    train = g.normal(size=(3, 4, 5))
    train[:, :, 2] = 7.0  # constant on train: only shifted
    test = g.normal(size=(3, 6, 5))
    tr, te = minmax_stack(train, test)
    for r in range(3):
        sk = MinMaxScaler().fit(train[r])
        np.testing.assert_allclose(tr[r].numpy(), sk.transform(train[r]), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(te[r].numpy(), sk.transform(test[r]), rtol=1e-6, atol=1e-6)
    assert set(np.unique(tr[:, :, [0, 1, 3, 4]].numpy())) >= {0.0, 1.0}


def test_minmax_stack_returns_float32_and_refuses_other_shapes():
    tr, te = minmax_stack(np.arange(24.0).reshape(2, 3, 4), np.ones((2, 5, 4)))
    assert tr.dtype == te.dtype == torch.float32
    with pytest.raises(ValueError, match=re.escape("train must be (R, n, d), got shape (4, 5)")):
        minmax_stack(np.zeros((4, 5)))


def test_as_tensor_copies_detaches_and_casts():
    t = torch.tensor([1.0, 2.0], dtype=torch.float32, requires_grad=True)
    out = as_tensor(t, torch.float64)
    assert out.dtype == torch.float64 and not out.requires_grad
    ro = np.array([1, 2, 3])
    ro.flags.writeable = False
    copy = as_tensor(ro, torch.float64)
    assert copy.dtype == torch.float64 and copy.tolist() == [1.0, 2.0, 3.0]


def test_pad_stack_pads_ragged_lists_and_keeps_the_dtype():
    out, rows, widths = pad_stack([np.ones((2, 3)), np.full((4, 1), 2.0)], "X", 2, torch.float64)
    assert out.dtype == torch.float64 and rows == [2, 4] and widths == [3, 1]
    expected = torch.zeros(2, 4, 3, dtype=torch.float64)
    expected[0, :2, :3], expected[1, :4, :1] = 1.0, 2.0
    assert torch.equal(out, expected)
    arr, rows, widths = pad_stack(np.ones((2, 5, 3)), "X", 2, torch.float32)
    assert arr.dtype == torch.float32 and rows == [5, 5] and widths == [3, 3]
    vec, rows, widths = pad_stack([[1.0, 0.0], [1.0]], "y", 1, torch.float64)
    assert vec.tolist() == [[1.0, 0.0], [1.0, 0.0]] and rows == [2, 1] and widths == []
    with pytest.raises(
        ValueError, match=re.escape("X must be 3-D (one 2-D array per model) or a list, got shape (5, 3)")
    ):
        pad_stack(torch.ones(5, 3), "X", 2)
    with pytest.raises(ValueError, match=re.escape("X is empty: need at least one model's data")):
        pad_stack([], "X", 2)


def test_per_model_vector_shapes_and_padding():
    """Entries past a model's width must equal the fill (0): a shared vector may be longer."""
    shared = per_model_vector([1.0, 2.0, 0.0], "t", 2, [2, 3], 3, torch.float64)
    assert shared.dtype == torch.float64 and shared.tolist() == [[1.0, 2.0, 0.0], [1.0, 2.0, 0.0]]
    rows = per_model_vector(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 0.0]]), "t", 3, [2, 2, 1], 2, torch.float64)
    assert rows.tolist() == [[1.0, 2.0], [3.0, 4.0], [5.0, 0.0]]
    with pytest.raises(ValueError, match=re.escape("t for model 0 has (3,) entries, the model has 2 features")):
        per_model_vector([1.0, 2.0, 3.0], "t", 2, [2, 3], 3, torch.float64)
    with pytest.raises(ValueError, match=re.escape("t must be (d,), (3, d) or a list of vectors, got shape (2, 4)")):
        per_model_vector(np.ones((2, 4)), "t", 3, [4, 4, 4], 4, torch.float64)
    with pytest.raises(ValueError, match=re.escape("t has 2 vectors for 3 models")):
        per_model_vector([[1.0], [2.0]], "t", 3, [1, 1, 1], 1, torch.float64)
