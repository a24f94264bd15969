"""A first metadata YAML for a new CSV, inferred from its values, with placeholders to fill in.

The columns' types, categories, ranges and nullability, and the target and its kind (binary,
multiclass or numeric), can be read off the data; what each column *means* cannot, and that is
what the LLM is asked about.
So every description is written as a ``TODO: ...`` placeholder, and ``require_no_placeholders``
stops a run (before any LLM call) while one is left, naming each by file and key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from laat.datasets import BOOLEAN_TEXT, DEFAULT_METADATA_DIR, MetadataError, TargetSpec, as_text, is_boolean_pair

PLACEHOLDER = "TODO:"
# Column names that usually hold the label, matched as whole words of the lower-cased name.
TARGET_WORDS = ("target", "class", "label", "outcome", "y")
# More categories than this is more likely an ID or free text than a feature: worth a look.
MANY_CATEGORIES = 20

_HEADER = """\
# Drafted by `laat draft-metadata` from {csv}.
# Replace every "{placeholder} ..." text: the LLM reads these descriptions to score the features,
# and a run stops at data validation while one is left. Check the inferred types, the target and
# its class order ([negative, positive]); widen min/max to the values the column can take.
# Optional: sensitive_features (columns to report fairness by) and skew (see data/01_raw/README.md).
"""


def _text_values(s: pd.Series) -> set[str]:
    return {str(v).strip().lower() for v in s.dropna().unique()}


def _is_boolean(s: pd.Series) -> bool:
    """One true-like and one false-like spelling (yes/no, 1/0, true/false, ...) and nothing else."""
    if pd.api.types.is_bool_dtype(s):
        return True
    return is_boolean_pair(_text_values(s))


def _feature(name: str, s: pd.Series) -> dict[str, Any]:
    """Type, range or categories, and nullability of one column."""
    spec: dict[str, Any] = {"name": name}
    values = s.dropna()
    if _is_boolean(s):
        spec.update(type="boolean", description=f"{PLACEHOLDER} what {name} = yes means")
    elif pd.api.types.is_numeric_dtype(s):
        integer = not values.empty and bool((values % 1 == 0).all())
        spec.update(
            type="integer" if integer else "numeric", description=f"{PLACEHOLDER} what {name} measures, with its unit"
        )
        if not values.empty:  # an all-empty column has no range to infer
            cast = int if integer else float
            spec.update(min=cast(values.min()), max=cast(values.max()))
    else:
        categories = sorted({str(v).strip() for v in values.unique()})
        spec.update(
            type="categorical",
            description=f"{PLACEHOLDER} what {name} records",
            categories={c: f"{PLACEHOLDER} what {name} = {c} means" for c in categories},
        )
    if s.isna().any():
        spec["nullable"] = True
    return spec


def _binary(s: pd.Series) -> bool:
    return s.notna().all() and len({str(v).strip() for v in s.unique()}) == 2


def _named_like_a_target(name: str) -> bool:
    return bool(set(re.split(r"[^a-z0-9]+", name.lower())) & set(TARGET_WORDS))


def guess_target(frame: pd.DataFrame) -> str:
    """The last binary column named like a label (target, class, label, outcome, y), else the
    last gap-free column so named (a multiclass or numeric target), else the last binary column."""
    binary = [str(c) for c in frame.columns if _binary(frame[c])]
    named = [str(c) for c in frame.columns if _named_like_a_target(str(c)) and frame[c].notna().all()]
    choice = [c for c in named if c in binary] or named or binary
    if not choice:
        raise MetadataError(
            f"no column has exactly two values and no gaps, and none without gaps is named like a "
            f"target ({', '.join(TARGET_WORDS)}); pass the target column explicitly (--target)"
        )
    return choice[-1]


def _classes(s: pd.Series) -> list[str]:
    """Class labels in code order: for two, false-like before true-like ([negative, positive]);
    otherwise sorted (numerically if they are numbers)."""
    values = sorted({str(v).strip() for v in s.unique()})
    if all(v.lower() in BOOLEAN_TEXT for v in values) and len(values) == 2:
        values.sort(key=lambda v: BOOLEAN_TEXT[v.lower()])
    elif pd.api.types.is_numeric_dtype(s):
        values = [str(v) for v in sorted(as_text(s).unique(), key=float)]
    return values


def draft_target(frame: pd.DataFrame, target: str, csv: str | Path) -> dict[str, Any]:
    """The target's metadata: two values are a binary task, a number column with more than
    ``MANY_CATEGORIES`` values (or any fractional one) a regression, and a few values a
    multiclass task."""
    s = frame[target]
    if s.isna().any():
        raise MetadataError(
            f"target column {target!r} in {csv} has {int(s.isna().sum())} gaps; every row "
            f"needs a target value (drop those rows or choose another --target)"
        )
    values = s.dropna()
    if (
        pd.api.types.is_numeric_dtype(s)
        and not pd.api.types.is_bool_dtype(s)
        and (values.nunique() > MANY_CATEGORIES or not bool((values % 1 == 0).all()))
    ):
        return {"column": target, "type": "numeric", "range": [float(values.min()), float(values.max())]}
    if values.nunique() > MANY_CATEGORIES:
        examples = sorted(map(str, values.unique()))[:5]
        raise MetadataError(
            f"target column {target!r} in {csv} has {values.nunique()} text values (e.g. {examples}): "
            f"too many classes (more than {MANY_CATEGORIES}); group them, or choose another --target"
        )
    return {"column": target, "classes": _classes(s)}


def draft_metadata(csv: str | Path, target: str | None = None, name: str | None = None) -> dict[str, Any]:
    """Metadata for ``csv`` in the layout of ``conf/base/datasets/<name>.yml``, descriptions left
    as placeholders. ``target`` overrides the guessed target column; ``name`` defaults to the
    file's stem."""
    frame = pd.read_csv(csv)
    if frame.empty:
        raise MetadataError(f"{csv} has no rows: nothing to infer the column types from")
    target = target if target is not None else guess_target(frame)
    if target not in frame.columns:
        raise MetadataError(f"target column {target!r} is not in {csv}; columns: {list(map(str, frame.columns))}")
    spec = draft_target(frame, target, csv)
    question = {
        "binary": f"will ... ({target} = {spec.get('classes', ['', ''])[-1]})?",
        "multiclass": f"which {target} ...?",
        "regression": f"what is the {target} ...?",
    }
    kind = TargetSpec.model_validate(spec).kind
    return {
        "name": name or Path(csv).stem,
        "csv": str(csv),
        "source": f"{PLACEHOLDER} where the data comes from",
        "license": f"{PLACEHOLDER} the data's licence",
        "task": f"{PLACEHOLDER} the question the model answers, e.g. 'Given this ..., {question[kind]}'",
        "target": spec,
        "features": [_feature(str(c), frame[c]) for c in frame.columns if c != target],
        "sensitive_features": [],
    }


