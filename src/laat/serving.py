"""The deployable model: raw CSV-shaped rows in, class probabilities out, via MLflow pyfunc.

The served model carries the dataset metadata and runs the same ``laat.datasets.encode``
that training used, so a client never one-hot encodes anything and a category seen only in
the full file still lands in the right column. Output: a DataFrame with one column per
class, ``p_<negative>`` then ``p_<positive>`` (``p_no``, ``p_yes`` for diabetes), rows in
input order. The label is left to the caller because the threshold is a business choice.

This module imports mlflow at the top (the model class subclasses ``PythonModel``):
import it inside Kedro node functions, not at pipeline-module level.

Promotion is a comparison, not a habit: ``promote_if_better`` moves the ``champion``
alias only when the new version beats the current champion on a named metric, and
leaves the reason on the model version.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from laat.datasets import BOOLEAN_HINT, DatasetMeta, as_text, boolean_values, encode, parse_metadata

CHAMPION = "champion"
EVAL_TAG = "eval.{metric}"
# Packages the served model imports; versions are pinned to what is installed when logging.
BASE_REQUIREMENTS = ("mlflow", "cloudpickle", "pandas", "numpy", "scikit-learn", "scipy", "pyyaml", "pydantic")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


class InputError(ValueError):
    """Raw rows that do not fit the dataset's metadata; the message names columns and values."""


def output_columns(meta: DatasetMeta) -> list[str]:
    return [f"p_{c}" for c in meta.target.classes]


