"""Stacked one-hidden-layer ReLU MLPs with closed-form gradients of BCE + gamma * L_att."""

from __future__ import annotations

import torch
from torch import Tensor

from laat.attribution import EPS
from laat.engine.objective import AttributionTerm, normalized_mse_grad, row_ref

_BMM_SMALL = 400  # CPU bmm runs products with m*k*n below this as a scalar loop over the batch
_BMM_PAD_FROM = 40  # widths from which padding the cosine's (1 x 2 x d) products beats that loop (measured)


class MLPProgram:
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

    def __init__(self, p: dict[str, Tensor], st: AttributionTerm, capacity: int):
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
            self.Xn, self.Xq, self.Xall = Xe[:, :n], self.Xe[n].unsqueeze(1), Xe[:, : n + 1]
            self.DZn, self.DZv, self.DZall = self.DZe[:, :n], self.DZe[:, n : n + 1], self.DZe[:, : n + 1]
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
            self.ref = row_ref(x, self.st.t_hat.unsqueeze(1))

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
        dG = x * normalized_mse_grad(x * G, self.ref, st.c_scale.unsqueeze(1) * self.rwT.transpose(1, 2))
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
            q = self.q_out.copy_(normalized_mse_grad(g, st.t_hat.unsqueeze(1), st.c_scale.unsqueeze(1)))
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
