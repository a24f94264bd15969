"""`fit_many`: validate the inputs, pad them into one batch, train it group by group."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from laat.attribution import EPS
from laat.engine.grouping import plan_groups
from laat.engine.init import init_params
from laat.engine.inputs import pad_stack, per_model_vector
from laat.engine.objective import AttributionTerm
from laat.engine.stacked import StackedModel
from laat.engine.train import train_group
from laat.hyperparams import DEFAULTS, AttributionKind, GradImpl, ModelKind, validate_params


@dataclass
class _Batch:
    """R models' data and attribution settings, validated and zero-padded to one shape."""

    x: Tensor  # (R, n_pad, d_pad), masked features zeroed
    y: Tensor  # (R, n_pad)
    sw: Tensor  # (R, n_pad) row weights, 0 on padded rows
    rows: list[int]  # true row count per model
    widths: list[int]  # true width per model
    gamma: Tensor  # (R,)
    seeds: list[int]
    mask: Tensor  # (R, d_pad) bool, False = padded or suppressed feature
    t_hat: Tensor  # (R, d_pad) unit-norm masked target (zeros without a target)
    confidence: Tensor | None  # (R, d_pad)


def fit_many(
    X,
    y,
    target=None,
    *,
    model: ModelKind = DEFAULTS.model,
    gamma: float | Sequence[float] = DEFAULTS.gamma,
    attribution: AttributionKind = DEFAULTS.attribution,
    hidden: int = DEFAULTS.hidden,
    lr: float = DEFAULTS.lr,
    epochs: int = DEFAULTS.epochs,
    batch_size: int | None = DEFAULTS.batch_size,
    weight_decay: float = DEFAULTS.weight_decay,
    seeds: int | Sequence[int] = 0,
    confidence=None,
    feature_mask=None,
    sample_weight=None,
    grad_impl: GradImpl = DEFAULTS.grad_impl,
    record_history: bool = False,
    dtype: torch.dtype = torch.float32,
    fused_adam: bool | None = None,
    bucket: bool = True,
) -> StackedModel:
    """Train R independent LAAT models in one batched program.

    Args:
        X: (R, n, d) array/tensor, or a list of R arrays (n_r, d_r) (zero-padded here).
            Already preprocessed (one-hot, Min-Max scaled on the training rows).
        y: (R, n) or a list of R vectors of 0/1 labels.
        target: the transformed prior t per feature (any positive scale; see
            `laat.attribution.normalized_target`): (d,) shared, (R, d) or a list.
            May be None only when every gamma is 0.
        gamma: attribution weight, one value or one per model (e.g. a gamma grid on the
            same data, trained as one batch).
        seeds: one seed per model, or an int s meaning s, s+1, ..., s+R-1.
        confidence: per-feature weights >= 0 of the attribution MSE, shaped like target.
        feature_mask: True = feature usable; False = removed (input zeroed, weights held at
            exactly 0, target 0), shaped like target.
        sample_weight: like y; weights of the BCE mean and of the batch-mean attribution.
        batch_size: full batch when a model has <= batch_size rows (the paper's 128 is
            full-batch in few-shot); otherwise shuffled mini-batches, models grouped by
            row count. None = always full batch.
        grad_impl: "analytic" (closed form, fast) or "autograd" (double back-prop).
        record_history: keep per-epoch mean BCE and attribution loss in ``.history``.
        fused_adam: None = PyTorch's fused CPU Adam kernel when available; False = the
            written-out update (same numbers to rounding).
        bucket: split ragged full-batch models into several programs when padding them all
            to one shape would cost more (a cost model decides); False = one program.

    Returns a `StackedModel` whose model r equals a fit of that model alone (same seed).
    """
    _check_settings(model, attribution, grad_impl, epochs, hidden, batch_size, lr, weight_decay)
    batch = _validate_and_pad(X, y, target, gamma, seeds, confidence, feature_mask, sample_weight, dtype)
    params, gens = init_params(model, batch.widths, batch.seeds, hidden, batch.x.shape[2], dtype)
    for k in ("W", "W1"):
        if k in params:
            params[k].mul_(batch.mask.unsqueeze(-1).to(dtype))
    hist = _train(
        batch,
        params,
        gens,
        model=model,
        attribution=attribution,
        hidden=hidden,
        bucket=bucket,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        weight_decay=weight_decay,
        grad_impl=grad_impl,
        record_history=record_history,
        fused_adam=fused_adam,
    )
    return StackedModel(
        kind=model,
        params=params,
        n_features=list(batch.widths),
        hidden=hidden if model == "mlp" else None,
        history=hist,
        seeds=batch.seeds,
    )


def _check_settings(model, attribution, grad_impl, epochs, hidden, batch_size, lr, weight_decay) -> None:
    """The knobs against `laat.hyperparams.LAATParams`, the one home of their ranges."""
    validate_params(
        dict(
            model=model,
            attribution=attribution,
            grad_impl=grad_impl,
            epochs=epochs,
            hidden=hidden,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
        ),
        "fit_many",
    )


