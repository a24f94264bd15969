"""The deployable model: raw CSV-shaped rows in, class probabilities (or a prediction) out, via MLflow pyfunc.

The served model carries the dataset metadata and runs the same ``laat.datasets.encode``
that training used, so a client never one-hot encodes anything and a category seen only in
the full file still lands in the right column. Output: a DataFrame with one column per
class in the metadata's order, ``p_<class>`` (``p_no``, ``p_yes`` for diabetes), or for a
regression one ``prediction`` column, rows in input order. The label is left to the caller
because the threshold is a business choice.

Bad requests get HTTP 400 with one message naming the column, the values and what is
allowed (no stack trace): missing columns, unknown categories, non-numeric text, and values
outside the metadata's ``[min, max]`` or non-whole values in an integer column (the
``out_of_range`` policy: "reject" by default, "clip" or "allow" per request). Zero rows
with the raw columns give zero rows out; a request with none of the columns (MLflow drops
unknown ones, and an empty records list has none) is a missing-columns 400.

This module imports mlflow at the top (the model class subclasses ``PythonModel``):
import it inside Kedro node functions, not at pipeline-module level.

Promotion is a comparison, not a habit: ``promote_if_better`` moves the ``champion``
alias only when the new version beats the current champion on a named metric, and
leaves the reason on the model version.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import logging
import math
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Literal, get_args

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from laat.datasets import BOOLEAN_HINT, DatasetMeta, as_text, boolean_values, encode, parse_metadata

CHAMPION = "champion"
EVAL_TAG = "eval.{metric}"
# Packages the served model imports; versions are pinned to what is installed when logging.
BASE_REQUIREMENTS = ("mlflow", "cloudpickle", "pandas", "numpy", "scikit-learn", "scipy", "pyyaml", "pydantic")
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
OutOfRange = Literal["reject", "clip", "allow"]
OUT_OF_RANGE_DEFAULT: OutOfRange = "reject"
OUT_OF_RANGE_PARAM = "out_of_range"  # the request-level setting: {"params": {"out_of_range": "clip"}}
_SHOWN = 5  # offending values quoted per column in an error message

_logger = logging.getLogger(__name__)


class InputError(ValueError):
    """Raw rows that do not fit the dataset's metadata; the message names columns and values."""


class ServedError(MlflowException):
    """A failed request as the scoring server answers it: the status and this message, nothing else.

    MLflow's scoring server sends an MlflowException raised in ``predict`` as the JSON body,
    after prefixing its message with the whole request printed as a DataFrame; an other
    exception becomes a generic message plus a traceback with the server's paths.
    """

    def __init__(self, message: str, error_code: int = INVALID_PARAMETER_VALUE):
        super().__init__(message, error_code=error_code)
        self.reason = message

    def serialize_as_json(self) -> str:
        return json.dumps({"error_code": self.error_code, "message": self.reason})


PREDICTION = "prediction"  # a regression's one output column


def output_columns(meta: DatasetMeta) -> list[str]:
    """``p_<class>`` per class, in the metadata's order; ``prediction`` for a regression."""
    if meta.target.kind == "regression":
        return [PREDICTION]
    return [f"p_{c}" for c in meta.target.classes]


