"""OpenAI-compatible client factory and the retry policy around every call.

The SDK's own retries are switched off (``max_retries=0``) so that tenacity alone decides:
rate limits, 5xx, timeouts, connection errors and malformed bodies (a 200 carrying an HTML
page or JSON cut short) are retried with jittered exponential backoff, or after the server's
``Retry-After`` when it sends one (capped at the policy's longest wait), up to a bounded
number of attempts; anything else (400, 401, 404, ...) fails at once. The final error names
the endpoint, the model and every failure it saw.

openai and tenacity are imported only when a client is made or a call is run: together they
take about a second to import, and a run whose answers are all cached makes neither.
"""

from __future__ import annotations

import email.utils
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from omegaconf import OmegaConf  # resolves ${oc.env:...} in credentials files, as Kedro does
from omegaconf.resolvers import oc

from laat.elicit.errors import LLMCallError, MalformedResponseError
from laat.elicit.redact import redact, redact_logger

if TYPE_CHECKING:
    import openai

T = TypeVar("T")


def retryable() -> tuple[type[BaseException], ...]:
    """The errors worth another attempt: rate limits, connection errors, 5xx, malformed bodies."""
    import openai

    return (openai.RateLimitError, openai.APIConnectionError, openai.InternalServerError, MalformedResponseError)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    wait_initial: float = 1.0
    wait_max: float = 30.0


def make_client(base_url: str | None, api_key: str, timeout: float) -> openai.OpenAI:
    """An OpenAI client with SDK retries off; ``base_url=None`` falls back to OPENAI_BASE_URL."""
    import openai

    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)
    # The SDK's HTTP library (httpx, or the httpx2 it may bundle) logs every request URL at
    # INFO, credentials included.
    for cls in type(client._client).__mro__:
        if cls.__module__.startswith("httpx"):
            redact_logger(cls.__module__.split(".")[0])
            break
    return client


def resolve_api_key(api_key_env: str, credentials_path: str | Path | None, credentials_key: str = "openai") -> str:
    """Key from the environment, else from the caller's Kedro credentials file (``<key>: {api_key: ...}``;
    None: the environment only).

    The key is returned to the caller only; it is never logged or stored in provenance.
    """
    key = os.environ.get(api_key_env)
    if key:
        return key
    if credentials_path and Path(credentials_path).exists():
        # Kedro's config loader unregisters oc.env once it has loaded the config (it allows it in
        # credentials only), so inside a Kedro run the file would fail to resolve without this.
        if not OmegaConf.has_resolver("oc.env"):
            OmegaConf.register_new_resolver("oc.env", oc.env)
        conf = OmegaConf.to_container(OmegaConf.load(credentials_path), resolve=True) or {}
        entry = conf.get(credentials_key) or {}
        key = entry.get("api_key") if isinstance(entry, dict) else None
        if key:
            return str(key)
    where = (
        f"add `{credentials_key}: {{api_key: ...}}` to {credentials_path}"
        if credentials_path
        else f"set credentials_path to a credentials file holding `{credentials_key}: {{api_key: ...}}`"
    )
    raise LLMCallError(f"no API key: set the environment variable {api_key_env} or {where}")


def endpoint_label(base_url: str | None) -> str:
    """Scheme and host of an endpoint, safe to log (no path, query or user info)."""
    url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _snippet(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:50] + " ... " + text[-20:])


# Request fields llama.cpp's server reads that the openai SDK has no argument for: sent in the body.
LLAMA_CPP_FIELDS = ("grammar",)


def chat_completion(client: openai.OpenAI, request: dict[str, Any], extra_body: dict | None = None) -> dict[str, Any]:
    """One chat request; its JSON body as a dict, or MalformedResponseError saying what came back.

    The raw body is read (not the SDK's parsed object): the SDK hands back an HTML page as a
    plain string and lets a cut-off JSON body escape as a bare JSONDecodeError.
    """
    body = {k: v for k, v in request.items() if k not in LLAMA_CPP_FIELDS}
    extra = {**(extra_body or {}), **{k: request[k] for k in LLAMA_CPP_FIELDS if k in request}} or None
    http = client.chat.completions.with_raw_response.create(**body, extra_body=extra).http_response
    ctype = http.headers.get("content-type", "")
    text = http.text
    if "json" not in ctype.split(";")[0]:
        raise MalformedResponseError(
            f"HTTP {http.status_code} with Content-Type {ctype or '(none)'} instead of JSON: {_snippet(text)}"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedResponseError(
            f"HTTP {http.status_code} with a JSON body cut short or malformed "
            f"({exc.msg} at char {exc.pos} of {len(text)}): {_snippet(text)}"
        ) from None
    if not isinstance(data, dict):
        raise MalformedResponseError(f"HTTP {http.status_code} with JSON {type(data).__name__}, not an object")
    return data


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds the server asked to wait (``Retry-After``: seconds or an HTTP date), if it did."""
    response = getattr(exc, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    return f"HTTP {status} {type(exc).__name__}" if status else type(exc).__name__


def call_with_retries(fn: Callable[[], T], *, policy: RetryPolicy, what: str) -> T:
    """Run ``fn`` under the retry policy; raise LLMCallError saying what failed and how often."""
    import openai
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

    retry_on = retryable()
    seen: list[BaseException] = []

    def _record(exc: BaseException) -> None:
        seen.append(exc)

    backoff = wait_random_exponential(multiplier=policy.wait_initial, max=policy.wait_max)

    def wait(retry_state) -> float:
        asked = retry_after_s(retry_state.outcome.exception())
        return backoff(retry_state) if asked is None else min(asked, policy.wait_max)

    retrying = Retrying(
        stop=stop_after_attempt(max(1, policy.max_attempts)),
        wait=wait,
        retry=retry_if_exception_type(retry_on),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                try:
                    return fn()
                except retry_on as exc:
                    _record(exc)
                    raise
    except retry_on as exc:
        counts = Counter(_describe(e) for e in seen)
        summary = ", ".join(f"{n}x {k}" for k, n in counts.items())
        asked = retry_after_s(exc)
        waited = (
            ""
            if asked is None
            else f"; the server asked to wait {asked:.3g} s (Retry-After), "
            f"waits are capped at {policy.wait_max:g} s (wait_max_s)"
        )
        raise LLMCallError(
            redact(f"{what} failed after {len(seen)} attempts ({summary}); last error: {exc}{waited}")
        ) from exc
    except openai.APIStatusError as exc:
        raise LLMCallError(
            redact(f"{what} was rejected with HTTP {exc.status_code} (not retried): {exc.message}")
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover
