"""The project's commands as a user types them: `kedro run` / `laat run` in a subprocess, on a
copy of the project with its own sqlite MLflow store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make project_copy importable

from project_copy import cli_env, copy_project, lean_training, mlflow_client

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a command; ``.lines`` is its output (stdout and stderr interleaved, as on a terminal)."""
    done = subprocess.run(
        [str(a) for a in args],
        cwd=project,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    done.lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_project(tmp_path, ["diabetes"], params=lean_training())


def _break_csv(project: Path) -> None:
    csv = project / "data/01_raw/diabetes.csv"
    df = pd.read_csv(csv)
    df.loc[3, "Outcome"] = "maybe"
    df.drop(columns=["BMI"]).to_csv(csv, index=False)


def test_bad_data_ends_with_the_message_and_a_hint_not_a_traceback(project):
    _break_csv(project)
    done = _cli(project, BIN / "kedro", "run", "--params", "prior_source=oracle")
    assert done.returncode == 1
    last = done.lines[-4:]
    assert last[0] == "Error: dataset 'diabetes' failed validation (2 failed checks, 768 rows):", done.lines[-8:]
    assert "column 'BMI'" in last[1] and "column 'Outcome'" in last[2]
    assert last[3].startswith("Hint: fix the CSV or its metadata") and "--verbose" in last[3]
    assert "Traceback" not in done.stdout

    verbose = _cli(project, BIN / "kedro", "run", "--params", "prior_source=oracle", "--verbose")
    assert verbose.returncode != 0
    assert "Traceback" in verbose.stdout and "DataValidationError" in verbose.stdout


@pytest.mark.parametrize(
    "change, params, expected",
    [
        (
            "placeholder",
            "prior_source=oracle",
            [
                "Error: dataset metadata conf/base/datasets/diabetes.yml still has 1 placeholder(s)",
                "  - features[1] 'Glucose'.description",
            ],
        ),
        ("none", "prior_source=oracle,training.estimator.gamma=-1", ["Parameter validation failed", "gamma"]),
        ("no_csv", "prior_source=oracle", ["diabetes.raw", "No such file"]),
        ("none", "prior_source=openai,prior_elicitation.model=any", ["Error: no API key", "OPENAI_API_KEY"]),
    ],
)
def test_user_errors_end_with_their_message(project, change, params, expected):
    if change == "placeholder":
        path = project / "conf/base/datasets/diabetes.yml"
        meta = yaml.safe_load(path.read_text())
        meta["features"][1]["description"] = "TODO: what Glucose measures"
        path.write_text(yaml.safe_dump(meta, sort_keys=False))
    elif change == "no_csv":
        (project / "data/01_raw/diabetes.csv").unlink()
    done = _cli(project, BIN / "laat", "run", "--params", params)
    assert done.returncode == 1
    tail = "\n".join(done.lines[-6:])
    assert all(text in tail for text in expected), tail
    assert done.lines[-1].startswith("Hint: ")
    assert "Traceback" not in done.stdout


def test_other_exceptions_keep_their_traceback(project):
    done = _cli(project, BIN / "kedro", "run", "--runner", "NoSuchRunner")
    assert done.returncode != 0
    assert "Traceback" in done.stdout and "NoSuchRunner" in done.stdout
    assert not any(line.startswith("Hint: ") for line in done.lines)


def test_one_stage_for_one_namespace(project):
    done = _cli(project, BIN / "kedro", "run", "--pipeline", "data_validation", "--namespaces", "diabetes")
    assert done.returncode == 0, done.stdout[-3000:]
    report = yaml.safe_load((project / "data/08_reporting/diabetes/validation_report.json").read_text())
    assert report["status"] == "passed"
    assert not (project / "data/04_feature").exists() and not (project / "data/06_models").exists()


def test_console_script_runs_the_chain_with_a_fraction_split(project):
    params = lean_training()
    params["training"]["split"] = {"strategy": "fraction", "test_fraction": 0.8}  # 154 training rows: quick
    (project / "conf/local/parameters_test.yml").write_text(yaml.safe_dump(params))

    done = _cli(
        project, BIN / "laat", "run", "--pipeline", "diabetes", "--params", "prior_source=oracle,run_id=fraction"
    )
    assert done.returncode == 0, done.stdout[-3000:]
    test_rows = pd.read_parquet(project / "data/05_model_input/diabetes/fraction/test_rows.parquet")
    train_rows = pd.read_parquet(project / "data/05_model_input/diabetes/fraction/train_rows.parquet")
    assert len(test_rows) + len(train_rows) == 768
    assert abs(len(test_rows) - 0.8 * 768) <= 2  # stratified rounding, not 10 shots per class
    client = mlflow_client(project)
    version = client.get_model_version_by_alias("laat-diabetes", "champion")
    run = client.get_run(version.run_id)
    assert run.data.params["training.split.strategy"] == "fraction"
    assert run.data.params["training.diagnostic.n_permutations"] == "100"
    assert 0.5 < run.data.metrics["diabetes.roc_auc"] <= 1.0
    # the trust decision and the prior diagnostic the README promises, as artifacts and metrics
    logged = {a.path for d in ("trust", "prior_diagnostic") for a in client.list_artifacts(run.info.run_id, d)}
    assert {
        "trust/trust_decision.json",
        "prior_diagnostic/prior_diagnostic.csv",
        "prior_diagnostic/prior_diagnostic.png",
    } <= logged, logged
    decision = yaml.safe_load((project / "data/08_reporting/diabetes/fraction/trust_decision.json").read_text())
    assert run.data.metrics["diabetes.trust.gamma"] == decision["gamma"]
    assert run.data.metrics["diabetes.trust.followed"] == float(decision["followed"])
    assert "diabetes.prior_diagnostic.n_flagged" in run.data.metrics
