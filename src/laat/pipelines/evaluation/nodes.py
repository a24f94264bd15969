"""Thin nodes over laat.metrics, laat.fairness, laat.plots and laat.serving, for every task
(`laat.datasets.TaskKind`): binary, multiclass and regression."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from laat.datasets import encode, labels, parse_metadata
from laat.fairness import (
    NONE_DECLARED,
    fairness_report,
    multiclass_fairness_report,
    regression_fairness_report,
)
from laat.metrics import TASK_METRIC
from laat.priors import Prior

log = logging.getLogger(__name__)


class EvaluationParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(
        0.5, gt=0, lt=1, description="P(positive) cut-off for accuracy, F1, fairness (binary tasks)"
    )
    champion_metric: str | None = Field(
        None, description="metric the champion alias is decided on; null = the task's (laat.metrics.TASK_METRIC)"
    )
    register_model: bool = Field(True, description="log the servable model and register it as laat-<dataset>")
    model_name_prefix: str = "laat-"
    top_features: int = Field(25, ge=1, description="features shown in the attribution plot")


def predict_test(model, test_rows: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """``y_true`` (class code or value) and the model's output for every held-out row: binary
    ``p_yes`` (P(positive class)); multiclass one ``p_<class>`` per class; regression ``prediction``.

    Gaps are filled by the model's imputer step with its training medians, as in serving.
    """
    from laat.serving import output_columns

    meta = parse_metadata(metadata)
    X, out = encode(test_rows, meta), pd.DataFrame({"y_true": labels(test_rows, meta)})
    if meta.target.kind == "binary":
        out["p_yes"] = model.predict_proba(X)[:, 1]
    elif meta.target.kind == "multiclass":
        out[output_columns(meta)] = model.predict_proba(X)
    else:
        out[output_columns(meta)[0]] = model.predict(X)
    return out


def score(
    predictions: pd.DataFrame, test_rows: pd.DataFrame, metadata: dict[str, Any], params: EvaluationParams
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The task's metrics and fairness gaps (MLflow-ready) plus the by-group table."""
    from laat.metrics import (
        classification_metrics,
        multiclass_metrics,
        regression_metrics,
    )
    from laat.serving import output_columns

    meta = parse_metadata(metadata)
    y, sensitive = predictions["y_true"].to_numpy(), test_rows[meta.sensitive_features]
    if meta.target.kind == "binary":
        p = predictions["p_yes"].to_numpy()
        values = classification_metrics(y, p, threshold=params.threshold)
        summary, by_group = fairness_report(y, p, sensitive, threshold=params.threshold)
    elif meta.target.kind == "multiclass":
        proba = predictions[output_columns(meta)].to_numpy()
        values = multiclass_metrics(y, proba)
        summary, by_group = multiclass_fairness_report(y, proba, sensitive)
    else:
        prediction = predictions[output_columns(meta)[0]].to_numpy()
        values = regression_metrics(y, prediction)
        summary, by_group = regression_fairness_report(y, prediction, sensitive)
    values.update(summary)
    if not meta.sensitive_features:
        log.info("%s fairness: sensitive features %s in the metadata, no fairness metrics", meta.name, NONE_DECLARED)
    for name, v in values.items():
        log.info("%s %s = %.4f", meta.name, name, v)
    return {k: {"value": float(v), "step": 0} for k, v in values.items()}, by_group


def plot_results(
    attributions: pd.DataFrame,
    predictions: pd.DataFrame,
    by_group: pd.DataFrame,
    prior: dict[str, Any],
    metadata: dict[str, Any],
    params: EvaluationParams,
):
    """Prior vs learned attributions; the task's performance plot (binary: ROC curve, multiclass:
    confusion matrix, regression: residuals); accuracy (regression: MAE) by group."""
    from laat.plots import (
        plot_attributions,
        plot_confusion_matrix,
        plot_metric_by_group,
        plot_residuals,
        plot_roc,
    )
    from laat.serving import output_columns

    meta = parse_metadata(metadata)
    p = Prior.from_dict(prior)
    table = attributions.set_index("feature")
    if "class" in attributions.columns:  # k classes: one bar pair per feature and class
        table.index = [f"{f} ({c})" for f, c in zip(attributions["feature"], attributions["class"])]
    att = plot_attributions(
        table["prior_target"],
        table["learned"],
        title=f"{meta.name}: prior vs learned",
        prior_label=f"{p.label} prior",
        top_n=params.top_features,
    )
    y, kind = predictions["y_true"], meta.target.kind
    if kind == "binary":
        performance = plot_roc(y, predictions["p_yes"], label=f"LAAT ({meta.name})")
    elif kind == "multiclass":
        performance = plot_confusion_matrix(
            y, predictions[output_columns(meta)], meta.target.classes, title=f"{meta.name}: confusion matrix"
        )
    else:
        performance = plot_residuals(y, predictions[output_columns(meta)[0]], meta.target.column, title=meta.name)
    return att, performance, plot_metric_by_group(by_group, "mae" if kind == "regression" else "accuracy")


def register_model(
    model,
    test_rows: pd.DataFrame,
    metrics: dict[str, Any],
    prior: dict[str, Any],
    metadata: dict[str, Any],
    params: EvaluationParams,
) -> dict[str, Any]:
    """Tag the run with the prior's provenance, log the raw-rows-in model, decide the champion.

    The champion alias moves only if the new version beats the current one on
    `champion_metric` (default: the task's, `laat.metrics.TASK_METRIC`; lower is better for
    errors and losses); the decision (with both numbers) is returned and logged.
    """
    import mlflow
    from mlflow import MlflowClient

    from laat.metrics import higher_is_better
    from laat.serving import describe_version, log_model, promote_if_better

    meta = parse_metadata(metadata)
    p = Prior.from_dict(prior)
    mlflow.set_tags(
        {
            f"{meta.name}.prior.source": p.source,
            f"{meta.name}.prior.label": p.label,
            f"{meta.name}.prior.fingerprint": str(p.provenance.get("fingerprint", "")),
            f"{meta.name}.sensitive_features": ", ".join(meta.sensitive_features) or NONE_DECLARED,
        }
    )
    name = f"{params.model_name_prefix}{meta.name}"
    if not params.register_model:
        return {"registered": False, "model_name": name, "reason": "evaluation.register_model is false"}
    champion = params.champion_metric or TASK_METRIC[meta.target.kind]
    # The MLflow metrics dataset hands metrics back prefixed with the dataset name.
    key = next((k for k in (champion, f"{meta.name}.{champion}") if k in metrics), None)
    if key is None:
        raise KeyError(f"champion_metric {champion!r} is not among the computed metrics {sorted(metrics)}")
    value = metrics[key]["value"] if isinstance(metrics[key], dict) else metrics[key]
    info = log_model(model, meta, test_rows, name=f"{meta.name}_model", registered_model_name=name)
    client = MlflowClient()
    describe_version(
        client,
        name,
        info.registered_model_version,
        meta,
        p.label,
        champion,
        value,
        model,
        mlflow.active_run().info.run_id,
    )
    decision = promote_if_better(
        client, name, info.registered_model_version, champion, value, higher_is_better=higher_is_better(champion)
    )
    decision.update(registered=True, model_name=name, model_uri=info.model_uri, prior_source=p.source)
    log.info("%s v%s: %s", name, decision["new_version"], decision["reason"])
    return decision
