"""Dagster code location: the chain per dataset and configured jobs (e.g. nightly scoring) as Dagster jobs.

`dagster dev -m laat.definitions` from the project root (`make dagster`) serves the UI on
127.0.0.1:3000. Jobs and schedules come from the project's `conf/base/dagster.yml`; every
dataset with metadata also gets a job running its chain.

Each Dagster run is one Kedro session (`KedroSession.run`), so it gets its own laat run id and
its own MLflow run, with the project's hooks, typed parameters and catalog exactly as in
`kedro run`. kedro-dagster 0.8.1, which turns each Kedro node into a Dagster op instead, fails
on this project: it rebuilds node parameters as Dagster config and cannot take pydantic
(typed) parameters, and it resolves the catalog once per code location, so all its runs would
share one run id's folders.
"""

import os  # no `from __future__ import annotations`: Dagster reads the op's config type at run time
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import BaseModel, ConfigDict, Field


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(description="a registered pipeline: a dataset, a stage, 'inference', 'all'")
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict, description="`--params` of every run of the job")


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: str
    cron_schedule: str
    execution_timezone: str = "UTC"
    running: bool = False


class DagsterConf(BaseModel):
    """`conf/base/dagster.yml`."""

    model_config = ConfigDict(extra="forbid")

    jobs: dict[str, JobSpec] = Field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = Field(default_factory=dict)


class KedroRunConfig(dg.Config):
    """What a launch may set: `--params` (dotted keys allowed) and the Kedro environment."""

    params: dict[str, str] = {}
    env: str | None = None


def project_path() -> Path:
    """The Kedro project around the working directory (or $LAAT_PROJECT_PATH)."""
    from kedro.utils import find_kedro_project

    start = Path(os.environ.get("LAAT_PROJECT_PATH") or Path.cwd())
    return find_kedro_project(start) or start


def runtime_params(fixed: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    """``fixed`` then ``given`` as Kedro's runtime params; ``a.b=v`` nests, values parse as YAML scalars."""
    out: dict[str, Any] = {}
    for key, value in {**fixed, **given}.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value) if isinstance(value, str) else value
    return out


def kedro_job(
    name: str, pipeline: str, params: dict[str, Any], description: str, root: Path, conf_source: str | None = None
) -> dg.JobDefinition:
    """A job of one op that runs ``pipeline`` in a Kedro session; its output is the MLflow run id."""

    @dg.op(name=f"{name}__kedro_run", description=f"kedro run --pipeline {pipeline}")
    def run_pipeline(context: dg.OpExecutionContext, config: KedroRunConfig) -> str:
        import mlflow
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(root)
        with KedroSession.create(
            project_path=root,
            env=config.env,
            conf_source=conf_source,
            runtime_params=runtime_params(params, config.params),
        ) as session:
            session.run(pipeline_names=[pipeline])
        run = mlflow.last_active_run()
        while mlflow.active_run() is not None:  # kedro-mlflow leaves it open in-process
            mlflow.end_run()
        run_id = run.info.run_id if run is not None else ""
        context.add_output_metadata(
            {"mlflow_run_id": run_id, "mlflow_run_name": run.info.run_name if run is not None else ""}
        )
        return run_id

    @dg.job(name=name, description=description or f"kedro run --pipeline {pipeline}")
    def job():
        run_pipeline()

    return job


def build_definitions(root: Path | None = None, conf_source: str | None = None) -> dg.Definitions:
    """Jobs and schedules of the project at ``root`` (its metadata and `dagster.yml`)."""
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    from laat.pipeline_registry import dataset_names

    root = root or project_path()
    bootstrap_project(root)
    conf = Path(conf_source) if conf_source else root / settings.CONF_SOURCE
    path = conf / "base" / "dagster.yml"
    spec = DagsterConf.model_validate(yaml.safe_load(path.read_text()) if path.exists() else {})
    jobs = {
        ds: kedro_job(
            ds, ds, {}, f"The chain for {ds}: validation, prior, training, evaluation, registration", root, conf_source
        )
        for ds in dataset_names(conf / "base" / "datasets")
    }
    for name, job in spec.jobs.items():
        jobs[name] = kedro_job(name, job.pipeline, job.params, job.description, root, conf_source)
    unknown = sorted({s.job for s in spec.schedules.values()} - set(jobs))
    if unknown:
        raise ValueError(f"{path}: schedules name jobs {unknown} that are not defined; jobs: {sorted(jobs)}")
    schedules = [
        dg.ScheduleDefinition(
            name=name,
            job=jobs[s.job],
            cron_schedule=s.cron_schedule,
            execution_timezone=s.execution_timezone,
            default_status=dg.DefaultScheduleStatus.RUNNING if s.running else dg.DefaultScheduleStatus.STOPPED,
        )
        for name, s in spec.schedules.items()
    ]
    return dg.Definitions(jobs=list(jobs.values()), schedules=schedules)


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev -m laat.definitions` loads: the project around the working directory."""
    return build_definitions()
