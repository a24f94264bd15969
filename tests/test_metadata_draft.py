"""`laat.metadata_draft`: what is inferred from a CSV, the placeholders left, and the draft's end-to-end run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make project_copy importable

from laat.datasets import MetadataError, parse_metadata
from laat.metadata_draft import (
    MANY_CATEGORIES,
    PLACEHOLDER,
    draft_metadata,
    guess_target,
    placeholders,
    require_no_placeholders,
    write_draft,
)
from project_copy import cli_env, copy_project, lean_training, mlflow_client

ROOT = Path(__file__).resolve().parents[1]


def _fill(metadata: dict) -> dict:
    """Replace every placeholder with text, as a user would."""
    if isinstance(metadata, dict):
        return {k: _fill(v) for k, v in metadata.items()}
    if isinstance(metadata, list):
        return [_fill(v) for v in metadata]
    if isinstance(metadata, str) and metadata.startswith(PLACEHOLDER):
        return metadata.removeprefix(PLACEHOLDER).strip().replace("what ", "The ", 1)
    return metadata


@pytest.fixture
def csv(tmp_path) -> Path:
    frame = pd.DataFrame(
        {
            "Outcome": ["no", "yes", "no", "yes", "no"],  # named like a target, not last
            "Age": [23, 45, 31, 60, 38],
            "Income": [1200.5, np.nan, 3400.0, 2100.25, 999.0],
            "Smoker": ["yes", "no", "No", "YES", "no"],
            "Treated": [0, 1, 1, 0, 1],
            "Housing": ["rent", "own", "rent", " free", "own"],
        }
    )
    path = tmp_path / "people.csv"
    frame.to_csv(path, index=False)
    return path


def test_types_ranges_categories_nullability_and_the_named_target_are_inferred(csv):
    meta = draft_metadata(csv)
    assert meta["name"] == "people" and meta["csv"] == str(csv)
    assert meta["target"] == {"column": "Outcome", "classes": ["no", "yes"]}
    features = {f["name"]: f for f in meta["features"]}
    assert list(features) == ["Age", "Income", "Smoker", "Treated", "Housing"]
    assert {k: features["Age"][k] for k in ("type", "min", "max")} == {"type": "integer", "min": 23, "max": 60}
    assert features["Income"]["type"] == "numeric" and features["Income"]["nullable"] is True
    assert (features["Income"]["min"], features["Income"]["max"]) == (999.0, 3400.0)
    assert features["Smoker"]["type"] == "boolean" and features["Treated"]["type"] == "boolean"
    assert "nullable" not in features["Smoker"]
    assert set(features["Housing"]["categories"]) == {"free", "own", "rent"}
    assert meta["sensitive_features"] == []


def test_an_all_empty_column_is_a_nullable_number_without_a_range(tmp_path):
    path = tmp_path / "e.csv"
    pd.DataFrame({"Blank": [np.nan, np.nan], "Y": ["no", "yes"]}).to_csv(path, index=False)
    assert draft_metadata(path)["features"] == [
        {
            "name": "Blank",
            "type": "numeric",
            "description": f"{PLACEHOLDER} what Blank measures, with its unit",
            "nullable": True,
        }
    ]


def test_without_a_named_target_the_last_binary_column_is_taken_and_target_overrides(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame(
        {
            "Paid": ["true", "false", "true"],
            "Size": [1.5, 2.5, 3.0],
            "Won": ["false", "true", "true"],
            "Level": ["a", "b", "c"],
        }
    ).to_csv(path, index=False)
    assert guess_target(pd.read_csv(path)) == "Won"
    # pandas (and so the pipeline) reads true/false as booleans: the labels are as it prints them
    assert draft_metadata(path)["target"] == {"column": "Won", "classes": ["False", "True"]}
    assert draft_metadata(path, target="Paid")["target"]["column"] == "Paid"
    assert draft_metadata(path, target="Level")["target"] == {"column": "Level", "classes": ["a", "b", "c"]}
    assert draft_metadata(path, target="Size")["target"] == {"column": "Size", "type": "numeric", "range": [1.5, 3.0]}
    with pytest.raises(MetadataError, match="'Nope' is not in"):
        draft_metadata(path, target="Nope")


def test_the_drafted_target_kind_follows_its_values_and_the_draft_parses(tmp_path):
    path = tmp_path / "t.csv"
    n = MANY_CATEGORIES + 1
    pd.DataFrame(
        {
            "Size": [float(i) for i in range(n)],
            "grade": [3, 1, 2] * 7,
            "species": ["x", "y", "z"] * 7,
            "price": list(range(n)),
            "id": [f"r{i}" for i in range(n)],
        },
    ).to_csv(path, index=False)
    targets = {t: draft_metadata(path, target=t)["target"] for t in ("grade", "species", "price")}
    assert targets == {
        "grade": {"column": "grade", "classes": ["1", "2", "3"]},
        "species": {"column": "species", "classes": ["x", "y", "z"]},
        "price": {"column": "price", "type": "numeric", "range": [0.0, float(n - 1)]},
    }
    for t, kind in (("grade", "multiclass"), ("price", "regression")):
        meta = draft_metadata(path, target=t)
        assert parse_metadata(meta).target.kind == kind
    with pytest.raises(MetadataError, match=f"target column 'id' .* has {n} text values .* too many classes"):
        draft_metadata(path, target="id")


def test_a_target_with_gaps_is_refused_with_the_count(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"A": [1, 2, 3], "label": ["x", None, "y"]}).to_csv(path, index=False)
    with pytest.raises(MetadataError, match="target column 'label' in .* has 1 gaps"):
        draft_metadata(path, target="label")


def test_a_column_named_like_a_target_wins_over_an_unnamed_binary_one_and_a_named_binary_over_it():
    frame = pd.DataFrame({"Flag": [0, 1, 1], "target": ["a", "b", "c"], "Level": ["a", "b", "c"]})
    assert guess_target(frame) == "target"
    assert guess_target(frame.assign(label=[0, 1, 0])) == "label"


def test_names_like_a_label_win_over_position():
    frame = pd.DataFrame({"class": ["a", "b"], "Flag": [0, 1], "IsLabelled": ["x", "y"]})
    assert guess_target(frame) == "class"
    assert guess_target(frame.rename(columns={"class": "ClassName"})) == "IsLabelled"


@pytest.mark.parametrize(
    "frame, msg",
    [
        (pd.DataFrame({"A": [1, 2, 3], "B": ["x", "y", "z"]}), "no column has exactly two values"),
        (pd.DataFrame({"A": ["x", None, "y"]}), "no column has exactly two values"),
    ],
)
def test_no_possible_target_says_to_name_one(frame, msg):
    with pytest.raises(MetadataError, match=msg):
        guess_target(frame)


def test_every_description_is_a_placeholder_and_the_check_names_file_and_key(csv):
    meta = draft_metadata(csv)
    left = placeholders(meta)
    assert {
        "task",
        "source",
        "license",
        "features[0] 'Age'.description",
        "features[4] 'Housing'.categories.own",
    } <= set(left)
    assert len(left) == 3 + 5 + 3  # top-level texts, one per feature, one per category
    with pytest.raises(MetadataError) as err:
        require_no_placeholders(meta)
    message = str(err.value)
    assert "conf/base/datasets/people.yml" in message and f"{len(left)} placeholder(s)" in message
    assert all(f"  - {key}" in message for key in left)
    require_no_placeholders(_fill(meta))


def test_the_written_draft_parses_once_filled_in_and_is_not_overwritten(csv, tmp_path):
    out = write_draft(draft_metadata(csv), tmp_path / "conf" / "people.yml")
    text = out.read_text()
    assert text.startswith("# Drafted by `laat draft-metadata`")
    loaded = yaml.safe_load(text)
    assert loaded == draft_metadata(csv)  # quoted no/yes survive YAML
    meta = parse_metadata(_fill(loaded))
    # Income has gaps: its missing-value indicator follows it
    assert meta.encoded_columns == [
        "Age",
        "Income",
        "Income_missing",
        "Smoker",
        "Treated",
        "Housing_free",
        "Housing_own",
        "Housing_rent",
    ]
    with pytest.raises(FileExistsError, match="--force"):
        write_draft(loaded, out)
    write_draft(loaded, out, overwrite=True)


def _synthetic(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A new table: the label depends on three of the columns. Names without `_` and 0/1
    booleans, which the metadata accepted before issue 11's column-name and yes/no work."""
    rng = np.random.default_rng(seed)
    dose = rng.uniform(0, 10, n)
    visits = rng.integers(0, 12, n)
    insured = rng.integers(0, 2, n)
    ward = rng.choice(["north", "south", "east"], n)
    logit = 0.6 * (dose - 5) - 0.3 * (visits - 6) + 1.0 * insured + 0.8 * (ward == "east") - 0.4
    cured = np.where(rng.uniform(size=n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"Dose": dose.round(2), "Visits": visits, "Insured": insured, "Ward": ward, "Cured": cured})


