"""One cell of the sweep: (dataset, protocol, k, method, prior source) over all its repetitions.

A cell is the unit of parallelism, caching and batching: its R repetitions share a shape
in the few-shot protocol, so LAAT trains them as one stacked tensor program
(`laat.engine.fit_many`). Everything random inside a cell is seeded from the cell's key
(`derive_seed`), never from a global RNG, so

- every method of a repetition sees the same split and the same preprocessing (paired design),
- LAAT variants of a repetition also share the model initialisation, so they differ only by
  the prior, and
- a cell gives the same rows in any process, on any worker, in any order.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from laat.datasets import DatasetMeta, encode, labels, load_dataset, load_metadata
from laat.metrics import classification_metrics, predict_labels
from laat.priors import Prior, PriorError, oracle_prior, random_prior
from laat_research.baselines import fit_baseline, grid_for
from laat_research.config import BenchmarkConfig, Method, PriorSpec
from laat_research.noise import flip_signs, randomise_entries

# Bump when a change in this package changes the numbers a cell produces: it invalidates the cache.
CODE_VERSION = "2026-11-29.2"
NO_PRIOR = "none"


@dataclass(frozen=True, order=True)
class Cell:
    dataset: str
    protocol: str  # few_shot | skew
    k: int  # rows per class; 0 in the skew protocol (80/20 split, no shots)
    method: Method
    prior: str = NO_PRIOR  # a PriorSpec name for LAAT methods

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.protocol}/k={self.k}/{self.method.name}/{self.prior}"

    def key(self) -> dict[str, Any]:
        """The cell as JSON (method by name), for cache keys and cache files."""
        return {**asdict(self), "method": self.method.name}


@dataclass
class DatasetContext:
    """Everything a worker needs to run a dataset's cells, so workers touch no files."""

    name: str
    meta: DatasetMeta
    X: np.ndarray  # encoded, float32, meta.encoded_columns order
    y: np.ndarray  # 0/1
    frame: pd.DataFrame  # raw columns: the skew condition and the sensitive features
    fingerprint: str  # data + metadata
    priors: dict[str, Prior] = field(default_factory=dict)  # base prior name -> aligned Prior
    fairness_bins: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ---- seeds ------------------------------------------------------------------------------------


def derive_seed(*parts: Any) -> int:
    """A stable 31-bit seed from any JSON-able key (Python's hash() is salted per process)."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def model_seed(cfg: BenchmarkConfig, dataset: str, protocol: str, k: int, rep: int) -> int:
    """Init / random_state of every model in a repetition: shared by methods and priors."""
    return derive_seed("model", cfg.seed, dataset, protocol, k, rep)


# ---- dataset preparation (main process) --------------------------------------------------------


def _fingerprint(path: Path, meta: DatasetMeta) -> str:
    h = hashlib.sha256(path.read_bytes())
    h.update(meta.model_dump_json().encode())
    return h.hexdigest()[:16]


def _numeric_bins(frame: pd.DataFrame, columns: list[str], n_bins: int) -> dict[str, list[float]]:
    """Fixed group edges per continuous sensitive feature, from the full data, so the groups of
    every repetition are the same (test-set quantiles would move them)."""
    from laat.fairness import quantile_edges

    bins = {}
    for c in columns:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.nunique() > n_bins:
            bins[c] = quantile_edges(s, n_bins)
    return bins


def prepare_dataset(name: str, cfg: BenchmarkConfig, llm_prior=None) -> DatasetContext:
    """Load, validate and encode a dataset and build the base priors its cells need.

    ``llm_prior(meta) -> Prior`` elicits the `llm_local` prior; the default goes through
    `laat.elicit.elicit_prior` and its response cache, so a rerun makes no LLM calls.
    """
    from laat.schema import validate

    meta = load_metadata(name, cfg.metadata_dir)
    csv = Path(cfg.data_root) / meta.csv
    if not csv.exists():
        raise FileNotFoundError(f"dataset {name!r}: CSV {csv} not found (metadata csv: {meta.csv!r})")
    frame = validate(load_dataset(meta, cfg.data_root), meta).reset_index(drop=True)
    X_df = encode(frame, meta)
    y = labels(frame, meta)
    ctx = DatasetContext(
        name=name, meta=meta, X=X_df.to_numpy(dtype=np.float32), y=y, frame=frame, fingerprint=_fingerprint(csv, meta)
    )
    if "skew" in cfg.protocols and meta.sensitive_features:
        ctx.fairness_bins = _numeric_bins(frame, meta.sensitive_features, cfg.skew.fairness_bins)

    if not any(m.uses_prior for m in cfg.methods):
        return ctx
    bases = {spec.base for spec in cfg.priors}
    cols = list(meta.encoded_columns)
    if "oracle" in bases:
        ctx.priors["oracle"] = oracle_prior(X_df, y, meta)
    if "expert" in bases:
        path = Path(cfg.expert_priors_dir) / f"{name}.yml"
        if path.exists():
            prior = Prior.load(path)
            if prior.source != "expert":
                raise PriorError(
                    f"{path}: the expert prior source resolved to {prior.source!r}; only an "
                    "expert prior may stand in the `expert` slot"
                )
            try:
                ctx.priors["expert"] = prior.aligned(cols)
            except PriorError as exc:
                raise PriorError(f"{path}: {exc}") from None
            ctx.priors["expert"].provenance.setdefault("path", str(path))
        else:
            ctx.notes.append(f"{name}: no expert prior ({path} does not exist); expert cells skipped")
    if "llm_local" in bases:
        prior = (llm_prior or default_llm_prior(cfg))(meta)
        if prior.source != "llm":
            raise PriorError(f"{name}: the llm_local prior has source {prior.source!r}, not 'llm'")
        ctx.priors["llm_local"] = prior.aligned(cols)
    return ctx


def default_llm_prior(cfg: BenchmarkConfig):
    """Elicit through the project's local llama.cpp server, answers cached on disk."""

    def _elicit(meta: DatasetMeta) -> Prior:
        from laat.elicit import ElicitationSettings, elicit_prior

        return elicit_prior(meta, ElicitationSettings(**{**cfg.llm, "source": "local"}))

    return _elicit


