"""Elicit a Prior: pick the endpoint, run the samples concurrently, average, record provenance."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from laat.datasets import parse_metadata
from laat.elicit import prompts as P
from laat.elicit.cache import ResponseCache
from laat.elicit.calls import USAGE_KEYS, CallContext
from laat.elicit.client import RetryPolicy, endpoint_label, make_client, resolve_api_key
from laat.elicit.local_server import (
    BUNDLED_SHA256,
    MODEL_ALIAS,
    LocalLLMServer,
    ServerOptions,
    resolve_gguf,
)
from laat.elicit.per_class import elicit_per_class
from laat.elicit.settings import ElicitationSettings
from laat.elicit.strategies import STRATEGIES, SampleResult, Strategy
from laat.priors import LLM_BACKENDS, Prior, PriorError, oracle_prior_from_frame, random_prior

SMALL_MODEL_NOTE = (
    "small local model prior ({model}): produced by a tiny offline model; it proves the "
    "plumbing, not domain knowledge. Do not present it as an LLM-quality prior."
)
LOCAL_MODEL_NOTE = "local model prior ({model}, user-supplied GGUF): quality depends on that model."


# ---- endpoints -----------------------------------------------------------------------------


class OpenAIEndpoint:
    """Any OpenAI-compatible endpoint; the key is resolved only when a call is actually made."""

    kind = "openai"
    max_concurrency = 64
    extra_body = None
    grammar = False  # hosted APIs take JSON schemas, not llama.cpp grammars

    def __init__(self, settings: ElicitationSettings):
        self.settings = settings
        self.model = settings.model
        self.label = endpoint_label(settings.base_url)
        self._client = None
        self._lock = threading.Lock()

    def model_id(self, model: str) -> str:
        return f"{model}@{self.label}"

    def client(self):
        with self._lock:
            if self._client is None:
                s = self.settings
                key = resolve_api_key(s.api_key_env, s.credentials_path)
                self._client = make_client(s.base_url, key, s.resolved_timeout())
            return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class LocalEndpoint:
    """The project's own llama.cpp server, started on the first cache miss and stopped after.

    The cache identity is the GGUF's sha256, so answers survive restarts and port changes.
    The server has ``settings.local_slots`` slots (requests in flight locally): llama.cpp
    decodes the slots' tokens in one batch, and each slot keeps the prompt prefix it last
    evaluated (``cache_prompt``), so a run's prompts, which differ only in their last line,
    pay for the shared context once per slot. Every request carries its own seed. Answers
    with a reused prefix can differ in the last bits of the logits from a cold evaluation;
    benchmarks/README.md has how often that changed an answer, and the content-addressed
    cache is what makes a resumed run replay the answers it already had.
    """

    kind = "local"
    extra_body = {"cache_prompt": True}
    grammar = True

    def __init__(self, settings: ElicitationSettings):
        self.settings = settings
        self.path, self.sha256 = resolve_gguf(settings.gguf_path, settings.gguf_sha256)
        self.model = MODEL_ALIAS
        self.label = f"local llama.cpp ({self.path.name})"
        self.max_concurrency = settings.local_slots
        self.bundled = self.sha256 == BUNDLED_SHA256
        self._server: LocalLLMServer | None = None
        self._client = None
        self._lock = threading.Lock()
        self.server_starts = 0

    def model_id(self, model: str) -> str:
        return f"gguf-sha256:{self.sha256}"

    def client(self):
        with self._lock:
            if self._client is None:
                s = self.settings
                self._server = LocalLLMServer(
                    ServerOptions(
                        gguf_path=str(self.path),
                        gguf_sha256=self.sha256,
                        n_ctx=s.n_ctx * self.max_concurrency,
                        n_threads=s.n_threads,
                        n_parallel=self.max_concurrency,
                    )
                ).start()
                self.server_starts += 1
                self._client = make_client(self._server.base_url, "sk-local", s.resolved_timeout())
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._server is not None:
                self._server.stop()
                self._server = None


def make_endpoint(settings: ElicitationSettings):
    if settings.source == "local":
        return LocalEndpoint(settings)
    if settings.source == "openai":
        return OpenAIEndpoint(settings)
    raise ValueError(f"source {settings.source!r} does not talk to an LLM")


# ---- elicitation ----------------------------------------------------------------------------


@dataclass
class Elicitation:
    prior: Prior
    record: dict[str, Any] = field(default_factory=dict)


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _cost(tokens_in: int, tokens_out: int, s: ElicitationSettings) -> float | None:
    if s.price_in_per_mtok is None or s.price_out_per_mtok is None:
        return None
    return round(tokens_in * s.price_in_per_mtok / 1e6 + tokens_out * s.price_out_per_mtok / 1e6, 6)


def _progress_bar(meta, settings: ElicitationSettings, strategy: Strategy):
    """A tqdm bar of answered calls (cached ones too) and calls/s: per_feature on 144 features makes 720.

    ``disable=None`` shows it on a terminal only, so Kedro and CI logs stay clean.
    """
    return tqdm(
        total=strategy.expected_calls(len(meta.encoded_columns), settings),
        desc=f"{meta.name} prior ({strategy.name})",
        unit="call",
        dynamic_ncols=True,
        leave=False,
        disable=None if settings.progress else True,
    )


def _llm_provenance(
    meta, settings: ElicitationSettings, strategy: str, endpoint, ctx: CallContext, wall: float
) -> dict[str, Any]:
    """What an LLM prior records about its making: model, endpoint, prompt, calls, tokens, cost."""
    prompt = STRATEGIES[strategy].prompt(meta)
    t = ctx.tally
    model_name = settings.model or (endpoint.path.name if endpoint.kind == "local" else endpoint.model)
    prov: dict[str, Any] = {
        "source_kind": "llm",
        "dataset": meta.name,
        "target_class": None if meta.target.kind == "regression" else meta.positive_class,
        "model": model_name,
        "model_id": endpoint.model_id(endpoint.model),
        "endpoint_kind": endpoint.kind,
        "endpoint": endpoint.label,
        "strategy": strategy,
        "temperature": settings.temperature if strategy != "yes_no" else 0.0,
        "n_samples": settings.n_samples,
        "seed": settings.seed,
        "prompt_hash": P.text_hash(prompt),
        "prompt": prompt,
        "calls": t.calls,
        "fresh_calls": t.fresh_calls,
        "cached_calls": t.cached_calls,
        "tokens_in": t.tokens_in,
        "tokens_out": t.tokens_out,
        "fresh_tokens_in": t.fresh_tokens_in,
        "fresh_tokens_out": t.fresh_tokens_out,
        "latency_s": round(t.fresh_latency_s + t.cached_latency_s, 3),
        "fresh_latency_s": round(t.fresh_latency_s, 3),
        "wall_s": round(wall, 3),
        "cost_usd": _cost(t.tokens_in, t.tokens_out, settings),
        "fresh_cost_usd": _cost(t.fresh_tokens_in, t.fresh_tokens_out, settings),
        "created_at": _utcnow(),
    }
    if strategy == "reason_then_parse":
        prov["parse_model"] = settings.parse_model or model_name
    if endpoint.kind == "local":
        prov["gguf_sha256"] = endpoint.sha256
        prov["quality_note"] = (SMALL_MODEL_NOTE if endpoint.bundled else LOCAL_MODEL_NOTE).format(model=model_name)
    return prov


def _run_samples(spec: Strategy, ctx: CallContext, meta, settings: ElicitationSettings) -> list[SampleResult]:
    """Every sample's result: one `run` for all (``spec.all_samples``), or one `run` per sample on its own thread."""
    if spec.all_samples:
        return spec.run(ctx, meta, settings)
    workers = min(settings.n_samples, ctx.concurrency)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="elicit-sample") as samples_pool:
        futures = [samples_pool.submit(spec.run, ctx, meta, settings, i) for i in range(settings.n_samples)]
        return [f.result() for f in futures]


