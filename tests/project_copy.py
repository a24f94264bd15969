"""A throw-away copy of the project's config and raw data for end-to-end runs.

The code stays in the real project (``src`` in the copy is empty: subprocesses get the real
one on PYTHONPATH, see ``cli_env``); pyproject.toml is copied so that `kedro` and `laat`
commands started in the copy find a project. The copied catalogs write under the
copy and MLflow uses a sqlite store inside it, so a run touches nothing of the real project.
Imported by tests that run Kedro for real (importlib mode: they put tests/ on sys.path).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def copy_project(dst: Path, datasets: list[str], params: dict | None = None) -> Path:
    """Copy conf/ and the raw CSVs of ``datasets`` into ``dst``.

    ``params`` are written to ``conf/local/parameters_test.yml``, the documented way to
    override parameters (lists included); they override only the keys they name.
    """
    shutil.copytree(ROOT / "conf", dst / "conf", ignore=shutil.ignore_patterns("credentials.yml"))
    shutil.copy(ROOT / "pyproject.toml", dst / "pyproject.toml")
    (dst / "src").mkdir()
    for catalog in (dst / "conf" / "base").glob("catalog*.yml"):
        text = catalog.read_text().replace("filepath: data/", f"filepath: {dst}/data/")
        catalog.write_text(text.replace("filepath: conf/", f"filepath: {dst}/conf/"))
    mlflow_yml = dst / "conf" / "base" / "mlflow.yml"
    mlflow_yml.write_text(mlflow_yml.read_text().replace("sqlite:///mlflow.db", f"sqlite:///{dst / 'mlflow.db'}"))
    (dst / "data" / "01_raw").mkdir(parents=True)
    for ds in datasets:
        shutil.copy(ROOT / "data" / "01_raw" / f"{ds}.csv", dst / "data" / "01_raw" / f"{ds}.csv")
    if params:
        (dst / "conf" / "local" / "parameters_test.yml").write_text(yaml.safe_dump(params))
    return dst


def run_session(project: Path, pipeline: str | None = None, runtime_params: dict | None = None, **run_args):
    """One in-process `kedro run` of this checkout's code on the copy's config (as `kedro run
    --pipeline <pipeline> --params ...`; ``run_args`` are KedroSession.run's, e.g. namespaces)."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(ROOT)
    try:
        with KedroSession.create(
            project_path=ROOT, conf_source=str(project / "conf"), runtime_params=runtime_params or {}
        ) as session:
            return session.run(pipeline_names=[pipeline] if pipeline else None, **run_args)
    finally:
        # kedro-mlflow leaves its run active after an in-process session; a `kedro run` process
        # ends with it. End it, so the next session here gets its own run, not a nested one.
        while mlflow.active_run() is not None:
            mlflow.end_run()


def lean_training() -> dict:
    """The prior diagnostic's permutation test at its minimum (the rest as in conf/base)."""
    return {"training": {"diagnostic": {"n_permutations": 100}}}


def cli_env() -> dict[str, str]:
    """Environment for a `kedro`/`laat` subprocess: this checkout's code first, no telemetry,
    no tracking URI or API key inherited from the caller, no colours in the output."""
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "OPENAI_API_KEY"}}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])),
        KEDRO_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="1",
        NO_COLOR="1",
        COLUMNS="200",
    )
    return env


def mlflow_client(project: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
