"""Thin nodes: validate new rows, score them with a registered model, monitor when labelled.

The model is ``<evaluation.model_name_prefix><dataset>`` from the MLflow registry, at the
``champion`` alias or a given version. Each scored row carries the model version, the prior's
source and fingerprint (tags of the run that trained it) and the time it was scored.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from laat.datasets import labels, parse_metadata
from laat.fairness import BY_GROUP_COLUMNS
from laat.pipelines.evaluation.nodes import EvaluationParams, score
from laat.schema import validation_report

log = logging.getLogger(__name__)

PROVENANCE_COLUMNS = ("model_name", "model_version", "prior_source", "prior_fingerprint", "scored_at")


class ModelLookupError(LookupError):
    """The registered model or version asked for does not exist; the message says what does."""


class InferenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(description="dataset whose registered model scores the rows (metadata and model name)")
    input: str = Field("", description="CSV or parquet file of new rows, or the name of a catalog entry")
    model: str = Field("champion", description="a registry alias (champion) or a version number")

    @field_validator("model", mode="before")
    @classmethod
    def _alias_or_version(cls, v: Any) -> str:
        text = str(v)  # `--params model=3` arrives as an int
        if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
            raise ValueError(f"model must be an alias such as 'champion' or a version number, got {v!r}")
        return text


def check_new_rows(rows: pd.DataFrame, metadata: dict[str, Any]) -> dict[str, Any]:
    """The training validation report for rows to score: the target may be absent, any class count will do."""
    return validation_report(rows, parse_metadata(metadata), min_rows_per_class=0, why="", target_required=False)


def model_version(client, name: str, model: str):
    """The registry's version of ``name`` for an alias or a version number, or a ModelLookupError."""
    from mlflow.exceptions import MlflowException

    try:
        return (
            client.get_model_version(name, model) if model.isdigit() else client.get_model_version_by_alias(name, model)
        )
    except MlflowException:
        try:
            versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        except MlflowException:
            versions = []
        known = f"versions {versions}" if versions else "no versions (run the chain for this dataset first)"
        raise ModelLookupError(
            f"registered model {name!r} has no {'version' if model.isdigit() else 'alias'} {model!r}; it has {known}"
        ) from None


def score_rows(
    rows: pd.DataFrame, metadata: dict[str, Any], params: InferenceParams, evaluation: EvaluationParams
) -> pd.DataFrame:
    """The rows with ``p_<class>`` columns and where each score came from; tags the MLflow run with it."""
    import mlflow
    from mlflow import MlflowClient

    from laat.elicit.redact import redact

    meta = parse_metadata(metadata)
    name = f"{evaluation.model_name_prefix}{meta.name}"
    client = MlflowClient()
    version = model_version(client, name, params.model)
    trained = client.get_run(version.run_id).data.tags if version.run_id else {}
    provenance = {
        "model_name": name,
        "model_version": str(version.version),
        "prior_source": trained.get(f"{meta.name}.prior.source", "unknown"),
        "prior_fingerprint": trained.get(f"{meta.name}.prior.fingerprint", ""),
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    proba = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}").predict(rows)
    scored = pd.concat([rows.reset_index(drop=True), proba.reset_index(drop=True)], axis=1)
    scored = scored.assign(**provenance)
    if mlflow.active_run() is not None:
        mlflow.set_tags(
            {
                "laat.pipeline": "inference",
                "inference.input": redact(params.input),
                "inference.rows": str(len(scored)),
                "inference.target_present": str(meta.target.column in rows.columns).lower(),
                **{f"inference.{k}": v for k, v in provenance.items() if k != "scored_at"},
                f"{meta.name}.prior.source": provenance["prior_source"],
            }
        )
    log.info(
        "%s: scored %d rows with %s v%s (%s prior)",
        meta.name,
        len(scored),
        name,
        version.version,
        provenance["prior_source"],
    )
    return scored


def monitor(
    scored: pd.DataFrame, metadata: dict[str, Any], evaluation: EvaluationParams
) -> tuple[dict[str, Any], pd.DataFrame]:
    """With the target in the rows: the evaluation's metrics and fairness table on them; else nothing."""
    meta = parse_metadata(metadata)
    if meta.target.column not in scored.columns:
        log.info("%s: no %r column in the rows, so no monitoring metrics", meta.name, meta.target.column)
        return {}, pd.DataFrame(columns=list(BY_GROUP_COLUMNS))
    predictions = pd.DataFrame({"y_true": labels(scored, meta), "p_yes": scored[f"p_{meta.positive_class}"]})
    return score(predictions, scored, metadata, evaluation)
