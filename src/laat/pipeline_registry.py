"""Every stage is a template pipeline; each dataset gets its own namespaced copy of the chain.

`kedro run` runs the chain for the default dataset, `--pipeline <dataset>` for another one,
`--pipeline all` for every dataset with metadata, and `--pipeline <stage>` one stage for all.
`--pipeline inference` scores new rows with a registered model; it is not namespaced, the
dataset is one of its parameters.
The datasets are the metadata files of the Kedro project being run (found from the working
directory, as `kedro` finds it), so a project that installs this package brings its own.
"""

from __future__ import annotations

from pathlib import Path

from kedro.pipeline import Pipeline

from laat.pipelines import STAGES, create_inference_pipeline, create_pipeline

DEFAULT_DATASET = "diabetes"


def metadata_dir() -> Path:
    """`<project>/<CONF_SOURCE>/base/datasets` of the Kedro project around the working directory."""
    from kedro.framework.project import settings
    from kedro.utils import find_kedro_project

    root = find_kedro_project(Path.cwd()) or Path.cwd()
    return root / settings.CONF_SOURCE / "base" / "datasets"


def dataset_names(directory: Path | None = None) -> list[str]:
    """Names of the metadata files; each becomes a pipeline and a namespace, so some are refused."""
    directory = directory or metadata_dir()
    names = sorted(p.stem for p in directory.glob("*.yml"))
    reserved = {*STAGES, "all", "benchmark", "inference", "__default__"}
    bad = [n for n in names if n in reserved or not n.isidentifier()]
    if bad:
        raise ValueError(
            f"{directory}: dataset file names {bad} cannot name a pipeline: use a Python "
            f"identifier (letters, digits, _) that is not one of {sorted(reserved)}"
        )
    return names


def _benchmark() -> Pipeline | None:
    """The research sweep (package `laat_research`), only when the `[research]` extra is installed."""
    try:
        import laat_research
    except ModuleNotFoundError as exc:
        if exc.name != "laat_research":
            raise
        return None
    if laat_research.missing_requirements():
        return None
    from laat_research.pipeline import create_pipeline

    return create_pipeline()


def register_pipelines() -> dict[str, Pipeline]:
    datasets = dataset_names()
    pipelines: dict[str, Pipeline] = {ds: create_pipeline(ds) for ds in datasets}
    for stage in STAGES:
        pipelines[stage] = sum((create_pipeline(ds, [stage]) for ds in datasets), start=Pipeline([]))
    pipelines["all"] = sum((pipelines[ds] for ds in datasets), start=Pipeline([]))
    if (benchmark := _benchmark()) is not None:
        pipelines["benchmark"] = benchmark
    # not namespaced: the dataset is a parameter (`--params dataset=<ds>,input=<file>`)
    pipelines["inference"] = create_inference_pipeline()
    # `kedro run` alone: diabetes where it is (this project), else the first dataset
    default = DEFAULT_DATASET if DEFAULT_DATASET in datasets else next(iter(datasets), None)
    pipelines["__default__"] = pipelines[default] if default else Pipeline([])
    return pipelines
