"""Errors of the elicitation layer; each message says what failed, where and how often."""

from __future__ import annotations


class ElicitationError(RuntimeError):
    """Base class: elicitation could not produce a prior."""


class LLMCallError(ElicitationError):
    """An LLM request failed (after retries, or with a non-retryable error)."""


class InvalidAnswerError(ElicitationError):
    """The model kept answering in a form that cannot be turned into scores."""


class LocalServerError(ElicitationError):
    """The local llama.cpp server could not be started or its model file is wrong."""


class MalformedResponseError(LLMCallError):
    """An HTTP answer that is not a complete JSON completion (HTML page, body cut short); retried."""


class CacheEntryEditedError(ElicitationError):
    """A cached LLM answer no longer matches the digest recorded when it was paid for."""
