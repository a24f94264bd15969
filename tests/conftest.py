"""Shared fixtures: the project root, and telemetry off for every Kedro command tests start."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(autouse=True)
def _run_from_project_root(monkeypatch):
    # Catalog and metadata paths are relative to the project root, as in `kedro run`.
    monkeypatch.chdir(PROJECT_ROOT)


@pytest.fixture(autouse=True)
def _no_model_code_left_on_sys_path():
    # mlflow.pyfunc.load_model puts the model's code/ folder first on sys.path, for good. A served
    # model ships only the laat modules it imports, so a later subprocess that inherits sys.path
    # (a joblib/loky worker of the benchmark) would import that partial laat instead of src/.
    import sys

    before = list(sys.path)
    yield
    sys.path[:] = before


@pytest.fixture(autouse=True)
def _no_mlflow_run_leaks_between_tests():
    # MLflow's fluent API keeps a process-wide active run; a run left open by one test (a
    # failed Kedro session, a node that logged outside a run) would capture the next test's
    # logging. End it, whichever test opened it.
    yield
    import sys

    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        while mlflow.active_run() is not None:
            mlflow.end_run()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Train tiny models on one torch thread: a second intra-op thread only spin-waits on a
    shared 2-core machine. Opt in per module with ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# A table shaped like the ones users bring: target first and given as 0/1, column names with
# "_", spaces, dots and non-ASCII, yes/no booleans in mixed spellings, gaps in a numeric and a
# categorical column, no sensitive feature. Labels follow mother_weight and smokes.
GAPPY_METADATA = """
name: gappy
csv: data/01_raw/gappy.csv
task: Will the newborn weigh under 2.5 kg?
target:
  column: low birth.weight
  classes: [0, 1]
features:
  - name: mother_weight
    type: numeric
    description: Mother's weight in kg before pregnancy
    min: 30
    max: 150
    nullable: true
  - name: birth place
    type: categorical
    description: Where the birth took place
    nullable: true
    categories:
      hospital: Born in a hospital
      home: Born at home
  - name: smokes
    type: boolean
    description: Mother smoked during pregnancy
  - name: âge.mère
    type: integer
    description: Mother's age in years
sensitive_features: []
"""


def gappy_table(n: int = 160, seed: int = 0):
    """(metadata mapping as YAML loads it, raw DataFrame as pandas reads the CSV)."""
    import numpy as np
    import pandas as pd
    import yaml

    rng = np.random.default_rng(seed)
    weight = rng.normal(62, 12, n).clip(35, 140).round(1)
    smokes = rng.random(n) < 0.4
    logit = -0.12 * (weight - 62) + 2.0 * smokes - 0.8
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    df = pd.DataFrame(
        {
            "low birth.weight": y,
            "mother_weight": np.where(rng.random(n) < 0.15, np.nan, weight),
            "birth place": np.where(rng.random(n) < 0.15, None, rng.choice(["hospital", "home"], n)),
            "smokes": np.where(smokes, rng.choice(["yes", "Y", " TRUE"], n), rng.choice(["no", "N", "false "], n)),
            "âge.mère": rng.integers(16, 45, n),
        }
    )
    return yaml.safe_load(GAPPY_METADATA), df


@pytest.fixture
def gappy():
    return gappy_table()