def run_elicitation(meta, settings: ElicitationSettings | None = None, **overrides) -> Elicitation:
    """Elicit an LLM prior for ``meta`` (source ``local`` or ``openai``) with its full record.

    ``meta`` is a DatasetMeta or its dict form; ``overrides`` are ElicitationSettings fields.
    """
    meta = parse_metadata(meta)
    settings = (settings or ElicitationSettings()).model_copy(update=overrides)
    settings = ElicitationSettings.model_validate(settings.model_dump())
    if meta.target.kind == "multiclass":  # one binary elicitation per class (laat.elicit.per_class)
        return Elicitation(*elicit_per_class(meta, settings, run_elicitation))
    strategy = settings.resolved_strategy()
    spec = STRATEGIES[strategy]
    endpoint = make_endpoint(settings)
    # Samples run on their own threads (per_feature: a feature's samples one after another) and
    # hand their independent questions to one bounded call pool (`CallContext.map`); at most
    # `in_flight` requests are open at once.
    in_flight = max(1, min(settings.concurrency, endpoint.max_concurrency))
    ctx = CallContext(
        endpoint=endpoint,
        cache=ResponseCache(settings.cache_dir),
        strategy=strategy,
        policy=RetryPolicy(settings.max_attempts, settings.wait_initial_s, settings.wait_max_s),
        refresh=settings.refresh,
        concurrency=in_flight,
    )
    t0 = time.perf_counter()
    try:
        with (
            _progress_bar(meta, settings, spec) as ctx.progress,
            ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="elicit-call") as ctx.pool,
        ):
            results = _run_samples(spec, ctx, meta, settings)
    finally:
        endpoint.close()
    wall = time.perf_counter() - t0

    samples = np.array([r.scores for r in results], dtype=float)
    mean = samples.mean(axis=0)
    spread = samples.std(axis=0, ddof=1) if len(samples) > 1 else np.zeros(samples.shape[1])
    prov = _llm_provenance(meta, settings, strategy, endpoint, ctx, wall)
    prior = Prior(
        features=list(meta.encoded_columns),
        mean=mean.tolist(),
        spread=spread.tolist(),
        source="llm",
        provenance=prov,
        samples=samples.tolist(),
    )
    record = {
        "dataset": meta.name,
        "strategy": strategy,
        "settings": settings.public_dump(),
        "usage": {k: prov[k] for k in USAGE_KEYS},
        "prompts": dict(ctx.prompts),
        "calls": sorted(ctx.calls, key=lambda c: (c["sample"], c["step"], c["attempt"])),
        "samples": [{"sample": i, "scores": r.scores, **r.details} for i, r in enumerate(results)],
    }
    return Elicitation(prior, record)


