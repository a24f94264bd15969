"""`kedro run --pipeline inference` on a copy of the project whose chain registered laat-diabetes
(oracle prior, lean training): new rows with and without the target, bad rows, a catalog entry
as input, a version that does not exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parents[2]))  # importlib mode: make project_copy importable

from project_copy import cli_env, copy_project, lean_training, mlflow_client, run_session

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = copy_project(tmp_path_factory.mktemp("inference"), ["diabetes"], params=lean_training())
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        run_session(path, "diabetes", {"prior_source": "oracle", "run_id": "trained"})
    rows = pd.read_parquet(path / "data/05_model_input/diabetes/trained/test_rows.parquet").head(60)
    rows.to_csv(path / "data/new_labelled.csv", index=False)
    rows.drop(columns=["Outcome"]).to_parquet(path / "data/new_unlabelled.parquet")
    return path


@pytest.fixture(autouse=True)
def _in_project(project, monkeypatch):
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _inference_run(project, run_id):
    client = mlflow_client(project)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("laat").experiment_id], filter_string=f"tags.`laat.run_id` = '{run_id}'"
    )
    return client, run


def test_labelled_rows_are_scored_by_the_champion_and_monitored(project):
    run_session(
        project,
        "inference",
        {"dataset": "diabetes", "input": str(project / "data/new_labelled.csv"), "run_id": "scored-labelled"},
    )
    client, run = _inference_run(project, "scored-labelled")
    scored = pd.read_parquet(project / "data/07_model_output/diabetes/scored-labelled/scored_rows.parquet")
    model = pd.read_pickle(project / "data/06_models/diabetes/trained/laat_model.pkl")
    from laat.datasets import encode, load_metadata

    rows = pd.read_csv(project / "data/new_labelled.csv")
    expected = model.predict_proba(encode(rows, load_metadata("diabetes", project / "conf/base/datasets")))[:, 1]
    np.testing.assert_allclose(scored["p_yes"].to_numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(scored["p_no"] + scored["p_yes"], 1.0, rtol=1e-6)
    assert set(scored["model_version"]) == {"1"} and set(scored["prior_source"]) == {"oracle"}
    (trained,) = client.search_runs([run.info.experiment_id], filter_string="tags.`laat.run_id` = 'trained'")
    assert set(scored["prior_fingerprint"]) == {trained.data.tags["diabetes.prior.fingerprint"]}
    assert scored["scored_at"].str.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00").all()

    registered = client.get_registered_model("laat-diabetes")
    assert registered.description.startswith("LAAT binary classifier for dataset 'diabetes': ")
    version = client.get_model_version("laat-diabetes", "1")
    assert version.description.startswith("LAATClassifier (lr); prior: oracle; roc_auc = ")
    used = {(d.dataset.name, d.tags[0].value) for d in trained.inputs.dataset_inputs}
    assert used == {("diabetes.train_rows", "training"), ("diabetes.test_rows", "evaluation")}
    assert {(d.dataset.name, d.tags[0].value) for d in run.inputs.dataset_inputs} == {
        ("inference_valid_rows", "inference")
    }
    assert all(d.dataset.digest and "Glucose" in d.dataset.schema for d in trained.inputs.dataset_inputs)
    tags = run.data.tags
    assert tags["mlflow.runName"] == "inference diabetes · laat-diabetes@champion"
    assert trained.data.tags["mlflow.runName"] == "diabetes · oracle prior · lr"
    assert tags["inference.model_name"] == "laat-diabetes" and tags["inference.model_version"] == "1"
    assert tags["diabetes.prior.source"] == "oracle" and tags["inference.target_present"] == "true"
    from laat.metrics import classification_metrics

    want = classification_metrics((rows["Outcome"] == "yes").astype(int), expected)
    assert run.data.metrics["diabetes.roc_auc"] == pytest.approx(want["roc_auc"], rel=1e-6)
    assert any(k.startswith("diabetes.fairness.Age.") for k in run.data.metrics), run.data.metrics
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "inference")}
    assert {
        "inference/scored_rows.parquet",
        "inference/inference_fairness_by_group.csv",
        "inference/inference_validation_report.json",
    } <= logged


def test_rows_without_target_are_scored_by_a_named_version_without_metrics(project):
    run_session(
        project,
        "inference",
        {
            "dataset": "diabetes",
            "input": str(project / "data/new_unlabelled.parquet"),
            "model": 1,
            "run_id": "scored-unlabelled",
        },
    )
    _, run = _inference_run(project, "scored-unlabelled")
    scored = pd.read_parquet(project / "data/07_model_output/diabetes/scored-unlabelled/scored_rows.parquet")
    assert len(scored) == 60 and "Outcome" not in scored.columns
    assert run.data.tags["inference.target_present"] == "false"
    assert run.data.tags["mlflow.runName"] == "inference diabetes · laat-diabetes/1"
    assert not any(k.startswith("diabetes.") for k in run.data.metrics), run.data.metrics


def test_a_catalog_entry_is_scored_too(project):
    run_session(project, "inference", {"dataset": "diabetes", "input": "diabetes.raw", "run_id": "scored-raw"})
    scored = pd.read_parquet(project / "data/07_model_output/diabetes/scored-raw/scored_rows.parquet")
    assert len(scored) == len(pd.read_csv(project / "data/01_raw/diabetes.csv"))


def test_a_missing_version_names_the_versions_there_are(project):
    from laat.pipelines.inference.nodes import ModelLookupError

    with pytest.raises(ModelLookupError, match=r"'laat-diabetes' has no version '7'; it has versions \[1\]"):
        run_session(
            project, "inference", {"dataset": "diabetes", "input": str(project / "data/new_labelled.csv"), "model": 7}
        )


def test_bad_rows_end_with_the_validation_report_and_a_hint(project):
    rows = pd.read_csv(project / "data/new_labelled.csv")
    rows.loc[2, "Age"] = 500
    rows.loc[4, "Outcome"] = "maybe"
    rows.drop(columns=["BMI"]).to_csv(project / "data/bad.csv", index=False)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "laat"),
            "run",
            "--pipeline",
            "inference",
            "--params",
            "dataset=diabetes,input=data/bad.csv,run_id=bad",
        ],
        cwd=project,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 1, done.stdout[-3000:]
    assert lines[-5] == "Error: dataset 'diabetes' failed validation (3 failed checks, 60 rows):", lines[-8:]
    tail = "\n".join(lines[-4:])
    assert "column 'BMI'" in tail and "column 'Age'" in tail and "'maybe'" in tail
    assert lines[-1].startswith("Hint: fix the CSV or its metadata")
    assert "Traceback" not in done.stdout
    assert (project / "data/08_reporting/diabetes/bad/inference_validation_report.json").is_file()
    assert not (project / "data/07_model_output/diabetes/bad").exists()
