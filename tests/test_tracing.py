"""LLM calls as MLflow trace spans: a real elicitation against a local OpenAI-compatible HTTP
server (tests/elicit/fake_llm.py), logged in a run of a real sqlite store, read back with
`mlflow.search_traces`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "elicit"))  # importlib mode: make fake_llm importable

from fake_llm import FakeLLM

from laat.datasets import load_metadata
from laat.elicit import ElicitationSettings, run_elicitation
from laat.tracing import log_elicitation_trace


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    """One sqlite store for the module (creating one takes seconds); each test uses its own runs."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path_factory.mktemp('store') / 'mlflow.db'}")
    mlflow.set_experiment("traces")
    yield mlflow
    mlflow.set_tracking_uri(None)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def _elicit(base_url: str, cache_dir: Path):
    settings = ElicitationSettings(
        source="openai",
        model="fake-model",
        base_url=base_url,
        cache_dir=str(cache_dir),
        n_samples=2,
        strategy="direct",
        timeout_s=5,
        max_attempts=2,
    )
    return run_elicitation(load_metadata("diabetes", "conf/base/datasets"), settings)


def _llm_spans(mlflow, run_id):
    (trace,) = mlflow.search_traces(run_id=run_id, return_type="list")
    assert trace.data.spans[0].name == "elicit_prior diabetes"
    return [s for s in trace.data.spans if s.span_type == "LLM"]


def test_each_call_is_a_span_of_the_run_paid_then_cached_and_secrets_stay_out(tracking, tmp_path):
    mlflow = tracking
    with FakeLLM() as srv:
        # a key in the URL: masked everywhere it could be recorded
        url = srv.base_url.replace("http://", "http://user:sk-SECRET123@")
        with mlflow.start_run() as paid:
            record = _elicit(url, tmp_path / "cache").record
            assert log_elicitation_trace(record) is not None
        with mlflow.start_run() as cached:
            log_elicitation_trace(_elicit(url, tmp_path / "cache").record)
    spans = _llm_spans(mlflow, paid.info.run_id)
    assert len(spans) == 2 == srv.n_chat
    for span, call in zip(spans, record["calls"]):
        assert span.inputs["prompt"] == record["prompts"][call["prompt_sha256"]] != ""
        assert span.outputs["answer"] == call["response"] != ""
        assert span.attributes["cached"] is False
        assert span.attributes["tokens_in"] == call["usage"]["prompt_tokens"] > 0
        assert span.attributes["tokens_out"] == call["usage"]["completion_tokens"] > 0
        assert span.attributes["latency_s"] == call["latency_s"]
        assert (span.end_time_ns - span.start_time_ns) == pytest.approx(call["latency_s"] * 1e9, abs=1e3)
    assert all(s.attributes["cached"] is True for s in _llm_spans(mlflow, cached.info.run_id))
    (trace,) = mlflow.search_traces(run_id=paid.info.run_id, return_type="list")
    assert "sk-SECRET123" not in trace.to_json()


def test_no_trace_without_calls_or_without_a_run(tracking, tmp_path):
    mlflow = tracking
    with FakeLLM() as srv:
        record = _elicit(srv.base_url, tmp_path / "cache").record
    assert log_elicitation_trace(record) is None  # no active run
    with mlflow.start_run() as run:
        assert log_elicitation_trace({**record, "calls": []}) is None  # an oracle/expert/random prior
    assert mlflow.search_traces(run_id=run.info.run_id, return_type="list") == []
