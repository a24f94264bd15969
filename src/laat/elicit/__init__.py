"""Eliciting feature-importance priors from LLMs (local llama.cpp or any OpenAI-compatible API).

Exports are resolved lazily: the openai SDK takes seconds to import, and Kedro imports
every pipeline module (hence `laat.elicit.settings`) at start-up.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ElicitationError": "laat.elicit.errors",
    "InvalidAnswerError": "laat.elicit.errors",
    "LLMCallError": "laat.elicit.errors",
    "LocalServerError": "laat.elicit.errors",
    "MalformedResponseError": "laat.elicit.errors",
    "CacheEntryEditedError": "laat.elicit.errors",
    "ElicitationSettings": "laat.elicit.settings",
    "Elicitation": "laat.elicit.run",
    "build_prior": "laat.elicit.run",
    "elicit_prior": "laat.elicit.run",
    "run_elicitation": "laat.elicit.run",
    "STRATEGIES": "laat.elicit.strategies",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'laat.elicit' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
