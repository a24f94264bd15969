"""`kedro run --pipeline all` on every shipped dataset: one real Kedro session, oracle prior."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make project_copy importable

from laat.datasets import load_metadata
from laat.pipeline_registry import dataset_names
from project_copy import copy_project, lean_training, mlflow_client

pytestmark = pytest.mark.slow


def test_pipeline_all_registers_one_model_per_dataset(tmp_path, monkeypatch):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    datasets = dataset_names()
    assert len(datasets) == 9
    kinds = {ds: load_metadata(ds, "conf/base/datasets").target.kind for ds in datasets}
    assert sorted(kinds.values()).count("binary") == 7
    assert kinds["wine"] == "multiclass" and kinds["diabetes_progression"] == "regression"
    project = copy_project(tmp_path, datasets, params=lean_training())
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = Path(__file__).resolve().parents[1]
    bootstrap_project(root)
    with KedroSession.create(
        project_path=root, conf_source=str(project / "conf"), runtime_params={"prior_source": "oracle"}
    ) as session:
        session.run(pipeline_names=["all"])

    client = mlflow_client(project)
    assert sorted(m.name for m in client.search_registered_models()) == [f"laat-{ds}" for ds in datasets]
    (run,) = client.search_runs([client.get_experiment_by_name("laat").experiment_id])
    assert run.info.status == "FINISHED"
    metrics, tags = run.data.metrics, run.data.tags
    for ds in datasets:
        if kinds[ds] == "regression":  # better than predicting the mean
            assert 0.0 < metrics[f"{ds}.r2"] < 1.0 and metrics[f"{ds}.rmse"] > 0.0, ds
        else:
            auc = metrics[f"{ds}.roc_auc" if kinds[ds] == "binary" else f"{ds}.roc_auc_macro"]
            assert 0.5 < auc <= 1.0, (ds, auc)
            assert 0.0 <= metrics[f"{ds}.accuracy"] <= 1.0 and metrics[f"{ds}.log_loss"] > 0.0
        assert tags[f"{ds}.prior.source"] == "oracle"
        assert str(client.get_model_version_by_alias(f"laat-{ds}", "champion").version) == "1"
    assert tags["electricity.sensitive_features"] == "none declared"
    assert not any(k.startswith("electricity.fairness.") for k in metrics)
