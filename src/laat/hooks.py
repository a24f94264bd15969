"""Project hooks."""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from datetime import UTC, datetime
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node
from kedro.validation import ParameterValidationError
from pydantic import BaseModel

log = logging.getLogger(__name__)


def flatten(value: Any, prefix: str, sep: str = ".") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{sep}{k}", sep))
        return out
    return {prefix: value}


class TypedParamsToMlflow:
    """Log typed (pydantic) parameters to MLflow as flat keys, e.g. `training.estimator.gamma`.

    kedro-mlflow flattens plain dict parameters but logs a pydantic model as one long string,
    which makes runs impossible to filter or compare by a single knob. Credentials inside
    URLs (a key in ``base_url``) are masked in every value logged here and in the
    ``runtime_params`` tag kedro-mlflow writes.
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        # tryfirst: runs before kedro-mlflow copies run_params into tags, so the secret is
        # never written (an overwritten sqlite row can linger in the file's free pages).
        from laat.elicit.redact import redact

        if run_params.get("runtime_params"):
            run_params["runtime_params"] = redact(run_params["runtime_params"])

    @hook_impl
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        typed = {
            k.removeprefix("params:"): v
            for k, v in inputs.items()
            if k.startswith("params:") and isinstance(v, BaseModel)
        }
        if not typed:
            return
        import mlflow

        from laat.elicit.redact import redact

        if mlflow.active_run() is None:
            return
        flat: dict[str, Any] = {}
        for name, model in typed.items():
            flat.update(flatten(model.model_dump(mode="json"), name))
        mlflow.log_params({k: redact(str(v))[:6000] for k, v in flat.items()})


# --- run isolation -------------------------------------------------------------------------
# Run-specific catalog paths contain `${run_id:}` (resolver registered in settings.py). Its
# value is set once per Kedro session, before the catalog is built; `--params run_id=<id>`
# reuses an earlier run's folder (e.g. to evaluate the model a training-only run wrote).

RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
RUN_TAGS = ("laat.run_id", "laat.pid", "laat.host")
_run_id: str | None = None


def new_run_id() -> str:
    """UTC time + pid + random: unique across concurrent processes, sortable by start time."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{os.getpid()}-{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a plain folder name; else the parameter error a bad ``--params`` gets."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise ParameterValidationError(
            f"run_id {run_id!r} is not a usable folder name: use letters, digits, '.', '_' "
            f"or '-' (at most 128, not starting with '.' or '-'), e.g. a run id printed by an "
            f"earlier `kedro run`"
        )
    return run_id


def current_run_id() -> str:
    """This session's run id (the `run_id` catalog resolver); made on first use outside a session."""
    global _run_id
    if _run_id is None:
        _run_id = new_run_id()
    return _run_id


class RunIsolation:
    """Per-session run id, safe MLflow store start-up, and recovery of runs killed mid-way.

    - A run id per session (or `--params run_id=...`), used in run-specific catalog paths and
      tagged on the MLflow run with this process's pid and host.
    - The first use of a fresh sqlite store creates its tables; two processes doing that at
      once break alembic, so store creation and the experiment lookup happen under a file lock.
    - RUNNING runs of this experiment whose process (same host, tagged pid) is gone were killed
      (kill -9, power loss); they are marked KILLED so they do not stay RUNNING forever. A pid
      reused since counts as alive: a live run is never marked, a dead one may stay RUNNING.
    """

    @hook_impl(tryfirst=True)
    def after_context_created(self, context) -> None:
        global _run_id
        given = context.params.get("run_id")
        _run_id = check_run_id(str(given)) if given is not None else new_run_id()
        uri, experiment, create_kwargs = _tracking_config(context)
        if uri is not None and "://" in uri:  # a bare path is kedro-mlflow's file store: nothing to share
            _prepare_store(uri, experiment, create_kwargs)

    @hook_impl(trylast=True)  # after kedro-mlflow's before_pipeline_run has started the run
    def before_pipeline_run(self) -> None:
        import mlflow

        log.info("laat run id: %s (run-specific outputs under data/*/<dataset>/%s/)", _run_id, _run_id)
        if mlflow.active_run() is not None:
            mlflow.set_tags(dict(zip(RUN_TAGS, (_run_id, str(os.getpid()), socket.gethostname()))))


