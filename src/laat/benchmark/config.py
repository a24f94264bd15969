"""Typed configuration of a benchmark sweep (also the Kedro parameters `params:benchmark`).

Only settings that change results enter a cell's cache key (see `laat.benchmark.cells`):
parallelism, the Dask address, the cache location and the progress bar do not, so a sweep
computed on a cluster is reused by a local rerun and vice versa.
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from laat import hyperparams as hp
from laat.priors import NON_LLM_SOURCES, NonLLMSource
from laat.trust import DEFAULT_SETTINGS

REFERENCE_DATASETS = ["diabetes", "breast_ljubljana", "contraceptive", "indian_liver",
                      "myocardial", "bodyfat", "electricity"]

FIXED_METHODS = ("laat_lr", "laat_mlp")  # the paper's fixed gamma and tau, whatever the prior
# trust mode (`laat.trust`): the training rows decide gamma and tau per repetition (issue 7)
TRUST_METHODS = ("laat_trust_lr", "laat_trust_mlp")
LAAT_METHODS = FIXED_METHODS + TRUST_METHODS  # every method that uses a prior: one cell per prior source
PLAIN_METHODS = ("plain_lr", "plain_mlp")  # the same torch training with gamma = 0: isolates the prior
BASELINE_METHODS = ("lr", "mlp", "rf", "hgb", "xgb")
METHODS = LAAT_METHODS + PLAIN_METHODS + BASELINE_METHODS


def model_kind(method: str) -> str:
    """The torch model of a LAAT / plain method: ``laat_trust_mlp`` -> ``mlp``."""
    return method.rsplit("_", 1)[1]
PRIOR_BASES = ("llm_local", *NON_LLM_SOURCES)  # llm_local: the LLM source, local backend
PROTOCOLS = ("few_shot", "skew")

_SPEC = re.compile(rf"^(?P<base>{'|'.join(PRIOR_BASES)})(?:_noise:(?P<noise>[0-9.]+))?(?P<flip>_flip)?$")


class PriorSpec(BaseModel):
    """A parsed prior source: a base prior, optionally with a share of entries randomised, or sign-flipped.

    Written as ``oracle``, ``oracle_noise:0.25``, ``llm_local_flip`` or ``oracle_noise:0.5_flip``.
    """

    model_config = ConfigDict(frozen=True)

    base: Literal["llm_local", NonLLMSource]
    noise: float = 0.0
    flip: bool = False

    @classmethod
    def parse(cls, text: str) -> PriorSpec:
        m = _SPEC.match(str(text).strip())
        if not m:
            raise ValueError(f"prior source {text!r} is not understood: use one of {list(PRIOR_BASES)}, "
                             "optionally followed by '_noise:<ratio in [0, 1]>' and/or '_flip' "
                             "(e.g. 'oracle_noise:0.25', 'llm_local_flip')")
        noise = float(m["noise"]) if m["noise"] else 0.0
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"prior source {text!r}: noise ratio {noise} is outside [0, 1]")
        return cls(base=m["base"], noise=noise, flip=bool(m["flip"]))

    @property
    def name(self) -> str:
        return self.base + (f"_noise:{self.noise:g}" if self.noise else "") + ("_flip" if self.flip else "")

    @property
    def kind(self) -> str:
        """`laat.priors.Prior.source` of the base prior: llm, oracle, random or expert."""
        return "llm" if self.base == "llm_local" else self.base


class LAATSettings(BaseModel):
    """LAAT training (method spec section 4-5); also used for the gamma = 0 `plain_*` methods.

    Types, ranges and defaults come from `laat.hyperparams` (the estimator's); only the skew
    protocol's epochs and batch (the paper's 20 epochs of real mini-batches) are the benchmark's own.
    """

    model_config = ConfigDict(extra="forbid")

    gamma: hp.Gamma = hp.DEFAULTS.gamma
    tau: hp.Tau = hp.DEFAULTS.tau
    attribution: hp.AttributionKind = hp.DEFAULTS.attribution
    lr: hp.LearningRate = hp.DEFAULTS.lr
    hidden: hp.Width = hp.DEFAULTS.hidden
    few_shot_epochs: hp.Epochs = hp.DEFAULTS.epochs
    few_shot_batch_size: hp.BatchSize | None = Field(hp.DEFAULTS.batch_size, description="full batch at 2-20 rows")
    skew_epochs: hp.Epochs = 20
    skew_batch_size: hp.BatchSize = Field(128, description="real mini-batches in the skew protocol")


class BaselineSettings(BaseModel):
    """scikit-learn / XGBoost baselines: defaults at k < `min_k_for_search`, else GridSearchCV.

    ``grid: reduced`` (default) uses the small grids documented in `laat.benchmark.baselines`
    (the paper's grids cost hours on a 2-core machine); ``grid: paper`` uses the method
    spec's section 6 grids (XGBoost: 720 combinations). ``grids`` overrides one model's grid,
    e.g. ``{mlp: {alpha: [0.1, 1.0]}}``.
    """

    model_config = ConfigDict(extra="forbid")

    grid: Literal["reduced", "paper"] = "reduced"
    grids: dict[str, dict[str, list[Any]]] = {}
    max_cv: int = Field(5, ge=2, description="cv = min(max_cv, k) in few-shot; max_cv in the skew protocol")
    min_k_for_search: int = Field(2, ge=2, description="below this k every baseline uses its defaults")
    mlp_max_iter: int = Field(1000, ge=1)

    @field_validator("grids")
    @classmethod
    def _known_models(cls, v: dict) -> dict:
        unknown = sorted(set(v) - set(BASELINE_METHODS))
        if unknown:
            raise ValueError(f"baselines.grids names unknown models {unknown}; known: {list(BASELINE_METHODS)}")
        for model, grid in v.items():
            empty = [p for p, values in grid.items() if not values]
            if empty:
                raise ValueError(f"baselines.grids.{model}: parameters {empty} have no values")
        return v


class SkewSettings(BaseModel):
    """Section 5: an unstratified split, then train rows matching the dataset's skew condition go."""

    model_config = ConfigDict(extra="forbid")

    test_fraction: float = Field(0.2, gt=0, lt=1)
    keep_fraction: float = Field(0.0, ge=0, le=1, description="the paper's delta: share of matching rows kept")
    repetitions: int | None = Field(None, ge=1, description="null = the sweep's `repetitions`")
    fairness_bins: int = Field(3, ge=2, description="quantile bins of numeric sensitive features (full data)")


class BenchmarkConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    datasets: list[str] = Field(default_factory=lambda: list(REFERENCE_DATASETS), min_length=1)
    shots: list[int] = Field(default_factory=lambda: [1, 5, 10], min_length=1)
    repetitions: int = Field(20, ge=1)
    seed: int = 69
    protocols: list[Literal["few_shot", "skew"]] = Field(default_factory=lambda: ["few_shot", "skew"], min_length=1)
    methods: list[str] = Field(default_factory=lambda: list(METHODS), min_length=1)
    prior_sources: list[str] = Field(default_factory=lambda: [
        "llm_local", "oracle", "oracle_noise:0.25", "oracle_noise:0.5", "oracle_noise:0.75",
        "oracle_flip", "random", "expert"], min_length=1)
    laat: LAATSettings = LAATSettings()
    baselines: BaselineSettings = BaselineSettings()
    skew: SkewSettings = SkewSettings()
    llm: dict[str, Any] = Field(default_factory=dict,
                                description="laat.elicit.ElicitationSettings overrides for `llm_local`")
    trust: dict[str, Any] = Field(default_factory=dict,
                                  description="laat.trust.TrustSettings overrides for the laat_trust_* methods")
    threshold: float = Field(0.5, gt=0, lt=1)

    # where things are: given by the caller (the project's conf/base/parameters_benchmark.yml,
    # relative to the project root as in `kedro run`); the library assumes no layout
    metadata_dir: str
    data_root: str
    expert_priors_dir: str
    cache_dir: str

    # how it runs: never part of a cell's cache key
    n_jobs: int = Field(-1, description="joblib workers (-1 = all cores)")
    dask_scheduler: str | None = Field(None, description="e.g. tcp://127.0.0.1:8786; null = local joblib")
    progress: bool = True

    @field_validator("shots")
    @classmethod
    def _positive_shots(cls, v: list[int]) -> list[int]:
        bad = [k for k in v if k < 1]
        if bad:
            raise ValueError(f"shots must be >= 1 rows per class, got {bad}")
        return sorted(set(v))

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, v: list[str]) -> list[str]:
        unknown = [m for m in v if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; known: {list(METHODS)}")
        return list(dict.fromkeys(v))

    @field_validator("prior_sources")
    @classmethod
    def _parse_priors(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(PriorSpec.parse(s).name for s in v))

    @field_validator("datasets")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))

    @field_validator("trust")
    @classmethod
    def _trust_settings_valid(cls, v: dict[str, Any]) -> dict[str, Any]:
        trust_settings(v)  # unknown names and bad values fail here, not in a worker
        return v

    @model_validator(mode="after")
    def _llm_settings_valid(self) -> BenchmarkConfig:
        if "source" in self.llm and self.llm["source"] != "local":
            raise ValueError("llm.source must be 'local' for the `llm_local` prior source")
        return self

    @property
    def priors(self) -> list[PriorSpec]:
        return [PriorSpec.parse(s) for s in self.prior_sources]

    @property
    def skew_repetitions(self) -> int:
        return self.skew.repetitions or self.repetitions

    @property
    def trust_settings(self):
        """The `laat.trust.TrustSettings` of the laat_trust_* methods (defaults + ``trust`` overrides)."""
        return trust_settings(self.trust)


def trust_settings(overrides: dict[str, Any]):
    """`laat.trust.DEFAULT_SETTINGS` with YAML overrides (lists become the tuples it expects)."""
    known = {f.name for f in fields(DEFAULT_SETTINGS)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"trust: unknown laat.trust.TrustSettings fields {unknown}; known: {sorted(known)}")
    if not overrides:
        return DEFAULT_SETTINGS
    return replace(DEFAULT_SETTINGS, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
