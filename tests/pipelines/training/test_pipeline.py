"""Training template on an in-memory catalog: split sizes, prior alignment, trust, diagnostic, typed params."""

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset
from pydantic import ValidationError

from laat.datasets import load_metadata
from laat.pipelines.training import create_pipeline
from laat.pipelines.training.nodes import TrainingParams
from laat.datasets import encode, labels
from laat.priors import Prior, oracle_prior, random_prior


def _metadata():
    with open("conf/base/datasets/diabetes.yml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _params(**estimator):
    with open("conf/base/parameters_training.yml", encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)["training"]
    raw["estimator"].update(estimator)
    return TrainingParams.model_validate(raw)


def _run(prior: dict, params: TrainingParams, tmp_path):
    raw = pd.read_csv("data/01_raw/diabetes.csv")
    catalog = DataCatalog({
        "validated": MemoryDataset(raw), "metadata": MemoryDataset(_metadata()),
        "prior": MemoryDataset(prior), "params:training": MemoryDataset(params),
        # persisted, as in catalog_training.yml, so they can be inspected after the run
        "train_rows": ParquetDataset(filepath=str(tmp_path / "train.parquet")),
        "test_rows": ParquetDataset(filepath=str(tmp_path / "test.parquet")),
    })
    out = SequentialRunner().run(create_pipeline(), catalog)
    return out, catalog, raw


def test_pipeline_fits_on_k_rows_per_class_and_reports_attributions(tmp_path):
    meta = load_metadata("diabetes")
    prior = random_prior(meta.encoded_columns, seed=3).to_dict()
    out, catalog, raw = _run(prior, _params(trust="off"), tmp_path)
    train, test = catalog.load("train_rows"), catalog.load("test_rows")
    assert train["Outcome"].value_counts().to_dict() == {"no": 10, "yes": 10}
    assert len(train) + len(test) == len(raw)
    table = out["attributions"].load()
    assert list(table["feature"]) == meta.encoded_columns
    assert np.isclose(np.linalg.norm(table["learned"]), 1.0)
    # gamma=100 with a prior pulls the learned direction towards the prior target
    cos = float(np.dot(table["learned"], table["prior_target"]))
    assert cos > 0.9, cos
    assert out["trust_decision"].load()["mode"] == "off"


def _oracle(flip=False):
    meta = load_metadata("diabetes")
    raw = pd.read_csv("data/01_raw/diabetes.csv")
    p = oracle_prior(encode(raw, meta), labels(raw, meta), meta)
    if flip:
        p = Prior(features=p.features, mean=[-v for v in p.mean], source="oracle", provenance={"flipped": True})
    return p.to_dict()


def test_default_trust_mode_follows_a_good_prior_and_ignores_a_flipped_one(tmp_path):
    params = _params()
    assert params.estimator.trust == "auto"  # the documented default of the pipeline
    good, _, _ = _run(_oracle(), params, tmp_path / "good")
    bad, _, _ = _run(_oracle(flip=True), params, tmp_path / "bad")
    g, b = good["trust_decision"].load(), bad["trust_decision"].load()
    assert g["mode"] == "auto" and g["followed"] and g["gamma"] > 0
    assert b["gamma"] == 0.0 and not b["followed"] and b["reason"].startswith("ignored the prior")
    metrics = bad["trust_metrics"].load()
    assert metrics["trust.gamma"] == {"value": 0.0, "step": 0}
    assert metrics["trust.p_value"]["value"] == pytest.approx(b["agreement"]["p_value"])
    # a flipped prior trained without it: the learned direction no longer follows its target
    table = bad["attributions"].load()
    assert float(np.dot(table["learned"], table["prior_target"])) < 0.5


def test_prior_diagnostic_outputs_table_plot_and_metrics(tmp_path):
    from matplotlib.figure import Figure

    out, _, _ = _run(_oracle(flip=True), _params(), tmp_path)
    table = out["prior_diagnostic"].load()
    assert list(table["feature"]) == load_metadata("diabetes").encoded_columns
    assert {"prior_score", "class_mean_difference", "agreement", "flagged"} <= set(table.columns)
    assert table["flagged"].any()  # 10 rows per class confidently contradict a flipped oracle somewhere
    assert isinstance(out["prior_diagnostic_plot"].load(), Figure)
    metrics = out["prior_diagnostic_metrics"].load()
    assert metrics["prior_diagnostic.n_flagged"]["value"] == float(table["flagged"].sum())
    assert metrics["prior_diagnostic.sign_flip_p_value"]["value"] > 0.5


def test_prior_for_other_features_is_refused_by_name(tmp_path):
    prior = random_prior(["Glucose", "NotAColumn"], seed=0).to_dict()
    with pytest.raises(Exception, match="NotAColumn"):
        _run(prior, _params(), tmp_path)


@pytest.mark.parametrize("bad", [{"gamma": -1}, {"model": "forest"}, {"tau": 0}, {"lr_rate": 0.1},
                                 {"trust": "maybe"}])
def test_wrong_parameters_fail_at_validation(bad):
    with pytest.raises(ValidationError):
        _params(**bad)
