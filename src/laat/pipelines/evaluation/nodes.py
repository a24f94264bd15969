"""Thin nodes over laat.metrics, laat.fairness, laat.plots and laat.serving."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from laat.datasets import encode, labels, parse_metadata
from laat.fairness import NONE_DECLARED, fairness_report
from laat.priors import Prior

log = logging.getLogger(__name__)


class EvaluationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(0.5, gt=0, lt=1, description="P(positive) cut-off for accuracy, F1, fairness")
    champion_metric: str = Field("roc_auc", description="metric the champion alias is decided on")
    register_model: bool = Field(True, description="log the servable model and register it as laat-<dataset>")
    model_name_prefix: str = "laat-"
    top_features: int = Field(25, ge=1, description="features shown in the attribution plot")


def predict_test(model, test_rows: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """Labels and P(positive class) for every held-out row.

    Gaps are filled by the model's imputer step with its training medians, as in serving.
    """
    meta = parse_metadata(metadata)
    p_yes = model.predict_proba(encode(test_rows, meta))[:, 1]
    return pd.DataFrame({"y_true": labels(test_rows, meta), "p_yes": p_yes})


def score(predictions: pd.DataFrame, test_rows: pd.DataFrame, metadata: dict[str, Any],
          params: EvaluationParams) -> tuple[dict[str, Any], pd.DataFrame]:
    """Classification and fairness metrics (MLflow-ready) plus the by-group table."""
    from laat.metrics import classification_metrics

    meta = parse_metadata(metadata)
    y, p = predictions["y_true"].to_numpy(), predictions["p_yes"].to_numpy()
    values = classification_metrics(y, p, threshold=params.threshold)
    summary, by_group = fairness_report(y, p, test_rows[meta.sensitive_features], threshold=params.threshold)
    values.update(summary)
    if not meta.sensitive_features:
        log.info("%s fairness: sensitive features %s in the metadata, no fairness metrics", meta.name, NONE_DECLARED)
    for name, v in values.items():
        log.info("%s %s = %.4f", meta.name, name, v)
    return {k: {"value": float(v), "step": 0} for k, v in values.items()}, by_group


def plot_results(attributions: pd.DataFrame, predictions: pd.DataFrame, by_group: pd.DataFrame,
                 prior: dict[str, Any], metadata: dict[str, Any], params: EvaluationParams):
    """Prior vs learned attributions, ROC curve, and accuracy by group."""
    from laat.plots import plot_attributions, plot_metric_by_group, plot_roc

    meta = parse_metadata(metadata)
    p = Prior.from_dict(prior)
    table = attributions.set_index("feature")
    att = plot_attributions(table["prior_target"], table["learned"], title=f"{meta.name}: prior vs learned",
                            prior_label=f"{p.label} prior", top_n=params.top_features)
    roc = plot_roc(predictions["y_true"], predictions["p_yes"], label=f"LAAT ({meta.name})")
    return att, roc, plot_metric_by_group(by_group, "accuracy")


def register_model(model, test_rows: pd.DataFrame, metrics: dict[str, Any], prior: dict[str, Any],
                   metadata: dict[str, Any], params: EvaluationParams) -> dict[str, Any]:
    """Tag the run with the prior's provenance, log the raw-rows-in model, decide the champion.

    The champion alias moves only if the new version beats the current one on
    `champion_metric`; the decision (with both numbers) is returned and logged.
    """
    import mlflow
    from mlflow import MlflowClient

    from laat.serving import describe_version, log_model, promote_if_better

    meta = parse_metadata(metadata)
    p = Prior.from_dict(prior)
    mlflow.set_tags({
        f"{meta.name}.prior.source": p.source,
        f"{meta.name}.prior.label": p.label,
        f"{meta.name}.prior.fingerprint": str(p.provenance.get("fingerprint", "")),
        f"{meta.name}.sensitive_features": ", ".join(meta.sensitive_features) or NONE_DECLARED,
    })
    name = f"{params.model_name_prefix}{meta.name}"
    if not params.register_model:
        return {"registered": False, "model_name": name, "reason": "evaluation.register_model is false"}
    # The MLflow metrics dataset hands metrics back prefixed with the dataset name.
    key = next((k for k in (params.champion_metric, f"{meta.name}.{params.champion_metric}") if k in metrics), None)
    if key is None:
        raise KeyError(f"champion_metric {params.champion_metric!r} is not among the computed metrics "
                       f"{sorted(metrics)}")
    value = metrics[key]["value"] if isinstance(metrics[key], dict) else metrics[key]
    info = log_model(model, meta, test_rows, name=f"{meta.name}_model", registered_model_name=name)
    client = MlflowClient()
    describe_version(client, name, info.registered_model_version, meta, p.label, params.champion_metric, value, model,
                     mlflow.active_run().info.run_id)
    decision = promote_if_better(client, name, info.registered_model_version, params.champion_metric, value)
    decision.update(registered=True, model_name=name, model_uri=info.model_uri, prior_source=p.source)
    log.info("%s v%s: %s", name, decision["new_version"], decision["reason"])
    return decision
