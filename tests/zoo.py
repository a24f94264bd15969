"""The dataset zoo: synthetic tables shaped like the ones users bring, with their metadata.

Each shape is one thing real CSVs do that the reference datasets do not (gaps, awkward
headers, yes/no booleans, a 0/1 target, the target first, no sensitive feature, a category
with many levels, a constant column); ``combined`` does all of them at once, ``messy`` all
but the many-level category. The label
depends on two features with a known sign, so an oracle prior and a working model both
have something to find.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SINGLE = [
    "nan_numeric",
    "nan_categorical",
    "awkward_names",
    "yes_no_boolean",
    "numeric_target",
    "target_first",
    "no_sensitive",
    "huge_category",
    "constant_column",
]
# combined: every shape at once; messy: all but the 40-level category (a short LLM run)
COMBINATIONS = {"combined": set(SINGLE), "messy": set(SINGLE) - {"huge_category"}}
SHAPES = [*SINGLE, *COMBINATIONS]
N_ROWS = 240


def _base(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    age = rng.integers(18, 80, n)
    dose = rng.normal(50, 15, n).clip(0, None).round(1)
    region = rng.choice(["north", "south", "east"], n)
    smoker = rng.choice([True, False], n)
    logit = 0.06 * (age - 50) + 0.08 * (dose - 50) + 0.8 * smoker
    y = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"age": age, "dose": dose, "region": region, "smoker": smoker}), y


def _feature(name, type_, description, **extra):
    return {"name": name, "type": type_, "description": description, **extra}


def make_table(shape: str, seed: int = 0, n: int = N_ROWS) -> tuple[pd.DataFrame, dict]:
    """(raw CSV frame, metadata dict as a user would write it in YAML) for one zoo shape."""
    if shape not in SHAPES:
        raise ValueError(f"unknown zoo shape {shape!r}; known: {SHAPES}")
    rng = np.random.default_rng(seed)
    X, y = _base(rng, n)
    parts = COMBINATIONS.get(shape, {shape})
    names = {"age": "age", "dose": "dose", "region": "region", "smoker": "smoker"}
    features = {
        "age": _feature("age", "integer", "Age of the person in years", min=0, max=120),
        "dose": _feature("dose", "numeric", "Daily dose of the drug in mg", min=0),
        "region": _feature(
            "region",
            "categorical",
            "Region the person lives in",
            categories={"north": "Lives in the north", "south": "Lives in the south", "east": "Lives in the east"},
        ),
        "smoker": _feature("smoker", "boolean", "Whether the person smokes"),
    }
    X["smoker"] = X["smoker"].map({True: "1", False: "0"})
    target, classes, labels = "outcome", ["no", "yes"], np.where(y, "yes", "no")
    sensitive = ["region"]

    if "nan_numeric" in parts:
        gaps = rng.uniform(size=n) < 0.15
        X["dose"] = X["dose"].mask(gaps)
        features["dose"]["nullable"] = True
    if "nan_categorical" in parts:
        gaps = rng.uniform(size=n) < 0.1
        X["region"] = X["region"].mask(gaps)
        features["region"]["nullable"] = True
    if "yes_no_boolean" in parts:
        X["smoker"] = X["smoker"].map({"1": "yes", "0": "no"})
    if "numeric_target" in parts:
        classes, labels = [0, 1], y.astype(int)
    if "no_sensitive" in parts:
        sensitive = []
    if "huge_category" in parts:
        shops = [f"shop{i:02d}" for i in range(40)]
        X["shop"] = rng.choice(shops, n)
        features["shop"] = _feature(
            "shop", "categorical", "Shop where the drug was bought", categories={s: f"Bought at {s}" for s in shops}
        )
    if "constant_column" in parts:
        X["clinic"] = 3.0
        features["clinic"] = _feature("clinic", "numeric", "Clinic number (the same for everybody here)")
    if "awkward_names" in parts:
        names = {"age": "patient_age", "dose": "daily dose.mg", "region": "Région", "smoker": "is_smoker"}
        X = X.rename(columns=names)
        for old, new in names.items():
            features[old]["name"] = new
        sensitive = [names[s] for s in sensitive]
        target = "has_outcome"

    X.insert(0 if "target_first" in parts else len(X.columns), target, labels)
    meta = {
        "name": f"zoo_{shape}",
        "csv": f"data/01_raw/zoo_{shape}.csv",
        "task": "Based on this person's record, will the outcome happen?",
        "source": "synthetic (tests/zoo.py)",
        "target": {"column": target, "classes": classes},
        "features": list(features.values()),
        "sensitive_features": sensitive,
    }
    return X, meta


def rows_with_gaps(frame: pd.DataFrame, meta: dict) -> pd.DataFrame:
    """A few raw feature rows with a gap in every nullable column, as a client would send."""
    cols = [f["name"] for f in meta["features"]]
    rows = frame[cols].head(4).copy()
    for f in meta["features"]:
        if f.get("nullable"):
            rows.loc[rows.index[:2], f["name"]] = np.nan
    return rows
