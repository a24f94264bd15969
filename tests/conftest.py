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
