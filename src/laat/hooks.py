"""Project hooks."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node
from pydantic import BaseModel


def flatten(value: Any, prefix: str, sep: str = ".") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{sep}{k}", sep))
        return out
    return {prefix: value}


class TypedParamsToMlflow:
    """Log typed (pydantic) parameters to MLflow as flat keys, e.g. `training.estimator.gamma`.

    kedro-mlflow flattens plain dict parameters but logs a pydantic model as one long string,
    which makes runs impossible to filter or compare by a single knob. Credentials inside
    URLs (a key in ``base_url``) are masked in every value logged here and in the
    ``runtime_params`` tag kedro-mlflow writes.
    """

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        # tryfirst: runs before kedro-mlflow copies run_params into tags, so the secret is
        # never written (an overwritten sqlite row can linger in the file's free pages).
        from laat.elicit.redact import redact

        if run_params.get("runtime_params"):
            run_params["runtime_params"] = redact(run_params["runtime_params"])

    @hook_impl
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        typed = {k.removeprefix("params:"): v for k, v in inputs.items()
                 if k.startswith("params:") and isinstance(v, BaseModel)}
        if not typed:
            return
        import mlflow

        from laat.elicit.redact import redact

        if mlflow.active_run() is None:
            return
        flat: dict[str, Any] = {}
        for name, model in typed.items():
            flat.update(flatten(model.model_dump(mode="json"), name))
        mlflow.log_params({k: redact(str(v))[:6000] for k, v in flat.items()})