# ---- planning and cache keys ----------------------------------------------------------------


def repetitions(cfg: BenchmarkConfig, protocol: str) -> int:
    return cfg.skew_repetitions if protocol == "skew" else cfg.repetitions


def plan_cells(cfg: BenchmarkConfig, contexts: dict[str, DatasetContext]) -> tuple[list[Cell], list[str]]:
    """All cells of the sweep in a fixed order, and notes on what was skipped and why."""
    cells: list[Cell] = []
    notes: list[str] = []
    for ds in cfg.datasets:
        ctx = contexts[ds]
        notes.extend(ctx.notes)
        for protocol in cfg.protocols:
            if protocol == "skew" and ctx.meta.skew is None:
                notes.append(f"{ds}: no skew condition in its metadata; skew protocol skipped")
                continue
            for k in cfg.shots if protocol == "few_shot" else [0]:
                for method in cfg.methods:
                    if method.uses_prior:
                        for spec in cfg.priors:
                            if spec.base == "random" or spec.base in ctx.priors:
                                cells.append(Cell(ds, protocol, k, method, spec.name))
                    else:
                        cells.append(Cell(ds, protocol, k, method))
    return cells, notes


def cell_hash(cell: Cell, ctx: DatasetContext, cfg: BenchmarkConfig) -> str:
    """Hash of everything that determines the cell's rows (and nothing about how it runs)."""
    payload: dict[str, Any] = {
        "code": CODE_VERSION,
        "cell": cell.key(),
        "seed": cfg.seed,
        "repetitions": repetitions(cfg, cell.protocol),
        "data": ctx.fingerprint,
        "threshold": cfg.threshold,
    }
    if cell.protocol == "skew":
        payload["skew"] = cfg.skew.model_dump(exclude={"repetitions"})
        payload["fairness_bins"] = ctx.fairness_bins
    if cell.method.torch:
        payload["laat"] = cfg.laat.model_dump()
    else:
        b = cfg.baselines
        payload["baseline"] = {
            "grid": grid_for(cell.method.model, b),
            "max_cv": b.max_cv,
            "min_k_for_search": b.min_k_for_search,
            "mlp_max_iter": b.mlp_max_iter,
        }
    if cell.prior != NO_PRIOR:
        spec = PriorSpec.parse(cell.prior)
        if spec.base != "random":
            payload["prior_scores"] = [round(v, 10) for v in ctx.priors[spec.base].mean]
    if cell.method.trust:  # only trust cells: the other cells' keys stay what they were
        payload["trust"] = {"settings": asdict(cfg.trust_settings), "rule": trust_rule_fingerprint()}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def trust_rule_fingerprint() -> str:
    """Hash of laat/trust.py's source: a change to the trust rule recomputes the trust cells
    (and only those), without anyone remembering to bump CODE_VERSION."""
    import laat.trust

    return hashlib.sha256(Path(laat.trust.__file__).read_bytes()).hexdigest()[:16]


