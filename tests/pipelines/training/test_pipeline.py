"""Training template on an in-memory catalog: split sizes, prior alignment, typed params."""

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
from laat.priors import random_prior


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
    out, catalog, raw = _run(prior, _params(), tmp_path)
    train, test = catalog.load("train_rows"), catalog.load("test_rows")
    assert train["Outcome"].value_counts().to_dict() == {"no": 10, "yes": 10}
    assert len(train) + len(test) == len(raw)
    table = out["attributions"].load()
    assert list(table["feature"]) == meta.encoded_columns
    assert np.isclose(np.linalg.norm(table["learned"]), 1.0)
    # gamma=100 with a prior pulls the learned direction towards the prior target
    cos = float(np.dot(table["learned"], table["prior_target"]))
    assert cos > 0.9, cos


def test_prior_for_other_features_is_refused_by_name(tmp_path):
    prior = random_prior(["Glucose", "NotAColumn"], seed=0).to_dict()
    with pytest.raises(Exception, match="NotAColumn"):
        _run(prior, _params(), tmp_path)


@pytest.mark.parametrize("bad", [{"gamma": -1}, {"model": "forest"}, {"tau": 0}, {"lr_rate": 0.1}])
def test_wrong_parameters_fail_at_validation(bad):
    with pytest.raises(ValidationError):
        _params(**bad)
