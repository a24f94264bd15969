"""Dagster jobs executed in-process on a copy of the project: the chain job registers a model,
the scoring job from conf/base/dagster.yml scores new rows with it; each is one MLflow run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make project_copy importable

from project_copy import ROOT, copy_project, lean_training, mlflow_client


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


@pytest.mark.slow
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
    scored_id = _launch(
        defs.get_job_def("score_diabetes"), input=str(project / "data/incoming.csv"), run_id="dagster-score"
    )
    scored = client.get_run(scored_id)
    assert scored.data.tags["mlflow.runName"] == "inference diabetes · laat-diabetes@champion"
    assert scored.data.tags["inference.model_version"] == "1"
    out = pd.read_parquet(project / "data/07_model_output/diabetes/dagster-score/scored_rows.parquet")
    assert len(out) == 25 and set(out["prior_source"]) == {"oracle"}


def test_launch_params_override_the_jobs_and_dotted_keys_nest():
    from laat.definitions import runtime_params

    got = runtime_params(
        {"dataset": "diabetes", "input": "a.csv"}, {"input": "b.csv", "training.split.shots": "5", "model": "3"}
    )
    assert got == {"dataset": "diabetes", "input": "b.csv", "training": {"split": {"shots": 5}}, "model": 3}


def test_a_schedule_of_an_unknown_job_names_the_jobs_there_are(tmp_path):
    from laat.definitions import build_definitions

    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf" / "base" / "datasets", conf / "base" / "datasets")
    (conf / "base" / "dagster.yml").write_text(
        "schedules:\n  nightly: {job: score_nothing, cron_schedule: '0 2 * * *'}\n"
    )
    with pytest.raises(
        ValueError,
        match=r"dagster.yml: schedules name jobs \['score_nothing'\] that are not defined; "
        r"jobs: \['bodyfat', 'breast_ljubljana'",
    ):
        build_definitions(ROOT, conf_source=str(conf))
