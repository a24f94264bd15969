"""Run every cell of a benchmark, in parallel, resumably.

Cells go to joblib workers on the local cores, or, when ``dask_scheduler`` is set, to a
Dask distributed cluster through joblib's Dask backend. Workers only compute: the main
process writes each finished cell to ``cache_dir/<dataset>/<hash>.json`` as soon as it
arrives, so an interrupted sweep resumes where it stopped and a rerun with the same
configuration computes nothing. The result table is assembled in plan order, so it is
identical whichever backend ran the cells and in whatever order they finished.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from laat.jsonable import json_default
from laat_research.cells import (
    CODE_VERSION,
    Cell,
    DatasetContext,
    cell_hash,
    plan_cells,
    prepare_dataset,
    run_cell,
    trust_rule_fingerprint,
)
from laat_research.config import BenchmarkConfig


@dataclass
class SweepResult:
    results: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def _cache_path(cfg: BenchmarkConfig, cell: Cell, digest: str) -> Path:
    return Path(cfg.cache_dir) / cell.dataset / f"{digest}.json"


def load_cached(path: Path) -> list[dict[str, Any]] | None:
    """Rows of a finished cell, or None if absent or unreadable (then it is recomputed)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))["rows"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return None


def store(path: Path, cell: Cell, digest: str, rows: list[dict[str, Any]]) -> None:
    """Atomic write: a sweep killed mid-write leaves no half file that would pass as done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(
        json.dumps(
            {"cell": cell.key(), "hash": digest, "code_version": CODE_VERSION, "rows": rows}, default=json_default
        ),
        encoding="utf-8",
    )
    os.replace(tmp, path)


def _run_one(cell: Cell, ctx: DatasetContext, cfg: BenchmarkConfig) -> tuple[Cell, list[dict[str, Any]], float]:
    t0 = time.perf_counter()
    try:
        rows = run_cell(cell, ctx, cfg)
    except Exception as exc:  # name the cell: a bare traceback from a worker does not
        raise RuntimeError(f"benchmark cell {cell.label} failed: {type(exc).__name__}: {exc}") from exc
    return cell, rows, time.perf_counter() - t0


def _execute(todo: list[tuple[Cell, str]], contexts: dict[str, DatasetContext], cfg: BenchmarkConfig, client=None):
    """Yield (cell, rows, seconds) as cells finish, on joblib (local) or Dask."""
    from joblib import Parallel, delayed, parallel_config

    tasks = (delayed(_run_one)(cell, contexts[cell.dataset], cfg) for cell, _ in todo)
    if client is not None or cfg.dask_scheduler:
        # joblib's Dask backend needs a live Client; the caller's takes precedence.
        from distributed import Client

        own = None
        if client is None:
            own = client = Client(cfg.dask_scheduler)
        try:
            with parallel_config(backend="dask", wait_for_workers_timeout=60):
                yield from Parallel(return_as="generator_unordered")(tasks)
        finally:
            if own is not None:
                own.close()
        return
    if cfg.n_jobs == 1 or len(todo) <= 1:
        for cell, _ in todo:
            yield _run_one(cell, contexts[cell.dataset], cfg)
        return
    yield from Parallel(n_jobs=cfg.n_jobs, return_as="generator_unordered")(tasks)


def run_sweep(
    cfg: BenchmarkConfig, *, llm_prior=None, client=None, contexts: dict[str, DatasetContext] | None = None
) -> SweepResult:
    """Plan, reuse cached cells, compute the rest; returns the long results table and run info.

    ``client``: an existing `distributed.Client` (e.g. on a LocalCluster) instead of
    ``cfg.dask_scheduler``. ``contexts``: prepared datasets, to skip loading them again.
    """
    t_start = time.perf_counter()
    contexts = dict(contexts or {})
    for ds in cfg.datasets:
        if ds not in contexts:
            contexts[ds] = prepare_dataset(ds, cfg, llm_prior=llm_prior)
    t_prepared = time.perf_counter()
    cells, notes = plan_cells(cfg, contexts)
    digests = {cell: cell_hash(cell, contexts[cell.dataset], cfg) for cell in cells}
    done, todo = _from_cache(cfg, cells, digests)
    n_cached = len(done)
    cell_seconds = _compute(cfg, todo, digests, contexts, client, done, len(cells))
    table = _results_table(cells, done, digests)
    info = {
        "code_version": CODE_VERSION,
        "cells_total": len(cells),
        "cells_cached": n_cached,
        "cells_computed": len(todo),
        "rows": int(len(table)),
        "wall_seconds": round(time.perf_counter() - t_start, 3),
        "prepare_seconds": round(t_prepared - t_start, 3),
        "compute_seconds_sum": round(sum(cell_seconds.values()), 3),
        # which trust rule the trust rows came from (a hash of laat/trust.py; part of their cache key)
        "trust_rule": trust_rule_fingerprint() if any(c.method.trust for c in cells) else None,
        "backend": _backend_name(cfg, client),
        "notes": notes,
        "priors": {
            ds: {base: _prior_info(p) for base, p in ctx.priors.items()}
            for ds, ctx in contexts.items()
            if ds in cfg.datasets
        },
        "slowest_cells": dict(sorted(cell_seconds.items(), key=lambda kv: -kv[1])[:10]),
    }
    return SweepResult(table, info)


def _from_cache(
    cfg: BenchmarkConfig, cells: list[Cell], digests: dict[Cell, str]
) -> tuple[dict[Cell, list[dict[str, Any]]], list[tuple[Cell, str]]]:
    """(rows of the cells found in the cache, (cell, digest) of those still to compute)."""
    done: dict[Cell, list[dict[str, Any]]] = {}
    todo: list[tuple[Cell, str]] = []
    for cell in cells:
        rows = load_cached(_cache_path(cfg, cell, digests[cell]))
        if rows is None:
            todo.append((cell, digests[cell]))
        else:
            done[cell] = rows
    return done, todo


def _compute(cfg, todo, digests, contexts, client, done, n_cells: int) -> dict[str, float]:
    """Run the ``todo`` cells, storing each in the cache and in ``done`` as it finishes;
    returns the seconds each took, by label."""
    todo[:] = _work_order(todo, contexts)
    cell_seconds: dict[str, float] = {}
    bar = _progress(cfg, total=n_cells, initial=len(done))
    try:
        for cell, rows, seconds in _execute(todo, contexts, cfg, client):
            store(_cache_path(cfg, cell, digests[cell]), cell, digests[cell], rows)
            done[cell] = rows
            cell_seconds[cell.label] = seconds
            if bar is not None:
                bar.set_postfix_str(cell.label, refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return cell_seconds


def _results_table(cells: list[Cell], done: dict[Cell, list[dict[str, Any]]], digests: dict[Cell, str]) -> pd.DataFrame:
    """Every row in plan order, then sorted stably, so the table does not depend on the backend."""
    table = pd.DataFrame([{**row, "cell_hash": digests[cell]} for cell in cells for row in done[cell]])
    if "trust_followed" in table:  # only trust rows have it: nullable, so it survives a parquet round trip
        table["trust_followed"] = table["trust_followed"].astype("boolean")
    if not table.empty:
        table = table.sort_values(
            ["dataset", "protocol", "k", "method", "prior_source", "repetition"], kind="stable"
        ).reset_index(drop=True)
    return table


def _backend_name(cfg: BenchmarkConfig, client) -> str:
    if client is not None or cfg.dask_scheduler:
        return "dask"
    return "sequential" if cfg.n_jobs == 1 else f"joblib(n_jobs={cfg.n_jobs})"


def _prior_info(prior) -> dict[str, Any]:
    keep = (
        "source_kind",
        "model",
        "strategy",
        "n_samples",
        "prompt_hash",
        "calls",
        "fresh_calls",
        "cached_calls",
        "quality_note",
        "note",
        "path",
        "edited",
    )
    return {"source": prior.source, **{k: prior.provenance[k] for k in keep if k in prior.provenance}}


# Relative cost of a cell per training row, measured with 2 repetitions of the default sweep:
# scikit-learn searches (5 folds x candidates + refit) and trust mode's cross-validation weigh
# most; a LAAT cell is one stacked program.
_WEIGHT = {"hgb": 4.0, "mlp": 4.0, "rf": 2.0, "lr": 1.0, "xgb": 1.0}


def _cost(cell: Cell, contexts: dict[str, DatasetContext]) -> float:
    X = contexts[cell.dataset].X
    rows = X.shape[0] * 0.8 if cell.protocol == "skew" else 2 * cell.k
    if cell.method.trust:
        weight = 2.0 if cell.method.model == "mlp" else 1.0
    else:
        weight = _WEIGHT[cell.method.model] if not cell.method.torch else 0.2
    return weight * (rows + 50) * (1 + X.shape[1] / 32)


def _work_order(todo: list[tuple[Cell, str]], contexts: dict[str, DatasetContext]) -> list[tuple[Cell, str]]:
    """The slowest cells first, so the sweep does not end on one long cell while a core idles:
    the skew protocol's searches and trust cells by estimated cost, then the other cells one
    (dataset, protocol, k) group at a time, dearest group first, so that a worker makes a
    group's splits once (`cells._prepared_reps`)."""

    def is_heavy(cell: Cell) -> bool:
        return cell.protocol == "skew" and (cell.method.trust or not cell.method.torch)

    heavy = sorted((it for it in todo if is_heavy(it[0])), key=lambda it: (-_cost(it[0], contexts), it[0]))
    groups: dict[tuple, list[tuple[Cell, str]]] = {}
    for it in todo:
        if not is_heavy(it[0]):
            groups.setdefault((it[0].dataset, it[0].protocol, it[0].k), []).append(it)
    rest = sorted(groups.values(), key=lambda g: (-sum(_cost(c, contexts) for c, _ in g), g[0][0]))
    return heavy + [it for g in rest for it in sorted(g, key=lambda it: (-_cost(it[0], contexts), it[0]))]


def _progress(cfg: BenchmarkConfig, total: int, initial: int):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="benchmark cells", unit="cell", dynamic_ncols=True)
