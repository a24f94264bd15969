"""Thin nodes: split rows, check the prior against them, fit imputer + `LAATClassifier` (or
`LAATRegressor` for a numeric target), report trust."""

from __future__ import annotations

import logging
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from laat import hyperparams as hp
from laat.datasets import encode, labels, parse_metadata
from laat.hyperparams import LAATParams
from laat.priors import Prior
from laat.splits import SEED, few_rows_split, few_shot_split, fraction_split

log = logging.getLogger(__name__)


class SplitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["few_shot", "fraction"] = "few_shot"
    shots: int = Field(10, ge=1, description="training rows per class (few_shot; for regression: in all)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of rows held out (fraction)")
    seed: int = SEED
    repetition: int = Field(0, ge=0)


class EstimatorParams(LAATParams):
    """`LAATClassifier`'s arguments: the hyper-parameters (declared once, in `laat.hyperparams`)
    plus the run's own choices."""

    lr: hp.LearningRate | None = Field(None, description="Adam step size; null = the estimator's default for the task")
    loss: hp.RegressionLoss = Field(hp.REGRESSOR_DEFAULTS.loss, description="the loss of a numeric (regression) target")
    suppress: list[str] = Field(default_factory=list, description="features whose attribution is forced to 0")
    random_state: int = 0


class DiagnosticParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: float = Field(
        hp.DIAGNOSTIC_LEVEL,
        gt=0,
        lt=1,
        description="flag a feature when the data contradicts its prior sign at this significance level",
    )
    n_permutations: int = Field(hp.DIAGNOSTIC_PERMUTATIONS, ge=100)
    top_features: int = Field(25, ge=1, description="features shown in the plot (flagged ones always)")


class TrainingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    split: SplitParams = SplitParams()
    estimator: EstimatorParams = EstimatorParams()
    diagnostic: DiagnosticParams = DiagnosticParams()


