"""Logistic regression and a one-hidden-layer MLP, trained as R stacked copies at once.

LAAT's few-shot protocol fits thousands of tiny models (2-20 rows, <= 144 features). At
that size every PyTorch op costs far more in dispatch than in arithmetic, so the cost is
the number of ops per step, not FLOPs. Hence:

- R independent models live in stacked tensors (``W`` is ``(R, d, out)``) and train in
  one loop with ``bmm``; Adam is element-wise, so one Adam over the stack equals R Adams.
- The default ``grad_impl="analytic"`` writes the gradients of BCE + gamma * L_att in
  closed form (for LR the input gradient *is* w; for the ReLU MLP it is
  ``W1 (w2 * mean relu-mask)``, the mask having zero derivative, exactly as autograd
  treats it). ``grad_impl="autograd"`` computes the same loss with `laat.attribution`
  (double back-prop); the tests check both give the same gradients and fits.
- Ragged inputs (different row counts or widths) are zero-padded: padded rows get weight
  0 and padded features are masked, which is also how feature suppression works: a
  masked feature's input column is zeroed and its first-layer weights start and stay at
  exactly 0, so its attribution is exactly 0 for LR and MLP alike.

A single fit is the R = 1 case of the same code (`laat.estimator.LAATClassifier`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from laat.attribution import EPS, attribution_loss, laat_loss

ModelKind = Literal["lr", "mlp"]
GradImpl = Literal["analytic", "autograd"]
MODELS = ("lr", "mlp")
ATTRIBUTION_KINDS = ("grad", "input_x_grad")
GRAD_IMPLS = ("analytic", "autograd")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


# ---- the fitted object ---------------------------------------------------------------------


@dataclass
class StackedModel:
    """R trained models of one kind; parameters stacked on axis 0.

    ``n_features[r]`` is model r's true width (inputs may be padded to ``d_pad``).
    ``history`` (epochs, R, 2) holds the per-epoch mean BCE and attribution loss when
    training recorded it.
    """

    kind: str
    params: dict[str, Tensor]
    n_features: list[int]
    hidden: int | None = None
    history: Tensor | None = None
    seeds: list[int] = field(default_factory=list)

    @property
    def n_models(self) -> int:
        return next(iter(self.params.values())).shape[0]

    @property
    def d_pad(self) -> int:
        return self.params["W" if self.kind == "lr" else "W1"].shape[1]

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.params.values())).dtype

    def _inputs(self, X) -> Tensor:
        x = _tensor(X, self.dtype)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_models, -1, -1)
        if x.dim() != 3 or x.shape[0] != self.n_models:
            raise ValueError(f"expected inputs (n, d) or ({self.n_models}, n, d), got {tuple(x.shape)}")
        if x.shape[-1] > self.d_pad:
            raise ValueError(f"inputs have {x.shape[-1]} features, models were fitted on {self.d_pad}")
        if x.shape[-1] < self.d_pad:
            x = torch.nn.functional.pad(x, (0, self.d_pad - x.shape[-1]))
        return x

    def logits(self, X) -> Tensor:
        """Logits (R, n) for inputs (n, d) shared by all models, or (R, n, d)."""
        return _forward(self.kind, self.params, self._inputs(X))

    def predict_proba(self, X) -> Tensor:
        """P(class 1), shape (R, n)."""
        return torch.sigmoid(self.logits(X))

    def input_gradients(self, X) -> Tensor:
        """Per-row input gradient of the logit, (R, n, d_pad), in closed form."""
        return _input_gradients(self.kind, self.params, self._inputs(X))

    def mean_input_gradient(self, X, row_weight: Tensor | None = None) -> Tensor:
        """Batch-mean input gradient (R, d_pad): the global attribution LAAT aligns."""
        x = self._inputs(X)
        w = _uniform_rows(x) if row_weight is None else _tensor(row_weight, x.dtype)
        return (_input_gradients(self.kind, self.params, x) * w.unsqueeze(-1)).sum(dim=1)

    def select(self, index: int | Sequence[int]) -> StackedModel:
        idx = [index] if isinstance(index, int) else list(index)
        return StackedModel(
            kind=self.kind,
            params={k: v[idx].clone() for k, v in self.params.items()},
            n_features=[self.n_features[i] for i in idx],
            hidden=self.hidden,
            history=None if self.history is None else self.history[:, idx].clone(),
            seeds=[self.seeds[i] for i in idx] if self.seeds else [],
        )

    def to_module(self, r: int = 0) -> nn.Module:
        """Model r as an ordinary ``nn.Linear`` / ``nn.Sequential`` (e.g. for export)."""
        d = self.n_features[r]
        p = {k: v[r].detach() for k, v in self.params.items()}
        with torch.no_grad():
            if self.kind == "lr":
                m = nn.Linear(d, 1).to(self.dtype)
                m.weight.copy_(p["W"][:d, :].T)
                m.bias.copy_(p["b"][0])
                return m
            lin1, lin2 = nn.Linear(d, self.hidden).to(self.dtype), nn.Linear(self.hidden, 1).to(self.dtype)
            lin1.weight.copy_(p["W1"][:d, :].T)
            lin1.bias.copy_(p["b1"][0])
            lin2.weight.copy_(p["W2"].T)
            lin2.bias.copy_(p["b2"][0])
            return nn.Sequential(lin1, nn.ReLU(), lin2)


# ---- forward and closed-form input gradients ---------------------------------------------


def _forward(kind: str, p: dict[str, Tensor], x: Tensor) -> Tensor:
    if kind == "lr":
        return torch.baddbmm(p["b"], x, p["W"]).squeeze(-1)
    h = torch.relu(torch.baddbmm(p["b1"], x, p["W1"]))
    return torch.baddbmm(p["b2"], h, p["W2"]).squeeze(-1)


def _input_gradients(kind: str, p: dict[str, Tensor], x: Tensor) -> Tensor:
    if kind == "lr":
        return p["W"].transpose(1, 2).expand(-1, x.shape[1], -1)
    mask = (torch.baddbmm(p["b1"], x, p["W1"]) > 0).to(x.dtype)
    return torch.bmm(mask * p["W2"].transpose(1, 2), p["W1"].transpose(1, 2))


def _uniform_rows(x: Tensor) -> Tensor:
    return torch.full(x.shape[:2], 1.0 / x.shape[1], dtype=x.dtype)


# ---- initialisation ------------------------------------------------------------------------


def _layout(kind: str, R: int, d: int, hidden: int) -> list[tuple[str, tuple[int, ...]]]:
    if kind == "lr":
        return [("W", (R, d, 1)), ("b", (R, 1, 1))]
    return [("W1", (R, d, hidden)), ("b1", (R, 1, hidden)), ("W2", (R, hidden, 1)), ("b2", (R, 1, 1))]


def _linear_init(fan_in: int, fan_out: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
    """Exactly ``nn.Linear(fan_in, fan_out)``'s default init, drawn from ``g``."""
    w = torch.empty(fan_out, fan_in)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    b = torch.empty(fan_out).uniform_(-bound, bound, generator=g)
    return w, b


