"""Public entry points: laat's pipelines for any Kedro project's ``register_pipelines``.

```python
from laat.pipelines import create_inference_pipeline, create_pipeline

def register_pipelines():
    loans = create_pipeline(dataset="loans")                       # the whole chain, namespaced "loans"
    return {"__default__": loans, "loans": loans, "inference": create_inference_pipeline(),
            "loans_data": create_pipeline(dataset="loans", stages=["data_validation"])}
```

The project brings its own catalog, parameters and dataset metadata: the entries and keys
these pipelines read and write are listed in the README ("Using laat in another Kedro
project"); this project's ``conf/base`` holds working defaults to copy.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from kedro.pipeline import Pipeline

# Order matters: each stage consumes what the previous one produced.
STAGES = ("data_validation", "prior_elicitation", "training", "evaluation")


def stage_template(stage: str) -> Pipeline:
    """A stage's pipeline, not namespaced (its datasets are ``raw``, ``metadata``, ``prior``, ...)."""
    if stage not in (*STAGES, "inference"):
        raise ValueError(f"unknown laat stage {stage!r}; the stages are {list(STAGES)} and 'inference'")
    return importlib.import_module(f"laat.pipelines.{stage}").create_pipeline()


def for_dataset(template: Pipeline, dataset: str) -> Pipeline:
    """Namespace a template by dataset; parameters stay global (shared by all datasets)."""
    params = {i.removeprefix("params:") for n in template.nodes for i in n.inputs if i.startswith("params:")}
    return Pipeline(template, namespace=dataset, parameters=params or None)


def create_pipeline(dataset: str, stages: Sequence[str] = STAGES) -> Pipeline:
    """``stages`` of the chain for one dataset, namespaced by its name: ``<dataset>.raw`` in, ``<dataset>.registration`` out.

    The dataset's metadata is the catalog entry ``<dataset>.metadata`` (a YAML file in the
    format of ``laat.datasets.DatasetMeta``); ``dataset`` must be a Python identifier.
    """
    if not dataset.isidentifier():
        raise ValueError(f"dataset {dataset!r} cannot name a namespace: use letters, digits and _")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ValueError(f"unknown stages {unknown}; choose from {list(STAGES)}")
    chain = sum((stage_template(s) for s in STAGES if s in stages), start=Pipeline([]))
    return for_dataset(chain, dataset)


def create_inference_pipeline() -> Pipeline:
    """Scoring new rows with a registered model; the dataset, input and model are its ``inference`` parameters."""
    return stage_template("inference")
