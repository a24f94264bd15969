"""R trained models of one kind in stacked tensors: logits and closed-form input gradients.

Logistic regression keeps ``W`` (R, d, 1) and ``b``; the MLP (one hidden ReLU layer) keeps
``W1`` (R, d, H), ``b1``, ``W2`` (R, H, 1) and ``b2``. For LR the input gradient *is* w; for
the MLP it is ``W1 (w2 * relu mask)``, the mask having zero derivative, exactly as autograd
treats it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from laat.engine.inputs import as_tensor


def forward(kind: str, p: dict[str, Tensor], x: Tensor) -> Tensor:
    """Logits (R, n) of R stacked models with parameters ``p`` on inputs x (R, n, d)."""
    if kind == "lr":
        return torch.baddbmm(p["b"], x, p["W"]).squeeze(-1)
    h = torch.relu(torch.baddbmm(p["b1"], x, p["W1"]))
    return torch.baddbmm(p["b2"], h, p["W2"]).squeeze(-1)


def input_gradients(kind: str, p: dict[str, Tensor], x: Tensor) -> Tensor:
    """Per-row input gradient of the logit (R, n, d), in closed form."""
    if kind == "lr":
        return p["W"].transpose(1, 2).expand(-1, x.shape[1], -1)
    mask = (torch.baddbmm(p["b1"], x, p["W1"]) > 0).to(x.dtype)
    return torch.bmm(mask * p["W2"].transpose(1, 2), p["W1"].transpose(1, 2))


def _uniform_rows(x: Tensor) -> Tensor:
    return torch.full(x.shape[:2], 1.0 / x.shape[1], dtype=x.dtype)


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
        x = as_tensor(X, self.dtype)
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
        return forward(self.kind, self.params, self._inputs(X))

    def predict_proba(self, X) -> Tensor:
        """P(class 1), shape (R, n)."""
        return torch.sigmoid(self.logits(X))

    def input_gradients(self, X) -> Tensor:
        """Per-row input gradient of the logit, (R, n, d_pad), in closed form."""
        return input_gradients(self.kind, self.params, self._inputs(X))

    def mean_input_gradient(self, X, row_weight: Tensor | None = None) -> Tensor:
        """Batch-mean input gradient (R, d_pad): the global attribution LAAT aligns."""
        x = self._inputs(X)
        w = _uniform_rows(x) if row_weight is None else as_tensor(row_weight, x.dtype)
        return (input_gradients(self.kind, self.params, x) * w.unsqueeze(-1)).sum(dim=1)

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