# ---- per-repetition pieces --------------------------------------------------------------------


def split(ctx: DatasetContext, protocol: str, k: int, rep: int, cfg: BenchmarkConfig):
    from laat.splits import few_shot_split, skewed_split

    if protocol == "few_shot":
        return few_shot_split(ctx.y, k, cfg.seed, rep)
    return skewed_split(
        ctx.frame, ctx.meta.skew.condition, cfg.skew.test_fraction, cfg.seed, rep, cfg.skew.keep_fraction
    )


def preprocess(X: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median imputation and Min-Max scaling fit on the training rows only (spec section 4)."""
    from sklearn.pipeline import make_pipeline

    from laat.preprocess import minmax_scaler, missing_value_imputer, model_input

    prep = make_pipeline(missing_value_imputer(), minmax_scaler()).fit(X[train])
    return model_input(X[train], prep), model_input(X[test], prep)


def prior_scores(spec: PriorSpec, ctx: DatasetContext, rep: int, cfg: BenchmarkConfig) -> np.ndarray:
    """The repetition's prior vector. Random and noisy priors are re-drawn per repetition (the
    same draw for every method and k), so their rows average over draws, not over one lucky one."""
    cols = ctx.meta.encoded_columns
    if spec.base == "random":
        scores = np.asarray(random_prior(cols, seed=derive_seed("random", cfg.seed, ctx.name, rep)).mean)
    else:
        scores = np.asarray(ctx.priors[spec.base].mean, dtype=float)
    if spec.noise:
        rng = np.random.default_rng(derive_seed("noise", cfg.seed, ctx.name, spec.base, spec.noise, rep))
        scores = randomise_entries(scores, spec.noise, rng)
    if spec.flip:
        scores = flip_signs(scores)
    return scores


def _index_hash(idx: np.ndarray) -> str:
    return hashlib.sha1(np.asarray(idx, dtype=np.int64).tobytes()).hexdigest()[:12]


# ---- running a cell ---------------------------------------------------------------------------


@dataclass
class _Rep:
    rep: int
    train: np.ndarray
    test: np.ndarray
    Xtr: np.ndarray
    Xte: np.ndarray
    seed: int

    def ytr(self, ctx: DatasetContext) -> np.ndarray:
        return ctx.y[self.train]

    def yte(self, ctx: DatasetContext) -> np.ndarray:
        return ctx.y[self.test]


def run_cell(cell: Cell, ctx: DatasetContext, cfg: BenchmarkConfig) -> list[dict[str, Any]]:
    """All repetitions of one cell -> one result row per repetition.

    Single-threaded inside (BLAS, OpenMP, torch) so that parallel cells do not oversubscribe
    the cores and so that results do not depend on the thread count.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), _torch_threads(1):
        reps = _prepared_reps(ctx, cell.protocol, cell.k, cfg)
        if cell.method.trust:
            preds = _run_trust(cell, ctx, cfg, reps)
        elif cell.method.torch:
            preds = _run_torch(cell, ctx, cfg, reps)
        else:
            preds = _run_baseline(cell, ctx, cfg, reps)
        return [_row(cell, ctx, cfg, rp, **pred) for rp, pred in zip(reps, preds)]


# Splits and scaled inputs of recent (dataset, protocol, k) groups, in this process: every method
# and prior of a group uses the same ones, and computing them (a skewed split evaluates the
# condition on the frame, scaling fits a pipeline per repetition) took longer than a LAAT cell's fits.
_PREPARED: OrderedDict[tuple, list[_Rep]] = OrderedDict()
_PREPARED_GROUPS = 8  # the sweep runs a group's cells back to back; the skew groups interleave