def split_rows(
    validated: pd.DataFrame, metadata: dict[str, Any], params: TrainingParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
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


def _estimator(settings: EstimatorParams, kind: str):
    """`LAATClassifier` or `LAATRegressor` with the settings its task uses. A k-class or
    regression model trains full batch; a binary-only choice made for them is refused."""
    from laat import LAATClassifier, LAATRegressor

    kw = settings.model_dump(exclude={"batch_size"} if kind != "binary" else set())
    if kw["lr"] is None:
        del kw["lr"]
    if kind == "regression":
        kw.pop("grad_impl")  # the k-output trainer differentiates with autograd
        odd = {k: kw.pop(k) for k in ("attribution", "confidence")}
        if odd != {"attribution": "grad", "confidence": "none"}:
            raise ValueError(
                f"training.estimator {odd} are binary-only; a numeric target needs "
                f"attribution: grad and confidence: none"
            )
        return LAATRegressor(**kw)
    kw.pop("loss")
    return LAATClassifier(**kw)


def fit_model(train_rows: pd.DataFrame, metadata: dict[str, Any], prior: dict[str, Any], params: TrainingParams):
    """Fit imputer + `LAATClassifier` (or `LAATRegressor`) on the encoded training rows (a
    scikit-learn Pipeline).

    The imputer's medians come from these rows only and travel with the model, so evaluation
    and the served model fill gaps the same way. The prior must name exactly the encoded
    columns (and, per class, exactly the target's classes).
    """
    from laat.preprocess import with_imputer

    meta = parse_metadata(metadata)
    estimator = _estimator(params.estimator, meta.target.kind)
    model = with_imputer(estimator)
    model.fit(encode(train_rows, meta), labels(train_rows, meta), model__prior=_prior_for_fit(prior, meta))
    trust = model[-1].trust_
    log.info("%s: trust=%s gamma=%g: %s", meta.name, trust.get("mode"), trust["gamma"], trust["reason"])
    return model


def _prior_for_fit(prior: dict[str, Any], meta) -> Prior | Any:
    """The prior as the estimator takes it. A per-class prior names classes by label while the
    model's classes are their codes 0..k-1, so it goes in as the (k, d) matrix in code order."""
    p = Prior.from_dict(prior)
    if not p.per_class:
        return p
    return p.aligned(meta.encoded_columns, classes=meta.target.classes).matrix()


def report_trust(model) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fitted model's trust decision (JSON) and its key numbers as MLflow metrics."""
    decision = dict(model[-1].trust_)
    values = {
        "trust.gamma": decision["gamma"],
        "trust.tau": decision["tau"],
        "trust.followed": float(decision["followed"]),
    }
    p = decision.get("p_value", (decision.get("agreement") or {}).get("p_value"))  # k-output / binary
    if p is not None:
        values["trust.p_value"] = p
    return decision, {k: {"value": float(v), "step": 0} for k, v in values.items()}


def diagnose_prior(train_rows: pd.DataFrame, metadata: dict[str, Any], prior: dict[str, Any], params: TrainingParams):
    """Per-feature agreement of the prior with the training rows: table, plot and summary metrics."""
    from laat.diagnostics import diagnostic_metrics, plot_prior_diagnostic, prior_diagnostic
    from laat.preprocess import missing_value_imputer

    meta = parse_metadata(metadata)
    p = Prior.from_dict(prior)
    d = params.diagnostic
    if meta.target.kind != "binary":
        return _no_diagnostic(meta)
    X = missing_value_imputer().fit_transform(encode(train_rows, meta))  # as fit_model's imputer does
    table, summary = prior_diagnostic(
        X, labels(train_rows, meta), p, level=d.level, n_permutations=d.n_permutations, seed=params.split.seed
    )
    if summary["flagged"]:
        log.warning(
            "%s: the training rows confidently contradict the %s prior on %s", meta.name, p.label, summary["flagged"]
        )
    fig = plot_prior_diagnostic(
        table, summary, prior_label=f"{p.label} prior", title=f"{meta.name}: prior check", top_n=d.top_features
    )
    metrics = {f"prior_diagnostic.{k}": {"value": v, "step": 0} for k, v in diagnostic_metrics(summary).items()}
    return table, fig, metrics


def _no_diagnostic(meta):
    """The per-feature check tests class differences of a binary target; for the other tasks the
    trust decision's agreement test (trust/trust_decision.json) is the prior check."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 1.5), layout="constrained")
    fig.text(
        0.5,
        0.5,
        f"{meta.name}: the per-feature prior check is for binary targets; for this "
        f"{meta.target.kind} task\nsee the trust decision's agreement test (trust/trust_decision.json)",
        ha="center",
        va="center",
        fontsize=9,
    )
    return pd.DataFrame(columns=["feature"]), fig, {}


def attribution_table(model, prior: dict[str, Any], metadata: dict[str, Any]) -> pd.DataFrame:
    """Prior vs learned attributions per feature (per feature and class for k >= 3 classes),
    both normalised as the loss sees them."""
    p = Prior.from_dict(prior)
    learned = model[-1].feature_attributions_
    target = model[-1].prior_target_
    if isinstance(learned, pd.DataFrame):  # k classes: features x class codes
        return _per_class_table(learned, target, p, parse_metadata(metadata).target.classes)
    return pd.DataFrame(
        {
            "feature": list(learned.index),
            "prior_score": [p.scores()[f] for f in learned.index],
            "prior_target": target.reindex(learned.index).to_numpy(),
            "learned": learned.to_numpy(),
        }
    )


def _per_class_table(learned: pd.DataFrame, target, p: Prior, classes: list[str]) -> pd.DataFrame:
    """Long table: one row per (class, feature), class ``i`` of the model being ``classes[i]``;
    a shared prior's score and target repeat for every class."""
    rows = []
    for code in learned.columns:
        label = classes[int(code)]
        aimed = target[code] if isinstance(target, pd.DataFrame) else target
        scores = p.class_scores()[label] if p.per_class else p.scores()
        rows.append(
            pd.DataFrame(
                {
                    "feature": list(learned.index),
                    "class": label,
                    "prior_score": [scores[f] for f in learned.index],
                    "prior_target": aimed.reindex(learned.index).to_numpy() if aimed is not None else float("nan"),
                    "learned": learned[code].to_numpy(),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)
