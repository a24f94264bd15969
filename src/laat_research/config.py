"""Typed configuration of a benchmark sweep (also the Kedro parameters `params:benchmark`).

Only settings that change results enter a cell's cache key (see `laat_research.cells`):
parallelism, the Dask address, the cache location and the progress bar do not, so a sweep
computed on a cluster is reused by a local rerun and vice versa.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from laat import hyperparams as hp
from laat.priors import NON_LLM_SOURCES, NonLLMSource
from laat.splits import SEED
from laat.trust import DEFAULT_SETTINGS

REFERENCE_DATASETS = [
    "diabetes",
    "breast_ljubljana",
    "contraceptive",
    "indian_liver",
    "myocardial",
    "bodyfat",
    "electricity",
]

BASELINE_MODELS = ("lr", "mlp", "rf", "hgb", "xgb")  # scikit-learn / XGBoost (laat_research.baselines)
Family = Literal["laat", "plain", "baseline"]


@dataclass(frozen=True, order=True)
class Method:
    """A benchmark method: ``family`` (laat: uses a prior, one cell per prior source; plain: the
    same torch training with gamma = 0, which isolates the prior; baseline: scikit-learn /
    XGBoost), ``model`` and, for LAAT, ``trust`` (`laat.trust` decides gamma and tau per
    repetition) or the paper's fixed gamma and tau. ``name`` is what configs and tables carry."""

    family: Family
    model: str
    trust: bool = False

    @property
    def name(self) -> str:
        if self.family == "baseline":
            return self.model
        return "_".join([self.family, *(["trust"] if self.trust else []), self.model])

    @classmethod
    def parse(cls, name: str) -> Method:
        try:
            return _BY_NAME[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown method {name!r}; known: {list(_BY_NAME)}") from None

    @property
    def uses_prior(self) -> bool:
        return self.family == "laat"

    @property
    def torch(self) -> bool:
        """Trained by `laat.engine.fit_many` (LAAT and its plain twin)."""
        return self.family != "baseline"

    @property
    def family_baseline(self) -> Method:
        """The scikit-learn model of the same kind: LAAT-MLP's is MLP."""
        return Method("baseline", self.model)


METHODS = (
    *(Method("laat", m) for m in hp.MODELS),  # hp.MODELS: the torch models of LAAT and its plain twin
    *(Method("laat", m, trust=True) for m in hp.MODELS),
    *(Method("plain", m) for m in hp.MODELS),
    *(Method("baseline", m) for m in BASELINE_MODELS),
)
_BY_NAME = {m.name: m for m in METHODS}
PRIOR_BASES = ("llm_local", *NON_LLM_SOURCES)  # llm_local: the LLM source, local backend
Protocol = Literal["few_shot", "skew"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)

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
            raise ValueError(
                f"prior source {text!r} is not understood: use one of {list(PRIOR_BASES)}, "
                "optionally followed by '_noise:<ratio in [0, 1]>' and/or '_flip' "
                "(e.g. 'oracle_noise:0.25', 'llm_local_flip')"
            )
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
    """LAAT training (method spec section 4-5); also used for the gamma = 0 plain methods.

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

    ``grid: reduced`` (default) uses the small grids documented in `laat_research.baselines`
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
        unknown = sorted(set(v) - set(BASELINE_MODELS))
        if unknown:
            raise ValueError(f"baselines.grids names unknown models {unknown}; known: {list(BASELINE_MODELS)}")
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
    seed: int = SEED
    protocols: list[Protocol] = Field(default_factory=lambda: list(PROTOCOLS), min_length=1)
    methods: list[Method] = Field(default_factory=lambda: list(METHODS), min_length=1)
    prior_sources: list[str] = Field(
        default_factory=lambda: [
            "llm_local",
            "oracle",
            "oracle_noise:0.25",
            "oracle_noise:0.5",
            "oracle_noise:0.75",
            "oracle_flip",
            "random",
            "expert",
        ],
        min_length=1,
    )
    laat: LAATSettings = LAATSettings()
    baselines: BaselineSettings = BaselineSettings()
    skew: SkewSettings = SkewSettings()
    llm: dict[str, Any] = Field(
        default_factory=dict, description="laat.elicit.ElicitationSettings overrides for `llm_local`"
    )
    trust: dict[str, Any] = Field(
        default_factory=dict, description="laat.trust.TrustSettings overrides for the trust methods"
    )
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

    @field_validator("methods", mode="before")
    @classmethod
    def _known_methods(cls, v: list[Any]) -> list[Method]:
        """Names from YAML (``laat_trust_mlp``) become `Method`s; an unknown name is refused by name."""
        if not isinstance(v, (list, tuple)):
            raise ValueError(f"methods must be a list of method names, got {v!r}")
        unknown = [m for m in v if not isinstance(m, Method) and m not in _BY_NAME]
        if unknown:
            raise ValueError(f"unknown methods {unknown}; known: {list(_BY_NAME)}")
        return list(dict.fromkeys(m if isinstance(m, Method) else Method.parse(m) for m in v))

    @field_serializer("methods")
    def _method_names(self, v: list[Method]) -> list[str]:
        return [m.name for m in v]

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
        """The `laat.trust.TrustSettings` of the trust methods (defaults + ``trust`` overrides)."""
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
