"""The cost model splits costly padding into several programs without changing fits."""

import itertools

import numpy as np
import pytest
import torch

from laat.attribution import normalized_target
from laat.engine.fit import fit_many
from laat.engine.grouping import plan_groups, step_cost

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


def _brute_force_cost(shapes, count, kind, hidden):
    """Cheapest modelled cost over every split of the width-sorted shapes into runs."""
    best = float("inf")
    for cuts in itertools.product([False, True], repeat=len(shapes) - 1):
        total, start = 0.0, 0
        for i in range(1, len(shapes) + 1):
            if i == len(shapes) or cuts[i - 1]:
                seg = shapes[start:i]
                m = sum(count[s] for s in seg)
                total += step_cost(kind, hidden, m, max(s[1] for s in seg), max(s[0] for s in seg))
                start = i
        best = min(best, total)
    return best


@pytest.mark.parametrize("kind", ["lr", "mlp"])
def test_bucketing_finds_the_cheapest_split_of_the_sorted_shapes(kind):
    """Against every split enumerated: the plan covers each model once, each group is a run of
    the width-sorted shapes padded to its largest rows and width, and its modelled cost is the
    minimum."""
    rng = np.random.default_rng(3 if kind == "lr" else 4)
    for _ in range(30):
        R = int(rng.integers(1, 13))  # <= 12 shapes: 2^11 splits to enumerate
        rows = [int(v) for v in rng.choice([2, 4, 16, 60, 128], size=R)]
        widths = [int(v) for v in rng.choice([1, 3, 8, 40, 150, 400], size=R)]
        groups = plan_groups(rows, widths, 128, kind, 50, bucket=True)
        assert sorted(i for idx, _, _ in groups for i in idx) == list(range(R))
        shapes = sorted(set(zip(widths, rows)))
        count = {s: sum(1 for r in range(R) if (widths[r], rows[r]) == s) for s in shapes}
        runs = []
        for idx, n, d in groups:
            members = sorted({(widths[i], rows[i]) for i in idx})
            assert (n, d) == (max(s[1] for s in members), max(s[0] for s in members))
            assert all(count[s] == sum(1 for i in idx if (widths[i], rows[i]) == s) for s in members)
            runs.append(members)
        assert [s for run in runs for s in run] == shapes  # contiguous runs, in width order
        cost = sum(step_cost(kind, 50, len(idx), n, d) for idx, n, d in groups)
        assert cost == pytest.approx(_brute_force_cost(shapes, count, kind, 50), rel=1e-12)


def test_a_model_with_exactly_batch_size_rows_is_full_batch():
    assert plan_groups([5, 3], [2, 4], 5, "lr", 8, bucket=False) == [([0, 1], 5, 4)]
    assert plan_groups([6, 3], [2, 4], 5, "lr", 8, bucket=False) == [([1], 3, 4), ([0], 6, 2)]


def test_step_cost_grows_with_every_size_and_an_mlp_step_costs_more():
    """Only its ratios matter, so only its shape is tested: a fixed part plus work growing in
    models, rows, features and hidden units."""
    for kind in ("lr", "mlp"):
        base = step_cost(kind, 8, 4, 10, 6)
        assert base > 0
        for R, n, d in [(5, 10, 6), (4, 11, 6), (4, 10, 7), (4, 1000, 6), (4, 10, 500)]:
            assert step_cost(kind, 8, R, n, d) > base, (kind, R, n, d)
        assert step_cost(kind, 8, 4, 1, 1) > step_cost(kind, 8, 1, 1, 1)
        assert step_cost(kind, 8, 1, 1, 2) > step_cost(kind, 8, 1, 1, 1)
        assert step_cost(kind, 8, 1, 2, 1) > step_cost(kind, 8, 1, 1, 1)
    assert step_cost("mlp", 9, 4, 10, 6) > step_cost("mlp", 8, 4, 10, 6)
    for R, n, d in [(1, 1, 1), (4, 10, 6)]:  # the fixed part: ~15-45 tiny ops vs 3 extra for LR
        assert step_cost("mlp", 8, R, n, d) > step_cost("lr", 8, R, n, d)
