"""Dataset metadata, typed CSV loading and the one-hot layout.

The metadata YAML is the single source of truth for a dataset's encoding: the prompt's
feature list, the training matrix, the prior's feature names and the served model all use
`DatasetMeta.encoded_columns`, so a few-shot sample that happens to miss a category still
encodes to the same columns as the full file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

FeatureType = Literal["numeric", "integer", "boolean", "categorical"]
# The one vocabulary of tasks, as the target defines them (`TargetSpec.kind`); every
# task-dependent choice keys on it.
TaskKind = Literal["binary", "multiclass", "regression"]
TASKS: tuple[str, ...] = get_args(TaskKind)

# Where a Kedro project keeps its dataset metadata: the CLI's default and the file named in
# messages about a metadata mapping. The library never reads from it on its own: callers pass paths.
DEFAULT_METADATA_DIR = Path("conf") / "base" / "datasets"

# The one boolean vocabulary (validation, encoding, serving and boolean targets all use it):
# matched after stripping spaces and lower-casing.
BOOLEAN_PAIRS = (("yes", "no"), ("y", "n"), ("true", "false"), ("t", "f"), ("1", "0"), ("1.0", "0.0"))
BOOLEAN_TEXT: dict[str, bool] = {word: truth for pair in BOOLEAN_PAIRS for word, truth in zip(pair, (True, False))}
BOOLEAN_HINT = ", ".join("/".join(pair) for pair in BOOLEAN_PAIRS[:-1]) + " (any case)"

# `<column>_missing` is 1 where a nullable feature's value is missing, 0 elsewhere.
MISSING = "missing"


def is_boolean_pair(words) -> bool:
    """Exactly two words of the boolean vocabulary, one true and one false (e.g. yes/no, 1/0)."""
    truths = [BOOLEAN_TEXT.get(str(w).strip().lower()) for w in words]
    return len(truths) == 2 and set(truths) == {True, False}


def boolean_values(values: pd.Series) -> pd.Series:
    """1.0 / 0.0 per `BOOLEAN_TEXT`; NaN for a missing value and for a word outside it."""
    words = values.astype(str).str.strip().str.lower()
    return words.map(BOOLEAN_TEXT).astype("float64").where(values.notna())


def as_text(values: pd.Series) -> pd.Series:
    """Values as stripped text, missing kept missing.

    Integral floats lose their ``.0``: pandas reads a column of codes with a gap as floats,
    and category ``"2"`` must still match the value 2.0.
    """
    return values.map(_value_text, na_action="ignore").astype(object).where(values.notna())


def _value_text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _class_label(v) -> str:
    # YAML gives classes: [0, 1] as ints and bare true/false as bools; one text form each.
    if isinstance(v, bool):
        return "true" if v else "false"
    return _value_text(v)


class FeatureSpec(BaseModel):
    """One raw CSV column and what it means."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: FeatureType
    description: str = Field(min_length=1)
    categories: dict[str, str] | None = None  # value -> description of its one-hot column
    min: float | None = None
    max: float | None = None
    nullable: bool = False  # missing values allowed: imputed, and flagged in `<name>_missing`

    @field_validator("name", mode="before")
    @classmethod
    def _name_as_text(cls, v):
        # A CSV header such as 2020 is text to pandas; YAML reads it as a number.
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    @field_validator("categories", mode="before")
    @classmethod
    def _category_keys_are_text(cls, v):
        # YAML turns bare yes/no/true keys into bools, silently renaming the category;
        # integer codes are unambiguous and kept as their text.
        if isinstance(v, dict):
            odd = [k for k in v if isinstance(k, bool | float)]
            if odd:
                raise ValueError(f'category keys {odd} are not text: quote them in YAML (e.g. "yes": ...)')
            return {str(k): d for k, d in v.items()}
        return v

    @model_validator(mode="after")
    def _categories_match_type(self) -> FeatureSpec:
        if self.type == "categorical":
            if not self.categories:
                raise ValueError(f"categorical feature {self.name!r} needs 'categories'")
        elif self.categories:
            raise ValueError(f"feature {self.name!r} of type {self.type} cannot have 'categories'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"feature {self.name!r}: min {self.min} > max {self.max}")
        return self

    def encoded_parts(self) -> list[tuple[str, str, str]]:
        """(encoded column, its description, what it is) for each column this feature becomes.

        A categorical becomes one column per category, ``<name>_<category>``; a nullable
        feature gets ``<name>_missing`` last. For a categorical that column completes the
        one-hot block (missing is one more category), so every row still has exactly one 1.
        """
        if self.type == "categorical":
            parts = [(self.category_column(c), self.categories[c], f"category {c!r}") for c in sorted(self.categories)]
        else:
            parts = [(self.name, self.description, "value")]
        if self.nullable:
            parts.append(
                (self.category_column(MISSING), f"{self.description}: value not recorded", "missing-value indicator")
            )
        return parts

    def category_column(self, value: str) -> str:
        """The encoded name of one category (or of the ``missing`` indicator): ``<name>_<value>``."""
        return f"{self.name}_{value}"

    @property
    def encoded_columns(self) -> list[str]:
        return [col for col, _, _ in self.encoded_parts()]


class TargetSpec(BaseModel):
    """The column to predict; the task follows from it (see `kind`).

    ``classes`` with two labels ([negative, positive]) is a binary task, with three or more a
    multiclass one (class codes follow the list's order); ``type: numeric`` (with an optional
    ``range: [min, max]``) is a regression.
    """

    model_config = ConfigDict(extra="forbid")

    column: str = Field(min_length=1)
    classes: list[str] | None = Field(None, min_length=2)  # canonical text, in code order
    type: Literal["numeric"] | None = None
    range: tuple[float, float] | None = None

    @field_validator("classes", mode="before")
    @classmethod
    def _as_text(cls, v):
        if v is None:
            return v
        if not isinstance(v, list):
            raise ValueError(f"classes must be a list of labels ([negative, positive] for two), got {v!r}")
        labels = [_class_label(c) for c in v]
        if len(set(labels)) != len(labels):
            raise ValueError(f"classes must be distinct, got {v!r}")
        return labels

    @model_validator(mode="after")
    def _one_kind(self) -> TargetSpec:
        if (self.classes is None) == (self.type is None):
            raise ValueError(
                f"target {self.column!r} needs either 'classes' (a list of labels: classification) "
                f"or 'type: numeric' (regression), not {'both' if self.classes else 'neither'}"
            )
        if self.range is not None:
            if self.type is None:
                raise ValueError(
                    f"target {self.column!r}: 'range' is for a numeric target; "
                    f"a classification target lists its 'classes'"
                )
            if self.range[0] > self.range[1]:
                raise ValueError(f"target {self.column!r}: range {list(self.range)} has min > max")
        return self

    @property
    def kind(self) -> TaskKind:
        if self.type == "numeric":
            return "regression"
        return "binary" if len(self.classes) == 2 else "multiclass"

    @property
    def is_boolean(self) -> bool:
        """Two classes, both words of the boolean vocabulary, one false and one true."""
        return self.kind == "binary" and is_boolean_pair(self.classes)

    def codes(self, values: pd.Series) -> pd.Series:
        """Index of each value's class in `classes`; NaN if missing or unknown.

        A value matches its class's text; for boolean classes any spelling of the same
        truth value matches too (classes [0, 1] accept a column of false/true, and so on).
        For a numeric target: the value as a float, NaN if missing, not a number, not finite
        or outside `range`.
        """
        if self.kind == "regression":
            out = pd.to_numeric(values, errors="coerce").astype("float64")
            out = out.where(np.isfinite(out))
            if self.range is not None:
                out = out.where(out.between(*self.range))
            return out
        text = as_text(values)
        out = pd.Series(np.nan, index=values.index)
        for i, c in enumerate(self.classes):
            out[text == c] = float(i)
        if self.is_boolean:
            truth = boolean_values(values)
            for i, c in enumerate(self.classes):
                out[out.isna() & (truth == float(BOOLEAN_TEXT[c.lower()]))] = float(i)
        return out

    def expected(self) -> str:
        """What a valid target value is, for error messages."""
        if self.kind == "regression":
            where = f" in [{self.range[0]:g}, {self.range[1]:g}]" if self.range is not None else ""
            return f"a finite number{where}"
        spelling = " or another spelling of the same yes/no" if self.is_boolean else ""
        return f"one of {self.classes}{spelling}"


class SkewSpec(BaseModel):
    """Training rows matching `condition` (a pandas query on raw columns) are removed."""

    model_config = ConfigDict(extra="forbid")

    condition: str
    description: str = ""


class DatasetMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    csv: str
    task: str = Field(min_length=1)
    source: str = ""
    license: str = ""
    target: TargetSpec
    features: list[FeatureSpec] = Field(min_length=1)
    sensitive_features: list[str] = []
    skew: SkewSpec | None = None

    @field_validator("features")
    @classmethod
    def _distinct_encoded_names(cls, features: list[FeatureSpec], info: ValidationInfo) -> list[FeatureSpec]:
        """Refuse two features, categories or indicators that would encode to one column name."""
        target = info.data.get("target")
        seen: dict[str, str] = {}
        for i, f in enumerate(features):
            if target is not None and f.name == target.column:
                raise ValueError(f"features[{i}] ({f.name}) is the target column; a feature cannot be the target")
            for col, _, what in f.encoded_parts():
                origin = f"features[{i}] ({f.name}) {what}"
                if col in seen:
                    raise ValueError(
                        f"encoded column {col!r} would come from both {seen[col]} and {origin}; "
                        f"rename a column or a category"
                    )
                seen[col] = origin
        return features

    @field_validator("sensitive_features")
    @classmethod
    def _sensitive_are_features(cls, names: list[str], info: ValidationInfo) -> list[str]:
        known = {f.name for f in info.data.get("features", [])}
        unknown = [s for s in names if s not in known]
        if known and unknown:
            raise ValueError(f"{unknown} are not among the features")
        return names

    # ---- derived layout -------------------------------------------------------------
    @property
    def raw_columns(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def positive_class(self) -> str:
        if self.target.kind != "binary":
            raise ValueError(
                f"dataset {self.name!r} is a {self.target.kind} task: only a binary target has a positive class"
            )
        return self.target.classes[-1]

    @property
    def feature(self) -> dict[str, FeatureSpec]:
        return {f.name: f for f in self.features}

    @property
    def encoded_columns(self) -> list[str]:
        """Numeric and boolean columns in CSV order, then dummy blocks in CSV order.

        A nullable feature's ``<name>_missing`` follows that feature's own column(s).
        """
        return list(self.encoded_descriptions())

    def encoded_descriptions(self) -> dict[str, str]:
        """Description of every encoded column, in `encoded_columns` order."""
        out: dict[str, str] = {}
        for f in sorted(self.features, key=lambda f: f.type == "categorical"):  # stable: CSV order kept
            out.update({col: desc for col, desc, _ in f.encoded_parts()})
        return out


class MetadataError(ValueError):
    """Metadata file missing or malformed; the message names the file and the key."""


def load_metadata(name_or_path: str | Path, metadata_dir: str | Path | None = None) -> DatasetMeta:
    """Load a metadata file (a ``.yml`` path, or ``<metadata_dir>/<name>.yml``) into a `DatasetMeta`."""
    path = Path(name_or_path)
    if path.suffix not in {".yml", ".yaml"}:
        if metadata_dir is None:
            raise MetadataError(
                f"dataset {str(name_or_path)!r}: give the folder of its metadata "
                f"(load_metadata({str(name_or_path)!r}, metadata_dir), e.g. a Kedro project's "
                f"{DEFAULT_METADATA_DIR}) or the path of its .yml file"
            )
        path = Path(metadata_dir) / f"{name_or_path}.yml"
    if not path.exists():
        known = sorted(p.stem for p in Path(metadata_dir).glob("*.yml")) if Path(metadata_dir).exists() else []
        raise MetadataError(f"no metadata file {path} for dataset {str(name_or_path)!r}; known datasets: {known}")
    return parse_metadata(yaml.safe_load(path.read_text(encoding="utf-8")), origin=str(path))


def parse_metadata(raw: dict, origin: str | None = None) -> DatasetMeta:
    """Validate a metadata mapping; every problem is reported as ``<origin>: <key path>: <what>``.

    Without ``origin`` (a Kedro node receives the mapping, not the file) the file is named
    as the catalog stores it: ``conf/base/datasets/<name>.yml``.
    """
    if isinstance(raw, DatasetMeta):
        return raw
    if origin is None:
        name = raw.get("name") if isinstance(raw, dict) else None
        origin = str(DEFAULT_METADATA_DIR / f"{name}.yml") if name else "dataset metadata"
    if not isinstance(raw, dict):
        raise MetadataError(f"{origin}: expected a mapping of metadata keys, got {type(raw).__name__}")
    try:
        return DatasetMeta.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{origin}: {_where(err['loc'], raw)}: {err['msg'].removeprefix('Value error, ')}" for err in exc.errors()
        ]
        raise MetadataError("invalid dataset metadata:\n" + "\n".join(problems)) from exc


def _where(loc: tuple, raw: dict) -> str:
    """pydantic's ``('features', 3, 'type')`` as ``features[3] (mother_weight).type``."""
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            if loc[:i] == ("features",):
                try:
                    out += f" ({raw['features'][part]['name']})"
                except (IndexError, KeyError, TypeError):
                    pass
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


# ---- encoding ---------------------------------------------------------------------------


def encode(df: pd.DataFrame, meta: DatasetMeta) -> pd.DataFrame:
    """Raw columns as `meta.encoded_columns` (float32): one-hot blocks and missing indicators.

    Assumes the frame has been validated (see `laat.schema`): an unknown category gets an
    all-zero block and a value outside the boolean vocabulary becomes NaN. A missing numeric
    or boolean value stays NaN (the fitted `laat.preprocess` imputer fills it); its
    ``<name>_missing`` column says it was missing.
    """
    missing = [c for c in meta.raw_columns if c not in df.columns]
    if missing:
        raise KeyError(f"dataset {meta.name!r}: missing columns {missing}")
    parts: dict[str, np.ndarray] = {}
    for f in meta.features:
        col = df[f.name]
        if f.type == "categorical":
            text = as_text(col)
            for cat in sorted(f.categories):
                parts[f.category_column(cat)] = (text == cat).to_numpy(dtype="float32")
        elif f.type == "boolean":
            parts[f.name] = boolean_values(col).to_numpy(dtype="float32")
        else:
            parts[f.name] = pd.to_numeric(col, errors="coerce").astype("float64").to_numpy(dtype="float32")
        if f.nullable:
            parts[f.category_column(MISSING)] = col.isna().to_numpy(dtype="float32")
    return pd.DataFrame(parts, index=df.index, columns=meta.encoded_columns)


def labels(df: pd.DataFrame, meta: DatasetMeta) -> np.ndarray:
    """Target as class codes (int, index in `classes`) or, for regression, floats.

    Raises on a value the metadata does not allow, naming the column and a few of them.
    """
    values = df[meta.target.column]
    codes = meta.target.codes(values)
    if codes.isna().any():
        bad = sorted({str(v) for v in values[codes.isna()].dropna()}) or ["<missing>"]
        raise ValueError(
            f"dataset {meta.name!r}: target {meta.target.column!r} must be {meta.target.expected()}; found {bad[:10]}"
        )
    return codes.to_numpy(dtype="float64" if meta.target.kind == "regression" else "int64")


def load_dataset(meta: DatasetMeta, root: str | Path = ".") -> pd.DataFrame:
    """Read the dataset's CSV exactly as stored (validation happens in `laat.schema`)."""
    return pd.read_csv(Path(root) / meta.csv)
