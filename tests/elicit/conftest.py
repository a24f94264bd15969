"""Fixtures for elicitation tests: a fault-injecting fake endpoint and the real local server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make fake_llm importable

from fake_llm import FakeLLM

from laat.datasets import load_metadata, parse_metadata

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def diabetes_meta():
    return load_metadata(ROOT / "conf" / "base" / "datasets" / "diabetes.yml")


@pytest.fixture(scope="session")
def toy_meta():
    """Two numeric features and one categorical: exercises the one-hot ordering."""
    return parse_metadata(
        {
            "name": "toy",
            "csv": "unused.csv",
            "task": "Will the loan be repaid?",
            "target": {"column": "Repaid", "classes": ["no", "yes"]},
            "features": [
                {"name": "Income", "type": "numeric", "description": "Yearly income in EUR"},
                {
                    "name": "Housing",
                    "type": "categorical",
                    "description": "Housing situation",
                    "categories": {"rent": "Rents a home", "own": "Owns a home"},
                },
                {"name": "Debt", "type": "numeric", "description": "Outstanding debt in EUR"},
            ],
        }
    )


@pytest.fixture
def fake_llm():
    """Factory: ``with fake_llm(["429", "ok"]) as srv`` starts a fresh fault-injecting server."""
    return FakeLLM


@pytest.fixture
def fake_settings(tmp_path):
    """Settings that send everything to a fake endpoint with fast retries."""
    from laat.elicit import ElicitationSettings

    def make(base_url: str, **kw):
        base = dict(
            source="openai",
            model="fake-model",
            base_url=base_url,
            cache_dir=str(tmp_path / "cache"),
            n_samples=2,
            timeout_s=5,
            wait_initial_s=0.01,
            wait_max_s=0.05,
            max_attempts=4,
            max_invalid=2,
            strategy="direct",
        )
        base.update(kw)
        return ElicitationSettings(**base)

    return make


@pytest.fixture(autouse=True)
def _fake_key(monkeypatch):
    monkeypatch.setenv("LAAT_TEST_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


@pytest.fixture(scope="session")
def local_llm():
    """The real llama.cpp server with the bundled SmolLM2, shared by the whole session.

    One thread: test machines share their cores, and llama.cpp's OpenMP threads spin-wait
    on oversubscribed cores (2-3x slower than one thread when the machine is busy).
    """
    from laat.elicit.local_server import LocalLLMServer

    with LocalLLMServer(n_ctx=2048, n_threads=1) as server:
        yield server
