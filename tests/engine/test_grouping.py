"""The cost model splits costly padding into several programs without changing fits."""

import pytest
import torch

from laat.attribution import normalized_target
from laat.engine.fit import fit_many
from laat.engine.grouping import plan_groups

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_bucketing_splits_costly_padding_and_keeps_results():
    # 20 wide models and 20 narrow ones: padding the narrow to 144 columns is not worth it,
    # while the three row counts of one width are merged.
    rows = [2] * 20 + [20] * 20 + [2] * 20 + [10] * 20
    widths = [144] * 40 + [8] * 40
    groups = plan_groups(rows, widths, 128, "mlp", 100, bucket=True)
    assert len(groups) >= 2
    assert all(max(widths[i] for i in idx) == d for idx, _, d in groups)
    assert sorted(i for idx, _, _ in groups for i in idx) == list(range(80))
    assert plan_groups(rows, widths, 128, "mlp", 100, bucket=False) == [(list(range(80)), 20, 144)]

    g = torch.Generator().manual_seed(5)
    X = [torch.rand(n, d, generator=g) for n, d in [(2, 30), (6, 30), (4, 3), (6, 3)]]
    Y = [torch.tensor([0.0, 1.0] * (x.shape[0] // 2)) for x in X]
    T = [normalized_target(torch.randint(-10, 11, (x.shape[1],), generator=g)) for x in X]
    a = fit_many(X, Y, T, model="mlp", hidden=6, epochs=30, bucket=True)
    b = fit_many(X, Y, T, model="mlp", hidden=6, epochs=30, bucket=False)
    for r, x in enumerate(X):
        torch.testing.assert_close(a.select(r).logits(x), b.select(r).logits(x), rtol=1e-4, atol=1e-5)