def check_raw_rows(df: pd.DataFrame, meta: DatasetMeta) -> pd.DataFrame:
    """The raw feature columns of ``df`` (target and extra columns dropped), or an InputError.

    Checked: every raw column present; categorical values among the metadata's categories
    (encode would silently turn an unknown one into an all-zero block); numeric values
    numeric; no missing values in a feature the metadata does not declare nullable.
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of raw rows, got {type(df).__name__}")
    missing = [c for c in meta.raw_columns if c not in df.columns]
    if missing:
        raise InputError(f"dataset {meta.name!r}: input is missing raw columns {missing}; "
                         f"expected all of {meta.raw_columns}")
    rows = df[meta.raw_columns]
    problems = []
    for f in meta.features:
        col = rows[f.name]
        if f.type == "categorical":
            unknown = sorted(set(as_text(col).dropna()) - set(f.categories))
            if unknown:
                problems.append(f"{f.name!r} has unknown categories {unknown[:5]} (known: {sorted(f.categories)})")
        elif f.type in ("numeric", "integer"):
            num = pd.to_numeric(col, errors="coerce")
            bad = col[num.isna() & col.notna()]
            if not bad.empty:
                problems.append(f"{f.name!r} has non-numeric values {bad.astype(str).unique()[:5].tolist()}")
        elif f.type == "boolean":
            bad = sorted(set(col[col.notna() & boolean_values(col).isna()].astype(str)))
            if bad:
                problems.append(f"{f.name!r} has non-boolean values {bad[:5]} (use {BOOLEAN_HINT})")
        if not f.nullable and col.isna().any():
            problems.append(f"{f.name!r} has {int(col.isna().sum())} missing values but is not nullable")
    if problems:
        raise InputError(f"dataset {meta.name!r}: bad input rows: " + "; ".join(problems))
    return rows


def input_schema(meta: DatasetMeta):
    """Served input schema: categorical columns as text, every other feature as ``any``.

    Declaring numbers as ``double`` would make MLflow refuse rows read straight from the
    CSV (it will not cast int64 to float64), and ``long`` would refuse 3.0 or a NaN; so
    numbers pass through and ``check_raw_rows`` validates them, naming the column.
    """
    from mlflow.types.schema import AnyType, ColSpec, Schema

    return Schema([ColSpec("string" if f.type == "categorical" else AnyType(), f.name) for f in meta.features])


class LAATPyfuncModel(PythonModel):
    """Metadata (as a plain dict) + a fitted binary classifier over ``meta.encoded_columns``."""

    def __init__(self, metadata: dict[str, Any], estimator: Any):
        self.metadata = metadata
        self.estimator = estimator

    @property
    def meta(self) -> DatasetMeta:
        return parse_metadata(self.metadata, origin="served model metadata")

    def predict(self, context, model_input, params=None):  # noqa: ARG002 (pyfunc API)
        return predict_raw(self.estimator, self.meta, model_input)


def predict_raw(estimator: Any, meta: DatasetMeta, rows: pd.DataFrame) -> pd.DataFrame:
    """Validate raw rows, encode them like training did, return ``p_<class>`` columns.

    Gaps in nullable features reach the estimator as NaN plus their ``<name>_missing`` flag;
    a model trained by the pipeline fills them with its own imputer step (`laat.preprocess`).
    """
    checked = check_raw_rows(rows, meta)
    X = encode(checked, meta)
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        X = X[list(names)]
    proba = np.asarray(estimator.predict_proba(X), dtype="float64")
    classes = [int(c) for c in estimator.classes_]
    out = pd.DataFrame(index=rows.index)
    for i, col in enumerate(output_columns(meta)):
        out[col] = proba[:, classes.index(i)]
    return out


def _check_estimator(estimator: Any, meta: DatasetMeta) -> None:
    """Fail at logging time, not at the first request, if the estimator cannot serve ``meta``."""
    if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
        raise TypeError(f"{type(estimator).__name__} is not a fitted classifier with predict_proba/classes_")
    classes = sorted(int(c) for c in estimator.classes_)
    if classes != [0, 1]:
        raise ValueError(f"estimator classes_ are {list(estimator.classes_)}; expected [0, 1] "
                         f"(0 = {meta.target.classes[0]!r}, 1 = {meta.positive_class!r})")
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        missing = [c for c in meta.encoded_columns if c not in set(names)]
        unknown = [c for c in names if c not in set(meta.encoded_columns)]
        if missing or unknown:
            raise ValueError(f"estimator was fit on other columns than dataset {meta.name!r}'s encoding: "
                             f"missing {missing}, unknown {unknown}")
    elif getattr(estimator, "n_features_in_", len(meta.encoded_columns)) != len(meta.encoded_columns):
        raise ValueError(f"estimator expects {estimator.n_features_in_} features, dataset {meta.name!r} "
                         f"encodes to {len(meta.encoded_columns)}")


def _needs_torch(estimator: Any) -> bool:
    """A laat estimator (alone or as a Pipeline's last step) holds torch modules; a plain scikit-learn one does not."""
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    return type(final).__module__.split(".")[0] == "laat"


def pip_requirements_for(estimator: Any) -> list[str]:
    """Exact installed versions of what the served model imports.

    Set explicitly because MLflow's inference drops torch's ``+cpu`` local version, and
    ``torch==X`` from PyPI is the multi-GB CUDA build; the CPU index line keeps it small.
    """
    reqs = []
    for pkg in BASE_REQUIREMENTS:
        reqs.append(f"{pkg}=={importlib_metadata.version(pkg)}")
    if _needs_torch(estimator):
        version = importlib_metadata.version("torch").split("+")[0]
        reqs = [f"--extra-index-url {TORCH_CPU_INDEX}", *reqs, f"torch=={version}"]
    return reqs


def log_model(estimator: Any, metadata: dict[str, Any] | DatasetMeta, input_example: pd.DataFrame,
              name: str = "model", registered_model_name: str | None = None,
              pip_requirements: list[str] | None = None):
    """Log (and optionally register) the raw-rows-in pyfunc model in the active MLflow run.

    ``input_example`` is raw rows as in the CSV (the target column, if present, is dropped;
    the first 5 rows are stored). The signature's inputs come from the metadata (see
    ``input_schema``), its outputs are inferred from the model's output on the example. Returns MLflow's ``ModelInfo`` (``.model_uri``,
    ``.registered_model_version``).
    """
    from mlflow.models import ModelSignature, infer_signature

    import laat

    meta = parse_metadata(metadata)
    _check_estimator(estimator, meta)
    model = LAATPyfuncModel(meta.model_dump(mode="json"), estimator)
    example = check_raw_rows(input_example.head(5), meta).reset_index(drop=True)
    output = model.predict(None, example)
    # infer from the output alone: inferring from the raw example too warns about int columns
    signature = ModelSignature(inputs=input_schema(meta), outputs=infer_signature(output).inputs)
    with tempfile.TemporaryDirectory() as tmp:
        # ship the package source without bytecode caches (code_paths copies a folder as is)
        code = shutil.copytree(Path(laat.__file__).resolve().parent, Path(tmp) / "laat",
                               ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=model,
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements or pip_requirements_for(estimator),
            code_paths=[str(code)],
            registered_model_name=registered_model_name,
            metadata={"dataset": meta.name, "classes": list(meta.target.classes),
                      "output_columns": output_columns(meta), "estimator": type(estimator).__name__},
        )


def _metric_of_version(client, mv, metric_name: str) -> float | None:
    """A version's metric: its ``eval.<metric>`` tag, else the metric of the run that logged it."""
    tag = (mv.tags or {}).get(EVAL_TAG.format(metric=metric_name))
    if tag is not None:
        return float(tag)
    if mv.run_id:
        value = client.get_run(mv.run_id).data.metrics.get(metric_name)
        if value is not None:
            return float(value)
    return None


def promote_if_better(client, model_name: str, new_version: int | str, metric_name: str, new_value: float,
                      higher_is_better: bool = True, alias: str = CHAMPION) -> dict[str, Any]:
    """Move ``alias`` to ``new_version`` if it strictly beats the current holder on ``metric_name``.

    The new version is tagged ``eval.<metric>`` so later comparisons read the number from
    the registry. With no champion yet the new version is promoted; a champion without a
    recorded metric is NOT replaced (there is nothing to compare; move the alias by hand).
    Returns the decision, which is also written as ``promotion.*`` tags on the new version.
    """
    from mlflow.exceptions import MlflowException

    new_value = float(new_value)
    if not math.isfinite(new_value):
        raise ValueError(f"promote_if_better: {metric_name} of {model_name} v{new_version} is {new_value}")
    new_version = str(new_version)
    client.get_model_version(model_name, new_version)  # raises if it does not exist
    client.set_model_version_tag(model_name, new_version, EVAL_TAG.format(metric=metric_name), str(new_value))

    try:
        current = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        current = None
    decision: dict[str, Any] = {"promoted": False, "reason": "", "alias": alias, "metric": metric_name,
                                "new_version": new_version, "new_value": new_value,
                                "previous_version": None, "previous_value": None}
    direction = "higher" if higher_is_better else "lower"
    if current is None:
        decision.update(promoted=True, reason=f"no version held alias {alias!r}")
    elif str(current.version) == new_version:
        decision.update(previous_version=new_version, previous_value=new_value,
                        reason=f"v{new_version} already holds alias {alias!r}")
    else:
        prev = _metric_of_version(client, current, metric_name)
        decision.update(previous_version=str(current.version), previous_value=prev)
        if prev is None:
            decision["reason"] = (f"{alias} v{current.version} has no recorded {metric_name} "
                                  f"(tag {EVAL_TAG.format(metric=metric_name)} or run metric); not comparable")
        else:
            better = new_value > prev if higher_is_better else new_value < prev
            verdict = "beats" if better else "does not beat"
            decision.update(promoted=better, reason=f"{metric_name} {new_value:.6g} {verdict} {alias} "
                                                    f"v{current.version}'s {prev:.6g} ({direction} is better)")
    if decision["promoted"]:
        client.set_registered_model_alias(model_name, alias, new_version)
    for key in ("promoted", "reason", "previous_version"):
        client.set_model_version_tag(model_name, new_version, f"promotion.{key}", str(decision[key]))
    return decision
