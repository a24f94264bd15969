"""The benchmark sweep, old code vs this checkout, side by side in one run (issue 16).

Runs `laat_research.sweep.run_sweep` on the same slice of the default configuration
(`conf/base/parameters_benchmark.yml`, with the overrides below) once with the ``src`` of
``--old-rev`` (default: the commit before the sweep was made faster) and once with this
checkout's ``src``, each in a fresh process with an empty cell cache, and prints the wall
time of each, their ratio, the load average, and the two result tables: mean ROC AUC per
(dataset, protocol, k, method, prior source) with its standard deviation over the
repetitions, the largest difference and how many cells differ at all.

    .venv/bin/python benchmarks/bench_sweep.py --datasets diabetes,myocardial --repetitions 4
    .venv/bin/python benchmarks/bench_sweep.py --only-new --repetitions 20   # the full default sweep

``llm_local`` is left out unless ``--with-llm`` (its answers then come from the elicitation
cache, or from the local model: slow the first time). ``--order old,new`` runs the old code
first (default new first, so the old code does not profit from a warm file cache).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The commit before the sweep got numpy metrics, per-group splits and its own grid search.
OLD_REV = "dc03e67"

# Runs in a child process, so that the old and the new code never share an import.
CHILD = r"""
import json, sys, time
import yaml
t0 = time.perf_counter()
from laat_research.config import BenchmarkConfig
from laat_research.sweep import run_sweep
params = yaml.safe_load(open(sys.argv[1]))["benchmark"]
params.update(json.loads(sys.argv[2]))
cfg = BenchmarkConfig(**params)
result = run_sweep(cfg)
result.results.to_pickle(sys.argv[3])
print(json.dumps({"wall_s": time.perf_counter() - t0, "cells": result.info["cells_computed"],
                  "slowest": result.info["slowest_cells"]}))
"""


def export_rev(rev: str, into: str) -> str:
    """``src`` of git revision ``rev`` written under ``into``; its path."""
    Path(into).mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return str(Path(into) / "src")


def run(src: str, overrides: dict, out: str) -> dict:
    env = dict(os.environ, PYTHONPATH=src, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    conf = str(ROOT / "conf" / "base" / "parameters_benchmark.yml")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, conf, json.dumps(overrides), out],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def overrides_from(args, cache_dir: str) -> dict:
    import yaml

    base = yaml.safe_load((ROOT / "conf" / "base" / "parameters_benchmark.yml").read_text())["benchmark"]
    o: dict = {"cache_dir": cache_dir, "progress": False, "n_jobs": args.n_jobs}
    if args.datasets:
        o["datasets"] = args.datasets.split(",")
    if args.repetitions:
        o["repetitions"] = args.repetitions
    if not args.with_llm:
        o["prior_sources"] = [s for s in base["prior_sources"] if s != "llm_local"]
    return o


def auc_table(results):
    keys = ["dataset", "protocol", "k", "method", "prior_source"]
    return results.groupby(keys)["roc_auc"].agg(["mean", "std", "count"])


def compare(old, new) -> None:
    """Print both tables side by side and how far apart they are, against the repetition noise."""
    import pandas as pd

    a, b = auc_table(old), auc_table(new)
    both = a.add_suffix("_old").join(b.add_suffix("_new"), how="outer")
    both["diff"] = both["mean_new"] - both["mean_old"]
    both["se"] = (both["std_old"] / both["count_old"] ** 0.5).fillna(0)
    with pd.option_context("display.max_rows", None, "display.width", 160, "display.float_format", "{:.4f}".format):
        print(both[["mean_old", "mean_new", "diff", "std_old", "count_old"]].to_string())
    differ = both["diff"].abs() > 0
    print(
        f"\ncells: {len(both)}; mean AUC identical in {int((~differ).sum())}, different in {int(differ.sum())}; "
        f"largest |difference| {both['diff'].abs().max():.2e}; largest |difference| / standard error "
        f"{(both['diff'].abs() / both['se'].where(both['se'] > 0)).max():.2f}"
    )
    if "best_params" in old and "best_params" in new:
        keys = ["dataset", "protocol", "k", "method", "repetition"]
        bo = old[old["tuned"].astype(bool)].set_index(keys)["best_params"]
        bn = new[new["tuned"].astype(bool)].set_index(keys)["best_params"]
        same = (bo == bn.reindex(bo.index)).sum()
        print(f"baseline searches choosing the same parameters: {same} of {len(bo)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old-rev", default=OLD_REV)
    ap.add_argument("--datasets", default="", help="comma-separated; default: the configured seven")
    ap.add_argument("--repetitions", type=int, default=0, help="default: the configured 20")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--with-llm", action="store_true", help="keep llm_local among the prior sources")
    ap.add_argument("--only-new", action="store_true", help="time this checkout only")
    ap.add_argument("--order", default="new,old")
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        srcs = {"new": str(ROOT / "src")}
        if not args.only_new:
            srcs["old"] = export_rev(args.old_rev, f"{tmp}/old")
        tables, walls = {}, {}
        for name in [n for n in args.order.split(",") if n in srcs]:
            t0 = time.perf_counter()
            info = run(srcs[name], overrides_from(args, f"{tmp}/cache-{name}"), f"{tmp}/{name}.pkl")
            walls[name] = time.perf_counter() - t0
            print(
                f"{name:>3}: {walls[name]:7.1f} s wall (process), {info['cells']} cells, "
                f"load average now {os.getloadavg()[0]:.1f}; slowest cells: "
                + ", ".join(f"{k} {v:.0f} s" for k, v in list(info["slowest"].items())[:3]),
                flush=True,
            )
            import pandas as pd

            tables[name] = pd.read_pickle(f"{tmp}/{name}.pkl")
        if "old" in walls:
            print(f"\nold / new wall time: {walls['old'] / walls['new']:.2f}x\n")
            compare(tables["old"], tables["new"])
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