@pytest.mark.slow
def test_a_drafted_and_filled_in_yaml_runs_the_whole_chain_to_a_registered_model(tmp_path, monkeypatch):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    import laat.pipeline_registry as registry

    project = copy_project(tmp_path, [], params=lean_training())
    _synthetic().to_csv(project / "data/01_raw/clinic.csv", index=False)
    done = subprocess.run(
        [sys.executable, "-m", "laat", "draft-metadata", "data/01_raw/clinic.csv"],
        cwd=project,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    yml = project / "conf/base/datasets/clinic.yml"
    assert "Wrote conf/base/datasets/clinic.yml: target 'Cured'" in done.stdout
    drafted = yaml.safe_load(yml.read_text())

    # The pipeline registry lists the datasets of the project it runs in: the copy.
    monkeypatch.chdir(project)
    assert "clinic" in registry.dataset_names()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    def run():
        bootstrap_project(ROOT)
        with KedroSession.create(
            project_path=ROOT, conf_source=str(project / "conf"), runtime_params={"prior_source": "oracle"}
        ) as session:
            session.run(pipeline_names=["clinic"])

    with pytest.raises(MetadataError, match=r"still has \d+ placeholder") as err:
        run()
    assert "features[0] 'Dose'.description" in str(err.value)
    assert not (project / "data/04_feature").exists()  # stopped before any prior was made

    yml.write_text(yaml.safe_dump(_fill(drafted), sort_keys=False))
    run()
    client = mlflow_client(project)
    version = client.get_model_version_by_alias("laat-clinic", "champion")
    metrics = client.get_run(version.run_id).data.metrics
    assert metrics["clinic.roc_auc"] > 0.6  # the label depends on the columns; chance is 0.5


def test_the_command_writes_the_draft_and_points_at_what_to_check(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from laat.cli import cli

    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"Id": [f"c{i}" for i in range(30)], "Score": range(30), "Label": ["a", "b"] * 15}).to_csv(
        "ids.csv", index=False
    )
    runner = CliRunner()
    done = runner.invoke(cli, ["draft-metadata", "ids.csv", "--target", "Label"])
    assert done.exit_code == 0, done.output
    written = yaml.safe_load((tmp_path / "conf/base/datasets/ids.yml").read_text())
    assert written["target"] == {"column": "Label", "classes": ["a", "b"]}
    lines = done.output.splitlines()
    assert (
        lines[0]
        == "Wrote conf/base/datasets/ids.yml: target 'Label' ['a', 'b'], 2 features, 35 placeholders to fill in."
    )
    assert lines[1].startswith("Check 'Id': 30 categories")
    again = runner.invoke(cli, ["draft-metadata", "ids.csv", "--out", "conf/base/datasets/ids.yml"])
    assert again.exit_code == 1 and "exists; choose another --out or pass --force" in again.output
    assert runner.invoke(cli, ["draft-metadata", "ids.csv", "--force"]).exit_code == 0
    numeric = runner.invoke(cli, ["draft-metadata", "ids.csv", "--target", "Score", "--out", "score.yml"])
    assert numeric.output.startswith("Wrote score.yml: target 'Score' numeric (regression), 2 features")