def check_raw_rows(
    df: pd.DataFrame, meta: DatasetMeta, out_of_range: OutOfRange = OUT_OF_RANGE_DEFAULT
) -> pd.DataFrame:
    """The raw feature columns of ``df`` (target and extra columns dropped), or an InputError.

    Checked: every raw column present; categorical values among the metadata's categories
    (encode would silently turn an unknown one into an all-zero block); numeric values
    numeric; no missing values in a feature the metadata does not declare nullable; numbers
    within the metadata's range, as ``out_of_range`` says (see ``apply_range_policy``).
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"expected a pandas DataFrame of raw rows, got {type(df).__name__}")
    missing = [c for c in meta.raw_columns if c not in df.columns]
    if missing:
        raise InputError(
            f"dataset {meta.name!r}: input is missing raw columns {missing}; expected all of {meta.raw_columns}"
        )
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
    rows, range_problems = apply_range_policy(rows, meta, out_of_range)
    problems += range_problems
    if problems:
        raise InputError(f"dataset {meta.name!r}: bad input rows: " + "; ".join(problems))
    return rows


def apply_range_policy(
    rows: pd.DataFrame, meta: DatasetMeta, out_of_range: OutOfRange = OUT_OF_RANGE_DEFAULT
) -> tuple[pd.DataFrame, list[str]]:
    """Numbers the metadata does not allow, handled as ``out_of_range`` says.

    A value outside its feature's ``[min, max]`` or a non-whole value in an integer column is
    reported ("reject"), moved to the nearest allowed value ("clip": clipped to the range,
    then rounded for integers) or passed on ("allow": the model extrapolates). Infinite
    values are reported under every policy. Text that is not a number is left to
    ``check_raw_rows``. Returns the rows (clip replaces the affected columns) and the
    problems, each naming the column, the values with their row labels and the range.
    """
    if out_of_range not in get_args(OutOfRange):
        raise InputError(f"{OUT_OF_RANGE_PARAM} must be one of {list(get_args(OutOfRange))}, got {out_of_range!r}")
    problems, out_of_policy = [], False
    for f in meta.features:
        if f.type not in ("numeric", "integer"):
            continue
        num = pd.to_numeric(rows[f.name], errors="coerce")
        lo = -np.inf if f.min is None else f.min
        hi = np.inf if f.max is None else f.max
        infinite = np.isinf(num)
        outside = ((num < lo) | (num > hi)) & ~infinite
        fractional = (num % 1 != 0) & num.notna() & ~infinite & (f.type == "integer")
        if infinite.any():
            problems.append(f"{f.name!r} has infinite values: {_quote(num, infinite)}")
        if out_of_range == "reject":
            out_of_policy |= bool(outside.any() or fractional.any())
            if outside.any():
                bounds = f"[{_bound(f.min, 'no min')}, {_bound(f.max, 'no max')}]"
                problems.append(f"{f.name!r} has values outside its range {bounds}: {_quote(num, outside)}")
            if fractional.any():
                problems.append(f"{f.name!r} is an integer column but has non-whole values: {_quote(num, fractional)}")
        elif out_of_range == "clip" and (outside | fractional).any():
            fixed = num.clip(lo, hi)
            rows = rows.assign(**{f.name: fixed.round() if f.type == "integer" else fixed})
    if out_of_policy:
        problems.append(f'{OUT_OF_RANGE_PARAM}="clip" or "allow" scores out-of-range and non-whole values anyway')
    return rows, problems


def _bound(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:g}"


def _quote(values: pd.Series, mask: pd.Series) -> str:
    """``-50 (row 0), 500 (row 3)``: the first offending values with their row labels."""
    hits = values[mask]
    shown = ", ".join(f"{v:g} (row {i})" for i, v in hits.head(_SHOWN).items())
    return shown + (f" and {len(hits) - _SHOWN} more" if len(hits) > _SHOWN else "")


def input_schema(meta: DatasetMeta):
    """Served input schema: every feature as ``any``, validated by ``check_raw_rows``.

    Declaring numbers as ``double`` would make MLflow refuse rows read straight from the
    CSV (it will not cast int64 to float64), ``long`` would refuse 3.0 or a NaN, and
    ``string`` would refuse a categorical coded by integers (``sex: 1``); so values pass
    through and ``check_raw_rows`` validates them, naming the column. Columns are declared
    optional so that a missing one also reaches ``check_raw_rows``: MLflow's own refusal
    would quote the whole request twice.
    """
    from mlflow.types.schema import AnyType, ColSpec, Schema

    return Schema([ColSpec(AnyType(), f.name, required=False) for f in meta.features])


def params_schema():
    """The request-level settings a client may pass as ``params`` (MLflow fills in the defaults)."""
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ParamSchema([ParamSpec(OUT_OF_RANGE_PARAM, "string", OUT_OF_RANGE_DEFAULT)])


class LAATPyfuncModel(PythonModel):
    """Metadata (as a plain dict) + a fitted classifier or regressor over ``meta.encoded_columns``."""

    def __init__(self, metadata: dict[str, Any], estimator: Any):
        self.metadata = metadata
        self.estimator = estimator

    @property
    def meta(self) -> DatasetMeta:
        return parse_metadata(self.metadata, origin="served model metadata")

    def predict(self, context, model_input, params=None):
        """``predict_raw`` with the request's ``params``; failures become a ServedError (400 or 500)."""
        out_of_range = (params or {}).get(OUT_OF_RANGE_PARAM, OUT_OF_RANGE_DEFAULT)
        try:
            return predict_raw(self.estimator, self.meta, model_input, out_of_range=out_of_range)
        except InputError as err:
            raise ServedError(str(err)) from None
        except Exception as err:
            _logger.exception("scoring failed")
            raise ServedError(
                f"internal error while scoring ({type(err).__name__}); the traceback is in the server's log",
                error_code=INTERNAL_ERROR,
            ) from err


