"""LAAT's hyper-parameters: their one Python home (names, allowed values, ranges, defaults).

`LAATClassifier.fit` validates its knobs with `LAATParams` (scikit-learn style: ``__init__``
only stores), the Kedro training parameters extend it, and the benchmark's LAAT settings and
benchmarks/bench_trust.py take their defaults and constraints from here. The conf/ YAMLs
repeat the defaults so that a user sees and changes them there; no other Python code does.
Light on purpose (pydantic and `laat.trust`, no torch): the Kedro start-up path imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, InstanceOf, ValidationError

from laat.trust import TrustSettings

ModelKind = Literal["lr", "mlp"]
AttributionKind = Literal["grad", "input_x_grad"]
GradImpl = Literal["analytic", "autograd"]
TrustMode = Literal["auto", "off"]
ConfidenceMode = Literal["none", "spread"]
RegressionLoss = Literal["squared", "huber"]

MODELS: tuple[str, ...] = get_args(ModelKind)
ATTRIBUTION_KINDS: tuple[str, ...] = get_args(AttributionKind)
GRAD_IMPLS: tuple[str, ...] = get_args(GradImpl)
TRUST_MODES: tuple[str, ...] = get_args(TrustMode)
CONFIDENCE_MODES: tuple[str, ...] = get_args(ConfidenceMode)
LOSSES: tuple[str, ...] = get_args(RegressionLoss)

# Constrained types, reused by every model that declares one of these knobs under another name
# (e.g. the benchmark's few_shot_epochs): the range is written once, here.
Gamma = Annotated[
    float, Field(ge=0, allow_inf_nan=False, description="weight of the attribution term; 0 = plain training")
]
Tau = Annotated[float, Field(gt=0, allow_inf_nan=False, description="target temperature: sign(s)*exp(|s|/tau)")]
LearningRate = Annotated[float, Field(gt=0, allow_inf_nan=False, description="Adam step size")]
WeightDecay = Annotated[float, Field(ge=0, allow_inf_nan=False, description="Adam's L2 weight decay")]
Width = Annotated[int, Field(ge=1, description="hidden ReLU units of the MLP")]
Epochs = Annotated[int, Field(ge=1, description="passes over the training rows")]
BatchSize = Annotated[int, Field(ge=1, description="mini-batch rows")]
HuberDelta = Annotated[
    float, Field(gt=0, allow_inf_nan=False, description="Huber loss: quadratic within this many standard deviations")
]


class LAATParams(BaseModel):
    """The training knobs of `laat.estimator.LAATClassifier`, with the paper's defaults.

    ``trust`` may also be a `laat.trust.TrustSettings` ("auto" with other constants) and
    ``confidence`` a mapping feature -> weight; both are checked against the data in ``fit``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelKind = Field("lr", description="lr: logistic regression; mlp: one hidden ReLU layer")
    gamma: Gamma = 100.0
    tau: Tau = 1.0
    trust: TrustMode | InstanceOf[TrustSettings] = Field(
        "auto",
        description="auto: the training rows decide how much to follow the prior (laat.trust); "
        "off: always follow it at gamma/tau (the paper)",
    )
    attribution: AttributionKind = Field("grad", description="batch-mean input gradient, or per-row input x grad")
    hidden: Width = 100
    lr: LearningRate = 1e-2
    epochs: Epochs = 200
    batch_size: BatchSize | None = Field(128, description="mini-batch rows; None = always full batch")
    weight_decay: WeightDecay = 0.0
    confidence: ConfidenceMode | InstanceOf[Mapping] = Field(
        "none", description="spread: down-weight features LLM samples disagree on; or weights by feature"
    )
    grad_impl: GradImpl = Field("analytic", description="closed-form gradients, or double back-prop")
    scale: bool = Field(True, description="Min-Max scale features on the training rows (the paper)")


DEFAULTS = LAATParams()


class RegressorParams(LAATParams):
    """The knobs of `laat.estimator_multi.LAATRegressor`: the classifier's, plus its loss; ``lr``
    None takes the step size per model (`REGRESSOR_DEFAULT_LR`)."""

    lr: LearningRate | None = None
    loss: RegressionLoss = "squared"
    huber_delta: HuberDelta = 1.0


REGRESSOR_DEFAULTS = RegressorParams()


# The prior diagnostic (`laat.diagnostics.prior_diagnostic`): flag a feature when the rows
# contradict its prior sign at this level, in a test with this many label permutations.
DIAGNOSTIC_LEVEL = 0.05
DIAGNOSTIC_PERMUTATIONS = 2000

# LAATRegressor(lr=None): the step size per model kind (why these: the LAATRegressor docstring).
REGRESSOR_DEFAULT_LR: dict[str, float] = {"lr": 1e-1, "mlp": 1e-2}


def validate_params(values: Mapping[str, Any], owner: str, model: type[LAATParams] = LAATParams) -> LAATParams:
    """``values`` as a `LAATParams`, strictly typed (no "5" for 5, no 2.5 epochs, no True for 1).

    Raises a ValueError naming ``owner`` and each wrong knob with its value and what is allowed.
    NumPy scalars (e.g. from a parameter grid) count as the Python numbers they hold.
    """
    plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in values.items()}
    try:
        return model.model_validate(plain, strict=True)
    except ValidationError as err:
        allowed: dict[str, list[str]] = {}  # a union (e.g. trust) reports one message per alternative
        for e in err.errors():
            allowed.setdefault(str(e["loc"][0]) if e["loc"] else "", []).append(e["msg"])
        problems = [
            f"{name}={plain.get(name)!r} ({' or '.join(dict.fromkeys(msgs))})" for name, msgs in allowed.items()
        ]
        raise ValueError(f"{owner}: invalid hyper-parameter {'; '.join(problems)}") from None
