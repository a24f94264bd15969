"""Every stage is a template pipeline; each dataset gets its own namespaced copy of the chain.

`kedro run` runs the chain for the default dataset, `--pipeline <dataset>` for another one,
`--pipeline all` for every dataset with metadata, and `--pipeline <stage>` one stage for all.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from kedro.pipeline import Pipeline

DEFAULT_DATASET = "diabetes"
# Order matters: each stage consumes what the previous one produced.
STAGES = ["data_validation", "prior_elicitation", "training", "evaluation"]
METADATA_DIR = Path(__file__).resolve().parents[2] / "conf" / "base" / "datasets"


def dataset_names(metadata_dir: Path = METADATA_DIR) -> list[str]:
    return sorted(p.stem for p in metadata_dir.glob("*.yml"))


def _template(stage: str) -> Pipeline | None:
    """The stage's template, or None while that stage does not exist yet."""
    try:
        module = importlib.import_module(f"laat.pipelines.{stage}")
    except ModuleNotFoundError as exc:
        if exc.name != f"laat.pipelines.{stage}":
            raise
        return None
    return module.create_pipeline()


def for_dataset(template: Pipeline, dataset: str) -> Pipeline:
    """Namespace a template by dataset; parameters stay global (shared by all datasets)."""
    params = {i.removeprefix("params:") for n in template.nodes for i in n.inputs if i.startswith("params:")}
    return Pipeline(template, namespace=dataset, parameters=params or None)


def register_pipelines() -> dict[str, Pipeline]:
    templates = {s: t for s in STAGES if (t := _template(s)) is not None}
    chain = sum(templates.values(), start=Pipeline([]))
    datasets = dataset_names()
    pipelines: dict[str, Pipeline] = {}
    for ds in datasets:
        pipelines[ds] = for_dataset(chain, ds)
    for stage, template in templates.items():
        pipelines[stage] = sum((for_dataset(template, ds) for ds in datasets), start=Pipeline([]))
    pipelines["all"] = sum((pipelines[ds] for ds in datasets), start=Pipeline([]))
    if (benchmark := _template("benchmark")) is not None:
        pipelines["benchmark"] = benchmark
    pipelines["__default__"] = pipelines[DEFAULT_DATASET]
    return pipelines