def _prepared_reps(ctx: DatasetContext, protocol: str, k: int, cfg: BenchmarkConfig) -> list[_Rep]:
    """The repetitions of a (dataset, protocol, k) group, made once per process (read-only arrays)."""
    key = (
        ctx.name,
        ctx.fingerprint,
        protocol,
        k,
        cfg.seed,
        repetitions(cfg, protocol),
        cfg.skew.model_dump_json() if protocol == "skew" else "",
    )
    if key in _PREPARED:
        _PREPARED.move_to_end(key)
        return _PREPARED[key]
    reps = []
    for r in range(repetitions(cfg, protocol)):
        train, test = split(ctx, protocol, k, r, cfg)
        Xtr, Xte = preprocess(ctx.X, train, test)
        for a in (train, test, Xtr, Xte):
            a.flags.writeable = False  # shared by the group's cells: none may change them
        reps.append(_Rep(r, train, test, Xtr, Xte, model_seed(cfg, ctx.name, protocol, k, r)))
    _PREPARED[key] = reps
    while len(_PREPARED) > _PREPARED_GROUPS:
        _PREPARED.popitem(last=False)
    return reps


class _torch_threads:
    """Temporarily set torch's intra-op threads (only if torch is already needed)."""

    def __init__(self, n: int):
        self.n, self.old = n, None

    def __enter__(self):
        import torch

        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.old)


def _train_kwargs(cell: Cell, cfg: BenchmarkConfig) -> dict[str, Any]:
    """`fit_many` settings of a cell's torch models (all but data, targets, gamma and seeds)."""
    s = cfg.laat
    few = cell.protocol == "few_shot"
    return dict(
        model=cell.method.model,
        attribution=s.attribution,
        hidden=s.hidden,
        lr=s.lr,
        epochs=s.few_shot_epochs if few else s.skew_epochs,
        batch_size=s.few_shot_batch_size if few else s.skew_batch_size,
    )


def _fit(reps: list[_Rep], ctx: DatasetContext, target, gamma, kw: dict[str, Any]):
    from laat.engine import fit_many

    return fit_many(
        [rp.Xtr for rp in reps],
        [rp.ytr(ctx).astype(np.float32) for rp in reps],
        target,
        gamma=gamma,
        seeds=[rp.seed for rp in reps],
        **kw,
    )


def _predict(one, rp: _Rep, ctx: DatasetContext, fit_seconds: float, target=None) -> dict[str, Any]:
    """Test-set probabilities of one fitted model and, given a prior target, how well the
    model's mean input gradient on its training rows aligns with it (cosine)."""
    import torch

    with torch.no_grad():
        p = one.predict_proba(rp.Xte)[0].double().numpy()
        out: dict[str, Any] = {
            "p": np.clip(p, 0.0, 1.0),
            "fit_seconds": fit_seconds,
            "fit_batched": True,
            "tuned": False,
            "cv_folds": 0,
            "grid_size": 1,
            "best_params": "{}",
        }
        if target is not None:
            g = one.mean_input_gradient(rp.Xtr)[0, : ctx.X.shape[1]].double()
            t = torch.as_tensor(target).double()
            denom = float(torch.linalg.vector_norm(g) * torch.linalg.vector_norm(t))
            out["prior_alignment"] = float(g @ t) / denom if denom > 0 else float("nan")
    return out


def _run_torch(cell: Cell, ctx: DatasetContext, cfg: BenchmarkConfig, reps: list[_Rep]) -> list[dict]:
    """LAAT (gamma from config) or its gamma = 0 twin: all repetitions as one stacked program."""
    from laat.attribution import normalized_target

    s = cfg.laat
    laat = cell.method.uses_prior
    target = None
    if laat:
        spec = PriorSpec.parse(cell.prior)
        target = normalized_target(np.stack([prior_scores(spec, ctx, rp.rep, cfg) for rp in reps]), tau=s.tau)
    t0 = time.perf_counter()
    model = _fit(reps, ctx, target, s.gamma if laat else 0.0, _train_kwargs(cell, cfg))
    fit_s = (time.perf_counter() - t0) / len(reps)
    return [
        _predict(model.select(i), rp, ctx, fit_s, None if target is None else target[i]) for i, rp in enumerate(reps)
    ]


