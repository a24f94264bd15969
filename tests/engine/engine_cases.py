"""Small random stacked data sets and attribution terms shared by the engine's tests."""

import torch

from laat.engine.objective import AttributionTerm

F64 = torch.float64


def data(R=3, n=9, d=5, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(R, n, d, generator=g, dtype=dtype)
    y = (torch.rand(R, n, generator=g) > 0.5).to(dtype)
    y[:, 0], y[:, 1] = 0, 1
    return x, y


def attribution_term(kind, attribution, t_hat, gamma, confidence=None):
    R, d = t_hat.shape
    gam = torch.as_tensor(gamma, dtype=t_hat.dtype).expand(R).clone()
    n_feat = torch.full((R,), float(d), dtype=t_hat.dtype)
    return AttributionTerm(
        kind=kind,
        attribution=attribution,
        t_hat=t_hat,
        gamma=gam,
        n_feat=n_feat,
        scale=2 * gam / n_feat,
        confidence=confidence,
        active=bool((gam > 0).any()),
    )
