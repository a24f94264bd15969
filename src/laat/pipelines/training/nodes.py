"""Thin nodes: split rows, check the prior against them, fit imputer + `LAATClassifier`, report trust."""

from __future__ import annotations

import logging
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from laat.datasets import encode, labels, parse_metadata
from laat.priors import Prior
from laat.splits import few_rows_split, few_shot_split, fraction_split

log = logging.getLogger(__name__)


class SplitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["few_shot", "fraction"] = "few_shot"
    shots: int = Field(10, ge=1, description="training rows per class (few_shot; for regression: in all)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of rows held out (fraction)")
    seed: int = 69
    repetition: int = Field(0, ge=0)


class EstimatorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Literal["lr", "mlp"] = "lr"
    gamma: float = Field(100.0, ge=0, description="weight of the attribution term; 0 = plain training")
    tau: float = Field(1.0, gt=0, description="target temperature: sign(s)*exp(|s|/tau)")
    trust: Literal["auto", "off"] = Field(
        "auto", description="auto: the training rows decide how much to follow the prior (laat.trust); "
                            "off: always follow it at gamma/tau (the paper)")
    attribution: Literal["grad", "input_x_grad"] = "grad"
    hidden: int = Field(100, ge=1)
    lr: float = Field(1e-2, gt=0)
    epochs: int = Field(200, ge=1)
    batch_size: int | None = Field(128, ge=1, description="mini-batch rows; null = always full batch")
    confidence: Literal["none", "spread"] = Field("none", description="down-weight features LLM samples disagree on")
    suppress: list[str] = Field(default_factory=list, description="features whose attribution is forced to 0")
    random_state: int = 0


class DiagnosticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: float = Field(0.05, gt=0, lt=1, description="flag a feature when the data contradicts its prior "
                                                       "sign at this significance level")
    n_permutations: int = Field(2000, ge=100)
    top_features: int = Field(25, ge=1, description="features shown in the plot (flagged ones always)")


class TrainingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: SplitParams = SplitParams()
    estimator: EstimatorParams = EstimatorParams()
    diagnostic: DiagnosticParams = DiagnosticParams()


def split_rows(validated: pd.DataFrame, metadata: dict[str, Any],
               params: TrainingParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded train/test split of the raw rows; test rows are never seen by the model."""
    meta = parse_metadata(metadata)
    s = params.split
    if s.strategy == "few_shot" and meta.target.kind == "regression":
        train_idx, test_idx = few_rows_split(len(validated), s.shots, s.seed, s.repetition)
    elif s.strategy == "few_shot":
        train_idx, test_idx = few_shot_split(labels(validated, meta), s.shots, s.seed, s.repetition)
    else:
        train_idx, test_idx = fraction_split(len(validated), s.test_fraction, s.seed, s.repetition)
    return validated.iloc[train_idx].reset_index(drop=True), validated.iloc[test_idx].reset_index(drop=True)


def fit_model(train_rows: pd.DataFrame, metadata: dict[str, Any], prior: dict[str, Any],
              params: TrainingParams):
    """Fit imputer + `LAATClassifier` on the encoded training rows (a scikit-learn Pipeline).

    The imputer's medians come from these rows only and travel with the model, so evaluation
    and the served model fill gaps the same way. The prior must name exactly the encoded columns.
    """
    from laat.estimator import LAATClassifier
    from laat.preprocess import with_imputer

    meta = parse_metadata(metadata)
    model = with_imputer(LAATClassifier(**params.estimator.model_dump()))
    model.fit(encode(train_rows, meta), labels(train_rows, meta), model__prior=Prior.from_dict(prior))
    trust = model[-1].trust_
    log.info("%s: trust=%s gamma=%g tau=%g: %s", meta.name, trust["mode"], trust["gamma"], trust["tau"],
             trust["reason"])
    return model


def report_trust(model) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fitted model's trust decision (JSON) and its key numbers as MLflow metrics."""
    decision = dict(model[-1].trust_)
    values = {"trust.gamma": decision["gamma"], "trust.tau": decision["tau"],
              "trust.followed": float(decision["followed"])}
    p = (decision.get("agreement") or {}).get("p_value")
    if p is not None:
        values["trust.p_value"] = p
    return decision, {k: {"value": float(v), "step": 0} for k, v in values.items()}


def diagnose_prior(train_rows: pd.DataFrame, metadata: dict[str, Any], prior: dict[str, Any],
                   params: TrainingParams):
    """Per-feature agreement of the prior with the training rows: table, plot and summary metrics."""
    from laat.diagnostics import diagnostic_metrics, plot_prior_diagnostic, prior_diagnostic
    from laat.preprocess import missing_value_imputer

    meta = parse_metadata(metadata)
    p = Prior.from_dict(prior)
    d = params.diagnostic
    X = missing_value_imputer().fit_transform(encode(train_rows, meta))  # as fit_model's imputer does
    table, summary = prior_diagnostic(X, labels(train_rows, meta), p, level=d.level,
                                      n_permutations=d.n_permutations, seed=params.split.seed)
    if summary["flagged"]:
        log.warning("%s: the training rows confidently contradict the %s prior on %s", meta.name, p.label,
                    summary["flagged"])
    fig = plot_prior_diagnostic(table, summary, prior_label=f"{p.label} prior", title=f"{meta.name}: prior check",
                                top_n=d.top_features)
    metrics = {f"prior_diagnostic.{k}": {"value": v, "step": 0} for k, v in diagnostic_metrics(summary).items()}
    return table, fig, metrics


def attribution_table(model, prior: dict[str, Any]) -> pd.DataFrame:
    """Prior vs learned attributions per feature, both normalised as the loss sees them."""
    p = Prior.from_dict(prior)
    learned = model[-1].feature_attributions_
    target = model[-1].prior_target_
    return pd.DataFrame({
        "feature": list(learned.index),
        "prior_score": [p.scores()[f] for f in learned.index],
        "prior_target": target.reindex(learned.index).to_numpy(),
        "learned": learned.to_numpy(),
    })