def _run_trust(cell: Cell, ctx: DatasetContext, cfg: BenchmarkConfig, reps: list[_Rep]) -> list[dict]:
    """Trust mode: the training rows of each repetition decide gamma and tau, through the core's
    one trust-then-fit path (`laat.trust.fit_with_trust`), every repetition of the cell at once."""
    from laat.trust import TrustProblem, fit_with_trust

    spec = PriorSpec.parse(cell.prior)
    problems = [
        TrustProblem(
            X=rp.Xtr,
            y=rp.ytr(ctx).astype(np.float32),
            scores=prior_scores(spec, ctx, rp.rep, cfg),
            gamma=float(cfg.laat.gamma),
            seed=rp.seed,
        )
        for rp in reps
    ]
    t0 = time.perf_counter()
    fit = fit_with_trust(problems, _train_kwargs(cell, cfg), cfg.trust_settings)
    fit_s = (time.perf_counter() - t0) / len(reps)
    return [
        {
            **_predict(one, rp, ctx, fit_s, target),
            "trust_gamma": float(d.gamma),
            "trust_tau": float(d.tau),
            "trust_followed": bool(d.followed),
            "trust_regime": d.regime,
            "trust_p_value": float(d.agreement.p_value),
        }
        for rp, d, target, one in zip(reps, fit.decisions, fit.targets, fit.models)
    ]


def _run_baseline(cell: Cell, ctx: DatasetContext, cfg: BenchmarkConfig, reps: list[_Rep]) -> list[dict]:
    out = []
    for rp in reps:
        t0 = time.perf_counter()
        est, info = fit_baseline(
            cell.method.model,
            rp.Xtr,
            rp.ytr(ctx),
            k=cell.k if cell.protocol == "few_shot" else None,
            settings=cfg.baselines,
            random_state=rp.seed,
        )
        fit_s = time.perf_counter() - t0
        p = est.predict_proba(rp.Xte)[:, list(est.classes_).index(1)].astype(np.float64)
        out.append({"p": p, "fit_seconds": fit_s, "fit_batched": False, **info})
    return out


def _row(
    cell: Cell, ctx: DatasetContext, cfg: BenchmarkConfig, rp: _Rep, p: np.ndarray, **extra: Any
) -> dict[str, Any]:
    spec = PriorSpec.parse(cell.prior) if cell.prior != NO_PRIOR else None
    yte = rp.yte(ctx)
    row: dict[str, Any] = {
        "dataset": cell.dataset,
        "protocol": cell.protocol,
        "k": cell.k,
        "repetition": rp.rep,
        "method": cell.method.name,
        "prior_source": cell.prior,
        "prior_kind": spec.kind if spec else NO_PRIOR,
        "noise": spec.noise if spec else 0.0,
        "prior_flipped": spec.flip if spec else False,
        "n_train": int(rp.train.size),
        "n_test": int(rp.test.size),
        "n_features": int(ctx.X.shape[1]),
        "train_positives": int(rp.ytr(ctx).sum()),
        "train_index_hash": _index_hash(rp.train),
        "seed": rp.seed,
    }
    row.update(classification_metrics(yte, p, cfg.threshold))
    if cell.protocol == "skew":
        row.update(_skew_metrics(ctx, rp, yte, p, cfg))
    row.update({"fit_seconds": float(extra.pop("fit_seconds")), "fit_batched": bool(extra.pop("fit_batched"))})
    row.update(extra)
    return row


def _skew_metrics(
    ctx: DatasetContext, rp: _Rep, yte: np.ndarray, p: np.ndarray, cfg: BenchmarkConfig
) -> dict[str, Any]:
    """How the model treats the kind of rows removed from training, and group fairness gaps.

    The skew condition of every shipped dataset selects positives of one group, so the share
    of matching test rows predicted positive is that group's recall; ``recall_outside_skew``
    is the recall of all other positives, for contrast.
    """
    from laat.fairness import fairness_report

    test_frame = ctx.frame.iloc[rp.test].reset_index(drop=True)
    hit = test_frame.eval(ctx.meta.skew.condition).to_numpy(dtype=bool)
    y_hat = predict_labels(p, cfg.threshold)
    others = (yte == 1) & ~hit
    out: dict[str, Any] = {
        "skew_group_n": int(hit.sum()),
        "skew_group_recall": float(y_hat[hit].mean()) if hit.any() else float("nan"),
        "skew_group_mean_p": float(p[hit].mean()) if hit.any() else float("nan"),
        "recall_outside_skew": float(y_hat[others].mean()) if others.any() else float("nan"),
    }
    sensitive = ctx.meta.sensitive_features
    if sensitive:
        summary, _ = fairness_report(
            yte, p, test_frame[sensitive], threshold=cfg.threshold, bins=ctx.fairness_bins or None
        )
        out.update(summary)
    return out
