"""Stacked logistic regressions with closed-form gradients of BCE + gamma * L_att."""

from __future__ import annotations

import torch
from torch import Tensor

from laat.engine.objective import AttributionTerm, normalized_mse_grad, row_ref


class LRProgram:
    """Stacked logistic regressions with closed-form gradients.

    Rows live on axis 0 of ``X`` (rows, R, d), after two head rows holding w itself and the
    target: one multiply-sum then yields the logits *and* |w|^2, <t, w>, and one more
    yields the BCE gradient plus the attribution gradient (2/d)|w|^-3 (<t,w> w - |w|^2 t)
    of L_att = (2 - 2cos(w, t))/d. That keeps the regulariser at ~3 extra tiny ops.
    """

    def __init__(self, p: dict[str, Tensor], st: AttributionTerm, capacity: int):
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
            self.Xn, self.Dn = self.X[: 2 + n], self.D[: 2 + n]
            self.xs, self.Dd, self.Dh = self.X[2 : 2 + n], self.D[2 : 2 + n], self.D[:2]
            self.Dn3, self.Dd3 = self.Dn.unsqueeze(-1), self.Dd.unsqueeze(-1)
            self.Yn, self.RWn = self.Y[:n], self.RW[:n]
            self.F = torch.empty(2 + n, self.R, dtype=self.X.dtype)
            self.F0, self.F1, self.Fd = self.F[0:1], self.F[1:2], self.F[2:]
            self.Fplain = torch.empty(n, self.R, dtype=self.X.dtype)
        self.xs.copy_(x.transpose(0, 1))
        self.Yn.copy_(y.T)
        self.RWn.copy_(rw.T)
        if self.st.active and self.st.attribution == "input_x_grad":
            self.ref = row_ref(self.xs, self.st.t_hat)

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
            self.gw.add_(normalized_mse_grad(self.w, st.t_hat, st.c_scale))
        else:
            dA = normalized_mse_grad(xs * self.w, self.ref, st.c_scale * self.RWn.unsqueeze(-1))
            self.gw.add_((xs * dA).sum(0))