def predict_raw(
    estimator: Any, meta: DatasetMeta, rows: pd.DataFrame, out_of_range: OutOfRange = OUT_OF_RANGE_DEFAULT
) -> pd.DataFrame:
    """Validate raw rows, encode them like training did, return the `output_columns`.

    Zero rows in (an empty batch, still with the raw columns) give zero rows out. Gaps in
    nullable features reach the estimator as NaN plus their ``<name>_missing`` flag; a model
    trained by the pipeline fills them with its own imputer step (`laat.preprocess`).
    """
    checked = check_raw_rows(rows, meta, out_of_range)
    if len(checked) == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in output_columns(meta)}, index=checked.index)
    X = encode(checked, meta)
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        X = X[list(names)]
    if meta.target.kind == "regression":
        return pd.DataFrame({PREDICTION: np.asarray(estimator.predict(X), dtype="float64")}, index=rows.index)
    proba = np.asarray(estimator.predict_proba(X), dtype="float64")
    classes = [int(c) for c in estimator.classes_]
    out = pd.DataFrame(index=rows.index)
    for i, col in enumerate(output_columns(meta)):
        out[col] = proba[:, classes.index(i)]
    return out


def _check_estimator(estimator: Any, meta: DatasetMeta) -> None:
    """Fail at logging time, not at the first request, if the estimator cannot serve ``meta``."""
    if meta.target.kind == "regression":
        if not hasattr(estimator, "predict") or hasattr(estimator, "classes_"):
            raise TypeError(
                f"dataset {meta.name!r} has a numeric target; {type(estimator).__name__} is not a "
                f"fitted regressor (predict without classes_)"
            )
    else:
        if not hasattr(estimator, "predict_proba") or not hasattr(estimator, "classes_"):
            raise TypeError(f"{type(estimator).__name__} is not a fitted classifier with predict_proba/classes_")
        classes = sorted(int(c) for c in estimator.classes_)
        if classes != list(range(len(meta.target.classes))):
            codes = ", ".join(f"{i} = {c!r}" for i, c in enumerate(meta.target.classes))
            raise ValueError(
                f"estimator classes_ are {list(estimator.classes_)}; expected "
                f"{list(range(len(meta.target.classes)))} ({codes})"
            )
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        missing = [c for c in meta.encoded_columns if c not in set(names)]
        unknown = [c for c in names if c not in set(meta.encoded_columns)]
        if missing or unknown:
            raise ValueError(
                f"estimator was fit on other columns than dataset {meta.name!r}'s encoding: "
                f"missing {missing}, unknown {unknown}"
            )
    elif getattr(estimator, "n_features_in_", len(meta.encoded_columns)) != len(meta.encoded_columns):
        raise ValueError(
            f"estimator expects {estimator.n_features_in_} features, dataset {meta.name!r} "
            f"encodes to {len(meta.encoded_columns)}"
        )


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


