"""Broken CSVs must fail with one error that names the dataset, the column and the check."""

import numpy as np
import pandas as pd
import pytest

from laat.datasets import boolean_values, encode, load_dataset, load_metadata, parse_metadata
from laat.schema import DataValidationError, format_report, validate, validation_report


@pytest.fixture(scope="module")
def diabetes():
    meta = load_metadata("conf/base/datasets/diabetes.yml")
    return meta, load_dataset(meta)


@pytest.fixture(scope="module")
def liver():
    meta = load_metadata("conf/base/datasets/indian_liver.yml")
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
    _fails(bad, meta, "Outcome", "target_labels (one of ['no', 'yes'] or another spelling of the same yes/no)")


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


def _with(meta, name: str, **changes):
    """`meta` with feature `name` changed (e.g. nullable=True, type="boolean")."""
    raw = meta.model_dump()
    spec = next(f for f in raw["features"] if f["name"] == name)
    spec.update(changes)
    return parse_metadata(raw, origin="test metadata")


def test_gaps_in_a_declared_nullable_numeric_column_pass(diabetes):
    meta, df = diabetes
    gappy = df.copy()
    gappy.loc[[3, 8], "Glucose"] = np.nan
    assert validation_report(gappy, _with(meta, "Glucose", nullable=True))["status"] == "passed"
    _fails(gappy, meta, "Glucose", "not_nullable")  # the same rows, not declared nullable


SPELLINGS = ["yes", "No", " TRUE ", "f", "Y", "n", "t", "False", "1", "0", "1.0", "0.0", True, False, 1, 0, 1.0, 0.0]
TRUTH = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]


def test_validation_encoding_and_serving_share_one_boolean_vocabulary(diabetes):
    from laat.serving import InputError, check_raw_rows

    meta, df = diabetes
    meta = _with(meta, "Age", type="boolean", min=None, max=None)
    rows = df.head(len(SPELLINGS)).copy()
    rows["Age"] = pd.Series(SPELLINGS, index=rows.index, dtype=object)
    assert boolean_values(rows["Age"]).tolist() == TRUTH
    assert validation_report(rows, meta)["status"] == "passed"
    assert encode(rows, meta)["Age"].tolist() == TRUTH
    check_raw_rows(rows, meta)  # accepted as served input
    rows.loc[rows.index[2], "Age"] = "maybe"
    line = next(
        ln for ln in str(pytest.raises(DataValidationError, validate, rows, meta).value).splitlines() if "'Age'" in ln
    )
    assert "boolean_values (yes/no, y/n, true/false, t/f, 1/0 (any case))" in line and "'maybe'" in line
    with pytest.raises(InputError, match="'Age' has non-boolean values \\['maybe'\\]"):
        check_raw_rows(rows, meta)


def test_a_header_only_table_fails_saying_it_has_no_rows(diabetes):
    meta, df = diabetes
    report = validation_report(df.head(0), meta)
    assert report["status"] == "failed"
    assert "the table has no rows" in format_report(report)


def test_too_few_rows_of_a_class_names_the_class_and_the_need(diabetes):
    meta, df = diabetes
    few = pd.concat([df[df["Outcome"] == "no"].head(40), df[df["Outcome"] == "yes"].head(10)])
    report = validation_report(few, meta, min_rows_per_class=11, why="10 shots and 1 test row")
    assert report["status"] == "failed"
    (failure,) = report["failures"]
    assert failure["message"] == (
        "class 'yes' of target 'Outcome' has 10 rows; 11 are needed (10 shots and 1 test row)"
    )
    assert validation_report(few, meta, min_rows_per_class=10)["status"] == "passed"


def _regression(rows: pd.DataFrame, value_range=(0, 1000)):
    """The diabetes table with its glucose as a numeric (regression) target."""
    raw = load_metadata("diabetes", "conf/base/datasets").model_dump()
    raw["features"] = [f for f in raw["features"] if f["name"] != "Glucose"]
    raw["sensitive_features"] = [s for s in raw["sensitive_features"] if s != "Glucose"]
    raw["target"] = {"column": "Glucose", "type": "numeric", "range": value_range}
    return parse_metadata(raw), rows.drop(columns="Outcome")


def test_a_numeric_target_with_text_or_out_of_range_values_names_them(diabetes):
    meta, df = _regression(diabetes[1])
    assert validation_report(df, meta)["status"] == "passed"
    bad = df.head(20).copy()
    bad["Glucose"] = bad["Glucose"].astype(object)
    bad.loc[3, "Glucose"] = "high"
    bad.loc[5, "Glucose"] = 2000
    report = _fails(bad, meta, "Glucose", "target_values (a finite number in [0, 1000])")
    (failure,) = report["failures"]
    assert failure["example_rows"] == [3, 5] and failure["example_values"] == ["high", "2000"]


def test_a_regression_table_with_too_few_rows_says_how_many_are_needed(diabetes):
    meta, df = _regression(diabetes[1])
    report = validation_report(df.head(10), meta, min_rows_per_class=11, why="10 shots and 1 test row")
    (failure,) = report["failures"]
    assert failure["message"] == "target 'Glucose' has 10 valid rows; 11 are needed (10 shots and 1 test row)"
    assert validation_report(df.head(11), meta, min_rows_per_class=11)["status"] == "passed"
