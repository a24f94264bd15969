"""A warm `kedro run` (every LLM answer cached), old code vs this checkout, side by side in one run.

Each source gets its own throw-away copy of the project (conf and raw data, as the tests make
it, tests/project_copy.py) with its own answer cache and MLflow store. In each copy one cold
`kedro run` fills the cache (the local llama.cpp model elicits the prior, 30-60 s), then the
warm runs alternate between the code under ``--old-src`` (default /work/main/src) and this
checkout's ``src``, so that both see the same load. Prints the seconds of every run, the
median warm run of each source and their ratio.

    .venv/bin/python benchmarks/bench_warm_run.py                   # diabetes, local LLM, 3 warm runs each
    .venv/bin/python benchmarks/bench_warm_run.py --runs 5 --prior-source oracle   # no LLM at all

Run it with nothing else on the cores if you can: every figure follows the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from project_copy import cli_env, copy_project  # noqa: E402


def kedro_run(project: Path, src: str, args: list[str]) -> float:
    """Seconds of one `kedro run` in ``project`` with ``src`` first on the path (a fresh process)."""
    env = cli_env()
    env["PYTHONPATH"] = src
    cmd = [str(Path(sys.executable).with_name("kedro")), "run", *args]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"`kedro run` with {src} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old-src", default="/work/main/src", help="the code to compare against (a src/ folder)")
    ap.add_argument("--runs", type=int, default=3, help="warm runs per source")
    ap.add_argument("--dataset", default="diabetes", help="diabetes: a plain `kedro run`; else --pipeline <dataset>")
    ap.add_argument("--prior-source", default="local", help="local (cached LLM answers) or oracle, expert, ...")
    args = ap.parse_args(argv)

    sources = {"old": str(Path(args.old_src).resolve()), "new": str(ROOT / "src")}
    run_args = [] if args.dataset == "diabetes" else ["--pipeline", args.dataset]
    if args.prior_source != "local":
        run_args += ["--params", f"prior_source={args.prior_source}"]
    with tempfile.TemporaryDirectory(prefix="bench_warm_run_") as tmp:
        projects = {name: copy_project(Path(tmp) / name, [args.dataset]) for name in sources}
        cold = {name: kedro_run(projects[name], src, run_args) for name, src in sources.items()}
        for name in sources:
            print(f"cold {name}: {cold[name]:.1f} s", flush=True)
        warm: dict[str, list[float]] = {name: [] for name in sources}
        for i in range(args.runs):
            for name, src in sources.items() if i % 2 == 0 else reversed(list(sources.items())):
                warm[name].append(kedro_run(projects[name], src, run_args))
                print(f"warm {name} #{i + 1}: {warm[name][-1]:.1f} s", flush=True)
    med = {name: statistics.median(times) for name, times in warm.items()}
    print(f"\n{args.dataset}, prior_source={args.prior_source}, load average {os.getloadavg()[0]:.1f} at the end")
    print("| code | cold s | warm s (median) | warm s (each) |\n|---|---|---|---|")
    for name in sources:
        each = " / ".join(f"{t:.1f}" for t in warm[name])
        print(f"| {name} ({sources[name]}) | {cold[name]:.1f} | {med[name]:.1f} | {each} |")
    print(f"warm ratio old/new: {med['old'] / med['new']:.2f}x")


if __name__ == "__main__":
    main()
