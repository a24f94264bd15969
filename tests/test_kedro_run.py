"""`kedro run` for real: a copy of the project, a real KedroSession, a real sqlite MLflow store."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make project_copy importable

from project_copy import copy_project, mlflow_client, run_session

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path, monkeypatch):
    path = copy_project(tmp_path, ["diabetes"])
    monkeypatch.chdir(path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return path


def test_default_run_logs_everything_and_registers_a_servable_model(project):
    import mlflow

    # The default strategy (per_feature: one generated answer per feature and sample) with 2
    # samples instead of 5: the same code path, 16 LLM calls instead of 40 to keep CI short.
    run_session(project, runtime_params={"prior_elicitation": {"n_samples": 2}})

    client = mlflow_client(project)
    (exp,) = [e for e in client.search_experiments() if e.name == "laat"]
    (run,) = client.search_runs([exp.experiment_id])
    metrics, tags, params = run.data.metrics, run.data.tags, run.data.params
    for name in ["roc_auc", "accuracy", "f1", "brier"]:
        assert 0.0 <= metrics[f"diabetes.{name}"] <= 1.0, name
    assert metrics["diabetes.log_loss"] > 0.0  # unbounded above; 0 only for perfect certainty
    assert any(k.startswith("diabetes.fairness.Age.") for k in metrics), sorted(metrics)
    assert tags["diabetes.prior.source"] == "llm"
    assert tags["mlflow.runName"] == "diabetes · local prior · lr"
    assert params["training.estimator.gamma"] == "100.0"
    # every LLM call of the elicitation is a span of one trace in this run (laat.tracing)
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    (trace,) = mlflow.search_traces(run_id=run.info.run_id, return_type="list")
    llm_spans = [s for s in trace.data.spans if s.span_type == "LLM"]
    assert len(llm_spans) == 16 and all(s.inputs["prompt"] and s.attributes["tokens_out"] > 0 for s in llm_spans)

    def artifacts(path=""):
        out = []
        for item in client.list_artifacts(run.info.run_id, path):
            out += artifacts(item.path) if item.is_dir else [item.path]
        return out

    logged = artifacts()
    for expected in [
        "validation/validation_report.json",
        "plots/prior_vs_learned_attributions.png",
        "plots/performance.png",
        "plots/metric_by_group.png",
        "fairness/fairness_by_group.csv",
        "attributions/attributions.csv",
        "registry/registration.json",
        "trust/trust_decision.json",
        "prior_diagnostic/prior_diagnostic.csv",
        "prior_diagnostic/prior_diagnostic.png",
    ]:
        assert expected in logged, (expected, logged)
    # the trust decision on the LLM prior: the logged metrics are the decision's own numbers
    decision = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/trust/trust_decision.json")
    assert metrics["diabetes.trust.gamma"] == decision["gamma"]
    assert metrics["diabetes.trust.tau"] == decision["tau"]
    assert metrics["diabetes.trust.followed"] == float(decision["followed"])
    assert decision["followed"] == (decision["gamma"] > 0)
    # the prior diagnostic looked at all 8 diabetes features
    csv = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="prior_diagnostic/prior_diagnostic.csv", dst_path=str(project / "dl")
    )
    diagnostic = pd.read_csv(csv)
    assert len(diagnostic) == 8
    assert metrics["diabetes.prior_diagnostic.n_flagged"] == float(diagnostic["flagged"].sum())
    assert any(p.startswith("prior") and p.endswith(".json") for p in logged), logged
    assert any(p.endswith(".yml") or p.endswith(".yaml") for p in logged), logged

    version = client.get_model_version_by_alias("laat-diabetes", "champion")
    assert str(version.version) == "1"
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    served = mlflow.pyfunc.load_model("models:/laat-diabetes@champion")
    run_id = tags["laat.run_id"]  # the run's own outputs live in folders named by it
    test_rows = pd.read_parquet(project / f"data/05_model_input/diabetes/{run_id}/test_rows.parquet")
    model = pd.read_pickle(project / f"data/06_models/diabetes/{run_id}/laat_model.pkl")
    from laat.datasets import encode, load_metadata

    expected = model.predict_proba(encode(test_rows, load_metadata("conf/base/datasets/diabetes.yml")))[:, 1]
    got = served.predict(test_rows.drop(columns=["Outcome"]))
    np.testing.assert_allclose(got["p_yes"].to_numpy(), expected, rtol=1e-6)


def test_invalid_data_stops_the_run_and_registers_nothing(project):
    from laat.schema import DataValidationError

    csv = project / "data/01_raw/diabetes.csv"
    df = pd.read_csv(csv)
    df.loc[3, "Outcome"] = "maybe"
    df.drop(columns=["BMI"]).to_csv(csv, index=False)

    with pytest.raises(DataValidationError) as err:
        run_session(project)
    assert "'diabetes'" in str(err.value) and "BMI" in str(err.value) and "Outcome" in str(err.value)
    report = pd.read_json(project / "data/08_reporting/diabetes/validation_report.json", typ="series")
    assert report["status"] == "failed"
    assert not (project / "data/05_model_input").exists()
    assert not (project / "data/06_models").exists()
    client = mlflow_client(project)
    assert client.search_registered_models() == []


def test_wrong_parameter_fails_before_any_work(project):
    from kedro.validation import ParameterValidationError

    with pytest.raises(ParameterValidationError, match="gamma"):
        run_session(project, runtime_params={"training": {"estimator": {"gamma": -1}}})
    assert not (project / "data/08_reporting").exists()


@pytest.mark.parametrize(
    "dataset, kind, champion, outputs",
    [
        ("wine", "multiclass", "roc_auc_macro", ["p_cultivar_1", "p_cultivar_2", "p_cultivar_3"]),
        ("diabetes_progression", "regression", "rmse", ["prediction"]),
    ],
)
def test_a_multiclass_and_a_regression_table_run_register_and_serve(
    tmp_path, monkeypatch, dataset, kind, champion, outputs
):
    """`kedro run --pipeline <dataset>` with an oracle prior: the task's metrics and fairness, a
    registered champion decided on the task's metric, and a served model giving the task's columns."""
    import mlflow

    from laat.datasets import encode, load_metadata

    project = copy_project(tmp_path, [dataset])
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_session(project, pipeline=dataset, runtime_params={"prior_source": "oracle"})

    client = mlflow_client(project)
    (run,) = client.search_runs([client.get_experiment_by_name("laat").experiment_id])
    metrics, tags = run.data.metrics, run.data.tags
    assert tags[f"{dataset}.prior.source"] == "oracle"
    if kind == "multiclass":  # an oracle prior on 10 rows per class separates three cultivars well
        assert 0.8 < metrics["wine.roc_auc_macro"] <= 1.0 and metrics["wine.log_loss"] > 0.0
        assert {"wine.roc_auc_weighted", "wine.accuracy", "wine.f1_macro"} <= set(metrics)
    else:  # 10 training rows: better than predicting the mean (R² > 0), in the target's unit
        assert 0.0 < metrics["diabetes_progression.r2"] < 1.0
        assert 0.0 < metrics["diabetes_progression.mae"] < metrics["diabetes_progression.rmse"] < 100.0
        assert {
            "diabetes_progression.fairness.sex.rmse_difference",
            "diabetes_progression.fairness.age.mae_difference",
        } <= set(metrics)
    mv = client.get_model_version_by_alias(f"laat-{dataset}", "champion")
    assert mv.tags[f"eval.{champion}"] == str(metrics[f"{dataset}.{champion}"])
    described = client.get_registered_model(f"laat-{dataset}").description
    assert (
        ("LAAT regressor" in described and "'prediction' column out" in described)
        if kind == "regression"
        else ("LAAT multiclass classifier" in described and "p_<class> out" in described)
    )
    assert f"prior: oracle; {champion} = " in mv.description

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    served = mlflow.pyfunc.load_model(f"models:/laat-{dataset}@champion")
    run_id = tags["laat.run_id"]
    test_rows = pd.read_parquet(project / f"data/05_model_input/{dataset}/{run_id}/test_rows.parquet")
    model = pd.read_pickle(project / f"data/06_models/{dataset}/{run_id}/laat_model.pkl")
    meta = load_metadata(dataset, "conf/base/datasets")
    got = served.predict(test_rows.drop(columns=[meta.target.column]))
    assert list(got.columns) == outputs
    X = encode(test_rows, meta)
    expected = model.predict_proba(X) if kind == "multiclass" else model.predict(X)[:, None]
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-6)
