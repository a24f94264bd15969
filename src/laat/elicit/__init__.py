"""Eliciting feature-importance priors from LLMs (local llama.cpp or any OpenAI-compatible API)."""

from laat.elicit.errors import ElicitationError, InvalidAnswerError, LLMCallError, LocalServerError
from laat.elicit.run import Elicitation, build_prior, elicit_prior, run_elicitation
from laat.elicit.settings import ElicitationSettings
from laat.elicit.strategies import STRATEGIES

__all__ = [
    "STRATEGIES",
    "Elicitation",
    "ElicitationError",
    "ElicitationSettings",
    "InvalidAnswerError",
    "LLMCallError",
    "LocalServerError",
    "build_prior",
    "elicit_prior",
    "run_elicitation",
]
