"""One chat request through cache, retries and accounting.

Strategies only say *what* to ask; `CallContext.chat` decides whether the answer is
already on disk (zero HTTP requests) or must be paid for, stores it atomically before
returning, and keeps the token/latency tally and the record of prompts and raw answers.

An answer the strategy rejects is marked invalid in the record. If the sample then gives
up, its invalid answers are moved out of the cache (`ResponseCache.set_aside`), so the next
run asks again instead of replaying the failure; invalid answers followed by a valid one
stay, so a rerun retraces the same path to the same prior for free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, Executor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from laat.elicit.cache import ResponseCache, cache_key
from laat.elicit.client import RetryPolicy, call_with_retries, chat_completion
from laat.elicit.prompts import text_hash


class Endpoint(Protocol):
    kind: str  # "local" or "openai"
    label: str  # safe to log: no secrets
    model: str  # name sent in requests
    extra_body: dict | None  # sent with every request, not part of the cache key
    grammar: bool  # accepts llama.cpp's GBNF `grammar` field (the project's own server does)

    def model_id(self, model: str) -> str: ...  # identity used in cache keys
    def client(self): ...  # an openai.OpenAI; may start a server
    def close(self) -> None: ...


class AnswerInvalid(Exception):
    """An answer that cannot be used; the strategy re-asks (bounded) or gives up."""


@dataclass
class Reply:
    content: str
    finish_reason: str | None
    logprobs: dict | None
    usage: dict
    latency_s: float
    cached: bool
    raw: dict


# An elicitation's usage counters (its provenance and record "usage"); a per-class prior sums them.
USAGE_KEYS = (
    "calls",
    "fresh_calls",
    "cached_calls",
    "tokens_in",
    "tokens_out",
    "fresh_tokens_in",
    "fresh_tokens_out",
    "latency_s",
    "wall_s",
    "cost_usd",
    "fresh_cost_usd",
)


@dataclass
class Tally:
    calls: int = 0
    cached_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    fresh_tokens_in: int = 0
    fresh_tokens_out: int = 0
    fresh_latency_s: float = 0.0
    cached_latency_s: float = 0.0

    @property
    def fresh_calls(self) -> int:
        return self.calls - self.cached_calls


@dataclass
class CallContext:
    endpoint: Endpoint
    cache: ResponseCache
    strategy: str
    policy: RetryPolicy
    refresh: bool = False
    tally: Tally = field(default_factory=Tally)
    calls: list[dict[str, Any]] = field(default_factory=list)
    prompts: dict[str, str] = field(default_factory=dict)
    progress: Any = None  # anything with update(n), e.g. a tqdm bar: one tick per answered call
    # Requests in flight at once (llama.cpp's parallel slots locally), and the pool `map` runs on.
    concurrency: int = 1
    pool: Executor | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Each sample runs on one thread: its last call is the answer a strategy just rejected.
    _last: threading.local = field(default_factory=threading.local)
    _in_flight: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self._in_flight = threading.BoundedSemaphore(self.concurrency)

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``[fn(i) for i in items]``, concurrently on `pool` when more than one request may be in flight.

        For a sample's independent questions (one per feature). ``fn`` must not call `map`
        itself: the pool is bounded, and a task waiting on tasks queued behind it would wait forever.
        """
        items = list(items)
        if self.pool is None or self.concurrency == 1:
            return [fn(i) for i in items]
        futures = [self.pool.submit(fn, i) for i in items]
        wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:  # one question failed for good: do not pay for the rest of this sample
            f.cancel()
        return [f.result() for f in futures]

    def chat(
        self,
        prompt: str,
        *,
        step: str,
        sample: int,
        attempt: int,
        temperature: float,
        max_tokens: int,
        seed: int,
        response_format: dict | None = None,
        top_logprobs: int | None = None,
        model: str | None = None,
        grammar: str | None = None,
        prefill: str | None = None,
    ) -> Reply:
        """One answer, from the cache or the endpoint (``grammar``, ``prefill``: see `_request`)."""
        model = model or self.endpoint.model
        request = _request(
            model, prompt, temperature, max_tokens, seed, response_format, top_logprobs, grammar, prefill
        )
        payload = {
            "model_id": self.endpoint.model_id(model),
            "endpoint_kind": self.endpoint.kind,
            "strategy": self.strategy,
            "step": step,
            "sample": sample,
            "attempt": attempt,
            "request": {k: v for k, v in request.items() if k != "model"},
        }
        key = cache_key(payload)
        entry = None if self.refresh else self.cache.get(key)
        cached = entry is not None
        if entry is None:
            client = self.endpoint.client()
            what = f"{self.endpoint.label} model {model!r}: {self.strategy}/{step} sample {sample} attempt {attempt}"
            with self._in_flight:
                t0 = time.perf_counter()
                raw = call_with_retries(
                    lambda: chat_completion(client, request, self.endpoint.extra_body), policy=self.policy, what=what
                )
                latency = time.perf_counter() - t0
            entry = {
                "key_payload": payload,
                "response": raw,
                "usage": raw.get("usage") or {},
                "latency_s": latency,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            # Another run may have stored this key meanwhile: use the answer that was kept,
            # so this run, the other and every rerun agree (we still paid for ours: not cached).
            entry = self.cache.put(key, entry, replace=self.refresh)
        self._last.call = (key, cached)
        try:
            reply = _reply(entry, cached)
        except AnswerInvalid:
            # Paid for even though unusable: count it before the strategy re-asks.
            self._account(
                Reply("", None, None, dict(entry.get("usage") or {}), float(entry.get("latency_s") or 0.0), cached, {}),
                key,
                prompt,
                step,
                sample,
                attempt,
            )
            raise
        self._account(reply, key, prompt, step, sample, attempt)
        return reply

    def reject_last(self, reason: str) -> tuple[str, bool]:
        """Mark this thread's last answer invalid in the record; its (cache key, was cached)."""
        key, cached = self._last.call
        with self._lock:
            for c in reversed(self.calls):
                if c["cache_key"] == key:
                    c["invalid"] = reason
                    break
        return key, cached

    def set_aside(self, keys: list[str]) -> str:
        """Move these answers out of the cache (a sample gave up on them); where they went."""
        for key in keys:
            self.cache.set_aside(key)
        return str(self.cache.invalid_dir)

    def _account(self, reply: Reply, key: str, prompt: str, step: str, sample: int, attempt: int) -> None:
        pin = int(reply.usage.get("prompt_tokens") or 0)
        pout = int(reply.usage.get("completion_tokens") or 0)
        phash = text_hash(prompt)
        with self._lock:
            t = self.tally
            t.calls += 1
            t.tokens_in += pin
            t.tokens_out += pout
            if reply.cached:
                t.cached_calls += 1
                t.cached_latency_s += reply.latency_s
            else:
                t.fresh_tokens_in += pin
                t.fresh_tokens_out += pout
                t.fresh_latency_s += reply.latency_s
            self.prompts.setdefault(phash, prompt)
            self.calls.append(
                {
                    "step": step,
                    "sample": sample,
                    "attempt": attempt,
                    "cache_key": key,
                    "cached": reply.cached,
                    "prompt_sha256": phash,
                    "response": reply.content,
                    "finish_reason": reply.finish_reason,
                    "usage": reply.usage,
                    "latency_s": round(reply.latency_s, 4),
                }
            )
            if self.progress is not None:
                self.progress.update(1)


def _request(model, prompt, temperature, max_tokens, seed, response_format, top_logprobs, grammar, prefill) -> dict:
    """The chat request; every field is part of the cache key.

    ``grammar``: a llama.cpp GBNF grammar the answer must follow; ``prefill``: the start of
    the assistant's answer, which llama.cpp continues (and echoes back).
    """
    messages = [{"role": "user", "content": prompt}]
    if prefill is not None:
        messages.append({"role": "assistant", "content": prefill})
    request: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "seed": seed,
    }
    if response_format is not None:
        request["response_format"] = response_format
    if grammar is not None:
        request["grammar"] = grammar
    if top_logprobs:
        request["logprobs"] = True
        request["top_logprobs"] = top_logprobs
    return request


def _reply(entry: dict[str, Any], cached: bool) -> Reply:
    raw = entry.get("response") or {}
    choices = raw.get("choices") or []
    if not choices:
        raise AnswerInvalid("the response has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    return Reply(
        content=message.get("content") or "",
        finish_reason=choice.get("finish_reason"),
        logprobs=choice.get("logprobs"),
        usage=dict(entry.get("usage") or {}),
        latency_s=float(entry.get("latency_s") or 0.0),
        cached=cached,
        raw=raw,
    )
