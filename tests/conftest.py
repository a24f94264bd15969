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