def _validate_and_pad(X, y, target, gamma, seeds, confidence, feature_mask, sample_weight, dtype) -> _Batch:
    x, rows, widths = pad_stack(X, "X", 2, dtype)
    R, n_pad, d_pad = x.shape
    yt = _labels(y, R, rows, n_pad, dtype)
    sw = _row_weights(sample_weight, R, rows, n_pad, dtype)
    gam = torch.as_tensor(np.broadcast_to(np.asarray(gamma, dtype=np.float64), (R,)).copy(), dtype=dtype)
    if not bool(torch.isfinite(gam).all()) or bool((gam < 0).any()):
        raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")
    seed_list = list(range(int(seeds), int(seeds) + R)) if np.isscalar(seeds) else [int(s) for s in seeds]
    if len(seed_list) != R:
        raise ValueError(f"got {len(seed_list)} seeds for {R} models")
    mask = _usable_features(feature_mask, R, widths, d_pad)
    x = x * mask.unsqueeze(1).to(dtype)
    t_hat = _unit_target(target, bool((gam > 0).any()), mask, R, widths, d_pad, dtype)
    conf = None
    if confidence is not None:
        conf = per_model_vector(confidence, "confidence", R, widths, d_pad, dtype, fill=0.0)
        if not bool(torch.isfinite(conf).all()) or bool((conf < 0).any()):
            raise ValueError("confidence weights must be finite and >= 0")
    return _Batch(
        x=x, y=yt, sw=sw, rows=rows, widths=widths, gamma=gam, seeds=seed_list, mask=mask, t_hat=t_hat, confidence=conf
    )


def _labels(y, R: int, rows: list[int], n_pad: int, dtype) -> Tensor:
    yt, y_rows, _ = pad_stack(y, "y", 1, dtype)
    if yt.shape[0] != R or y_rows != rows:
        raise ValueError(f"y has row counts {y_rows}, X has {rows}")
    if not bool(((yt == 0) | (yt == 1)).all()):
        raise ValueError("y must contain only 0/1 labels")
    return torch.nn.functional.pad(yt, (0, n_pad - yt.shape[1]))


def _row_weights(sample_weight, R: int, rows: list[int], n_pad: int, dtype) -> Tensor:
    """(R, n_pad) weights: 1 on each model's rows without sample_weight, 0 on padded rows."""
    if sample_weight is None:
        sw = torch.zeros(R, n_pad, dtype=dtype)
        for r, n in enumerate(rows):
            sw[r, :n] = 1.0
        return sw
    sw, sw_rows, _ = pad_stack(sample_weight, "sample_weight", 1, dtype)
    if sw.shape[0] != R or sw_rows != rows:
        raise ValueError(f"sample_weight has row counts {sw_rows}, X has {rows}")
    if not bool(torch.isfinite(sw).all()) or bool((sw < 0).any()):
        raise ValueError("sample_weight must be finite and >= 0")
    sw = torch.nn.functional.pad(sw, (0, n_pad - sw.shape[1]))
    empty = [r for r in range(R) if float(sw[r].sum()) <= 0]
    if empty:
        raise ValueError(f"sample_weight sums to 0 for models {empty}")
    return sw


def _usable_features(feature_mask, R: int, widths: list[int], d_pad: int) -> Tensor:
    """(R, d_pad) bool: inside the model's width and not suppressed by feature_mask."""
    mask = torch.ones(R, d_pad, dtype=torch.bool)
    for r, d in enumerate(widths):
        mask[r, d:] = False
    if feature_mask is not None:
        fm = per_model_vector(feature_mask, "feature_mask", R, widths, d_pad, torch.float64, fill=0.0) != 0
        mask &= fm
    dead = [r for r in range(R) if not bool(mask[r].any())]
    if dead:
        raise ValueError(f"models {dead} have every feature masked: nothing left to fit")
    return mask


def _unit_target(target, active: bool, mask: Tensor, R: int, widths: list[int], d_pad: int, dtype) -> Tensor:
    """The masked target scaled to unit norm per model (zeros when there is no target)."""
    if target is None:
        if active:
            raise ValueError("target is None but gamma > 0: the attribution term needs a prior target")
        return torch.zeros(R, d_pad, dtype=dtype)
    t = per_model_vector(target, "target", R, widths, d_pad, torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("target must be finite (use attribution.normalized_target for small tau)")
    t = t * mask
    return (t / torch.linalg.vector_norm(t, dim=1, keepdim=True).clamp_min(EPS)).to(dtype)


def _train(
    batch: _Batch,
    params: dict[str, Tensor],
    gens,
    *,
    model,
    attribution,
    hidden,
    bucket,
    batch_size,
    epochs,
    record_history,
    **train_kwargs,
) -> Tensor | None:
    """Train every group that `plan_groups` forms, in place of ``params``; returns history."""
    dtype = batch.x.dtype
    active = bool((batch.gamma > 0).any())
    n_feat = torch.as_tensor(batch.widths, dtype=dtype)
    scale = 2.0 * batch.gamma / n_feat
    conf = batch.confidence
    hist = torch.zeros(epochs, len(batch.widths), 2, dtype=dtype) if record_history else None
    for idx, n_rows, d_cols in plan_groups(batch.rows, batch.widths, batch_size, model, hidden, bucket):
        sel = torch.as_tensor(idx)
        st = AttributionTerm(
            kind=model,
            attribution=attribution,
            t_hat=batch.t_hat[sel, :d_cols],
            gamma=batch.gamma[sel],
            n_feat=n_feat[sel],
            scale=scale[sel],
            confidence=None if conf is None else conf[sel, :d_cols],
            active=active,
        )
        sub = {k: (v[sel, :d_cols] if k in ("W", "W1") else v[sel]).clone() for k, v in params.items()}
        h = train_group(
            sub,
            [gens[i] for i in idx],
            batch.x[sel, :n_rows, :d_cols],
            batch.y[sel, :n_rows],
            batch.sw[sel, :n_rows],
            st,
            batch_size=batch_size,
            epochs=epochs,
            record_history=record_history,
            **train_kwargs,
        )
        for k, v in sub.items():
            if k in ("W", "W1"):
                params[k][sel, :d_cols] = v
            else:
                params[k][sel] = v
        if hist is not None:
            hist[:, sel] = h
    return hist