def init_params(
    kind: str,
    n_features: Sequence[int],
    seeds: Sequence[int],
    hidden: int = 100,
    d_pad: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[dict[str, Tensor], list[torch.Generator]]:
    """PyTorch default Linear init for each model, seeded per model; returns generators too.

    Model r with seed s gets the same numbers as ``torch.manual_seed(s); nn.Linear(d, ...)``
    (LR), or the two Linear layers of the MLP created in order. The generator continues
    into mini-batch shuffling, so a batched fit equals R single fits.
    """
    R = len(seeds)
    d_pad = max(n_features) if d_pad is None else d_pad
    params = {k: torch.zeros(shape, dtype=dtype) for k, shape in _layout(kind, R, d_pad, hidden)}
    gens = []
    for r, (seed, d) in enumerate(zip(seeds, n_features)):
        g = torch.Generator().manual_seed(int(seed))
        gens.append(g)
        if kind == "lr":
            w, b = _linear_init(d, 1, g)
            params["W"][r, :d, 0] = w[0]
            params["b"][r, 0, 0] = b[0]
        else:
            w1, b1 = _linear_init(d, hidden, g)
            w2, b2 = _linear_init(hidden, 1, g)
            params["W1"][r, :d, :] = w1.T
            params["b1"][r, 0, :] = b1
            params["W2"][r, :, 0] = w2[0]
            params["b2"][r, 0, 0] = b2[0]
    return params, gens


# ---- input handling ------------------------------------------------------------------------


def _tensor(a, dtype) -> Tensor:
    """Tensor copy of array-likes (read-only numpy arrays included); tensors are cast only."""
    if torch.is_tensor(a):
        return a.detach().to(dtype)
    return torch.tensor(np.asarray(a), dtype=dtype)


def pad_stack(arrays, name: str, ndim: int, dtype=torch.float32) -> tuple[Tensor, list[int], list[int]]:
    """Stack a 3-D array or a list of 2-D arrays (ndim=2; or 1-D with ndim=1) with zero padding.

    Returns (tensor, rows per item, width per item). Widths are [] for ndim=1.
    """
    if torch.is_tensor(arrays) or isinstance(arrays, np.ndarray):
        t = _tensor(arrays, dtype)
        if t.dim() != ndim + 1:
            raise ValueError(f"{name} must be {ndim + 1}-D (one {ndim}-D array per model) or a list, "
                             f"got shape {tuple(t.shape)}")
        rows = [t.shape[1]] * t.shape[0]
        return t, rows, ([t.shape[2]] * t.shape[0] if ndim == 2 else [])
    items = [_tensor(a, dtype) for a in arrays]
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
    tr = _tensor(train, torch.float64)
    if tr.dim() != 3:
        raise ValueError(f"train must be (R, n, d), got shape {tuple(tr.shape)}")
    lo, hi = tr.amin(dim=1, keepdim=True), tr.amax(dim=1, keepdim=True)
    rng = hi - lo
    rng = torch.where(rng < 10 * torch.finfo(torch.float64).eps, torch.ones_like(rng), rng)
    scale = 1.0 / rng
    shift = -lo * scale
    return [(_tensor(a, torch.float64) * scale + shift).to(torch.float32) for a in (tr, *others)]


def _per_model_vector(value, name: str, R: int, widths: list[int], d_pad: int, dtype, fill=0.0) -> Tensor:
    """(d,) shared, (R, d) or a list of per-model vectors -> (R, d_pad)."""
    if isinstance(value, (list, tuple)) and value and not np.isscalar(value[0]):
        items = [_tensor(v, dtype) for v in value]
        if len(items) != R:
            raise ValueError(f"{name} has {len(items)} vectors for {R} models")
    else:
        t = _tensor(value, dtype)
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


# ---- Adam over stacked tensors -------------------------------------------------------------


_FUSED_ADAM = getattr(torch, "_fused_adam_", None)


class _Adam:
    """torch.optim.Adam's update on a fixed list of tensors, without its per-step overhead.

    Uses the fused CPU kernel that ``torch.optim.Adam(fused=True)`` calls (one op for all
    tensors), else the single-tensor update written out. Both are tested against
    torch.optim.Adam.
    """

    def __init__(self, params: list[Tensor], grads: list[Tensor], lr: float, weight_decay: float,
                 fused: bool | None = None):
        self.params, self.grads, self.lr, self.wd = params, grads, lr, weight_decay
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.fused = (_FUSED_ADAM is not None) if fused is None else fused
        self.step_t = torch.zeros((), dtype=torch.float32)
        self.t = 0

    def step(self) -> None:
        b1, b2 = ADAM_BETAS
        self.t += 1
        if self.fused:
            self.step_t.add_(1)
            _FUSED_ADAM(self.params, self.grads, self.m, self.v, [], [self.step_t] * len(self.params),
                        amsgrad=False, lr=self.lr, beta1=b1, beta2=b2, weight_decay=self.wd,
                        eps=ADAM_EPS, maximize=False)
            return
        bc1, bc2_sqrt = 1 - b1 ** self.t, (1 - b2 ** self.t) ** 0.5
        for p, g, m, v in zip(self.params, self.grads, self.m, self.v):
            if self.wd:
                g = g.add(p, alpha=self.wd)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / bc2_sqrt).add_(ADAM_EPS), value=-self.lr / bc1)


