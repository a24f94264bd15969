"""Cold local elicitation, old code vs this checkout, side by side in one run.

Each round elicits the same datasets' priors with an empty answer cache, once with the code
of ``--old-rev`` (default: the commit before local elicitation got slots, i.e. one llama.cpp
slot, no prompt cache, questions one at a time, a JSON answer per feature), once with each
``--also-rev`` and once with this checkout's ``src``, in fresh processes, one after the
other, and prints calls/s and the ratio to the old code. It then compares every answer of
the new run with a cold evaluation of the same prompt (one slot, no prompt cache) to show
how often a reused prefix or a batch changed an answer.

    .venv/bin/python benchmarks/bench_elicit.py --datasets diabetes
    .venv/bin/python benchmarks/bench_elicit.py --datasets myocardial --n-samples 1 --no-reference
    .venv/bin/python benchmarks/bench_elicit.py --also-rev main --new-settings '{}' '{"local_slots": 5}'

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
overrides = json.loads(sys.argv[6])
if cold:  # the reference: one slot, every prompt evaluated from scratch
    R.LocalEndpoint.extra_body = {"cache_prompt": False}
    overrides.update(concurrency=1, local_slots=1)
meta = load_metadata(name, sys.argv[5])
t0 = time.perf_counter()
e = run_elicitation(meta, source="local", n_samples=n_samples, cache_dir=cache_dir, progress=False, **overrides)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "calls": e.prior.provenance["fresh_calls"],
                  "answers": {f"{c['sample']}/{c['step']}/{c['attempt']}": c["response"] for c in e.record["calls"]},
                  "mean": e.prior.mean}))
"""


# The code before local elicitation used llama.cpp's slots and prompt cache (commit 51af9ef).
OLD_REV = "51af9ef^"


def export_rev(rev: str, into: str) -> str:
    """``src`` of git revision ``rev`` written under ``into``; its path."""
    Path(into).mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return str(Path(into) / "src")


def child(src: str, name: str, n_samples: int, cold: bool = False, overrides: dict | None = None) -> dict:
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
                json.dumps(overrides or {}),
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
    ap.add_argument("--old-rev", default=OLD_REV, help="git revision of the old code")
    ap.add_argument("--old-src", default=None, help="a src directory to use instead of --old-rev")
    ap.add_argument("--no-old", action="store_true", help="skip the old code (it re-reads every prompt: slow)")
    ap.add_argument("--also-rev", nargs="*", default=[], help="more git revisions to time, e.g. main")
    ap.add_argument(
        "--new-settings",
        nargs="+",
        default=["{}"],
        help="JSON of ElicitationSettings overrides for this checkout; several: one run each",
    )
    ap.add_argument("--no-reference", action="store_true", help="skip the cold-evaluation answer comparison")
    args = ap.parse_args(argv)
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        old_src = args.old_src or export_rev(args.old_rev, tmp + "/old")
        others = {rev: export_rev(rev, f"{tmp}/rev{i}") for i, rev in enumerate(args.also_rev)}
        variants = [json.loads(v) for v in args.new_settings]
        for name in args.datasets:
            for r in range(args.rounds):
                old = (
                    {"calls": float("nan"), "wall_s": float("nan")}
                    if args.no_old
                    else child(old_src, name, args.n_samples)
                )
                o = old["calls"] / old["wall_s"]
                print(f"{name} round {r}: old {old['calls']} calls in {old['wall_s']:.1f} s ({o:.2f}/s)", flush=True)
                runs = {rev: (src, {}) for rev, src in others.items()} | {
                    f"new {json.dumps(v)}" if v else "new": (str(ROOT / "src"), v) for v in variants
                }
                for label, (src, overrides) in runs.items():
                    res = child(src, name, args.n_samples, overrides=overrides)
                    n = res["calls"] / res["wall_s"]
                    print(
                        f"{name} round {r}: {label} {res['calls']} calls in {res['wall_s']:.1f} s ({n:.2f}/s): "
                        f"{n / o:.1f}x calls/s, {old['wall_s'] / res['wall_s']:.1f}x wall",
                        flush=True,
                    )
                new = res
            if not args.no_reference:
                ref = child(str(ROOT / "src"), name, args.n_samples, cold=True, overrides=variants[-1])
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
