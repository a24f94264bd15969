"""Values as strict JSON takes them (priors' provenance, trust decisions, benchmark cache files).

One rule for every writer: NumPy scalars become the Python numbers they hold, tuples become
lists, mapping keys and paths become text, and non-finite floats become null (strict JSON,
which MLflow artifacts and other tools read, has no NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(obj: Any) -> Any:
    """``obj`` with every nested value JSON-ready (see the module docstring); others unchanged."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.generic, Path)):
        obj = json_default(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)``: a NumPy scalar or a path as JSON; anything else is refused by
    name, so that an unexpected object never reaches a file as its repr."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