# ---- the training programs -----------------------------------------------------------------


@dataclass
class _Statics:
    """Per-group constants of the attribution term (R models of the group)."""

    kind: str
    attribution: str
    t_hat: Tensor  # (R, d) normalised, masked target
    gamma: Tensor  # (R,)
    n_feat: Tensor  # (R,) true widths
    scale: Tensor  # (R,) = 2 * gamma / d
    confidence: Tensor | None  # (R, d)
    active: bool  # any gamma > 0

    @property
    def fast(self) -> bool:
        """Cosine closed form applies: 'grad' attribution without confidence weights."""
        return self.active and self.attribution == "grad" and self.confidence is None

    @property
    def c_scale(self) -> Tensor:
        c = self.scale.unsqueeze(-1)
        return c if self.confidence is None else c * self.confidence


_BMM_SMALL = 400  # CPU bmm runs products with m*k*n below this as a scalar loop over the batch
_BMM_PAD_FROM = 40  # widths from which padding the cosine's (1 x 2 x d) products beats that loop (measured)


def _normalized_mse_grad(v: Tensor, ref_hat: Tensor, c_scale: Tensor, dim: int = -1) -> Tensor:
    """d/dv of sum(c_scale/2 * (normalize(v) - ref_hat)^2) along ``dim`` (general form)."""
    nrm = torch.linalg.vector_norm(v, dim=dim, keepdim=True)
    nc = nrm.clamp_min(EPS)
    vh = v / nc
    u = (vh - ref_hat) * c_scale
    proj = (vh * u).sum(dim=dim, keepdim=True) * (nrm > EPS)
    return (u - vh * proj) / nc


def _row_ref(x: Tensor, t_hat: Tensor) -> Tensor:
    """normalize(t * x_i) per row: the input x gradient variant's per-row target."""
    ref = x * t_hat
    return ref / torch.linalg.vector_norm(ref, dim=-1, keepdim=True).clamp_min(EPS)