def _tracking_config(context) -> tuple[str | None, str, dict[str, Any]]:
    """kedro-mlflow's tracking URI, experiment name and creation kwargs, resolved as it does."""
    from kedro_mlflow.config.kedro_mlflow_config import _validate_uri

    try:
        conf = context.config_loader["mlflow"]
    except MissingConfigException:  # no mlflow.yml: kedro-mlflow falls back to its defaults
        conf = {}
    uri = conf.get("server", {}).get("mlflow_tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
    exp_conf = conf.get("tracking", {}).get("experiment", {})
    kwargs = dict(exp_conf.get("create_experiment_kwargs") or {})
    if kwargs.get("artifact_location") is not None:
        kwargs["artifact_location"] = _validate_uri(str(context.project_path), kwargs["artifact_location"])
    return uri, exp_conf.get("name") or context._package_name, kwargs


def _prepare_store(uri: str, experiment: str, create_kwargs: dict[str, Any] | None = None) -> None:
    """Create the store and experiment under the store lock, then retire runs whose process died.

    ``create_kwargs`` (artifact_location, tags) are mlflow.yml's, as kedro-mlflow would pass them.
    """
    from mlflow import MlflowClient
    from mlflow.entities import RunStatus

    from laat.store_lock import store_lock

    with store_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else client.create_experiment(experiment, **(create_kwargs or {}))
        host = socket.gethostname()
        running = client.search_runs(
            [exp_id], filter_string=f"attributes.status = 'RUNNING' and tags.`laat.host` = '{host}'"
        )
        for run in running:
            pid = int(run.data.tags["laat.pid"])
            if _process_alive(pid):
                continue
            client.set_tag(
                run.info.run_id,
                "laat.recovered",
                f"process {pid} on {host} was gone; marked KILLED by process {os.getpid()}",
            )
            client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))
            log.warning(
                "marked KILLED: MLflow run %s, still RUNNING, its process %d on %s is gone", run.info.run_id, pid, host
            )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


# --- inference settings ----------------------------------------------------------------------
# The inference pipeline is not namespaced: its catalog paths name the dataset and the input
# file through `${inference:dataset}` / `${inference:input}` (resolver registered in settings.py),
# read from the `inference` parameters, their one home (conf/base/parameters_inference.yml).

_inference: dict[str, Any] = {}


def inference_setting(key: str) -> str:
    """This session's ``inference.<key>`` parameter, for catalog paths.

    A tool that builds the catalog without running the project's hooks (`kedro viz`) gets the
    placeholder ``<inference.<key>>``; a run always has the value (its hook sets it first).
    """
    if key not in _inference:
        return f"<inference.{key}>"
    return str(_inference[key] if _inference[key] is not None else "")


class InferenceSettings:
    """Makes the ``inference`` parameters visible to the catalog; ``input`` may name a catalog entry.

    ``--params input=diabetes.raw`` (any entry or factory match) scores that dataset's rows;
    anything else is a file path read by ``laat.pipelines.inference.rows_dataset.RowsDataset``.
    """

    @hook_impl
    def after_context_created(self, context) -> None:
        _inference.clear()
        given = context.params.get("inference") or {}
        _inference.update(given.model_dump() if isinstance(given, BaseModel) else given)

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        name = str(_inference.get("input") or "")
        if name and name != "inference_rows" and name in catalog:
            catalog["inference_rows"] = catalog.get(name)


# --- run names -------------------------------------------------------------------------------
_PRIOR_NODES = ("elicit_prior", "fit_model", "register_model")  # nodes whose result depends on the prior


def run_name(pipeline_names: list[str], pipeline, params: dict[str, Any]) -> str:
    """What ran, for the MLflow run list: ``diabetes · oracle prior · lr``, ``inference bodyfat · laat-bodyfat@champion``."""
    from laat.pipelines import STAGES

    if pipeline_names == ["inference"]:
        inference = params.get("inference") or {}
        ds, model = inference.get("dataset"), str(inference.get("model"))
        name = f"{(params.get('evaluation') or {}).get('model_name_prefix', '')}{ds}"
        return f"inference {ds} · {name}{'/' if model.isdigit() else '@'}{model}"
    datasets = sorted({n.namespace.split(".")[0] for n in pipeline.nodes if n.namespace})
    if not datasets:
        return "+".join(pipeline_names)
    what = ", ".join(datasets) if len(datasets) <= 3 else f"{len(datasets)} datasets"
    parts = [" ".join([*(n for n in pipeline_names if n in STAGES), what])]
    if any(n.name.rsplit(".", 1)[-1] in _PRIOR_NODES for n in pipeline.nodes):
        estimator = (params.get("training") or {}).get("estimator") or {}
        parts += [f"{params.get('prior_source')} prior", str(estimator.get("model", ""))]
    return " · ".join(p for p in parts if p)


class RunNames:
    """Names the MLflow run after what ran, unless ``tracking.run.name`` in mlflow.yml names it."""

    def __init__(self) -> None:
        self._params: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        # plain values: a parameter may already be its typed (pydantic) model here
        self._params = {k: v.model_dump() if isinstance(v, BaseModel) else v for k, v in context.params.items()}

    @hook_impl(trylast=True)  # after kedro-mlflow's before_pipeline_run has started the run
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline) -> None:
        import mlflow

        run = mlflow.active_run()
        names = run_params.get("pipeline_names") or ["__default__"]
        if run is None or run.info.run_name != "+".join(names):  # kedro-mlflow's default name only
            return
        mlflow.set_tag("mlflow.runName", run_name(list(names), pipeline, self._params))


# --- rows as MLflow datasets -------------------------------------------------------------------
ROW_DATASETS = {".train_rows": "training", ".test_rows": "evaluation", "inference_valid_rows": "inference"}


class RowsToMlflow:
    """Logs the rows a run trained on, evaluated on and scored as MLflow datasets (digest, schema)."""

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        context = next((c for suffix, c in ROW_DATASETS.items() if dataset_name.endswith(suffix)), None)
        if context is None:
            return
        import mlflow
        import mlflow.data

        if mlflow.active_run() is not None:
            mlflow.log_input(mlflow.data.from_pandas(data, name=dataset_name), context=context)
