"""laat as a component: its wheel, installed (not editable) in a fresh venv, runs inside a new
project made by `kedro new` (default template, offline), with that project's own data,
metadata, catalog and registry, to a registered model and a scoring run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# What a project copies from this one's conf/base (README: "Using laat in another Kedro project").
CONF_FILES = [
    "catalog.yml",
    "catalog_prior_elicitation.yml",
    "catalog_training.yml",
    "catalog_evaluation.yml",
    "catalog_inference.yml",
    "parameters.yml",
    "parameters_prior_elicitation.yml",
    "parameters_training.yml",
    "parameters_evaluation.yml",
    "parameters_inference.yml",
    "mlflow.yml",
]
LOANS = {
    "name": "loans",
    "csv": "data/01_raw/loans.csv",
    "task": "Will the applicant repay the loan?",
    "target": {"column": "repaid", "classes": ["no", "yes"]},
    "features": [
        {"name": "income", "type": "numeric", "description": "Yearly income in thousands of EUR", "min": 0},
        {
            "name": "housing",
            "type": "categorical",
            "description": "Housing situation",
            "categories": {"rent": "Rents a home", "own": "Owns a home"},
        },
        {"name": "age", "type": "integer", "description": "Age in years", "min": 18, "max": 100},
    ],
    "sensitive_features": ["age"],
}
REGISTRY = """from laat.pipelines import create_inference_pipeline, create_pipeline


def register_pipelines():
    loans = create_pipeline(dataset="loans")
    return {"__default__": loans, "loans": loans, "inference": create_inference_pipeline()}
"""
SETTINGS = "from laat.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS, HOOKS  # noqa: F401\n"


def loans_table(n: int = 120, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(40, 12, n).clip(5, 120).round(1)
    own = rng.random(n) < 0.4
    logit = 0.08 * (income - 40) + 1.2 * own
    return pd.DataFrame(
        {
            "income": income,
            "housing": np.where(own, "own", "rent"),
            "age": rng.integers(18, 80, n),
            "repaid": np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no"),
        }
    )


def _run(args, cwd, env) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def test_wheel_in_a_new_kedro_project_runs_to_a_registered_model_and_scores(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "MLFLOW_TRACKING_URI", "OPENAI_API_KEY"}}
    env.update(KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1", NO_COLOR="1", COLUMNS="200")

    # the wheel, built from a copy so the checkout gets no build/ or egg-info
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            tmp_path / "wheels",
            source,
        ],
        tmp_path,
        env,
    )
    (wheel,) = (tmp_path / "wheels").glob("laat-*.whl")

    # a fresh venv: its own site-packages first, then this venv's dependencies (a path only: the
    # editable install's .pth, which would put the checkout's src on the path, is not read)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env).strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel], tmp_path, env)
    where = _run([python, "-c", "import laat; print(laat.__file__)"], tmp_path, env).strip()
    assert Path(where).is_relative_to(site), where

    # a new project from Kedro's bundled template, wired to laat with its own table
    _run([python, "-m", "kedro", "new", "--name", "loan-desk", "--tools", "none", "--example", "no"], tmp_path, env)
    project = tmp_path / "loan-desk"
    package = project / "src" / "loan_desk"
    (package / "pipeline_registry.py").write_text(REGISTRY)
    (package / "settings.py").write_text(SETTINGS)
    for name in CONF_FILES:
        shutil.copy(ROOT / "conf" / "base" / name, project / "conf" / "base" / name)
    (project / "conf" / "base" / "datasets").mkdir()
    (project / "conf" / "base" / "datasets" / "loans.yml").write_text(yaml.safe_dump(LOANS, sort_keys=False))
    (project / "conf" / "local" / "parameters_lean.yml").write_text(
        yaml.safe_dump({"training": {"diagnostic": {"n_permutations": 100}}})
    )
    (project / "data" / "01_raw").mkdir(parents=True, exist_ok=True)
    loans_table().to_csv(project / "data" / "01_raw" / "loans.csv", index=False)

    _run([python, "-m", "kedro", "run", "--params", "prior_source=oracle,run_id=first"], project, env)
    new_rows = loans_table(n=20, seed=2).drop(columns=["repaid"])
    new_rows.to_csv(project / "data" / "new_loans.csv", index=False)
    _run(
        [
            python,
            "-m",
            "kedro",
            "run",
            "--pipeline",
            "inference",
            "--params",
            "dataset=loans,input=data/new_loans.csv,run_id=scored",
        ],
        project,
        env,
    )

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("laat-loans", "champion")
    assert str(champion.version) == "1" and champion.description.startswith(
        "LAATClassifier (lr); prior: oracle; roc_auc = "
    )
    trained = client.get_run(champion.run_id)
    assert trained.data.tags["mlflow.runName"] == "loans · oracle prior · lr"
    assert 0.5 < trained.data.metrics["loans.roc_auc"] <= 1.0  # income and housing drive the label
    scored = pd.read_parquet(project / "data/07_model_output/loans/scored/scored_rows.parquet")
    assert len(scored) == 20 and set(scored["model_version"]) == {"1"} and set(scored["prior_source"]) == {"oracle"}
    assert ((scored["p_yes"] > 0) & (scored["p_yes"] < 1)).all()
