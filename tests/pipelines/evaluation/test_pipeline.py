"""Evaluation template on an in-memory catalog against a real sqlite MLflow store."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset

from laat.datasets import encode, labels, load_metadata
from laat.estimator import LAATClassifier
from laat.pipelines.evaluation import create_pipeline
from laat.pipelines.evaluation.nodes import EvaluationParams
from laat.priors import oracle_prior_from_frame
from laat.splits import few_shot_split


@pytest.fixture
def tracking(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("eval-test", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        yield mlflow.MlflowClient(uri), run
    mlflow.set_tracking_uri(None)


def _inputs(gamma: float):
    meta = load_metadata("diabetes")
    raw = pd.read_csv("data/01_raw/diabetes.csv")
    tr, te = few_shot_split(labels(raw, meta), 10, seed=69)
    train, test = raw.iloc[tr].reset_index(drop=True), raw.iloc[te].reset_index(drop=True)
    prior = oracle_prior_from_frame(raw, meta)
    model = LAATClassifier(gamma=gamma, random_state=0).fit(encode(train, meta), labels(train, meta), prior=prior)
    attributions = pd.DataFrame({"feature": meta.encoded_columns,
                                 "prior_target": model.prior_target_.to_numpy(),
                                 "learned": model.feature_attributions_.to_numpy()})
    with open("conf/base/datasets/diabetes.yml", encoding="utf-8") as fh:
        metadata = yaml.safe_load(fh)
    return {"model": model, "test_rows": test, "metadata": metadata, "prior": prior.to_dict(),
            "attributions": attributions, "params:evaluation": EvaluationParams()}


def _run(inputs, tmp_path):
    catalog = DataCatalog({k: MemoryDataset(v) for k, v in inputs.items()})
    # persisted (as in catalog_evaluation.yml) so the test can read them after the run
    catalog["metrics"] = JSONDataset(filepath=str(tmp_path / "metrics.json"))
    catalog["fairness_by_group"] = CSVDataset(filepath=str(tmp_path / "by_group.csv"))
    out = SequentialRunner().run(create_pipeline(), catalog)
    return {**out, "metrics": catalog.load("metrics"), "fairness_by_group": catalog.load("fairness_by_group")}


def test_metrics_fairness_plots_and_champion_decision(tracking, tmp_path):
    client, _ = tracking
    first = _run(_inputs(gamma=100.0), tmp_path)
    metrics = first["metrics"]
    assert 0.5 < metrics["roc_auc"]["value"] <= 1.0
    assert "fairness.Age.demographic_parity_difference" in metrics
    by_group = first["fairness_by_group"]
    assert set(by_group["feature"]) == {"Age"}
    for fig in ("attribution_plot", "roc_plot", "fairness_plot"):
        assert first[fig].load().axes
    decision = first["registration"].load()
    assert decision["promoted"] and decision["new_version"] == "1"
    assert str(client.get_model_version_by_alias("laat-diabetes", "champion").version) == "1"

    # a model trained with a constant prediction cannot beat it: the alias must stay on v1
    weak = _inputs(gamma=0.0)
    second = _run(weak, tmp_path)
    decision2 = second["registration"].load()
    v1 = decision["new_value"]
    if decision2["new_value"] > v1:
        assert decision2["promoted"]
    else:
        assert not decision2["promoted"]
        assert str(client.get_model_version_by_alias("laat-diabetes", "champion").version) == "1"
    assert decision2["previous_value"] == pytest.approx(v1)


def test_a_model_with_its_imputer_is_scored_registered_and_served_on_rows_with_gaps(tracking, tmp_path, gappy):
    import mlflow

    from laat.datasets import parse_metadata
    from laat.preprocess import with_imputer
    from laat.priors import random_prior

    metadata, raw = gappy
    metadata["sensitive_features"] = ["âge.mère"]  # an empty list is issue 11's other fix; not this test's
    meta = parse_metadata(metadata)
    tr, te = few_shot_split(labels(raw, meta), 10, seed=69)
    train, test = raw.iloc[tr].reset_index(drop=True), raw.iloc[te].reset_index(drop=True)
    prior = random_prior(meta.encoded_columns, seed=1)  # RANDOM prior: plumbing check, not a result
    model = with_imputer(LAATClassifier(gamma=100.0, trust="off", epochs=30, random_state=0))
    model.fit(encode(train, meta), labels(train, meta), model__prior=prior)
    attributions = pd.DataFrame({"feature": meta.encoded_columns, "prior_target": model[-1].prior_target_.to_numpy(),
                                 "learned": model[-1].feature_attributions_.to_numpy()})
    out = _run({"model": model, "test_rows": test, "metadata": metadata, "prior": prior.to_dict(),
                "attributions": attributions, "params:evaluation": EvaluationParams()}, tmp_path)
    assert 0.0 <= out["metrics"]["roc_auc"]["value"] <= 1.0
    decision = out["registration"].load()
    assert decision["registered"]
    served = mlflow.pyfunc.load_model(decision["model_uri"])
    gaps = test[test["mother_weight"].isna() | test["birth place"].isna()]
    assert len(gaps) > 5
    np.testing.assert_array_equal(served.predict(gaps)["p_1"].to_numpy(), model.predict_proba(encode(gaps, meta))[:, 1])
    reqs = Path(mlflow.artifacts.download_artifacts(decision["model_uri"])) / "requirements.txt"
    assert any(r.startswith("torch==") for r in reqs.read_text().split())  # the LAAT step needs torch
