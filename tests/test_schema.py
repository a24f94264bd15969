"""Broken CSVs must fail with one error that names the dataset, the column and the check."""

import numpy as np
import pandas as pd
import pytest

from laat.datasets import encode, load_dataset, load_metadata
from laat.schema import DataValidationError, validate, validation_report


@pytest.fixture(scope="module")
def diabetes():
    meta = load_metadata("diabetes")
    return meta, load_dataset(meta)


@pytest.fixture(scope="module")
def liver():
    meta = load_metadata("indian_liver")
    return meta, load_dataset(meta)


def _fails(df, meta, column, check_fragment):
    with pytest.raises(DataValidationError) as err:
        validate(df, meta)
    msg = str(err.value)
    assert repr(meta.name) in msg
    line = next((ln for ln in msg.splitlines() if f"column {column!r}" in ln), None)
    assert line is not None, msg
    assert check_fragment in line, msg
    return err.value.report


def test_reference_data_passes(diabetes):
    meta, df = diabetes
    assert validation_report(df, meta)["status"] == "passed"


def test_missing_column(diabetes):
    meta, df = diabetes
    _fails(df.drop(columns=["BMI"]), meta, "BMI", "column_in_dataframe")


def test_unknown_category(liver):
    meta, df = liver
    bad = df.copy()
    bad.loc[4, "Gender"] = "Unknown"
    report = _fails(bad, meta, "Gender", "isin")
    (failure,) = report["failures"]
    assert failure["example_rows"] == [4] and failure["example_values"] == ["Unknown"]


def test_nan_in_non_nullable_column(diabetes):
    meta, df = diabetes
    bad = df.copy()
    bad.loc[[3, 8], "Glucose"] = np.nan
    report = _fails(bad, meta, "Glucose", "not_nullable")
    assert report["failures"][0]["example_rows"] == [3, 8]


def test_unknown_target_label(diabetes):
    meta, df = diabetes
    bad = df.copy()
    bad.loc[7, "Outcome"] = "maybe"
    _fails(bad, meta, "Outcome", "isin")


def test_string_in_numeric_column_is_reported_once(diabetes):
    meta, df = diabetes
    bad = df.copy()
    bad["Age"] = bad["Age"].astype(object)
    bad.loc[5, "Age"] = "old"
    report = _fails(bad, meta, "Age", "coerce_dtype")
    age = [f for f in report["failures"] if f["column"] == "Age"]
    assert len(age) == 1, age  # no echoes from the range checks that run after coercion


def test_all_failures_reported_in_one_pass(diabetes):
    meta, df = diabetes
    bad = df.drop(columns=["Insulin"]).copy()
    bad.loc[1, "Pregnancies"] = -3
    bad.loc[2, "Outcome"] = "perhaps"
    report = validation_report(bad, meta)
    assert report["status"] == "failed"
    assert {f["column"] for f in report["failures"]} == {"Insulin", "Pregnancies", "Outcome"}


def test_one_hot_layout_of_two_rows_equals_full_file(liver):
    meta, df = liver
    two = df[df["Gender"] == "Male"].head(2)  # a sample that misses the Female category
    assert list(encode(two, meta).columns) == list(encode(df, meta).columns) == meta.encoded_columns
    assert encode(two, meta)["Gender_Female"].sum() == 0
