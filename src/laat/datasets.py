"""Dataset metadata, typed CSV loading and the one-hot layout.

The metadata YAML is the single source of truth for a dataset's encoding: the prompt's
feature list, the training matrix, the prior's feature names and the served model all use
`DatasetMeta.encoded_columns`, so a few-shot sample that happens to miss a category still
encodes to the same columns as the full file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FeatureType = Literal["numeric", "integer", "boolean", "categorical"]

DEFAULT_METADATA_DIR = Path("conf") / "base" / "datasets"


class FeatureSpec(BaseModel):
    """One raw CSV column and what it means."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: FeatureType
    description: str = Field(min_length=1)
    categories: dict[str, str] | None = None  # value -> description of its one-hot column
    min: float | None = None
    max: float | None = None
    nullable: bool = False

    @field_validator("name")
    @classmethod
    def _no_underscore(cls, v: str) -> str:
        # "_" separates column from category in dummy names; allowing it would make
        # "a_b" ambiguous between column "a" category "b" and column "a_b".
        if "_" in v:
            raise ValueError(f"raw column name {v!r} must not contain '_'")
        return v

    @field_validator("categories", mode="before")
    @classmethod
    def _category_keys_are_text(cls, v, info):
        # YAML turns bare yes/no/true/1 keys into bools/ints, silently renaming the category.
        if isinstance(v, dict):
            odd = [k for k in v if not isinstance(k, str)]
            if odd:
                raise ValueError(f"category keys {odd} are not text: quote them in YAML (e.g. \"yes\": ...)")
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

    @property
    def encoded_columns(self) -> list[str]:
        if self.type != "categorical":
            return [self.name]
        return [f"{self.name}_{c}" for c in sorted(self.categories)]


class TargetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str
    classes: list[str] = Field(min_length=2, max_length=2)  # [negative, positive]

    @field_validator("classes", mode="before")
    @classmethod
    def _as_strings(cls, v):
        # YAML 1.1 reads a bare no/yes as booleans; refuse rather than guess.
        if not isinstance(v, list):
            raise ValueError(f"classes must be a list of two labels [negative, positive], got {v!r}")
        if len(set(map(str, v))) != len(v):
            raise ValueError(f"classes must be distinct, got {v!r}")
        if any(isinstance(c, bool) for c in v):
            raise ValueError("quote the class labels in YAML (\"no\", \"yes\"): bare no/yes are booleans")
        return v


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

    @model_validator(mode="after")
    def _consistent(self) -> DatasetMeta:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {dupes}")
        if self.target.column in names:
            raise ValueError(f"target column {self.target.column!r} is also listed as a feature")
        unknown = [s for s in self.sensitive_features if s not in names]
        if unknown:
            raise ValueError(f"sensitive_features not among features: {unknown}")
        return self

    # ---- derived layout -------------------------------------------------------------
    @property
    def raw_columns(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def positive_class(self) -> str:
        return self.target.classes[-1]

    @property
    def feature(self) -> dict[str, FeatureSpec]:
        return {f.name: f for f in self.features}

    @property
    def encoded_columns(self) -> list[str]:
        """Numeric and boolean columns in CSV order, then dummy blocks in CSV order."""
        plain = [f.name for f in self.features if f.type != "categorical"]
        dummies = [c for f in self.features if f.type == "categorical" for c in f.encoded_columns]
        return plain + dummies

    def encoded_descriptions(self) -> dict[str, str]:
        """Description of every encoded column, in `encoded_columns` order."""
        out: dict[str, str] = {}
        for f in self.features:
            if f.type != "categorical":
                out[f.name] = f.description
        for f in self.features:
            if f.type == "categorical":
                for cat in sorted(f.categories):
                    out[f"{f.name}_{cat}"] = f.categories[cat]
        return out

    def source_column(self, encoded: str) -> str:
        """Raw column that an encoded column comes from."""
        raw = encoded.split("_", 1)[0]
        if raw not in self.feature:
            raise KeyError(f"{encoded!r} is not an encoded column of dataset {self.name!r}")
        return raw


class MetadataError(ValueError):
    """Metadata file missing or malformed; the message names the file."""


def load_metadata(name_or_path: str | Path, metadata_dir: str | Path = DEFAULT_METADATA_DIR) -> DatasetMeta:
    """Load `conf/base/datasets/<name>.yml` (or an explicit path) into a `DatasetMeta`."""
    path = Path(name_or_path)
    if path.suffix not in {".yml", ".yaml"}:
        path = Path(metadata_dir) / f"{name_or_path}.yml"
    if not path.exists():
        known = sorted(p.stem for p in Path(metadata_dir).glob("*.yml")) if Path(metadata_dir).exists() else []
        raise MetadataError(f"no metadata file {path} for dataset {str(name_or_path)!r}; known datasets: {known}")
    return parse_metadata(yaml.safe_load(path.read_text(encoding="utf-8")), origin=str(path))


def parse_metadata(raw: dict, origin: str = "<dict>") -> DatasetMeta:
    if isinstance(raw, DatasetMeta):
        return raw
    from pydantic import ValidationError

    if not isinstance(raw, dict):
        raise MetadataError(f"invalid dataset metadata in {origin}: expected a mapping, got {type(raw).__name__}")
    try:
        return DatasetMeta.model_validate(raw)
    except ValidationError as exc:
        problems = [f"  - {_where(err['loc'], raw)}: {err['msg']}" for err in exc.errors()]
        raise MetadataError(f"invalid dataset metadata in {origin}:\n" + "\n".join(problems)) from exc


def _where(loc: tuple, raw: dict) -> str:
    """Turn pydantic's `features.3.categories` into `feature 'Gender' > categories`."""
    parts = list(loc)
    if len(parts) >= 2 and parts[0] == "features" and isinstance(parts[1], int):
        try:
            name = raw["features"][parts[1]].get("name", f"#{parts[1]}")
        except (IndexError, AttributeError, KeyError, TypeError):
            name = f"#{parts[1]}"
        return " > ".join([f"feature {name!r}", *map(str, parts[2:])]) or f"feature {name!r}"
    return ".".join(map(str, parts)) or "<top level>"


# ---- typed frames and encoding ----------------------------------------------------------

_TRUE = {"true", "1", "1.0", "yes"}
_FALSE = {"false", "0", "0.0", "no"}


def _to_bool(s: pd.Series) -> pd.Series:
    if s.dtype == bool:
        return s
    lowered = s.astype(str).str.strip().str.lower()
    out = pd.Series(np.where(lowered.isin(_TRUE), 1.0, np.where(lowered.isin(_FALSE), 0.0, np.nan)), index=s.index)
    return out.where(s.notna())


def typed_frame(df: pd.DataFrame, meta: DatasetMeta) -> pd.DataFrame:
    """Cast raw columns to the metadata's types, categories fixed by metadata.

    Assumes the frame has already been validated (see `laat.schema`); unknown values
    become NaN here rather than raising.
    """
    missing = [c for c in meta.raw_columns if c not in df.columns]
    if missing:
        raise KeyError(f"dataset {meta.name!r}: missing columns {missing}")
    out = {}
    for f in meta.features:
        col = df[f.name]
        if f.type == "categorical":
            out[f.name] = pd.Categorical(col.astype("string").str.strip(), categories=sorted(f.categories))
        elif f.type == "boolean":
            out[f.name] = _to_bool(col).astype("float32")
        else:
            out[f.name] = pd.to_numeric(col, errors="coerce").astype("float64")
    typed = pd.DataFrame(out, index=df.index)
    if meta.target.column in df.columns:
        typed[meta.target.column] = pd.Categorical(df[meta.target.column].astype("string").str.strip(),
                                                   categories=meta.target.classes)
    return typed


def encode(df: pd.DataFrame, meta: DatasetMeta) -> pd.DataFrame:
    """One-hot encode raw columns into `meta.encoded_columns` (float32)."""
    typed = typed_frame(df, meta)
    parts: dict[str, np.ndarray] = {}
    for f in meta.features:
        if f.type == "categorical":
            continue
        parts[f.name] = typed[f.name].to_numpy(dtype="float32")
    for f in meta.features:
        if f.type != "categorical":
            continue
        codes = typed[f.name].astype(object)
        for cat in sorted(f.categories):
            parts[f"{f.name}_{cat}"] = (codes == cat).to_numpy(dtype="float32")
    return pd.DataFrame(parts, index=df.index, columns=meta.encoded_columns)


def labels(df: pd.DataFrame, meta: DatasetMeta) -> np.ndarray:
    """Target as 0/1 (index in `classes`); raises on a label the metadata does not know."""
    y = df[meta.target.column].astype("string").str.strip()
    bad = sorted(set(y.dropna()) - set(meta.target.classes))
    if bad or y.isna().any():
        raise ValueError(f"dataset {meta.name!r}: target {meta.target.column!r} has labels outside "
                         f"{meta.target.classes}: {bad or ['<missing>']}")
    return (y == meta.positive_class).to_numpy(dtype="int64")


def load_dataset(meta: DatasetMeta, root: str | Path = ".") -> pd.DataFrame:
    """Read the dataset's CSV exactly as stored (validation happens in `laat.schema`)."""
    return pd.read_csv(Path(root) / meta.csv)