def log_model(
    estimator: Any,
    metadata: dict[str, Any] | DatasetMeta,
    input_example: pd.DataFrame,
    name: str = "model",
    registered_model_name: str | None = None,
    pip_requirements: list[str] | None = None,
):
    """Log (and optionally register) the raw-rows-in pyfunc model in the active MLflow run.

    ``input_example`` is raw rows as in the CSV (the target column, if present, is dropped;
    the first 5 rows are stored). The signature's inputs come from the metadata (see
    ``input_schema``), its outputs are inferred from the model's output on the example. Returns MLflow's ``ModelInfo`` (``.model_uri``,
    ``.registered_model_version``).
    """
    from mlflow.models import ModelSignature, infer_signature

    meta = parse_metadata(metadata)
    _check_estimator(estimator, meta)
    model = LAATPyfuncModel(meta.model_dump(mode="json"), estimator)
    example = check_raw_rows(input_example.head(5), meta).reset_index(drop=True)
    output = model.predict(None, example)
    # infer from the output alone: inferring from the raw example too warns about int columns
    signature = ModelSignature(
        inputs=input_schema(meta), outputs=infer_signature(output).inputs, params=params_schema()
    )
    with tempfile.TemporaryDirectory() as tmp, _installed_pins_need_no_check(pip_requirements is None):
        code = _copy_modules(served_modules(model), Path(tmp))
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=model,
            signature=signature,
            input_example=example,
            pip_requirements=pip_requirements or pip_requirements_for(estimator),
            code_paths=[str(code)],
            registered_model_name=registered_model_name,
            metadata={
                "dataset": meta.name,
                "task": meta.target.kind,
                "classes": meta.target.classes,
                "output_columns": output_columns(meta),
                "estimator": type(estimator).__name__,
            },
        )


@contextlib.contextmanager
def _installed_pins_need_no_check(skip: bool) -> Iterator[None]:
    """Skip MLflow's check that the environment satisfies the requirements when they are our own pins.

    ``pip_requirements_for`` pins exactly the installed versions, so the check (once when the
    model is saved, once when MLflow loads it back to validate the input example) cannot find a
    mismatch, and it first maps every installed distribution to its modules: about a second
    per `kedro run`. Requirements a caller passes are still checked; where MLflow no longer has
    the check under this name, it simply runs.
    """
    import mlflow.pyfunc
    import mlflow.utils.environment

    name = "warn_dependency_requirement_mismatches"
    patched = [m for m in (mlflow.utils.environment, mlflow.pyfunc) if skip and hasattr(m, name)]
    originals = [getattr(m, name) for m in patched]
    for module in patched:
        setattr(module, name, lambda requirements: None)
    try:
        yield
    finally:
        for module, original in zip(patched, originals, strict=True):
            setattr(module, name, original)


def served_modules(model: Any) -> list[str]:
    """The `laat` modules a pickled model needs: those its pickle names, and everything they import
    from `laat` (also inside functions), with their parent packages. The model ships these and no
    more: not the Kedro pipelines, not the research harness."""
    named: set[str] = set()

    class _Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            named.add(module)
            return super().find_class(module, name)

    _Recorder(io.BytesIO(cloudpickle.dumps(model))).load()
    todo = [m for m in named if m.split(".")[0] == "laat"]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [pkg for pkg in _parents(name) if pkg not in seen]
        todo += _laat_imports(name)
    return sorted(seen)


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _laat_imports(name: str) -> list[str]:
    """Modules of `laat` that module ``name``'s source imports anywhere (absolute or relative)."""
    spec = importlib.util.find_spec(name)
    package = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([package.rsplit(".", node.level - 1)[0]] + ([base] if base else []))
            found += [base] + [f"{base}.{a.name}" for a in node.names]  # `from pkg import submodule`
    return [m for m in found if m.split(".")[0] == "laat" and _is_module(m)]


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ModuleNotFoundError, ValueError):  # a name inside a module, not a submodule
        return False


