"""The registry lists the datasets of the project it runs in, not of the installed package."""

from __future__ import annotations

import pytest

from laat.pipeline_registry import STAGES, dataset_names, register_pipelines


def _project(root, names):
    (root / "pyproject.toml").write_text(
        '[tool.kedro]\npackage_name = "laat"\nproject_name = "x"\nkedro_init_version = "1.7.0"\n'
    )
    meta = root / "conf" / "base" / "datasets"
    meta.mkdir(parents=True)
    for n in names:
        (meta / f"{n}.yml").write_text("name: x\n")
    return root


def test_datasets_come_from_the_project_around_the_working_directory(tmp_path, monkeypatch):
    project = _project(tmp_path, ["shop_sales", "churn"])
    (project / "notebooks").mkdir()
    monkeypatch.chdir(project / "notebooks")  # e.g. a notebook's kernel: the project is found upwards
    assert dataset_names() == ["churn", "shop_sales"]
    pipelines = register_pipelines()
    assert {"churn", "shop_sales", "all", *STAGES} <= set(pipelines)
    assert "diabetes" not in pipelines
    # without diabetes, `kedro run` alone runs the first dataset
    assert set(pipelines["__default__"].outputs()) == set(pipelines["churn"].outputs())


@pytest.mark.parametrize("name", ["training", "all", "my-data"])
def test_a_dataset_file_that_cannot_name_a_pipeline_is_refused_by_name(tmp_path, monkeypatch, name):
    monkeypatch.chdir(_project(tmp_path, ["ok", name]))
    with pytest.raises(ValueError, match=f"'{name}'"):
        dataset_names()
