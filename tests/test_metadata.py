"""The shipped dataset metadata files agree with the shipped CSVs.

The metadata, not the data, fixes the one-hot layout that prompt, prior, training and the
served model share; these tests pin that layout (width d from the LAAT paper) and check that
every column and category of every CSV is described, so an LLM prompt never meets an
unexplained name.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from laat.datasets import (
    DatasetMeta,
    MetadataError,
    encode,
    labels,
    load_dataset,
    load_metadata,
    parse_metadata,
)

ROOT = Path(__file__).resolve().parents[1]
METADATA_DIR = ROOT / "conf" / "base" / "datasets"

# Encoded width d per shipped dataset (LAAT paper, see docs/laat-method.md section 9).
WIDTH = {
    "diabetes": 8,
    "breast_ljubljana": 16,
    "contraceptive": 24,
    "indian_liver": 11,
    "myocardial": 144,
    "bodyfat": 12,
    "electricity": 8,
}
DATASETS = sorted(WIDTH)
# The shipped tables of the other tasks: (task, encoded width).
OTHER_TASKS = {"wine": ("multiclass", 13), "diabetes_progression": ("regression", 11)}

# Rows removed by the paper's skew conditions: (matching rows, positives in the full file).
PAPER_SKEW = {"diabetes": (225, 268), "breast_ljubljana": (64, 81), "myocardial": (74, 152)}


@cache
def _meta(name: str) -> DatasetMeta:
    return load_metadata(name, metadata_dir=METADATA_DIR)


@cache
def _raw(name: str) -> pd.DataFrame:
    return load_dataset(_meta(name), root=ROOT)


def _df(name: str) -> pd.DataFrame:
    return _raw(name).copy()  # callers may not mutate the cached frame


# ---- every shipped file ---------------------------------------------------------------------


def test_every_metadata_file_is_covered():
    assert sorted(p.stem for p in METADATA_DIR.glob("*.yml")) == sorted(DATASETS + list(OTHER_TASKS))


@pytest.mark.parametrize("name", sorted(OTHER_TASKS))
def test_the_multiclass_and_regression_tables_load_validate_and_encode(name):
    from laat.schema import validation_report

    meta, df = _meta(name), _df(name)
    kind, width = OTHER_TASKS[name]
    assert meta.target.kind == kind and meta.csv == f"data/01_raw/{name}.csv"
    assert meta.task.strip() and meta.source.strip() and meta.license.strip()
    assert validation_report(df, meta, min_rows_per_class=11)["status"] == "passed"
    enc = encode(df, meta)
    assert enc.shape == (len(df), width) and not enc.isna().any().any()
    y = labels(df, meta)
    if kind == "multiclass":
        assert sorted(set(y.tolist())) == [0, 1, 2] and np.bincount(y).min() > 11
    else:
        assert y.dtype == np.float64 and meta.target.range[0] <= y.min() and y.max() <= meta.target.range[1]


@pytest.mark.parametrize("name", DATASETS)
def test_metadata_loads(name):
    meta = _meta(name)
    assert meta.name == name
    assert meta.csv == f"data/01_raw/{name}.csv"
    assert meta.target.classes == ["no", "yes"]
    assert meta.task.strip() and meta.source.strip() and meta.license.strip()


@pytest.mark.parametrize("name", DATASETS)
def test_encoded_width_matches_paper(name):
    meta = _meta(name)
    assert len(meta.encoded_columns) == WIDTH[name]
    assert encode(_df(name), meta).shape[1] == WIDTH[name]


@pytest.mark.parametrize("name", DATASETS)
def test_features_describe_csv_columns_in_order(name):
    meta, df = _meta(name), _df(name)
    assert df.columns[-1] == meta.target.column, "the target must be the last CSV column"
    assert [c for c in df.columns if c != meta.target.column] == meta.raw_columns


@pytest.mark.parametrize("name", DATASETS)
def test_every_csv_category_is_declared(name):
    meta, df = _meta(name), _df(name)
    for f in meta.features:
        if f.type != "categorical":
            continue
        seen = set(df[f.name].dropna().astype(str).str.strip())
        undeclared = sorted(seen - set(f.categories))
        assert not undeclared, f"{name}.{f.name}: CSV values missing from metadata: {undeclared}"


@pytest.mark.parametrize("name", DATASETS)
def test_nullable_only_where_values_are_missing(name):
    meta, df = _meta(name), _df(name)
    has_missing = {c for c in meta.raw_columns if df[c].isna().any()}
    declared = {f.name for f in meta.features if f.nullable}
    assert has_missing <= declared, f"missing values in non-nullable columns {sorted(has_missing - declared)}"
    assert declared <= has_missing, f"nullable but complete: {sorted(declared - has_missing)}"


@pytest.mark.parametrize("name", DATASETS)
def test_encoding_is_complete(name):
    """Every value maps somewhere: no NaN, each one-hot block has exactly one 1 per row."""
    meta, df = _meta(name), _df(name)
    enc = encode(df, meta)
    assert not enc.isna().any().any(), f"NaN in {enc.columns[enc.isna().any()].tolist()}"
    for f in meta.features:
        if f.type == "categorical":
            block = enc[f.encoded_columns].to_numpy()
            assert np.array_equal(block.sum(axis=1), np.ones(len(df))), f"{name}.{f.name}"
        if f.type == "boolean":
            assert set(np.unique(enc[f.name])) <= {0.0, 1.0}, f"{name}.{f.name}"


@pytest.mark.parametrize("name", DATASETS)
def test_csv_passes_schema_built_from_metadata(name):
    """Bounds and types in the metadata are true of the shipped data."""
    from laat.schema import validation_report

    report = validation_report(_df(name), _meta(name))
    assert report["status"] == "passed", report["failures"]


@pytest.mark.parametrize("name", DATASETS)
def test_every_encoded_column_has_its_own_description(name):
    meta = _meta(name)
    desc = meta.encoded_descriptions()
    assert list(desc) == meta.encoded_columns
    empty = [c for c, d in desc.items() if not d.strip()]
    assert not empty, f"empty descriptions: {empty}"
    # Two columns with the same text would look identical to the LLM.
    by_text: dict[str, list[str]] = {}
    for col, text in desc.items():
        by_text.setdefault(text.strip().lower(), []).append(col)
    shared = [cols for cols in by_text.values() if len(cols) > 1]
    assert not shared, f"columns sharing a description: {shared}"


@pytest.mark.parametrize("name", DATASETS)
def test_sensitive_features_are_raw_features(name):
    meta = _meta(name)
    assert set(meta.sensitive_features) <= set(meta.raw_columns)


# ---- skew conditions ------------------------------------------------------------------------


def _skew_counts(name: str) -> tuple[int, int]:
    meta, df = _meta(name), _df(name)
    hit = df.query(meta.skew.condition)
    return len(hit), int(labels(df, meta).sum())


@pytest.mark.parametrize("name", sorted(PAPER_SKEW))
def test_paper_skew_counts(name):
    assert _skew_counts(name) == PAPER_SKEW[name]


@pytest.mark.parametrize("name", [n for n in DATASETS if n != "electricity"])
def test_skew_removes_only_positives_and_description_states_count(name):
    meta, df = _meta(name), _df(name)
    assert meta.skew is not None
    hit = df.query(meta.skew.condition)
    assert len(hit) > 0
    assert (hit[meta.target.column] == meta.positive_class).all()
    m = re.search(r"(\d+) of (\d+) positives", meta.skew.description)
    assert m, f"{name}: skew description should state 'N of M positives'"
    assert (int(m.group(1)), int(m.group(2))) == _skew_counts(name)


def test_electricity_has_no_skew():
    assert _meta("electricity").skew is None


# ---- the layout does not depend on which rows are present -----------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_two_row_sample_encodes_like_full_file(name):
    meta, df = _meta(name), _df(name)
    full = encode(df, meta)
    sample_rows = df.sample(2, random_state=0)
    sample = encode(sample_rows, meta)
    assert list(sample.columns) == list(full.columns) == meta.encoded_columns
    pd.testing.assert_frame_equal(sample, full.loc[sample_rows.index])


def test_two_row_sample_really_misses_categories():
    """Guard for the test above: the sample must lack some categories to be meaningful."""
    meta, df = _meta("myocardial"), _df("myocardial")
    sample = df.sample(2, random_state=0)
    f = meta.feature["TIME-B-S"]
    assert sample[f.name].nunique() < len(f.categories)


# ---- malformed metadata fails loudly and says where ------------------------------------------


def _minimal() -> dict:
    return {
        "name": "toy",
        "csv": "data/01_raw/toy.csv",
        "task": "Is it positive?",
        "target": {"column": "Label", "classes": ["no", "yes"]},
        "features": [
            {"name": "Age", "type": "integer", "description": "Age in years"},
            {
                "name": "Colour",
                "type": "categorical",
                "description": "Colour",
                "categories": {"red": "It is red", "blue": "It is blue"},
            },
        ],
        "sensitive_features": ["Age"],
    }


def test_minimal_metadata_is_valid():
    meta = parse_metadata(_minimal())
    assert meta.encoded_columns == ["Age", "Colour_blue", "Colour_red"]


def _raises(raw: dict, *fragments: str) -> str:
    with pytest.raises(MetadataError) as err:
        parse_metadata(raw, origin="toy.yml")
    msg = str(err.value)
    assert "toy.yml" in msg
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in error message:\n{msg}"
    return msg


def test_error_names_the_file_and_the_key_path():
    raw = _minimal()
    raw["features"][1]["name"] = "mother_weight"
    raw["features"][1]["type"] = "colour"
    msg = _raises(raw)
    assert "toy.yml: features[1] (mother_weight).type: Input should be" in msg, msg


def test_mapping_from_the_kedro_catalog_is_reported_under_its_file():
    raw = _minimal()
    raw["features"][0]["type"] = "number"
    with pytest.raises(MetadataError) as err:
        parse_metadata(raw)  # what a node gets: the YAML's mapping, not its path
    assert "conf/base/datasets/toy.yml: features[0] (Age).type:" in str(err.value)
    assert "<dict>" not in str(err.value)


def test_real_csv_column_names_are_accepted():
    raw = _minimal()
    raw["features"] = [
        {"name": "mother_weight", "type": "numeric", "description": "Weight in kg"},
        {
            "name": "birth place",
            "type": "categorical",
            "description": "Place",
            "categories": {"at home": "Born at home", "st. mary's": "Born at St Mary's"},
        },
        {"name": "âge.mère", "type": "integer", "description": "Age of the mother"},
        {"name": 2020, "type": "boolean", "description": "Seen in 2020"},
    ]
    raw["sensitive_features"] = ["âge.mère"]
    meta = parse_metadata(raw, origin="toy.yml")
    assert meta.encoded_columns == [
        "mother_weight",
        "âge.mère",
        "2020",
        "birth place_at home",
        "birth place_st. mary's",
    ]
    df = pd.DataFrame(
        {"mother_weight": [60.5], "birth place": ["st. mary's"], "âge.mère": [31], "2020": ["yes"], "Label": ["no"]}
    )
    assert encode(df, meta).iloc[0].tolist() == [60.5, 31.0, 1.0, 0.0, 1.0]


def test_one_hot_names_that_would_collide_are_refused_naming_both_sources():
    raw = _minimal()
    raw["features"].append({"name": "Colour_red", "type": "numeric", "description": "Redness"})
    _raises(raw, "encoded column 'Colour_red'", "features[1] (Colour) category 'red'", "features[2] (Colour_red) value")


def test_a_repeated_column_is_refused_naming_both_entries():
    raw = _minimal()
    raw["features"].append({"name": "Age", "type": "numeric", "description": "Age again"})
    _raises(raw, "encoded column 'Age'", "features[0] (Age) value", "features[2] (Age) value")


def test_a_category_called_missing_collides_with_the_missing_indicator():
    raw = _minimal()
    raw["features"][1]["nullable"] = True
    raw["features"][1]["categories"]["missing"] = "Colour is not known"
    _raises(raw, "'Colour_missing'", "category 'missing'", "missing-value indicator")


def test_nullable_features_get_a_missing_indicator_after_their_own_columns():
    raw = _minimal()
    raw["features"][0]["nullable"] = True
    raw["features"][1]["nullable"] = True
    meta = parse_metadata(raw)
    assert meta.encoded_columns == ["Age", "Age_missing", "Colour_blue", "Colour_red", "Colour_missing"]
    desc = meta.encoded_descriptions()
    assert desc["Age_missing"] == "Age in years: value not recorded"
    df = pd.DataFrame({"Age": [30, None, 50], "Colour": ["red", "blue", None], "Label": ["no", "yes", "no"]})
    enc = encode(df, meta)
    assert np.isnan(enc.loc[1, "Age"]) and enc["Age_missing"].tolist() == [0.0, 1.0, 0.0]
    # a missing category is one more category: every row still has exactly one 1 in the block
    block = enc[["Colour_blue", "Colour_red", "Colour_missing"]]
    assert block.to_numpy().tolist() == [[0, 1, 0], [1, 0, 0], [0, 0, 1]]


def test_a_nullable_boolean_keeps_its_gap_for_the_imputer_and_flags_it():
    raw = _minimal()
    raw["features"][0] = {"name": "Smokes", "type": "boolean", "description": "Smokes", "nullable": True}
    raw["sensitive_features"] = []
    meta = parse_metadata(raw)
    enc = encode(pd.DataFrame({"Smokes": ["Yes", None, "n"], "Colour": ["red"] * 3}), meta)
    assert enc["Smokes"].tolist()[::2] == [1.0, 0.0] and np.isnan(enc.loc[1, "Smokes"])
    assert enc["Smokes_missing"].tolist() == [0.0, 1.0, 0.0]


def test_integer_codes_as_categories_match_a_column_read_as_floats():
    raw = _minimal()
    raw["features"][1]["categories"] = {1: "Red", 2: "Blue"}  # unquoted in YAML
    raw["features"][1]["nullable"] = True
    meta = parse_metadata(raw)
    df = pd.DataFrame({"Age": [3, 4, 5], "Colour": [1.0, np.nan, 2.0], "Label": ["no", "yes", "no"]})
    enc = encode(df, meta)
    assert enc[["Colour_1", "Colour_2", "Colour_missing"]].to_numpy().tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]


def test_categorical_without_categories_is_rejected():
    raw = _minimal()
    del raw["features"][1]["categories"]
    _raises(raw, "Colour", "categories")


@pytest.mark.parametrize(
    "classes, values, canonical",
    [
        ("[0, 1]", [0, 1, 1, 0], ["0", "1"]),
        ("[0, 1]", [0.0, 1.0, 1.0, 0.0], ["0", "1"]),  # a numeric column pandas read as floats
        ("[false, true]", [False, True, True, False], ["false", "true"]),
        ("[no, yes]", ["no", "yes", "yes", "no"], ["false", "true"]),  # YAML 1.1 reads bare no/yes as booleans
        ("['no', 'yes']", [" No", "YES", "y", "0"], ["no", "yes"]),  # any spelling of the same yes/no
        ("[benign, malignant]", ["benign", "malignant", "malignant", "benign"], ["benign", "malignant"]),
    ],
)
def test_targets_as_numbers_booleans_or_text_have_one_text_form(classes, values, canonical):
    from laat.schema import validation_report
    from laat.serving import output_columns

    raw = _minimal()
    raw["target"]["classes"] = yaml.safe_load(classes)
    meta = parse_metadata(raw)
    assert meta.target.classes == canonical
    df = pd.DataFrame({"Label": values, "Age": [1, 2, 3, 4], "Colour": ["red"] * 4})  # target first
    assert labels(df, meta).tolist() == [0, 1, 1, 0]
    assert validation_report(df, meta)["status"] == "passed"
    assert output_columns(meta) == [f"p_{c}" for c in canonical]


@pytest.mark.parametrize("classes, bad", [("[0, 1]", 2), ("[no, yes]", "maybe"), ("[benign, malignant]", "yes")])
def test_a_label_outside_the_classes_is_refused(classes, bad):
    raw = _minimal()
    raw["target"]["classes"] = yaml.safe_load(classes)
    meta = parse_metadata(raw)
    df = pd.DataFrame({"Label": [yaml.safe_load(classes)[0], bad], "Age": [1, 2], "Colour": ["red", "red"]})
    with pytest.raises(ValueError, match=r"target 'Label' must be one of .*found \['" + str(bad)):
        labels(df, meta)


# ---- the task follows from the target ------------------------------------------------------


def test_three_classes_are_multiclass_coded_in_their_listed_order():
    raw = _minimal()
    raw["target"]["classes"] = ["Gentoo", "Adelie", "Chinstrap"]
    meta = parse_metadata(raw)
    assert meta.target.kind == "multiclass"
    df = pd.DataFrame(
        {"Label": ["Adelie", "Chinstrap", "Gentoo", "Adelie"], "Age": [1, 2, 3, 4], "Colour": ["red"] * 4}
    )
    assert labels(df, meta).tolist() == [1, 2, 0, 1]
    with pytest.raises(ValueError, match="multiclass task: only a binary target has a positive class"):
        _ = meta.positive_class


def test_a_numeric_target_is_a_regression_with_float_values():
    raw = _minimal()
    raw["target"] = {"column": "Label", "type": "numeric", "range": [0, 100]}
    meta = parse_metadata(raw)
    assert meta.target.kind == "regression"
    df = pd.DataFrame({"Label": [1.5, 0, 100, 7], "Age": [1, 2, 3, 4], "Colour": ["red"] * 4})
    assert labels(df, meta).dtype == np.float64 and labels(df, meta).tolist() == [1.5, 0.0, 100.0, 7.0]
    df["Label"] = [1.5, "n/a", 101, 7]
    with pytest.raises(
        ValueError,
        match=r"target 'Label' must be a finite number in \[0, 100\]; "
        r"found \['101', 'n/a'\]",
    ):
        labels(df, meta)


@pytest.mark.parametrize(
    "target, where, what",
    [
        ({"column": "Label"}, "target", "needs either 'classes'"),
        ({"column": "Label", "classes": ["a", "b"], "type": "numeric"}, "target", "not both"),
        ({"column": "Label", "classes": ["a", "b"], "range": [0, 1]}, "target", "'range' is for a numeric target"),
        ({"column": "Label", "type": "numeric", "range": [5, 1]}, "target", "min > max"),
        ({"column": "Label", "type": "text"}, "target.type", "'numeric'"),
        ({"column": "Label", "classes": ["only"]}, "target.classes", "at least 2"),
    ],
)
def test_a_target_that_is_neither_classes_nor_numeric_is_refused(target, where, what):
    raw = _minimal()
    raw["target"] = target
    _raises(raw, f"toy.yml: {where}:", what)


def test_classes_that_read_the_same_are_refused():
    raw = _minimal()
    raw["target"]["classes"] = [1, "1"]
    _raises(raw, "target.classes", "distinct")


def test_sensitive_feature_must_be_a_feature():
    raw = _minimal()
    raw["sensitive_features"] = ["Gender"]
    _raises(raw, "toy.yml: sensitive_features:", "Gender")


def test_target_listed_as_a_feature_is_refused():
    raw = _minimal()
    raw["target"]["column"] = "Age"
    _raises(raw, "toy.yml: features:", "features[0] (Age) is the target column")


def test_misspelt_key_is_rejected():
    raw = _minimal()
    raw["features"][0]["descripton"] = raw["features"][0].pop("description")
    _raises(raw, "descripton")


def test_unquoted_boolean_category_is_rejected():
    raw = _minimal()
    raw["features"][1]["categories"] = {True: "Works", False: "Does not work"}
    _raises(raw, "toy.yml: features[1] (Colour).categories", "quote them")


def test_bad_file_error_names_the_file(tmp_path):
    raw = _minimal()
    del raw["task"]
    path = tmp_path / "toy.yml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(MetadataError, match=re.escape(str(path))):
        load_metadata(path)


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(MetadataError) as err:
        load_metadata("no_such_dataset", metadata_dir=METADATA_DIR)
    assert "diabetes" in str(err.value) and "no_such_dataset" in str(err.value)


def test_a_dataset_name_needs_the_callers_metadata_folder():
    with pytest.raises(MetadataError, match=r"dataset 'diabetes': give the folder of its metadata"):
        load_metadata("diabetes")
    assert load_metadata("diabetes", METADATA_DIR).name == load_metadata(METADATA_DIR / "diabetes.yml").name
