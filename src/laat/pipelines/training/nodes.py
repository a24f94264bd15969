"""Thin nodes: split rows, fit `LAATClassifier` on the metadata-defined encoding."""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from laat.datasets import encode, labels, parse_metadata
from laat.priors import Prior
from laat.splits import few_shot_split, fraction_split


class SplitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["few_shot", "fraction"] = "few_shot"
    shots: int = Field(10, ge=1, description="training rows per class (few_shot)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of rows held out (fraction)")
    seed: int = 69
    repetition: int = Field(0, ge=0)


class EstimatorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Literal["lr", "mlp"] = "lr"
    gamma: float = Field(100.0, ge=0, description="weight of the attribution term; 0 = plain training")
    tau: float = Field(1.0, gt=0, description="target temperature: sign(s)*exp(|s|/tau)")
    attribution: Literal["grad", "input_x_grad"] = "grad"
    hidden: int = Field(100, ge=1)
    lr: float = Field(1e-2, gt=0)
    epochs: int = Field(200, ge=1)
    batch_size: int | None = Field(128, ge=1, description="mini-batch rows; null = always full batch")
    confidence: Literal["none", "spread"] = Field("none", description="down-weight features LLM samples disagree on")
    suppress: list[str] = Field(default_factory=list, description="features whose attribution is forced to 0")
    random_state: int = 0


class TrainingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: SplitParams = SplitParams()
    estimator: EstimatorParams = EstimatorParams()


def split_rows(validated: pd.DataFrame, metadata: dict[str, Any],
               params: TrainingParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded train/test split of the raw rows; test rows are never seen by the model."""
    meta = parse_metadata(metadata)
    s = params.split
    if s.strategy == "few_shot":
        train_idx, test_idx = few_shot_split(labels(validated, meta), s.shots, s.seed, s.repetition)
    else:
        train_idx, test_idx = fraction_split(len(validated), s.test_fraction, s.seed, s.repetition)
    return validated.iloc[train_idx].reset_index(drop=True), validated.iloc[test_idx].reset_index(drop=True)


def fit_model(train_rows: pd.DataFrame, metadata: dict[str, Any], prior: dict[str, Any],
              params: TrainingParams):
    """Fit on the encoded rows; the prior must name exactly the encoded columns."""
    from laat.estimator import LAATClassifier

    meta = parse_metadata(metadata)
    model = LAATClassifier(**params.estimator.model_dump())
    model.fit(encode(train_rows, meta), labels(train_rows, meta), prior=Prior.from_dict(prior))
    return model


def attribution_table(model, prior: dict[str, Any]) -> pd.DataFrame:
    """Prior vs learned attributions per feature, both normalised as the loss sees them."""
    p = Prior.from_dict(prior)
    learned = model.feature_attributions_
    target = model.prior_target_
    return pd.DataFrame({
        "feature": list(learned.index),
        "prior_score": [p.scores()[f] for f in learned.index],
        "prior_target": target.reindex(learned.index).to_numpy(),
        "learned": learned.to_numpy(),
    })
