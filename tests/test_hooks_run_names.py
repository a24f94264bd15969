"""MLflow run names say what ran (laat.hooks.run_name); the end-to-end tests check them on real runs."""

from kedro.pipeline import Pipeline

from laat.hooks import run_name
from laat.pipelines import create_inference_pipeline, create_pipeline

PARAMS = {
    "prior_source": "oracle",
    "training": {"estimator": {"model": "mlp"}},
    "evaluation": {"model_name_prefix": "laat-"},
    "inference": {"dataset": "bodyfat", "model": "champion"},
}


def test_a_chain_names_dataset_prior_and_model():
    assert run_name(["bodyfat"], create_pipeline("bodyfat"), PARAMS) == "bodyfat · oracle prior · mlp"


def test_a_stage_without_prior_names_only_stage_and_datasets():
    pipe = sum((create_pipeline(ds, ["data_validation"]) for ds in ["a", "b", "c", "d"]), start=Pipeline([]))
    assert run_name(["data_validation"], pipe, PARAMS) == "data_validation 4 datasets"


def test_inference_names_the_model_alias_or_version():
    assert run_name(["inference"], create_inference_pipeline(), PARAMS) == "inference bodyfat · laat-bodyfat@champion"
    versioned = {**PARAMS, "inference": {"dataset": "bodyfat", "model": 3}}
    assert run_name(["inference"], create_inference_pipeline(), versioned) == "inference bodyfat · laat-bodyfat/3"