def elicit_prior(meta, settings: ElicitationSettings | None = None, **overrides) -> Prior:
    """Shortcut: `run_elicitation(...).prior`."""
    return run_elicitation(meta, settings, **overrides).prior


def build_prior(meta, settings: ElicitationSettings | None = None, data=None, **overrides) -> Elicitation:
    """A prior from any source: ``local``/``openai`` (LLM), ``expert`` (YAML), ``oracle``, ``random``.

    ``data`` (the validated raw DataFrame) is needed only for the oracle.
    """
    meta = parse_metadata(meta)
    settings = (settings or ElicitationSettings()).model_copy(update=overrides)
    settings = ElicitationSettings.model_validate(settings.model_dump())
    src = settings.source
    if src in LLM_BACKENDS:
        return run_elicitation(meta, settings)
    kind = meta.target.kind
    per_class = meta.target.classes if kind == "multiclass" else None  # the per-class form, in code order
    if src == "random":
        prior = random_prior(meta.encoded_columns, settings.seed, classes=per_class)
    elif src == "oracle":
        if data is None:
            raise PriorError("source 'oracle' needs the labelled data (the validated DataFrame)")
        prior = oracle_prior_from_frame(data, meta, C=settings.oracle_C, task=kind, classes=per_class)
    elif src == "expert":
        if not settings.expert_prior_path:
            raise PriorError(
                "source 'expert' needs expert_prior_path, the expert's prior file "
                '("{dataset}" in it stands for the dataset\'s name)'
            )
        path = Path(settings.expert_prior_path.replace("{dataset}", meta.name))
        prior = Prior.load(path)
        if prior.per_class and per_class is None:
            raise PriorError(
                f"{path}: scores per class are for a multiclass target; {meta.name!r} is a {kind} "
                f"task: give one signed score per feature"
            )
        try:  # a multiclass expert may also give one shared score per feature
            prior = prior.aligned(meta.encoded_columns, classes=per_class if prior.per_class else None)
        except PriorError as exc:
            raise PriorError(f"{path}: {exc}") from None
        prior.provenance.setdefault("path", str(path))
    else:  # pragma: no cover - pydantic already restricts the values
        raise ValueError(f"unknown prior source {src!r}")
    prior.provenance.setdefault("dataset", meta.name)
    record = {
        "dataset": meta.name,
        "source": prior.source,
        "settings": settings.public_dump(),
        "calls": [],
        "prompts": {},
        "usage": {"calls": 0, "tokens_in": 0, "tokens_out": 0},
    }
    return Elicitation(prior, record)
