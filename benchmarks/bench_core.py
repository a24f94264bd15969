"""Speed of the LAAT core on this machine: `make bench` (= .venv/bin/python benchmarks/bench_core.py).

Prints, in one run:
  1. fits/s for LR and MLP at k = 1/5/10 over the 7 reference datasets (20 repetitions each),
     with the attribution term (gamma = 100) and without it (gamma = 0), and their time ratio;
  2. the full few-shot protocol: 7 datasets x k in {1,5,10} x 20 repetitions x LR+MLP = 840
     fits of 200 epochs, (a) as one `fit_many` call per model (ragged inputs, which it pads and
     buckets into a few programs) and (b) as one program per (dataset, k) cell; compared with
     the paper's public implementation (skorch, one fit at a time, ~4.2 fits/s on this 2-core
     machine, ~200 s: the figure given in the issue, not re-measured here);
  3. batched vs one-by-one: the same fits one at a time (fit_many with R = 1, the path
     LAATClassifier.fit takes), LAATClassifier.fit itself, and an ordinary PyTorch loop
     (nn.Module + autograd double back-prop + torch.optim.Adam), timed on a sample of cells.

Priors are RANDOM (seeded uniform integers, laat.priors.random_prior): the prior's values do not
change the amount of work, and no LLM is needed to time the core. No accuracy is reported here.
Splits are the protocol's (laat.splits.few_shot_split, seed 69); Min-Max scaling is fitted on
each repetition's training rows. Timings are the best of --repeat interleaved runs, wall clock,
with this process's cpu time alongside (other processes share the 2 cores; the load average is
printed at start and end). Regulariser overheads (gamma=100 time / gamma=0 time) are taken within
each round, where both ran back to back, and printed as the median (min-max) over rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

from laat.attribution import laat_loss, normalized_target
from laat.datasets import encode, labels, load_dataset, load_metadata
from laat.engine import fit_many, minmax_stack
from laat.estimator import LAATClassifier
from laat.hyperparams import DEFAULTS, MODELS
from laat.priors import random_prior
from laat.splits import few_shot_split

DATASETS = ["diabetes", "breast_ljubljana", "contraceptive", "indian_liver", "myocardial", "bodyfat", "electricity"]
KS = (1, 5, 10)
REPS = 20
GAMMA = DEFAULTS.gamma  # the attribution weight timed against gamma = 0: the default (the paper's)
SEED = 69
REFERENCE_FITS_PER_S = 4.2  # paper's public implementation (skorch), from the issue
TARGET_SPEEDUP = 50.0
TARGET_OVERHEAD = 1.3


@dataclass
class Cell:
    dataset: str
    k: int
    X: torch.Tensor  # (REPS, 2k, d) scaled training rows
    y: torch.Tensor  # (REPS, 2k)
    target: np.ndarray  # normalised target of the RANDOM prior
    seeds: list[int]
    raw: np.ndarray  # (REPS, 2k, d) unscaled rows, for the estimator path
    raw_y: np.ndarray


def load_cells() -> tuple[list[Cell], float]:
    """Splits and per-repetition scaling for every (dataset, k); returns cells and scaling time."""
    cells, t_scale = [], 0.0
    for name in DATASETS:
        meta = load_metadata(name, "conf/base/datasets")  # run from the project root, as documented
        df = load_dataset(meta)
        X = encode(df, meta).to_numpy(dtype=np.float32)
        y = labels(df, meta)
        prior = random_prior(meta.encoded_columns, seed=0)
        target = normalized_target(prior.mean).numpy()
        for k in KS:
            idx = [few_shot_split(y, k, seed=SEED, repetition=r)[0] for r in range(REPS)]
            raw = np.stack([X[i] for i in idx])
            t0 = time.perf_counter()
            (Xs,) = minmax_stack(raw)
            t_scale += time.perf_counter() - t0
            ys = torch.tensor(np.stack([y[i] for i in idx]), dtype=torch.float32)
            seeds = [SEED * 1000 + k * 100 + r for r in range(REPS)]
            cells.append(Cell(name, k, Xs, ys, target, seeds, raw, np.stack([y[i] for i in idx])))
    return cells, t_scale


def flat(cells: list[Cell]) -> tuple[list, list, list, list]:
    """All repetitions of the given cells as one ragged list (fit_many pads and buckets)."""
    return (
        [x for c in cells for x in c.X],
        [y for c in cells for y in c.y],
        [c.target for c in cells for _ in range(REPS)],
        [s for c in cells for s in c.seeds],
    )


def fit_one_call(cells: list[Cell], model: str, gamma: float) -> None:
    X, y, t, seeds = flat(cells)
    fit_many(X, y, t, model=model, gamma=gamma, seeds=seeds)


def fit_per_cell(cells: list[Cell], model: str, gamma: float) -> None:
    for c in cells:
        fit_many(c.X, c.y, c.target, model=model, gamma=gamma, seeds=c.seeds)


@dataclass
class Timing:
    """Wall and cpu seconds of each call in each round of `timed`."""

    wall: list[list[float]]  # [call][round]
    cpu: list[list[float]]

    def best(self, i: int) -> tuple[float, float]:
        return min(self.wall[i]), min(self.cpu[i])

    def ratio(self, num: list[int], den: list[int], cpu: bool = False) -> tuple[float, float, float]:
        """Median, min and max over rounds of sum(t[num]) / sum(t[den]) within each round.

        Both sides of a ratio run back to back in the same round, so load that drifts over
        seconds cancels; the spread over rounds shows the noise that is left.
        """
        t = self.cpu if cpu else self.wall
        r = sorted(sum(t[i][k] for i in num) / sum(t[i][k] for i in den) for k in range(len(t[0])))
        return statistics.median(r), r[0], r[-1]


def timed(repeat: int, *calls) -> Timing:
    """Time each (fn, *args) call once per round, ``repeat`` interleaved rounds.

    Interleaving keeps slow drifts of the machine's load out of the ratios; cpu time (this
    process only) is less hurt by other processes than wall time.
    """
    t = Timing([[] for _ in calls], [[] for _ in calls])
    for _ in range(repeat):
        for i, (fn, *args) in enumerate(calls):
            w0, c0 = time.perf_counter(), time.process_time()
            fn(*args)
            t.wall[i].append(time.perf_counter() - w0)
            t.cpu[i].append(time.process_time() - c0)
    return t


def fmt_ratio(t: Timing, num: list[int], den: list[int]) -> str:
    """'median (min-max)' of the wall-clock ratio, then the median cpu-time ratio."""
    w, c = t.ratio(num, den), t.ratio(num, den, cpu=True)
    return f"{w[0]:.2f}x ({w[1]:.2f}-{w[2]:.2f}; cpu {c[0]:.2f}x)"


# ---- one-by-one references --------------------------------------------------------------------


def one_by_one_core(cells, model, reps):
    t0 = time.perf_counter()
    for c in cells:
        for r in range(reps):
            fit_many(c.X[r : r + 1], c.y[r : r + 1], c.target, model=model, gamma=GAMMA, seeds=[c.seeds[r]])
    return time.perf_counter() - t0


def one_by_one_estimator(cells, model, reps):
    t0 = time.perf_counter()
    for c in cells:
        prior = list(c.target)  # positional prior: arrays carry no feature names
        for r in range(reps):
            LAATClassifier(model=model, prior=prior, random_state=c.seeds[r]).fit(c.raw[r], c.raw_y[r])
    return time.perf_counter() - t0


def naive_torch_fit(x: torch.Tensor, y: torch.Tensor, target: torch.Tensor, model: str, seed: int) -> None:
    """How one would write it directly: nn.Module, autograd double back-prop, torch.optim.Adam."""
    torch.manual_seed(seed)
    d = x.shape[1]
    net = (
        torch.nn.Linear(d, 1)
        if model == "lr"
        else torch.nn.Sequential(torch.nn.Linear(d, 100), torch.nn.ReLU(), torch.nn.Linear(100, 1))
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    fwd = lambda inp: net(inp).squeeze(-1)  # noqa: E731
    for _ in range(200):
        opt.zero_grad()
        total, _, _ = laat_loss(fwd, x, y, target, GAMMA)
        total.backward()
        opt.step()


def one_by_one_naive(cells, model, reps):
    t0 = time.perf_counter()
    for c in cells:
        t = torch.tensor(c.target, dtype=torch.float32)
        for r in range(reps):
            naive_torch_fit(c.X[r], c.y[r], t, model, c.seeds[r])
    return time.perf_counter() - t0


def check_batched_equals_single(cells) -> float:
    """Guard: the batched program gives the same models as one-at-a-time fits."""
    worst = 0.0
    for c in (cells[1], cells[-1]):
        for model in MODELS:
            many = fit_many(c.X, c.y, c.target, model=model, seeds=c.seeds)
            for r in (0, REPS - 1):
                one = fit_many(c.X[r : r + 1], c.y[r : r + 1], c.target, model=model, seeds=[c.seeds[r]])
                a, b = many.select(r).logits(c.X[r])[0], one.logits(c.X[r])[0]
                worst = max(worst, float((a - b).abs().max()))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: the ops are tiny, a 2nd thread only spins)",
    )
    ap.add_argument("--repeat", type=int, default=5, help="timings are the best of this many runs")
    ap.add_argument(
        "--sample-reps", type=int, default=2, help="repetitions per cell timed one-by-one (core and estimator paths)"
    )
    ap.add_argument(
        "--sections",
        default="1,2,3",
        help="comma-separated sections to run (default 1,2,3; e.g. 1 for the per-k overhead only)",
    )
    args = ap.parse_args()
    sections = {int(x) for x in args.sections.split(",")}
    torch.set_num_threads(args.threads)

    print(
        f"bench_core: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"load average {os.getloadavg()[0]:.2f} at start"
    )
    cells, t_scale = load_cells()
    print(
        f"{len(cells)} cells ({len(DATASETS)} datasets x k in {KS}) x {REPS} repetitions; "
        "priors: RANDOM (timing only). Times: best of "
        f"{args.repeat}, wall clock (cpu time of this process in brackets)"
    )
    for m in MODELS:  # warm-up: first-call allocations and lazy imports
        fit_per_cell(cells[:2], m, GAMMA)
    worst = check_batched_equals_single(cells)
    print(f"check: batched == one-at-a-time fits, max |logit difference| = {worst:.1e}")

    rows = {}
    if 1 in sections:  # fits/s per model and k, regularised and plain
        print("\n1. fits/s per k (7 datasets x 20 repetitions = 140 fits, one fit_many call); reg/plain: median")
        print("   (min-max) over the rounds of the within-round wall-clock ratio, and the median cpu-time ratio")
        print(f"   {'model':5} {'k':>3} {f'gamma={GAMMA:g}':>18} {'gamma=0':>18} {'reg/plain':>30}")
        for m in MODELS:
            for k in KS:
                sub = [c for c in cells if c.k == k]
                n = len(sub) * REPS
                t = timed(args.repeat, (fit_one_call, sub, m, GAMMA), (fit_one_call, sub, m, 0.0))
                (rw, rc), (pw, pc) = t.best(0), t.best(1)
                print(
                    f"   {m:5} {k:>3} {n / rw:>9.0f} ({n / rc:>5.0f}) {n / pw:>9.0f} ({n / pc:>5.0f}) "
                    f"{fmt_ratio(t, [0], [1]):>30}"
                )

    n_fits = len(cells) * REPS * len(MODELS)
    ref_s = n_fits / REFERENCE_FITS_PER_S
    if 2 in sections:  # the full protocol
        print(
            f"\n2. full few-shot protocol: {n_fits} fits x 200 epochs "
            f"({len(DATASETS)} datasets x k in {KS} x {REPS} repetitions x LR+MLP)"
        )
        for label, fn in (
            ("one fit_many call per model", fit_one_call),
            ("one program per (dataset, k)", fit_per_cell),
        ):
            t = timed(args.repeat, *[(fn, cells, m, g) for g in (GAMMA, 0.0) for m in MODELS])
            rows[(label, GAMMA)], rows[(label, 0.0)] = [t.best(0), t.best(1)], [t.best(2), t.best(3)]
            (lw, lc), (mw, mc) = rows[(label, GAMMA)]
            (plw, plc), (pmw, pmc) = rows[(label, 0.0)]
            tw, tc = lw + mw, lc + mc
            print(f"   {label}:")
            print(
                f"     gamma={GAMMA:g}: {tw:.2f} s ({tc:.2f} s cpu) = {n_fits / tw:.0f} fits/s "
                f"[LR {lw:.2f} s, MLP {mw:.2f} s]"
            )
            print(
                f"     gamma=0:   {plw + pmw:.2f} s ({plc + pmc:.2f} s cpu) = {n_fits / (plw + pmw):.0f} fits/s "
                f"[LR {plw:.2f} s, MLP {pmw:.2f} s]"
            )
            print(
                f"     regulariser overhead: overall {fmt_ratio(t, [0, 1], [2, 3])}, "
                f"LR {fmt_ratio(t, [0], [2])}, MLP {fmt_ratio(t, [1], [3])}"
            )
        (lw, lc), (mw, mc) = rows[("one fit_many call per model", GAMMA)]
        best_w, best_c = lw + mw, lc + mc
        print(f"   + {t_scale * 1e3:.0f} ms to Min-Max scale all {len(cells) * REPS} training sets")
        print(
            f"   vs the paper's implementation ({REFERENCE_FITS_PER_S} fits/s, ~{ref_s:.0f} s): "
            f"{n_fits / best_w / REFERENCE_FITS_PER_S:.0f}x faster by wall clock "
            f"({n_fits / best_c / REFERENCE_FITS_PER_S:.0f}x by cpu time); target >= {TARGET_SPEEDUP:.0f}x, "
            f"i.e. <= {ref_s / TARGET_SPEEDUP:.1f} s"
        )
        print(f"   regulariser overhead target <= {TARGET_OVERHEAD}x (paper's implementation: 1.4x)")

    if 3 in sections:  # batched vs one-by-one
        print(
            f"\n3. batched vs one-by-one (gamma={GAMMA:g}; one-by-one timed on {args.sample_reps} repetitions of "
            "every cell, the naive loop on 1)"
        )
        print(
            f"   {'model':5} {'batched':>9} {'R=1 core':>9} {'estimator':>10} {'naive':>8} "
            f"{'batched/R=1':>12} {'batched/naive':>14}   (fits/s, wall clock)"
        )
        if not rows:
            t = timed(args.repeat, *[(fit_one_call, cells, m, GAMMA) for m in MODELS])
            rows[("one fit_many call per model", GAMMA)] = [t.best(i) for i in range(len(MODELS))]
        for i, m in enumerate(MODELS):
            batched = len(cells) * REPS / rows[("one fit_many call per model", GAMMA)][i][0]
            n_core = len(cells) * args.sample_reps
            core = n_core / one_by_one_core(cells, m, args.sample_reps)
            est = n_core / one_by_one_estimator(cells, m, args.sample_reps)
            naive = len(cells) / one_by_one_naive(cells, m, 1)
            print(
                f"   {m:5} {batched:>9.0f} {core:>9.1f} {est:>10.1f} {naive:>8.1f} "
                f"{batched / core:>11.0f}x {batched / naive:>13.0f}x"
            )
        print("   R=1 core: fit_many on one repetition at a time; estimator: LAATClassifier.fit (adds input")
        print("   validation and scaling); naive: nn.Module + autograd double back-prop + torch.optim.Adam.")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
