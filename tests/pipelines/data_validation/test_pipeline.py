"""The validation pipeline on an in-memory catalog: the report is always kept, bad data stops the run."""

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro_datasets.json import JSONDataset
from kedro.runner import SequentialRunner

from laat.pipelines.data_validation import create_pipeline
from laat.schema import DataValidationError


def _catalog(raw: pd.DataFrame, tmp_path) -> DataCatalog:
    with open("conf/base/datasets/diabetes.yml", encoding="utf-8") as fh:
        metadata = yaml.safe_load(fh)
    return DataCatalog({
        "raw": MemoryDataset(raw),
        "metadata": MemoryDataset(metadata),
        # persisted like in conf/base/catalog.yml, so the runner does not release it
        "validation_report": JSONDataset(filepath=str(tmp_path / "report.json")),
        "validated": MemoryDataset(),
    })


def test_valid_data_flows_through(tmp_path):
    raw = pd.read_csv("data/01_raw/diabetes.csv")
    catalog = _catalog(raw, tmp_path)
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    assert catalog.load("validation_report")["status"] == "passed"
    pd.testing.assert_frame_equal(outputs["validated"].load(), raw)


def test_invalid_data_keeps_report_and_stops(tmp_path):
    raw = pd.read_csv("data/01_raw/diabetes.csv").drop(columns=["Glucose"])
    catalog = _catalog(raw, tmp_path)
    with pytest.raises(DataValidationError, match="Glucose"):
        SequentialRunner().run(create_pipeline(), catalog)
    report = catalog.load("validation_report")
    assert report["status"] == "failed"
    assert report["failures"][0]["column"] == "Glucose"
    with pytest.raises(DatasetError, match="has not been saved yet"):
        catalog.load("validated")  # nothing downstream can read the bad rows
