"""Prior quality of the local model: rank agreement with the oracle, per dataset and strategy.

For every reference dataset and elicitation strategy this elicits a prior from the local
llama.cpp server (bundled SmolLM2-135M unless --gguf is given) and compares it with the
ORACLE prior (logistic regression fit on the full labelled data; an upper bound, not a
prior anyone could have): Spearman of the signed scores, Spearman of the magnitudes, and
sign agreement; plus the calls, tokens and wall time the elicitation cost.

Answers are cached in --cache-dir (default data/llm_cache), so a rerun only prints the
table; wall time and tokens are those of the run that paid for the calls (from the cache
record), so the figures stay meaningful on reruns. Run it alone: other jobs on the same
cores slow llama.cpp down many times over.

    .venv/bin/python benchmarks/bench_priors.py                      # all datasets, all strategies
    .venv/bin/python benchmarks/bench_priors.py --datasets diabetes --strategies yes_no direct
    .venv/bin/python benchmarks/bench_priors.py --strategies yes_no yes_no:plain   # with/without the mirror

A ``:plain`` suffix runs yes_no / elimination without the mirrored "less likely?" question
(``yes_no_mirror=False``), i.e. as they were before the mirror was added; ``:json`` and
``:compact`` run per_feature with the JSON-schema answer or the prefilled compact one
(``compact_answer`` off / on).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from laat.datasets import load_dataset, load_metadata  # noqa: E402
from laat.elicit import STRATEGIES, ElicitationSettings, run_elicitation  # noqa: E402
from laat.priors import oracle_prior_from_frame, random_prior  # noqa: E402

# strategy suffix -> ElicitationSettings overrides
VARIANTS = {
    "": {},
    "plain": {"yes_no_mirror": False},
    "json": {"compact_answer": False},
    "compact": {"compact_answer": True},
}

DATASETS = ["diabetes", "breast_ljubljana", "contraceptive", "indian_liver", "myocardial", "bodyfat", "electricity"]


def _rho(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")  # a constant vector has no ranking
    return float(spearmanr(a, b).statistic)


def agreement(prior_mean, oracle_mean) -> dict[str, float]:
    p, o = np.asarray(prior_mean, float), np.asarray(oracle_mean, float)
    nz = o != 0
    return {
        "rho": _rho(p, o),
        "rho_abs": _rho(np.abs(p), np.abs(o)),
        "sign_agree": float(np.mean(np.sign(p[nz]) == np.sign(o[nz]))) if nz.any() else float("nan"),
    }


def _paid_cost(record) -> tuple[float, int, int]:
    """Latency and tokens of every call, whether paid now or earlier (read back from the cache)."""
    lat = sum(c["latency_s"] for c in record["calls"])
    tin = sum(int(c["usage"].get("prompt_tokens") or 0) for c in record["calls"])
    tout = sum(int(c["usage"].get("completion_tokens") or 0) for c in record["calls"])
    return lat, tin, tout


def fmt(x: float) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=DATASETS)
    ap.add_argument(
        "--strategies",
        nargs="+",
        default=list(STRATEGIES),
        help="strategy names; yes_no:plain / elimination:plain = without the mirrored question, "
        "per_feature:json / per_feature:compact = the answer's form",
    )
    ap.add_argument("--n-samples", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--reasoning-max-tokens", type=int, default=512)
    ap.add_argument(
        "--max-rank-steps", type=int, default=15, help="elimination: rank only the top k (keeps d=144 affordable)"
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="llama.cpp threads (2 can help only on an otherwise idle machine)"
    )
    ap.add_argument("--gguf", default=None, help="your own GGUF instead of the bundled SmolLM2")
    ap.add_argument("--cache-dir", default=str(ROOT / "data" / "llm_cache"))
    ap.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    for strategy in args.strategies:
        name_, _, variant = strategy.partition(":")
        if name_ not in STRATEGIES or variant not in VARIANTS:
            ap.error(
                f"unknown strategy {strategy!r}: use one of {list(STRATEGIES)}, optionally one of {list(VARIANTS)[1:]}"
            )

    rows = []
    for name in args.datasets:
        meta = load_metadata(ROOT / "conf" / "base" / "datasets" / f"{name}.yml")
        oracle = oracle_prior_from_frame(load_dataset(meta, ROOT), meta)
        # Null distribution: what rank agreement a knowledge-free prior reaches by chance.
        null = [agreement(random_prior(meta.encoded_columns, seed).mean, oracle.mean) for seed in range(200)]
        rows.append(
            {
                "dataset": name,
                "d": len(meta.encoded_columns),
                "strategy": "random control (200 seeds)",
                **{k: float(np.nanmean([a[k] for a in null])) for k in ("rho", "rho_abs", "sign_agree")},
                "rho_sd": float(np.nanstd([a["rho"] for a in null])),
                "calls": 0,
                "tokens_in": 0,
                "tokens_out": 0,
                "llm_s": 0.0,
                "wall_s": 0.0,
            }
        )
        for strategy in args.strategies:
            name_, _, variant = strategy.partition(":")
            settings = ElicitationSettings(
                source="local",
                strategy=name_,
                n_samples=args.n_samples,
                temperature=args.temperature,
                gguf_path=args.gguf,
                reasoning_max_tokens=args.reasoning_max_tokens,
                max_rank_steps=args.max_rank_steps,
                cache_dir=args.cache_dir,
                n_threads=args.threads,
                **VARIANTS[variant],
            )
            t0 = time.perf_counter()
            try:
                e = run_elicitation(meta, settings)
            except Exception as exc:  # report and carry on with the other cells
                rows.append(
                    {
                        "dataset": name,
                        "d": len(meta.encoded_columns),
                        "strategy": strategy,
                        "error": f"{type(exc).__name__}: {exc}"[:300],
                    }
                )
                print(f"[{name} / {strategy}] FAILED: {exc}", file=sys.stderr, flush=True)
                continue
            wall = time.perf_counter() - t0
            lat, tin, tout = _paid_cost(e.record)
            row = {
                "dataset": name,
                "d": len(meta.encoded_columns),
                "strategy": strategy,
                **agreement(e.prior.mean, oracle.mean),
                "calls": e.prior.provenance["calls"],
                "fresh_calls": e.prior.provenance["fresh_calls"],
                "tokens_in": tin,
                "tokens_out": tout,
                "llm_s": round(lat, 1),
                "wall_s": round(wall, 1),
                "mean": e.prior.mean,
            }
            rows.append(row)
            print(
                f"[{name} / {strategy}] rho={fmt(row['rho'])} |rho|={fmt(row['rho_abs'])} "
                f"sign={row['sign_agree']:.2f} calls={row['calls']} fresh={row['fresh_calls']} "
                f"tokens={tin}/{tout} llm={lat:.1f}s wall={wall:.1f}s",
                file=sys.stderr,
                flush=True,
            )

    print(
        f"\nLocal-model priors vs ORACLE (LR on all labelled rows), n_samples={args.n_samples}, "
        f"T={args.temperature}, elimination top-{args.max_rank_steps}, model={'bundled SmolLM2-135M' if not args.gguf else args.gguf}\n"
    )
    print(
        "| dataset | d | strategy | Spearman (signed) | Spearman (|score|) | sign agreement | calls "
        "| tokens in/out | LLM time (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['dataset']} | {r['d']} | {r['strategy']} | FAILED: {r['error'][:80]} | | | | | |")
            continue
        rho = fmt(r["rho"]) + (f" ± {r['rho_sd']:.2f} (sd)" if "rho_sd" in r else "")
        print(
            f"| {r['dataset']} | {r['d']} | {r['strategy']} | {rho} | {fmt(r['rho_abs'])} "
            f"| {r['sign_agree']:.2f} | {r['calls']} | {r['tokens_in']}/{r['tokens_out']} | {r['llm_s']:.1f} |"
        )
    ok = [r for r in rows if "error" not in r]
    if ok:
        print("\nMean over datasets (nan = constant prior, counted as 0):\n")
        print(
            "| strategy | mean Spearman (signed) | mean Spearman (|score|) | mean sign agreement "
            "| total LLM time (s) | tokens in/out |"
        )
        print("|---|---|---|---|---|---|")
        for s in [*args.strategies, "random control (200 seeds)"]:
            rs = [r for r in ok if r["strategy"] == s]
            if not rs:
                continue

            def m(k, rs=rs):
                return float(np.mean([0.0 if math.isnan(r[k]) else r[k] for r in rs]))

            print(
                f"| {s} | {fmt(m('rho'))} | {fmt(m('rho_abs'))} | {m('sign_agree'):.2f} "
                f"| {sum(r['llm_s'] for r in rs):.0f} | {sum(r['tokens_in'] for r in rs)}/"
                f"{sum(r['tokens_out'] for r in rs)} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
