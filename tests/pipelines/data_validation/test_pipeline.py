"""The validation pipeline on an in-memory catalog: the report is always kept, bad data stops the run."""

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, DatasetError, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset

from laat.pipelines.data_validation import create_pipeline
from laat.pipelines.training.nodes import TrainingParams
from laat.schema import DataValidationError


def _catalog(raw: pd.DataFrame, tmp_path, shots: int = 10, strategy: str = "few_shot") -> DataCatalog:
    with open("conf/base/datasets/diabetes.yml", encoding="utf-8") as fh:
        metadata = yaml.safe_load(fh)
    return DataCatalog(
        {
            "raw": MemoryDataset(raw),
            "metadata": MemoryDataset(metadata),
            "params:training": MemoryDataset(
                TrainingParams.model_validate({"split": {"shots": shots, "strategy": strategy}})
            ),
            # persisted like in conf/base/catalog.yml, so the runner does not release it
            "validation_report": JSONDataset(filepath=str(tmp_path / "report.json")),
            "validated": MemoryDataset(),
        }
    )


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


def test_header_only_csv_stops_the_run_saying_so(tmp_path):
    (tmp_path / "empty.csv").write_text(open("data/01_raw/diabetes.csv").readline())
    raw = pd.read_csv(tmp_path / "empty.csv")  # what the catalog's CSVDataset gives
    catalog = _catalog(raw, tmp_path)
    with pytest.raises(DataValidationError, match="the table has no rows"):
        SequentialRunner().run(create_pipeline(), catalog)
    assert catalog.load("validation_report")["failures"][0]["check"] == "not_empty"


def test_a_class_smaller_than_shots_needs_stops_the_run_naming_it(tmp_path):
    raw = pd.read_csv("data/01_raw/diabetes.csv")
    raw = pd.concat([raw[raw["Outcome"] == "no"], raw[raw["Outcome"] == "yes"].head(30)])
    SequentialRunner().run(create_pipeline(), _catalog(raw, tmp_path, shots=29))  # 29 + 1 test row fit
    with pytest.raises(
        DataValidationError,
        match=r"class 'yes' of target 'Outcome' has 30 rows; 31 are needed "
        r"\(training.split.shots = 30 for training and at least 1 for testing\)",
    ):
        SequentialRunner().run(create_pipeline(), _catalog(raw, tmp_path / "30", shots=30))


def test_a_fraction_split_needs_a_row_of_each_class_on_each_side(tmp_path):
    raw = pd.read_csv("data/01_raw/diabetes.csv")
    raw = pd.concat([raw[raw["Outcome"] == "no"], raw[raw["Outcome"] == "yes"].head(1)])
    with pytest.raises(DataValidationError, match="class 'yes' of target 'Outcome' has 1 rows; 2 are needed"):
        SequentialRunner().run(create_pipeline(), _catalog(raw, tmp_path, strategy="fraction"))
