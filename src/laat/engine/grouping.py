"""Which models train together: a cost model of one training step, and the partition of
ragged models into programs that it makes cheapest."""

from __future__ import annotations


def step_cost(kind: str, hidden: int, R: int, n: int, d: int) -> float:
    """Rough cost of one training step (us) of R stacked models padded to n rows, d features.

    A fixed part (dispatching ~15-45 tiny ops) plus work proportional to the padded sizes;
    measured on the 2-core reference VM. Only its ratios matter: it decides whether padding
    models into one program beats running more programs.
    """
    if kind == "lr":
        return 80.0 + R * d * (2e-3 * n + 0.03)
    return 300.0 + R * hidden * (7.4e-5 * n * d + 8e-3 * n + 4e-3 * d)


def plan_groups(
    rows: list[int], widths: list[int], batch_size: int | None, kind: str, hidden: int, bucket: bool
) -> list[tuple[list[int], int, int]]:
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
                c = best[j] + step_cost(kind, hidden, m, n_max, shapes[i - 1][0])
                if c < best[i]:
                    best[i], cut[i] = c, j
        i, segments = len(shapes), []
        while i > 0:
            segments.append(shapes[cut[i] : i])
            i = cut[i]
        for seg in reversed(segments):
            members = set(seg)
            idx = [r for r in full if (widths[r], rows[r]) in members]
            out.append((idx, max(s[1] for s in seg), max(s[0] for s in seg)))
    for n in sorted({rows[r] for r in range(R) if r not in set(full)}):
        idx = [r for r in range(R) if rows[r] == n]
        out.append((idx, n, max(widths[r] for r in idx)))
    return out
