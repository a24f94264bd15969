"""The shipped dataset metadata files agree with the shipped CSVs.

The metadata, not the data, fixes the one-hot layout that prompt, prior, training and the
served model share; these tests pin that layout (width d from the LAAT paper) and check that
every column and category of every CSV is described, so an LLM prompt never meets an
unexplained name.
"""

from __future__ import annotations

import re
from functools import lru_cache
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

# Rows removed by the paper's skew conditions: (matching rows, positives in the full file).
PAPER_SKEW = {"diabetes": (225, 268), "breast_ljubljana": (64, 81), "myocardial": (74, 152)}


@lru_cache(maxsize=None)
def _meta(name: str) -> DatasetMeta:
    return load_metadata(name, metadata_dir=METADATA_DIR)


@lru_cache(maxsize=None)
def _raw(name: str) -> pd.DataFrame:
    return load_dataset(_meta(name), root=ROOT)


def _df(name: str) -> pd.DataFrame:
    return _raw(name).copy()  # callers may not mutate the cached frame


# ---- every shipped file ---------------------------------------------------------------------

def test_every_metadata_file_is_covered():
    assert sorted(p.stem for p in METADATA_DIR.glob("*.yml")) == DATASETS


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
            {"name": "Colour", "type": "categorical", "description": "Colour",
             "categories": {"red": "It is red", "blue": "It is blue"}},
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


def test_underscore_in_raw_name_is_rejected():
    raw = _minimal()
    raw["features"][0]["name"] = "Age_years"
    _raises(raw, "Age_years", "'_'")


def test_categorical_without_categories_is_rejected():
    raw = _minimal()
    del raw["features"][1]["categories"]
    _raises(raw, "Colour", "categories")


def test_unquoted_yes_no_classes_are_rejected():
    text = yaml.safe_dump(_minimal()).replace("- 'no'", "- no").replace("- 'yes'", "- yes")
    raw = yaml.safe_load(text)
    assert raw["target"]["classes"] == [False, True]  # what YAML 1.1 makes of bare no/yes
    _raises(raw, "quote")


def test_sensitive_feature_must_be_a_feature():
    raw = _minimal()
    raw["sensitive_features"] = ["Gender"]
    _raises(raw, "sensitive_features", "Gender")


def test_misspelt_key_is_rejected():
    raw = _minimal()
    raw["features"][0]["descripton"] = raw["features"][0].pop("description")
    _raises(raw, "descripton")


def test_unquoted_boolean_category_is_rejected():
    raw = _minimal()
    raw["features"][1]["categories"] = {True: "Works", False: "Does not work"}
    _raises(raw, "feature 'Colour' > categories", "quote them")


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
