"""Dagster jobs executed in-process on a copy of the project: the chain job registers a model,
the scoring job from conf/base/dagster.yml scores new rows with it; each is one MLflow run."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make project_copy importable

from project_copy import ROOT, copy_project, lean_training, mlflow_client  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path, monkeypatch):
    path = copy_project(tmp_path, ["diabetes"], params=lean_training())
    monkeypatch.chdir(path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return path


def _launch(job, **params):
    (op,) = job.graph.node_defs
    result = job.execute_in_process(run_config={"ops": {op.name: {"config": {"params": params}}}})
    assert result.success
    return result.output_for_node(op.name)


def test_chain_and_scoring_jobs_run_in_process_each_as_one_mlflow_run(project):
    from laat.definitions import build_definitions

    defs = build_definitions(ROOT, conf_source=str(project / "conf"))
    schedule = defs.get_schedule_def("nightly_scoring")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.job_name == "score_diabetes"

    trained_id = _launch(defs.get_job_def("diabetes"), prior_source="oracle", run_id="dagster-train")
    client = mlflow_client(project)
    trained = client.get_run(trained_id)
    assert trained.data.tags["mlflow.runName"] == "diabetes · oracle prior · lr"
    assert trained.data.tags["laat.run_id"] == "dagster-train"
    assert 0.0 <= trained.data.metrics["diabetes.roc_auc"] <= 1.0
    assert client.get_model_version_by_alias("laat-diabetes", "champion").run_id == trained_id

    rows = pd.read_csv(project / "data/01_raw/diabetes.csv").head(25).drop(columns=["Outcome"])
    rows.to_csv(project / "data/incoming.csv", index=False)
    scored_id = _launch(defs.get_job_def("score_diabetes"), input=str(project / "data/incoming.csv"),
                        run_id="dagster-score")
    scored = client.get_run(scored_id)
    assert scored.data.tags["mlflow.runName"] == "inference diabetes · laat-diabetes@champion"
    assert scored.data.tags["inference.model_version"] == "1"
    out = pd.read_parquet(project / "data/07_model_output/diabetes/dagster-score/scored_rows.parquet")
    assert len(out) == 25 and set(out["prior_source"]) == {"oracle"}
