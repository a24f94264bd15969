"""The dataset zoo end to end: every table shape of tests/zoo.py, added the documented way
(CSV in data/01_raw, YAML in conf/base/datasets), runs the unchanged chain to a registered
model whose served form scores raw rows with gaps."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make the helpers importable

from project_copy import copy_project, lean_training, mlflow_client, run_session
from zoo import SHAPES, make_table, rows_with_gaps

pytestmark = pytest.mark.slow


def _add_zoo(project: Path, shapes: list[str]) -> dict[str, tuple]:
    """The zoo's CSVs and YAMLs in the project copy, instead of the shipped datasets."""
    for shipped in (project / "conf/base/datasets").glob("*.yml"):
        shipped.unlink()
    tables = {}
    for shape in shapes:
        frame, meta = make_table(shape)
        frame.to_csv(project / meta["csv"], index=False)
        (project / f"conf/base/datasets/{meta['name']}.yml").write_text(
            yaml.safe_dump(meta, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        tables[meta["name"]] = (frame, meta)
    return tables


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """One `kedro run --pipeline all --params prior_source=oracle` over the whole zoo."""
    project = copy_project(tmp_path_factory.mktemp("zoo"), [], params=lean_training())
    tables = _add_zoo(project, SHAPES)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        run_session(project, "all", {"prior_source": "oracle"})
    return project, tables


def test_every_zoo_shape_registers_a_model_that_learned_something(zoo):
    project, tables = zoo
    client = mlflow_client(project)
    (run,) = client.search_runs([client.get_experiment_by_name("laat").experiment_id])
    assert run.info.status == "FINISHED"
    assert sorted(m.name for m in client.search_registered_models()) == sorted(f"laat-{n}" for n in tables)
    for name in tables:
        # the label follows age and dose (tests/zoo.py); chance would be 0.5
        assert run.data.metrics[f"{name}.roc_auc"] > 0.6, (name, run.data.metrics[f"{name}.roc_auc"])
        assert run.data.tags[f"{name}.prior.source"] == "oracle"
    assert run.data.tags["zoo_no_sensitive.sensitive_features"] == "none declared"


@pytest.mark.parametrize("shape", ["nan_numeric", "nan_categorical", "combined", "messy"])
def test_the_served_model_scores_raw_rows_with_gaps(zoo, shape):
    import mlflow

    project, tables = zoo
    frame, meta = tables[f"zoo_{shape}"]
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    served = mlflow.pyfunc.load_model(f"models:/laat-zoo_{shape}@champion")
    rows = rows_with_gaps(frame, meta)
    assert rows.isna().any().any()
    out = served.predict(rows)
    assert out.shape == (len(rows), 2) and np.isfinite(out.to_numpy()).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


@pytest.mark.llm
def test_the_default_chain_with_the_local_llm_runs_on_the_messy_table(tmp_path, monkeypatch):
    """Nothing changed but the data: the default prior source (the bundled local model), on the
    table with every shape but the 40-level category (one LLM question per column: 12 here)."""
    project = copy_project(tmp_path, [], params=lean_training())
    (name,) = _add_zoo(project, ["messy"])
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # one sample per question keeps it short; the strategy and the rest are the defaults
    run_session(project, name, {"prior_elicitation": {"n_samples": 1}})
    client = mlflow_client(project)
    version = client.get_model_version_by_alias(f"laat-{name}", "champion")
    tags = client.get_run(version.run_id).data.tags
    assert tags[f"{name}.prior.source"] == "llm"


def test_the_drafted_yaml_of_the_messy_table_runs_once_its_descriptions_are_filled_in(tmp_path, monkeypatch):
    """`laat draft-metadata` on a table with gaps, `_` in names, yes/no booleans and a 0/1
    target first: with the TODO texts replaced, the chain runs to a registered model."""
    from laat.metadata_draft import PLACEHOLDER, draft_metadata, write_draft

    project = copy_project(tmp_path, [], params=lean_training())
    frame, meta = make_table("messy")
    for shipped in (project / "conf/base/datasets").glob("*.yml"):
        shipped.unlink()
    frame.to_csv(project / "data/01_raw/messy.csv", index=False)
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    drafted = draft_metadata("data/01_raw/messy.csv")
    assert drafted["target"] == {"column": meta["target"]["column"], "classes": ["0", "1"]}
    types = {f["name"]: (f["type"], f.get("nullable", False)) for f in drafted["features"]}
    assert types == {
        "patient_age": ("integer", False),
        "daily dose.mg": ("numeric", True),
        "Région": ("categorical", True),
        "is_smoker": ("boolean", False),
        "clinic": ("integer", False),
    }

    def fill(value):
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return "A description." if isinstance(value, str) and value.startswith(PLACEHOLDER) else value

    write_draft(fill(drafted), Path("conf/base/datasets/messy.yml"))
    run_session(project, "messy", {"prior_source": "oracle"})
    version = mlflow_client(project).get_model_version_by_alias("laat-messy", "champion")
    assert str(version.version) == "1"
