"""The project's config loader settings: what a parameters file in conf/local/ does."""

import shutil

import yaml
from kedro.config import OmegaConfigLoader

from laat.settings import CONFIG_LOADER_ARGS


def _params(tmp_path, project_root, local: dict, runtime: dict) -> dict:
    shutil.copytree(project_root / "conf", tmp_path / "conf")
    (tmp_path / "conf/local/parameters_mine.yml").write_text(yaml.safe_dump(local))
    loader = OmegaConfigLoader(str(tmp_path / "conf"), runtime_params=runtime, **CONFIG_LOADER_ARGS)
    return loader["parameters"]


def test_a_local_file_overrides_only_the_keys_it_names(tmp_path, project_root):
    params = _params(tmp_path, project_root, {"training": {"estimator": {"suppress": ["Age", "BMI"]}}}, {})
    base = yaml.safe_load((project_root / "conf/base/parameters_training.yml").read_text())["training"]
    assert params["training"]["estimator"] == {**base["estimator"], "suppress": ["Age", "BMI"]}
    assert params["training"]["split"] == base["split"]


def test_runtime_params_keep_the_rest_of_their_block_when_a_local_file_exists(tmp_path, project_root):
    params = _params(
        tmp_path,
        project_root,
        {"evaluation": {"top_features": 10}},
        {"prior_source": "openai", "prior_elicitation": {"model": "m"}},
    )
    assert params["prior_elicitation"]["model"] == "m"
    assert params["prior_elicitation"]["source"] == "openai"  # ${prior_source}, not the code default
    assert params["prior_elicitation"]["n_samples"] == 5 and params["evaluation"]["top_features"] == 10