class _LRProgram:
    """Stacked logistic regressions with closed-form gradients.

    Rows live on axis 0 of ``X`` (rows, R, d), after two head rows holding w itself and the
    target: one multiply-sum then yields the logits *and* |w|^2, <t, w>, and one more
    yields the BCE gradient plus the attribution gradient (2/d)|w|^-3 (<t,w> w - |w|^2 t)
    of L_att = (2 - 2cos(w, t))/d. That keeps the regulariser at ~3 extra tiny ops.
    """

    def __init__(self, p: dict[str, Tensor], st: _Statics, capacity: int):
        R, d = p["W"].shape[:2]
        dt = p["W"].dtype
        self.st, self.R, self.d = st, R, d
        self.X = torch.zeros(2 + capacity, R, d, dtype=dt)
        self.X[0] = p["W"][..., 0]
        self.X[1] = st.t_hat
        self.w, self.b = self.X[0], p["b"].reshape(R).clone()
        self.gw, self.gb = torch.zeros(R, d, dtype=dt), torch.zeros(R, dtype=dt)
        self.D = torch.zeros(2 + capacity, R, dtype=dt)
        self.Y = torch.zeros(capacity, R, dtype=dt)
        self.RW = torch.zeros(capacity, R, dtype=dt)
        self.expo = torch.tensor([[-1.5], [-0.5]], dtype=dt)
        zero = torch.zeros(R, dtype=dt)
        self.c1 = torch.stack([st.scale, zero])  # (2, R)
        self.c0 = torch.stack([zero, -st.scale])
        self.params, self.grads = [self.w, self.b], [self.gw, self.gb]
        self.n = 0

    def load(self, x: Tensor, y: Tensor, rw: Tensor) -> None:
        """Batch in standard layout: x (R, n, d), y and row weights (R, n)."""
        n = x.shape[1]
        if n != self.n:  # views are fixed per batch size: slicing costs as much as an op here
            self.n = n
            self.Xn, self.Dn = self.X[:2 + n], self.D[:2 + n]
            self.xs, self.Dd, self.Dh = self.X[2:2 + n], self.D[2:2 + n], self.D[:2]
            self.Dn3, self.Dd3 = self.Dn.unsqueeze(-1), self.Dd.unsqueeze(-1)
            self.Yn, self.RWn = self.Y[:n], self.RW[:n]
            self.F = torch.empty(2 + n, self.R, dtype=self.X.dtype)
            self.F0, self.F1, self.Fd = self.F[0:1], self.F[1:2], self.F[2:]
            self.Fplain = torch.empty(n, self.R, dtype=self.X.dtype)
        self.xs.copy_(x.transpose(0, 1))
        self.Yn.copy_(y.T)
        self.RWn.copy_(rw.T)
        if self.st.active and self.st.attribution == "input_x_grad":
            self.ref = _row_ref(self.xs, self.st.t_hat)

    def batch(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.xs.transpose(0, 1), self.Yn.T, self.RWn.T

    def std_params(self) -> dict[str, Tensor]:
        return {"W": self.w.unsqueeze(-1), "b": self.b.view(self.R, 1, 1)}

    def set_grads(self, g: dict[str, Tensor]) -> None:
        self.gw.copy_(g["W"][..., 0])
        self.gb.copy_(g["b"].reshape(self.R))

    def analytic_grads(self) -> None:
        st = self.st
        if st.fast:
            # F rows: |w|^2, <t,w>, then the logits; D rows: coefficients of w and t, then BCE deltas.
            torch.sum(torch.mul(self.Xn, self.w), -1, out=self.F)
            torch.sigmoid(self.Fd.add_(self.b), out=self.Dd).sub_(self.Yn).mul_(self.RWn)
            torch.mul(self.F0.pow(self.expo), torch.addcmul(self.c0, self.F1, self.c1), out=self.Dh)
            torch.sum(torch.mul(self.Xn, self.Dn3), 0, out=self.gw)
            torch.sum(self.Dd, 0, out=self.gb)
            return
        xs = self.xs
        torch.sum(torch.mul(xs, self.w), -1, out=self.Fplain)
        torch.sigmoid(self.Fplain.add_(self.b), out=self.Dd).sub_(self.Yn).mul_(self.RWn)
        torch.sum(torch.mul(xs, self.Dd3), 0, out=self.gw)
        torch.sum(self.Dd, 0, out=self.gb)
        if not st.active:
            return
        if st.attribution == "grad":
            self.gw.add_(_normalized_mse_grad(self.w, st.t_hat, st.c_scale))
        else:
            dA = _normalized_mse_grad(xs * self.w, self.ref, st.c_scale * self.RWn.unsqueeze(-1))
            self.gw.add_((xs * dA).sum(0))


class _MLPProgram:
    """Stacked ReLU MLPs with closed-form gradients.

    The attribution is g = W1 (w2 * mbar), mbar the row-weighted mean ReLU mask; the mask
    is piecewise constant in theta, so dg/dtheta flows only through W1 and w2 (autograd's
    double back-prop gives the same). At few-shot sizes a step is ~15-25 small ops whose
    cost is dispatch, per-model overhead inside ``bmm`` and memory passes, not FLOPs:

    - vector products are written with the vector on the left (``(R,1,k) @ (R,k,m)``):
      batched ``bmm`` with a single output *column* is 5-10x slower on CPU; CPU ``bmm``
      also loops over models in scalar code when m*k*n < 400 (``_BMM_SMALL``), so small
      products are padded or merged past that, and ``bmm`` only writes (``out=``) into
      contiguous buffers (a strided ``out`` costs a temporary and a copy);
    - every step writes into preallocated buffers (a fresh (R, n, H) tensor per step can
      cost more in page faults than its arithmetic);
    - the 'grad' attribution reuses the forward's h and its mask m: ``[dT ; rw] @ [h, m]``
      gives dw2's BCE part, dT m (= db1 / w2) and mbar; dW1's BCE and attribution parts
      come out of one bmm, either ``[x ; q]^T [dz ; w2*mbar]`` or, when that moves less
      data, ``([dT x ; q]^T [m ; mbar]) * w2`` without dz.
    """

    def __init__(self, p: dict[str, Tensor], st: _Statics, capacity: int):
        R, d, H = p["W1"].shape
        dt = p["W1"].dtype
        self.st, self.R, self.d, self.H = st, R, d, H
        self.W1, self.b1 = p["W1"].clone(), p["b1"].clone()
        self.W2, self.b2 = p["W2"].reshape(R, 1, H).clone(), p["b2"].clone()  # w2 as a row
        self.params = [self.W1, self.b1, self.W2, self.b2]
        self.grads = [torch.zeros_like(t) for t in self.params]
        self.gW1, self.gb1, self.gW2, self.gb2 = self.grads
        # rows outermost: the q row Xe[n] is contiguous over models, so a bmm can write it (out=)
        self.Xe = torch.zeros(capacity + 1, R, d, dtype=dt)
        self.DZe = torch.zeros(R, capacity + 1, H, dtype=dt)
        self.grad_attr = st.active and st.attribution == "grad"
        self.cosine = st.fast
        if self.grad_attr:
            self.W1T = self.W1.transpose(1, 2)
            self.G = torch.zeros(R, 1, d, dtype=dt)  # g as a row (without the cosine: in C)
            self.QW = torch.zeros(R, 1, H, dtype=dt)  # q^T W1
        if self.cosine:
            # C = [c t ; g ; -c t ; 0 ...] (c = 2 gamma / d): S = g [c t ; g]^T = [c <g,t>, |g|^2],
            # then q = c |g|^-3 (<g,t> g - |g|^2 t) = (S |g|^-3) [g ; -c t]: gamma dL/dg, two bmm.
            # k > 2 only pads both products past _BMM_SMALL (zero rows, zero coefficients).
            k = max(2, -(-_BMM_SMALL // d)) if d >= _BMM_PAD_FROM else 2
            c = st.scale.to(dt).unsqueeze(-1)
            self.C = torch.zeros(k + 1, R, d, dtype=dt)  # rows outermost: g's row is contiguous
            self.C[0] = c * st.t_hat
            self.C[2] = -c * st.t_hat
            self.Cg, self.Cq = self.C[1].unsqueeze(1), self.C[1:].transpose(0, 1)
            self.CsT = self.C[:k].permute(1, 2, 0)
            self.S = torch.zeros(R, 1, k, dtype=dt)
            self.S0 = self.S[..., 1:2]
            # + 1e-24 on |g|^2 keeps |g|^-3 finite if every unit is dead (then q multiplies 0)
            self.S_eps = torch.zeros(1, 1, k, dtype=dt)
            self.S_eps[..., 1] = EPS * EPS
            self.K = torch.zeros(R, 1, 1, dtype=dt)
            self.p15 = torch.tensor(-1.5, dtype=dt)  # (pow with a tensor exponent dispatches faster)
        self.n = -1

    def load(self, x: Tensor, y: Tensor, rw: Tensor) -> None:
        n = x.shape[1]
        if n != self.n:  # views depend on the batch size only
            self.n = n
            R, H, dt = self.R, self.H, x.dtype
            Xe = self.Xe.transpose(0, 1)  # (R, rows, d) view
            self.Xn, self.Xq, self.Xall = Xe[:, :n], self.Xe[n].unsqueeze(1), Xe[:, :n + 1]
            self.DZn, self.DZv, self.DZall = self.DZe[:, :n], self.DZe[:, n:n + 1], self.DZe[:, :n + 1]
            self.XnT, self.XallT = self.Xn.transpose(1, 2), self.Xall.transpose(1, 2)
            self.fT = torch.zeros(R, 1, n, dtype=dt)
            self.dTC = self.fT.transpose(1, 2)  # the BCE deltas as a column
            self.Z = torch.zeros(R, n, H, dtype=dt)
            self.ZT = self.Z.transpose(1, 2)
            if self.grad_attr:
                # h and its relu mask m; [dT ; rw] @ [h, m] gives dT h (BCE part of dw2), dT m (db1
                # / w2) and mbar. When a (1 x n x H) product would take bmm's scalar loop, h and m
                # sit side by side so that one padded-enough bmm does it all.
                self.joint = n * H < _BMM_SMALL
                L = torch.zeros(2, R, n, dtype=dt)  # rows [dT ; rw], outermost: a bmm writes f into L[0]
                self.L, self.Ld, self.Lrw = L.transpose(0, 1), L[0].unsqueeze(1), L[1]
                self.LdT = self.Ld.transpose(1, 2)
                if self.joint:
                    self.HM = torch.zeros(R, n, 2 * H, dtype=dt)  # [h | m]
                    self.Hh, self.Hm = self.HM[..., :H], self.HM[..., H:]
                    self.O = torch.zeros(R, 2, 2 * H, dtype=dt)  # [[dT h, dT m], [rw h, mbar]]
                    self.O_dh, self.O_dm, self.O_mbar = self.O[:, :1, :H], self.O[:, :1, H:], self.O[:, 1:, H:]
                else:
                    self.Mall = torch.zeros(R, n + 1, H, dtype=dt)  # [m ; mbar]
                    self.Hh, self.Hm, self.Mv = self.Z, self.Mall[:, :n], self.Mall[:, n:]  # h in place of z
                    self.O = torch.zeros(R, 2, H, dtype=dt)  # [dT m ; mbar]; dT h goes to gW2
                    self.O_dh, self.O_dm, self.O_mbar = self.gW2, self.O[:, :1], self.O[:, 1:]
                self.HhT = self.Hh.transpose(1, 2)
                # dW1 without dz when an (n, d) and a (d, H) pass move less data than two (n, H) passes
                self.dz_free = not self.joint and self.d * (2 * n + H) < 2 * n * H
                self.q_out = self.Xq
                if self.dz_free:
                    Xt = torch.zeros(n + 1, R, self.d, dtype=dt)  # [dT x_i ; q], rows outermost like Xe
                    self.Xd, self.q_out = Xt[:n].transpose(0, 1), Xt[n].unsqueeze(1)
                    self.XtT = Xt.permute(1, 2, 0)
        self.Xn.copy_(x)
        self.yT, self.rwT = y.unsqueeze(1), rw.unsqueeze(1)
        if self.grad_attr:
            self.Lrw.copy_(rw)
        if self.st.active and self.st.attribution == "input_x_grad":
            self.ref = _row_ref(x, self.st.t_hat.unsqueeze(1))

    def batch(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.Xn, self.yT.squeeze(1), self.rwT.squeeze(1)

    def std_params(self) -> dict[str, Tensor]:
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2.view(self.R, self.H, 1), "b2": self.b2}

    def set_grads(self, g: dict[str, Tensor]) -> None:
        for mine, ref in zip(self.grads, (g["W1"], g["b1"], g["W2"], g["b2"])):
            mine.copy_(ref.reshape(mine.shape))

    def analytic_grads(self) -> None:
        if self.grad_attr:
            self._grad_attribution_step()
            return
        st, W1, W2 = self.st, self.W1, self.W2
        # h = relu(x W1 + b1), in place in a buffer: a fresh (R, n, H) tensor per step can cost
        # page faults that outweigh the arithmetic
        h = torch.baddbmm(self.b1, self.Xn, W1, out=self.Z).relu_()
        # BCE deltas as a row (R, 1, n): sigma(w2 . h_i + b2) - y_i, times the row weight
        dT = torch.baddbmm(self.b2, W2, self.ZT, out=self.fT).sigmoid_().sub_(self.yT).mul_(self.rwT)
        torch.bmm(dT, h, out=self.gW2)
        torch.sum(dT, 2, keepdim=True, out=self.gb2)
        dz = torch.mul(self.dTC, W2, out=self.DZn)
        torch.ops.aten.threshold_backward.grad_input(dz, h, 0.0, grad_input=dz)  # h > 0 exactly where z > 0
        torch.sum(dz, 1, keepdim=True, out=self.gb1)
        torch.bmm(self.XnT, dz, out=self.gW1)
        if not st.active:
            return
        mask = torch.sign(h)
        Gm = mask * W2  # (R, n, H): m_i * w2
        x = self.Xn
        G = torch.bmm(Gm, W1.transpose(1, 2))  # per-row input gradients (R, n, d)
        dG = x * _normalized_mse_grad(x * G, self.ref, st.c_scale.unsqueeze(1) * self.rwT.transpose(1, 2))
        self.gW1.baddbmm_(dG.transpose(1, 2), Gm)
        self.gW2.add_((torch.bmm(dG, W1) * mask).sum(1, keepdim=True))

    def _grad_attribution_step(self) -> None:
        """Gradients of BCE + gamma * L_att for the batch-mean gradient attribution."""
        st, W1, W2 = self.st, self.W1, self.W2
        z = torch.baddbmm(self.b1, self.Xn, W1, out=self.Z)
        h = torch.clamp_min(z, 0.0, out=self.Hh) if self.joint else z.relu_()
        torch.sign(h, out=self.Hm)  # m = relu mask
        # BCE deltas, in L's first row
        dT = torch.baddbmm(self.b2, W2, self.HhT, out=self.Ld).sigmoid_().sub_(self.yT).mul_(self.rwT)
        torch.sum(dT, 2, keepdim=True, out=self.gb2)
        if self.joint:
            torch.bmm(self.L, self.HM, out=self.O)
        else:
            torch.bmm(dT, h, out=self.gW2)
            torch.bmm(self.L, self.Hm, out=self.O)
        torch.mul(W2, self.O_dm, out=self.gb1)  # sum_i dz_i = w2 * (dT m)
        vv = torch.mul(W2, self.O_mbar, out=self.DZv)  # w2 * mbar
        if self.cosine:
            g = torch.bmm(vv, self.W1T, out=self.Cg)
            torch.baddbmm(self.S_eps, g, self.CsT, out=self.S)
            torch.pow(self.S0, self.p15, out=self.K)
            q = torch.bmm(self.S.mul_(self.K), self.Cq, out=self.q_out)
        else:
            g = torch.bmm(vv, self.W1T, out=self.G)
            q = self.q_out.copy_(_normalized_mse_grad(g, st.t_hat.unsqueeze(1), st.c_scale.unsqueeze(1)))
        if self.dz_free:
            # dW1 = (sum_i dT_i x_i m_i^T + q mbar^T) * w2 = ([dT x ; q]^T [m ; mbar]) * w2: no dz pass
            torch.mul(self.LdT, self.Xn, out=self.Xd)
            self.Mv.copy_(self.O_mbar)
            torch.bmm(self.XtT, self.Mall, out=self.gW1).mul_(W2)
        else:
            torch.mul(self.Hm, self.LdT, out=self.DZn).mul_(W2)  # dz_i = m_i * w2 * dT_i
            torch.bmm(self.XallT, self.DZall, out=self.gW1)  # x^T dz + q (w2*mbar)^T
        torch.bmm(q, W1, out=self.QW)
        torch.addcmul(self.O_dh, self.O_mbar, self.QW, out=self.gW2)  # dT h + mbar * (q^T W1)


def _autograd_grads(prog, st: _Statics) -> dict[str, Tensor]:
    """The same gradient through `laat.attribution.laat_loss` (double back-prop)."""
    x, y, rw = prog.batch()
    with torch.enable_grad():
        p = {k: v.detach().clone().requires_grad_(True) for k, v in prog.std_params().items()}
        total, _, _ = laat_loss(
            lambda inp: _forward(st.kind, p, inp), x, y,
            st.t_hat if st.active else None, st.gamma if st.active else 0.0,
            attribution=st.attribution, confidence=st.confidence, row_weight=rw, n_features=st.n_feat,
        )
        grads = torch.autograd.grad(total.sum(), list(p.values()))
    return dict(zip(p, grads))


def _loss_values(prog, st: _Statics) -> Tensor:
    """(R, 2): row-weighted mean BCE and attribution loss at the current parameters."""
    x, y, rw = prog.batch()
    p = prog.std_params()
    f = _forward(st.kind, p, x)
    bce = (torch.nn.functional.binary_cross_entropy_with_logits(f, y, reduction="none") * rw).sum(dim=1)
    G = _input_gradients(st.kind, p, x)
    if st.attribution == "grad":
        att = attribution_loss((G * rw.unsqueeze(-1)).sum(dim=1), st.t_hat, confidence=st.confidence,
                               n_features=st.n_feat)
    else:
        att = attribution_loss(x * G, st.t_hat, kind="input_x_grad", x=x, confidence=st.confidence,
                               row_weight=rw, n_features=st.n_feat)
    return torch.stack([bce, att], dim=1)


def _normalise_rows(sw: Tensor) -> Tensor:
    return sw / sw.sum(dim=1, keepdim=True).clamp_min(torch.finfo(sw.dtype).tiny)


def _train_group(params: dict[str, Tensor], gens, x, y, sw, st: _Statics, *, lr, epochs, batch_size,
                 weight_decay, grad_impl, record_history, fused_adam=None) -> Tensor | None:
    """Train one group's models; returns history. Full batch unless rows > batch_size."""
    R, n, d = x.shape
    full = batch_size is None or n <= batch_size
    prog_cls = _LRProgram if st.kind == "lr" else _MLPProgram
    prog = prog_cls(params, st, n if full else batch_size)
    opt = _Adam(prog.params, prog.grads, lr, weight_decay, fused=fused_adam)
    hist = torch.zeros(epochs, R, 2, dtype=x.dtype) if record_history else None
    if full:
        prog.load(x, y, _normalise_rows(sw))
    for epoch in range(epochs):
        if full:
            starts, perm = [0], None
        else:
            perm = torch.stack([torch.randperm(n, generator=g) for g in gens])
            starts = range(0, n, batch_size)
        for s in starts:
            if perm is not None:
                idx = perm[:, s:s + batch_size]
                prog.load(torch.gather(x, 1, idx.unsqueeze(-1).expand(-1, -1, d)),
                          torch.gather(y, 1, idx), _normalise_rows(torch.gather(sw, 1, idx)))
            if hist is not None:
                with torch.no_grad():
                    hist[epoch] += _loss_values(prog, st) / len(starts)
            if grad_impl == "analytic":
                prog.analytic_grads()
            else:
                prog.set_grads(_autograd_grads(prog, st))
            opt.step()
    for k, v in prog.std_params().items():
        params[k].copy_(v.reshape(params[k].shape))
    return hist


def fit_many(
    X,
    y,
    target=None,
    *,
    model: ModelKind = "lr",
    gamma: float | Sequence[float] = 100.0,
    attribution: str = "grad",
    hidden: int = 100,
    lr: float = 1e-2,
    epochs: int = 200,
    batch_size: int | None = 128,
    weight_decay: float = 0.0,
    seeds: int | Sequence[int] = 0,
    confidence=None,
    feature_mask=None,
    sample_weight=None,
    grad_impl: GradImpl = "analytic",
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
    _check_choice("model", model, MODELS)
    _check_choice("attribution", attribution, ATTRIBUTION_KINDS)
    _check_choice("grad_impl", grad_impl, GRAD_IMPLS)
    _check_positive_int("epochs", epochs)
    if model == "mlp":
        _check_positive_int("hidden", hidden)
    if batch_size is not None:
        _check_positive_int("batch_size", batch_size)
    _check_number("lr", lr, positive=True)
    _check_number("weight_decay", weight_decay)

    x, rows, widths = pad_stack(X, "X", 2, dtype)
    R, n_pad, d_pad = x.shape
    yt, y_rows, _ = pad_stack(y, "y", 1, dtype)
    if yt.shape[0] != R or y_rows != rows:
        raise ValueError(f"y has row counts {y_rows}, X has {rows}")
    if not bool(((yt == 0) | (yt == 1)).all()):
        raise ValueError("y must contain only 0/1 labels")
    yt = torch.nn.functional.pad(yt, (0, n_pad - yt.shape[1]))
    if sample_weight is None:
        sw = torch.zeros(R, n_pad, dtype=dtype)
        for r, n in enumerate(rows):
            sw[r, :n] = 1.0
    else:
        sw, sw_rows, _ = pad_stack(sample_weight, "sample_weight", 1, dtype)
        if sw.shape[0] != R or sw_rows != rows:
            raise ValueError(f"sample_weight has row counts {sw_rows}, X has {rows}")
        if not bool(torch.isfinite(sw).all()) or bool((sw < 0).any()):
            raise ValueError("sample_weight must be finite and >= 0")
        sw = torch.nn.functional.pad(sw, (0, n_pad - sw.shape[1]))
        empty = [r for r in range(R) if float(sw[r].sum()) <= 0]
        if empty:
            raise ValueError(f"sample_weight sums to 0 for models {empty}")

    gam = torch.as_tensor(np.broadcast_to(np.asarray(gamma, dtype=np.float64), (R,)).copy(), dtype=dtype)
    if not bool(torch.isfinite(gam).all()) or bool((gam < 0).any()):
        raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")
    active = bool((gam > 0).any())

    seed_list = list(range(int(seeds), int(seeds) + R)) if np.isscalar(seeds) else [int(s) for s in seeds]
    if len(seed_list) != R:
        raise ValueError(f"got {len(seed_list)} seeds for {R} models")

    mask = torch.ones(R, d_pad, dtype=torch.bool)
    for r, d in enumerate(widths):
        mask[r, d:] = False
    if feature_mask is not None:
        fm = _per_model_vector(feature_mask, "feature_mask", R, widths, d_pad, torch.float64, fill=0.0) != 0
        mask &= fm
    dead = [r for r in range(R) if not bool(mask[r].any())]
    if dead:
        raise ValueError(f"models {dead} have every feature masked: nothing left to fit")
    x = x * mask.unsqueeze(1).to(dtype)

    if target is None:
        if active:
            raise ValueError("target is None but gamma > 0: the attribution term needs a prior target")
        t_hat = torch.zeros(R, d_pad, dtype=dtype)
    else:
        t = _per_model_vector(target, "target", R, widths, d_pad, torch.float64)
        if not bool(torch.isfinite(t).all()):
            raise ValueError("target must be finite (use attribution.normalized_target for small tau)")
        t = t * mask
        t_hat = (t / torch.linalg.vector_norm(t, dim=1, keepdim=True).clamp_min(EPS)).to(dtype)
    conf = None
    if confidence is not None:
        conf = _per_model_vector(confidence, "confidence", R, widths, d_pad, dtype, fill=0.0)
        if not bool(torch.isfinite(conf).all()) or bool((conf < 0).any()):
            raise ValueError("confidence weights must be finite and >= 0")

    params, gens = init_params(model, widths, seed_list, hidden, d_pad, dtype)
    for k in ("W", "W1"):
        if k in params:
            params[k].mul_(mask.unsqueeze(-1).to(dtype))

    n_feat = torch.as_tensor(widths, dtype=dtype)
    scale = 2.0 * gam / n_feat

    hist = torch.zeros(epochs, R, 2, dtype=dtype) if record_history else None
    for idx, n_rows, d_cols in _groups(rows, widths, batch_size, model, hidden, bucket):
        sel = torch.as_tensor(idx)
        st = _Statics(
            kind=model, attribution=attribution, t_hat=t_hat[sel, :d_cols], gamma=gam[sel], n_feat=n_feat[sel],
            scale=scale[sel], confidence=None if conf is None else conf[sel, :d_cols], active=active,
        )
        sub = {k: (v[sel, :d_cols] if k in ("W", "W1") else v[sel]).clone() for k, v in params.items()}
        h = _train_group(
            sub, [gens[i] for i in idx], x[sel, :n_rows, :d_cols], yt[sel, :n_rows], sw[sel, :n_rows], st,
            lr=lr, epochs=epochs, batch_size=batch_size, weight_decay=weight_decay,
            grad_impl=grad_impl, record_history=record_history, fused_adam=fused_adam,
        )
        for k, v in sub.items():
            if k in ("W", "W1"):
                params[k][sel, :d_cols] = v
            else:
                params[k][sel] = v
        if hist is not None:
            hist[:, sel] = h
    return StackedModel(kind=model, params=params, n_features=list(widths),
                        hidden=hidden if model == "mlp" else None, history=hist, seeds=seed_list)


def _step_cost(kind: str, hidden: int, R: int, n: int, d: int) -> float:
    """Rough cost of one training step (us) of R stacked models padded to n rows, d features.

    A fixed part (dispatching ~15-45 tiny ops) plus work proportional to the padded sizes;
    measured on the 2-core reference VM. Only its ratios matter: it decides whether padding
    models into one program beats running more programs.
    """
    if kind == "lr":
        return 80.0 + R * d * (2e-3 * n + 0.03)
    return 300.0 + R * hidden * (7.4e-5 * n * d + 8e-3 * n + 4e-3 * d)


def _groups(rows: list[int], widths: list[int], batch_size: int | None, kind: str, hidden: int,
            bucket: bool) -> list[tuple[list[int], int, int]]:
    """Split models into programs: (model indices, padded rows, padded width).

    Full-batch models are bucketed by shape to minimise the modelled time (a partition of
    the shapes sorted by width, by dynamic programming); models needing mini-batches run
    in groups of equal row count.
    """
    R = len(rows)
    full = [r for r in range(R) if batch_size is None or rows[r] <= batch_size]
    out: list[tuple[list[int], int, int]] = []
    if full and not bucket:
        out.append((full, max(rows[r] for r in full), max(widths[r] for r in full)))
    elif full:
        shapes = sorted({(widths[r], rows[r]) for r in full})
        count = {s: 0 for s in shapes}
        for r in full:
            count[(widths[r], rows[r])] += 1
        best, cut = [0.0] + [float("inf")] * len(shapes), [0] * (len(shapes) + 1)
        for i in range(1, len(shapes) + 1):
            m, n_max = 0, 0
            for j in range(i - 1, -1, -1):  # segment shapes[j:i]
                m += count[shapes[j]]
                n_max = max(n_max, shapes[j][1])
                c = best[j] + _step_cost(kind, hidden, m, n_max, shapes[i - 1][0])
                if c < best[i]:
                    best[i], cut[i] = c, j
        i, segments = len(shapes), []
        while i > 0:
            segments.append(shapes[cut[i]:i])
            i = cut[i]
        for seg in reversed(segments):
            members = set(seg)
            idx = [r for r in full if (widths[r], rows[r]) in members]
            out.append((idx, max(s[1] for s in seg), max(s[0] for s in seg)))
    for n in sorted({rows[r] for r in range(R) if r not in set(full)}):
        idx = [r for r in range(R) if rows[r] == n]
        out.append((idx, n, max(widths[r] for r in idx)))
    return out


def _check_choice(name: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_number(name: str, value, positive: bool = False) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and np.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
