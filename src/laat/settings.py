"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from laat.hooks import (
    InferenceSettings,
    RowsToMlflow,
    RunIsolation,
    RunNames,
    TypedParamsToMlflow,
    current_run_id,
    inference_setting,
)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Parameters in conf/local/ (the way to set lists, which --params cannot) override only the
    # keys they name. Kedro's default ("destructive") replaces whole top-level blocks, and it also
    # merges --params into each environment first, so with any parameters file in conf/local/,
    # `--params prior_elicitation.model=x` dropped every other prior_elicitation key.
    "merge_strategy": {"parameters": "soft"},
    # `${run_id:}` in catalog paths: this session's run id (see laat.hooks.RunIsolation).
    # `${inference:dataset}`, `${inference:input}`: this session's inference parameters (catalog_inference.yml).
    "custom_resolvers": {"run_id": current_run_id, "inference": inference_setting},
    # read by RunIsolation before kedro-mlflow registers the same pattern
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]},
}

HOOKS = (TypedParamsToMlflow(), RunIsolation(), InferenceSettings(), RunNames(), RowsToMlflow())
