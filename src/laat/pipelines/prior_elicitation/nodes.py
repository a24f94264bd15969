"""Thin node over `laat.elicit.build_prior`: one prior, its expert-editable YAML and its record.

The LLM client, the local llama.cpp server and sklearn (oracle) are only touched inside
the node, so importing this module at `kedro` start-up stays cheap.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from laat.datasets import parse_metadata
from laat.elicit.settings import ElicitationSettings


class PriorElicitationParams(ElicitationSettings):
    """`params:prior_elicitation` (conf/base/parameters_prior_elicitation.yml)."""


def check_source_matches_file_name(params: PriorElicitationParams, prior_source: str) -> None:
    """The catalog names prior files after `prior_source`; a different `source` would mislabel them."""
    if params.source != prior_source:
        raise ValueError(
            f"prior_elicitation.source is {params.source!r} but prior_source is {prior_source!r}: the prior "
            f"would be saved as prior_{prior_source}.json. Choose the source with "
            f"`kedro run --params prior_source={params.source}` (it sets both)."
        )


def elicit_prior(
    metadata: dict[str, Any], validated: pd.DataFrame, params: PriorElicitationParams, prior_source: str
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Prior as JSON dict, the same prior as editable YAML text, and the elicitation record.

    `validated` is used only by the oracle source (it fits on the labelled rows). An LLM's
    calls are also logged as an MLflow trace of the run (`laat.tracing`).
    """
    from laat.elicit import build_prior
    from laat.tracing import log_elicitation_trace

    if isinstance(params, dict):  # a plain dict when called outside Kedro's typed parameters
        params = PriorElicitationParams.model_validate(params)
    check_source_matches_file_name(params, prior_source)
    meta = parse_metadata(metadata)
    result = build_prior(meta, params, data=validated if params.source == "oracle" else None)
    log_elicitation_trace(result.record)
    return result.prior.to_dict(), result.prior.to_yaml(), result.record
