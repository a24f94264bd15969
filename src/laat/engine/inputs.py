"""Turning array-likes into the engine's stacked tensors: copies, zero padding of ragged
inputs, per-model vectors and per-model Min-Max scaling."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def as_tensor(a, dtype) -> Tensor:
    """Tensor copy of array-likes (read-only numpy arrays included); tensors are cast only."""
    if torch.is_tensor(a):
        return a.detach().to(dtype)
    return torch.tensor(np.asarray(a), dtype=dtype)


def pad_stack(arrays, name: str, ndim: int, dtype=torch.float32) -> tuple[Tensor, list[int], list[int]]:
    """Stack a 3-D array or a list of 2-D arrays (ndim=2; or 1-D with ndim=1) with zero padding.

    Returns (tensor, rows per item, width per item). Widths are [] for ndim=1.
    """
    if torch.is_tensor(arrays) or isinstance(arrays, np.ndarray):
        t = as_tensor(arrays, dtype)
        if t.dim() != ndim + 1:
            raise ValueError(
                f"{name} must be {ndim + 1}-D (one {ndim}-D array per model) or a list, got shape {tuple(t.shape)}"
            )
        rows = [t.shape[1]] * t.shape[0]
        return t, rows, ([t.shape[2]] * t.shape[0] if ndim == 2 else [])
    items = [as_tensor(a, dtype) for a in arrays]
    if not items:
        raise ValueError(f"{name} is empty: need at least one model's data")
    for i, a in enumerate(items):
        if a.dim() != ndim:
            raise ValueError(f"{name}[{i}] must be {ndim}-D, got shape {tuple(a.shape)}")
    rows = [a.shape[0] for a in items]
    widths = [a.shape[1] for a in items] if ndim == 2 else []
    shape = (len(items), max(rows)) + ((max(widths),) if ndim == 2 else ())
    out = torch.zeros(shape, dtype=dtype)
    for i, a in enumerate(items):
        if ndim == 2:
            out[i, : a.shape[0], : a.shape[1]] = a
        else:
            out[i, : a.shape[0]] = a
    return out, rows, widths


def minmax_stack(train, *others) -> list[Tensor]:
    """Min-Max scale stacked data per model, fitted on that model's training rows only.

    ``train`` is (R, n, d); ``others`` are (R, m, d) arrays (e.g. test rows) scaled with the
    same per-model statistics. Same arithmetic as sklearn's MinMaxScaler (float64, constant
    columns only shifted), returned as float32 tensors.
    """
    tr = as_tensor(train, torch.float64)
    if tr.dim() != 3:
        raise ValueError(f"train must be (R, n, d), got shape {tuple(tr.shape)}")
    lo, hi = tr.amin(dim=1, keepdim=True), tr.amax(dim=1, keepdim=True)
    rng = hi - lo
    rng = torch.where(rng < 10 * torch.finfo(torch.float64).eps, torch.ones_like(rng), rng)
    scale = 1.0 / rng
    shift = -lo * scale
    return [(as_tensor(a, torch.float64) * scale + shift).to(torch.float32) for a in (tr, *others)]


def per_model_vector(value, name: str, R: int, widths: list[int], d_pad: int, dtype, fill=0.0) -> Tensor:
    """(d,) shared, (R, d) or a list of per-model vectors -> (R, d_pad)."""
    if isinstance(value, (list, tuple)) and value and not np.isscalar(value[0]):
        items = [as_tensor(v, dtype) for v in value]
        if len(items) != R:
            raise ValueError(f"{name} has {len(items)} vectors for {R} models")
    else:
        t = as_tensor(value, dtype)
        if t.dim() == 1:
            items = [t] * R
        elif t.dim() == 2 and t.shape[0] == R:
            items = list(t)
        else:
            raise ValueError(f"{name} must be (d,), ({R}, d) or a list of vectors, got shape {tuple(t.shape)}")
    out = torch.full((R, d_pad), fill, dtype=dtype)
    for r, (v, d) in enumerate(zip(items, widths)):
        if v.dim() != 1 or v.shape[0] < d or (v.shape[0] > d and bool((v[d:] != fill).any())):
            raise ValueError(f"{name} for model {r} has {tuple(v.shape)} entries, the model has {d} features")
        out[r, :d] = v[:d]
    return out
