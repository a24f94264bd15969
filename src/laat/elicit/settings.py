"""Typed settings of an elicitation (also the Kedro parameters of the prior_elicitation pipeline).

Secrets never live here: MLflow logs every parameter, so only the *name* of the
environment variable holding the API key is a setting. A key a user put inside ``base_url``
anyway is masked in every printed or stored form (`redact`), never in the value used to connect.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from laat.elicit.redact import redact
from laat.priors import LLMBackend, NonLLMSource

Source = Literal[LLMBackend, NonLLMSource]  # an LLM backend, or a prior that does not come from an LLM
Strategy = Literal["auto", "reason_then_parse", "direct", "per_feature", "yes_no", "elimination"]

# Picked with benchmarks/bench_priors.py (signed Spearman vs the oracle, bundled SmolLM2-135M,
# 3 samples, T=0.7): per_feature had the best mean rank agreement; the figures are in
# benchmarks/README.md.
LOCAL_DEFAULT_STRATEGY = "per_feature"
# Hosted models are large enough for the paper's own flow.
HOSTED_DEFAULT_STRATEGY = "reason_then_parse"


class ElicitationSettings(BaseModel):
    # Validation errors would otherwise quote the input, base_url (and any key in it) included.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    source: Source = "local"
    strategy: Strategy = "auto"
    n_samples: int = Field(5, ge=1, le=100)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    seed: int = 0

    # endpoint
    model: str | None = None  # openai: required; local: defaults to the GGUF name
    parse_model: str | None = None  # reason_then_parse's parser (default: same model)
    base_url: str | None = None  # openai: None -> OPENAI_BASE_URL or api.openai.com
    api_key_env: str = "OPENAI_API_KEY"
    credentials_path: str | None = None  # a Kedro credentials file (the project's conf sets it); None: env only
    gguf_path: str | None = None  # local: your own GGUF (default: bundled SmolLM2)
    gguf_sha256: str | None = None
    n_ctx: int = Field(8192, ge=512)
    # One llama.cpp thread: on a 2-core machine shared with anything else, two threads
    # spin-wait on each other (a cold diabetes run, load ~4.4: 55 s with 1 thread, 435 s with 2).
    n_threads: int = Field(1, ge=1)

    # cache and robustness
    cache_dir: str = "data/llm_cache"
    refresh: bool = False
    # None: 300 s for hosted endpoints; 3600 s locally, where a long answer on a busy CPU can
    # take many minutes and a timeout would only make the retry queue behind the abandoned one.
    timeout_s: float | None = Field(None, gt=0)
    max_attempts: int = Field(5, ge=1, le=20)  # per HTTP call (429/5xx/timeouts)
    wait_initial_s: float = Field(1.0, ge=0)
    wait_max_s: float = Field(30.0, ge=0)
    max_invalid: int = Field(3, ge=0, le=20)  # re-asks after an invalid answer
    concurrency: int = Field(5, ge=1, le=64)  # requests in flight at once (locally: at most local_slots)
    # llama.cpp slots of the local server. One: each slot evaluates the shared prompt prefix for
    # itself (myocardial: 4,100 tokens per slot), and with one thread batching saved less than
    # that (bench_elicit, diabetes, per_feature: 1 slot 1.1x the calls/s of 5, under load).
    local_slots: int = Field(1, ge=1, le=64)

    # strategy knobs
    max_tokens: int | None = Field(None, ge=1)  # cap for score answers (default: from d)
    reasoning_max_tokens: int = Field(1024, ge=16)
    max_rank_steps: int | None = Field(None, ge=1)  # elimination: rank only the top k
    elimination_signs: bool = True  # elimination: sign from yes/no log-probs
    # per_feature on the local server: prefill the JSON start and generate only the integer and
    # the closing brace by grammar (~5 tokens, not 15-20). Off: bench_priors rank agreement fell
    # (6 datasets, 3 samples, one run: mean signed Spearman +0.24 with JSON answers, -0.06
    # compact; benchmarks/README.md), so the speed is not worth it yet.
    compact_answer: bool = False
    # yes_no (and elimination signs): also ask the reversed question and score the difference
    # of log-odds, which cancels a model's overall Yes/No bias (2x the 1-token calls).
    yes_no_mirror: bool = True

    # non-LLM sources
    # expert: the prior file; "{dataset}" is replaced by the dataset's name (the project's conf
    # sets <conf>/base/priors/{dataset}.yml)
    expert_prior_path: str | None = None
    oracle_C: float = Field(1.0, gt=0)

    # accounting (USD per million tokens; None = unknown)
    price_in_per_mtok: float | None = Field(None, ge=0)
    price_out_per_mtok: float | None = Field(None, ge=0)

    progress: bool = True  # a progress bar of LLM calls on an interactive terminal (never in logs)

    @model_validator(mode="after")
    def _openai_needs_model(self) -> ElicitationSettings:
        if self.source == "openai" and not self.model:
            raise ValueError("source 'openai' needs `model` (e.g. gpt-4o-mini)")
        return self

    def __repr_args__(self):
        # str() and repr() are what kedro-mlflow logs (as a tag) and what tracebacks show.
        for name, value in super().__repr_args__():
            yield name, redact(value)

    def public_dump(self) -> dict:
        """The settings as JSON-ready values with credentials masked: what may be stored."""
        return redact(self.model_dump(mode="json"))

    def resolved_timeout(self) -> float:
        if self.timeout_s is not None:
            return self.timeout_s
        return 3600.0 if self.source == "local" else 300.0

    def resolved_strategy(self) -> str:
        if self.strategy != "auto":
            return self.strategy
        return LOCAL_DEFAULT_STRATEGY if self.source == "local" else HOSTED_DEFAULT_STRATEGY