def many_categories(metadata: dict[str, Any]) -> dict[str, int]:
    """Categorical columns with more than ``MANY_CATEGORIES`` values (one one-hot column each)."""
    return {
        f["name"]: len(f["categories"])
        for f in metadata["features"]
        if len(f.get("categories") or ()) > MANY_CATEGORIES
    }


def write_draft(metadata: dict[str, Any], out: str | Path, overwrite: bool = False) -> Path:
    """Write the draft with a header saying what to fill in; refuses to replace a file unless told."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; choose another --out or pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=110)
    out.write_text(_HEADER.format(csv=metadata["csv"], placeholder=PLACEHOLDER) + body, encoding="utf-8")
    return out


def placeholders(metadata: Any, key: str = "") -> list[str]:
    """Keys (``features[2] 'Age'.description``) whose text still starts with the placeholder."""
    if isinstance(metadata, str):
        return [key or "<top level>"] if metadata.strip().startswith(PLACEHOLDER) else []
    if isinstance(metadata, dict):
        return [k for name, v in metadata.items() for k in placeholders(v, f"{key}.{name}" if key else str(name))]
    if isinstance(metadata, list):
        found = []
        for i, v in enumerate(metadata):
            label = f" {v['name']!r}" if isinstance(v, dict) and "name" in v else ""
            found += placeholders(v, f"{key}[{i}]{label}")
        return found
    return []


def require_no_placeholders(metadata: dict[str, Any]) -> None:
    """Stop before any work (and any LLM call) while a drafted description is still a placeholder."""
    left = placeholders(metadata)
    if left:
        where = Path(DEFAULT_METADATA_DIR) / f"{metadata.get('name', '<name>')}.yml"
        raise MetadataError(
            f"dataset metadata {where} still has {len(left)} placeholder(s) "
            f"('{PLACEHOLDER} ...') to replace with real text:\n" + "\n".join(f"  - {k}" for k in left)
        )
