"""OpenAI-compatible client factory and the retry policy around every call.

The SDK's own retries are switched off (``max_retries=0``) so that tenacity alone decides:
rate limits, 5xx, timeouts and connection errors are retried with jittered exponential
backoff up to a bounded number of attempts; anything else (400, 401, 404, ...) fails at
once. The final error names the endpoint, the model and every failure it saw.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import openai
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from laat.elicit.errors import LLMCallError

T = TypeVar("T")

RETRYABLE = (openai.RateLimitError, openai.APIConnectionError, openai.InternalServerError)
DEFAULT_CREDENTIALS = Path("conf") / "local" / "credentials.yml"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    wait_initial: float = 1.0
    wait_max: float = 30.0


def make_client(base_url: str | None, api_key: str, timeout: float) -> openai.OpenAI:
    """An OpenAI client with SDK retries off; ``base_url=None`` falls back to OPENAI_BASE_URL."""
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)


def resolve_api_key(api_key_env: str = "OPENAI_API_KEY",
                    credentials_path: str | Path | None = DEFAULT_CREDENTIALS,
                    credentials_key: str = "openai") -> str:
    """Key from the environment, else from Kedro's credentials file (``<key>: {api_key: ...}``).

    The key is returned to the caller only; it is never logged or stored in provenance.
    """
    key = os.environ.get(api_key_env)
    if key:
        return key
    if credentials_path and Path(credentials_path).exists():
        from omegaconf import OmegaConf  # resolves ${oc.env:...} like Kedro does

        conf = OmegaConf.to_container(OmegaConf.load(credentials_path), resolve=True) or {}
        entry = conf.get(credentials_key) or {}
        key = entry.get("api_key") if isinstance(entry, dict) else None
        if key:
            return str(key)
    raise LLMCallError(f"no API key: set the environment variable {api_key_env} or add "
                       f"`{credentials_key}: {{api_key: ...}}` to {credentials_path}")


def endpoint_label(base_url: str | None) -> str:
    """Scheme and host of an endpoint, safe to log (no path, query or user info)."""
    url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    return f"HTTP {status} {type(exc).__name__}" if status else type(exc).__name__


def call_with_retries(fn: Callable[[], T], *, policy: RetryPolicy, what: str) -> T:
    """Run ``fn`` under the retry policy; raise LLMCallError saying what failed and how often."""
    seen: list[BaseException] = []

    def _record(exc: BaseException) -> None:
        seen.append(exc)

    retrying = Retrying(
        stop=stop_after_attempt(max(1, policy.max_attempts)),
        wait=wait_random_exponential(multiplier=policy.wait_initial, max=policy.wait_max),
        retry=retry_if_exception_type(RETRYABLE),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                try:
                    return fn()
                except RETRYABLE as exc:
                    _record(exc)
                    raise
    except RETRYABLE as exc:
        counts = Counter(_describe(e) for e in seen)
        summary = ", ".join(f"{n}x {k}" for k, n in counts.items())
        raise LLMCallError(f"{what} failed after {len(seen)} attempts ({summary}); last error: {exc}") from exc
    except openai.APIStatusError as exc:
        raise LLMCallError(f"{what} was rejected with HTTP {exc.status_code} (not retried): {exc.message}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def response_dict(resp: Any) -> dict[str, Any]:
    """The raw response as plain JSON (works for SDK objects and dicts)."""
    if hasattr(resp, "model_dump"):
        return resp.model_dump(mode="json", exclude_none=True)
    return dict(resp)