def _copy_modules(modules: list[str], dest: Path) -> Path:
    """Copy the modules' source files into ``dest``, laid out as packages; returns ``dest/laat``."""
    for name in modules:
        origin = Path(importlib.util.find_spec(name).origin)
        target = dest.joinpath(*name.split("."))
        if origin.name == "__init__.py":
            target = target / "__init__.py"
        else:
            target = target.with_suffix(".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(origin, target)
    return dest / "laat"


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


def promote_if_better(
    client,
    model_name: str,
    new_version: int | str,
    metric_name: str,
    new_value: float,
    higher_is_better: bool = True,
    alias: str = CHAMPION,
) -> dict[str, Any]:
    """Move ``alias`` to ``new_version`` if it strictly beats the current holder on ``metric_name``.

    The new version is tagged ``eval.<metric>`` so later comparisons read the number from
    the registry. With no champion yet the new version is promoted; a champion without a
    recorded metric is NOT replaced (there is nothing to compare; move the alias by hand).
    Returns the decision, which is also written as ``promotion.*`` tags on the new version.

    Read, compare and move happen under the store's file lock (``laat.store_lock``), so
    candidates promoted at once from several processes are compared one after the other and
    the best ends as champion. A champion displaced later is tagged ``promotion.superseded_by``.
    """
    from laat.store_lock import store_lock

    new_value = float(new_value)
    if not math.isfinite(new_value):
        raise ValueError(f"promote_if_better: {metric_name} of {model_name} v{new_version} is {new_value}")
    new_version = str(new_version)
    client.get_model_version(model_name, new_version)  # raises if it does not exist
    client.set_model_version_tag(model_name, new_version, EVAL_TAG.format(metric=metric_name), str(new_value))
    # MlflowClient has no public accessor for its registry URI; it is where the alias lives.
    with store_lock(client._registry_uri):
        decision = _decide_and_move(client, model_name, new_version, metric_name, new_value, higher_is_better, alias)
    for key in ("promoted", "reason", "previous_version"):
        client.set_model_version_tag(model_name, new_version, f"promotion.{key}", str(decision[key]))
    return decision


def _decide_and_move(
    client, model_name: str, new_version: str, metric_name: str, new_value: float, higher_is_better: bool, alias: str
) -> dict[str, Any]:
    """The comparison and alias move of ``promote_if_better``; call it under the store lock."""
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        current = None
    decision: dict[str, Any] = {
        "promoted": False,
        "reason": "",
        "alias": alias,
        "metric": metric_name,
        "new_version": new_version,
        "new_value": new_value,
        "previous_version": None,
        "previous_value": None,
    }
    direction = "higher" if higher_is_better else "lower"
    if current is None:
        decision.update(promoted=True, reason=f"no version held alias {alias!r}")
    elif str(current.version) == new_version:
        decision.update(
            previous_version=new_version,
            previous_value=new_value,
            reason=f"v{new_version} already holds alias {alias!r}",
        )
    else:
        prev = _metric_of_version(client, current, metric_name)
        decision.update(previous_version=str(current.version), previous_value=prev)
        if prev is None:
            decision["reason"] = (
                f"{alias} v{current.version} has no recorded {metric_name} "
                f"(tag {EVAL_TAG.format(metric=metric_name)} or run metric); not comparable"
            )
        else:
            better = new_value > prev if higher_is_better else new_value < prev
            verdict = "beats" if better else "does not beat"
            decision.update(
                promoted=better,
                reason=f"{metric_name} {new_value:.6g} {verdict} {alias} "
                f"v{current.version}'s {prev:.6g} ({direction} is better)",
            )
    if decision["promoted"]:
        client.set_registered_model_alias(model_name, alias, new_version)
        if decision["previous_version"] is not None:
            client.set_model_version_tag(
                model_name, decision["previous_version"], "promotion.superseded_by", new_version
            )
    return decision


def describe_version(
    client,
    model_name: str,
    version: int | str,
    meta: DatasetMeta,
    prior_label: str,
    metric_name: str,
    value: float,
    estimator: Any,
    run_id: str,
) -> None:
    """Descriptions the registry shows: the model's (dataset, task, target) and this version's (prior, metric)."""
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    kind = type(final).__name__ + (f" ({final.model})" if isinstance(getattr(final, "model", None), str) else "")
    if meta.target.kind == "regression":
        what, target, out = "regressor", "numeric", f"a '{PREDICTION}' column out"
    else:
        what, target, out = f"{meta.target.kind} classifier", " / ".join(meta.target.classes), "p_<class> out"
    client.update_registered_model(
        model_name,
        description=(
            f"LAAT {what} for dataset '{meta.name}': {meta.task} Target '{meta.target.column}' ({target}); "
            f"raw rows in, {out}. The '{CHAMPION}' alias holds the best version on {metric_name}."
        ),
    )
    client.update_model_version(
        model_name,
        str(version),
        description=(f"{kind}; prior: {prior_label}; {metric_name} = {value:.4f} on the held-out rows (run {run_id})."),
    )
