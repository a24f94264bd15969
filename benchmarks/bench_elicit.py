"""Cold local elicitation, old code vs this checkout, side by side in one run.

Each round elicits the same datasets' priors with an empty answer cache, once with the code
under ``--old-src`` (default /work/main/src: one llama.cpp slot, no prompt cache, questions
one at a time) and once with this checkout's ``src`` (slots, prompt cache, concurrent
questions), in fresh processes, alternating, and prints calls/s and their ratio. It then
compares every answer of the new run with a cold evaluation of the same prompt (one slot,
no prompt cache) to show how often a reused prefix or a batch changed an answer.

    .venv/bin/python benchmarks/bench_elicit.py --datasets diabetes
    .venv/bin/python benchmarks/bench_elicit.py --datasets myocardial --n-samples 1

Run it with nothing else on the cores if you can: llama.cpp's speed follows the load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in a child process, so that the old and the new code never share an import.
CHILD = r"""
import json, sys, time
from laat.datasets import load_metadata
from laat.elicit import run_elicitation
import laat.elicit.run as R
name, cache_dir, n_samples, cold = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "cold"
overrides = {}
if cold:  # the reference: one slot, every prompt evaluated from scratch
    R.LocalEndpoint.extra_body = {"cache_prompt": False}
    overrides["concurrency"] = 1
meta = load_metadata(name, sys.argv[5])
t0 = time.perf_counter()
e = run_elicitation(meta, source="local", n_samples=n_samples, cache_dir=cache_dir, progress=False, **overrides)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "calls": e.prior.provenance["fresh_calls"],
                  "answers": {f"{c['sample']}/{c['step']}/{c['attempt']}": c["response"] for c in e.record["calls"]},
                  "mean": e.prior.mean}))
"""


def child(src: str, name: str, n_samples: int, cold: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=src, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                name,
                cache,
                str(n_samples),
                "cold" if cold else "new",
                str(ROOT / "conf" / "base" / "datasets"),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["diabetes"])
    ap.add_argument("--n-samples", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--old-src", default="/work/main/src")
    ap.add_argument("--no-reference", action="store_true", help="skip the cold-evaluation answer comparison")
    args = ap.parse_args(argv)
    print(f"load average at start: {os.getloadavg()}")
    for name in args.datasets:
        for r in range(args.rounds):
            old = child(args.old_src, name, args.n_samples)
            new = child(str(ROOT / "src"), name, args.n_samples)
            o, n = old["calls"] / old["wall_s"], new["calls"] / new["wall_s"]
            print(
                f"{name} round {r}: old {old['calls']} calls in {old['wall_s']:.1f} s ({o:.2f}/s), "
                f"new {new['calls']} calls in {new['wall_s']:.1f} s ({n:.2f}/s): {n / o:.1f}x calls/s, "
                f"{old['wall_s'] / new['wall_s']:.1f}x wall"
            )
        if not args.no_reference:
            ref = child(str(ROOT / "src"), name, args.n_samples, cold=True)
            same = sum(ref["answers"].get(k) == v for k, v in new["answers"].items())
            print(
                f"{name}: {same} of {len(new['answers'])} answers identical to a cold one-slot evaluation "
                f"(reference took {ref['wall_s']:.1f} s); prior mean max |diff| "
                f"{max(abs(a - b) for a, b in zip(ref['mean'], new['mean'])):.3f}"
            )
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
