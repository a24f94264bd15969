"""The real llama.cpp server with the bundled SmolLM2 GGUF, driven through the openai client.

Kept few and small (short answers, diabetes with 8 features): these start a real model on
two shared cores.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from laat.elicit import ElicitationSettings, LocalServerError, run_elicitation
from laat.elicit.client import make_client
from laat.elicit.local_server import BUNDLED_SHA256, LocalLLMServer, bundled_gguf, resolve_gguf, spawn_local_server

pytestmark = pytest.mark.llm


def test_bundled_gguf_is_found_and_verified():
    path, digest = resolve_gguf()
    assert path == bundled_gguf() and digest == BUNDLED_SHA256


def test_wrong_or_missing_model_file_is_refused(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"GGUF not really")
    with pytest.raises(LocalServerError, match="expected b179c952"):
        resolve_gguf(fake, expected_sha256=BUNDLED_SHA256)
    with pytest.raises(LocalServerError, match="not found"):
        resolve_gguf(tmp_path / "absent.gguf")


def test_in_process_server_answers_and_stops():
    server = LocalLLMServer(n_ctx=1024, n_threads=1).start()
    address = server.address
    with urllib.request.urlopen(address + "/health", timeout=10) as r:
        assert json.load(r) == {"status": "ok"}
    server.stop()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(address + "/health", timeout=5)


def test_cli_server_for_ci(tmp_path):
    with spawn_local_server(log_path=tmp_path / "llm.log", extra_args=["--ctx", "1024", "--threads", "1"]) as base_url:
        client = make_client(base_url, "sk-local", timeout=300)
        resp = client.chat.completions.create(
            model="anything", max_tokens=2, temperature=0, messages=[{"role": "user", "content": "Say OK."}]
        )
        assert resp.model == "local-default" and resp.usage.completion_tokens >= 1
        client.close()


def test_local_source_elicits_a_prior_end_to_end_and_reruns_for_free(diabetes_meta, tmp_path):
    settings = ElicitationSettings(
        source="local",
        strategy="direct",
        n_samples=2,
        n_ctx=2048,
        n_threads=1,
        gguf_path=str(bundled_gguf()),
        cache_dir=str(tmp_path / "cache"),
    )
    e = run_elicitation(diabetes_meta, settings)
    p = e.prior
    assert p.source == "llm" and p.features == diabetes_meta.encoded_columns
    assert all(-10 <= m <= 10 for m in p.mean) and len(p.samples) == 2
    assert all(float(v).is_integer() for s in p.samples for v in s)
    prov = p.provenance
    assert prov["endpoint_kind"] == "local" and prov["gguf_sha256"] == BUNDLED_SHA256
    assert "small local model prior" in prov["quality_note"]
    assert prov["fresh_calls"] == 2 and prov["tokens_in"] > 100 and prov["tokens_out"] > 8
    assert {c["response"].startswith("{") for c in e.record["calls"]} == {True}
    again = run_elicitation(diabetes_meta, settings)
    assert again.prior.provenance["fresh_calls"] == 0 and again.prior.mean == p.mean


def test_local_per_feature_generates_only_the_integer(diabetes_meta, tmp_path):
    # compact_answer: the JSON start is prefilled and a grammar admits only the integer and the
    # closing brace, so each answer is a few tokens (a JSON answer took 15-20).
    import json

    from laat.elicit import prompts as P

    settings = ElicitationSettings(
        source="local",
        strategy="per_feature",
        n_samples=2,
        n_ctx=2048,
        n_threads=1,
        concurrency=1,
        compact_answer=True,
        cache_dir=str(tmp_path / "cache"),
        progress=False,
    )
    e = run_elicitation(diabetes_meta, settings)
    calls = e.record["calls"]
    assert len(calls) == 16 and all(2 <= c["usage"]["completion_tokens"] <= 7 for c in calls)
    assert all(c["response"].startswith(P.SCORE_PREFILL) for c in calls)  # llama.cpp echoes the prefill
    for c in calls:  # prefill + answer is the JSON object, and the sample holds its score
        j = diabetes_meta.encoded_columns.index(c["step"].removeprefix("feature:"))
        assert e.prior.samples[c["sample"]][j] == json.loads(c["response"])["score"]


@pytest.mark.parametrize(
    "strategy, extra",
    [
        ("reason_then_parse", {"reasoning_max_tokens": 48}),
        ("per_feature", {}),
        ("elimination", {"max_rank_steps": 2}),
    ],
)
def test_each_strategy_works_against_the_real_model(local_llm, diabetes_meta, tmp_path, strategy, extra):
    # The same server through source "openai": any OpenAI-compatible endpoint takes this path.
    settings = ElicitationSettings(
        source="openai",
        model="local-default",
        base_url=local_llm.base_url,
        api_key_env="LAAT_TEST_KEY",
        strategy=strategy,
        n_samples=1,
        cache_dir=str(tmp_path / "cache"),
        **extra,
    )
    p = run_elicitation(diabetes_meta, settings).prior
    assert p.features == diabetes_meta.encoded_columns and all(-10 <= m <= 10 for m in p.mean)
    assert p.provenance["strategy"] == strategy and p.provenance["fresh_calls"] >= 1


KILL_LOCAL_SCRIPT = """
import sys
from laat.datasets import load_metadata
from laat.elicit import run_elicitation
run_elicitation(load_metadata(sys.argv[1]), source="local", strategy="direct", n_samples=2, n_ctx=2048,
                n_threads=1, local_slots=2, cache_dir=sys.argv[2], progress=False)
"""


def _live_entries(cache_dir):
    return [p for p in cache_dir.glob("*/*.json")] if cache_dir.exists() else []


def test_killed_then_resumed_elicitation_gives_the_uninterrupted_prior_paying_no_call_twice(diabetes_meta, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    # Two slots: each sample's prompt is then evaluated cold in every run. With one slot (the
    # default) the second sample reuses the first's cached prompt in the uninterrupted run but
    # not in the resumed one, and a last-bit change of the logits can flip a sampled token
    # (README: answers still to be asked after a kill are not guaranteed to be the same).
    settings = ElicitationSettings(
        source="local", strategy="direct", n_samples=2, n_ctx=2048, n_threads=1, local_slots=2, progress=False
    )
    resumed_cache = tmp_path / "resumed"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_LOCAL_SCRIPT, str(root / "conf/base/datasets/diabetes.yml"), str(resumed_cache)],
        cwd=root,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 300
    while not _live_entries(resumed_cache) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # kill -9 as soon as the first answer is stored
    proc.wait(10)
    paid_before_kill = len(_live_entries(resumed_cache))
    assert paid_before_kill >= 1 and not list(resumed_cache.rglob("*.tmp"))

    resumed = run_elicitation(diabetes_meta, settings, cache_dir=str(resumed_cache))
    whole = run_elicitation(diabetes_meta, settings, cache_dir=str(tmp_path / "uninterrupted"))
    assert resumed.prior.samples == whole.prior.samples and resumed.prior.mean == whole.prior.mean
    r, w = resumed.prior.provenance, whole.prior.provenance
    assert paid_before_kill < w["fresh_calls"]  # the kill came mid-way
    assert r["cached_calls"] == paid_before_kill  # every answer paid before the kill was reused...
    assert r["fresh_calls"] + paid_before_kill == w["fresh_calls"]  # ...and none was paid twice


@pytest.mark.parametrize("dataset, calls", [("wine", 3), ("diabetes_progression", 1)])
def test_the_real_model_gives_a_per_class_and_a_regression_prior(local_llm, tmp_path, dataset, calls):
    """One sample of the direct strategy: one call per class (wine), one for the regression."""
    from laat.datasets import load_metadata

    meta = load_metadata(dataset, "conf/base/datasets")
    settings = ElicitationSettings(
        source="openai",
        model="local-default",
        base_url=local_llm.base_url,
        api_key_env="LAAT_TEST_KEY",
        strategy="direct",
        n_samples=1,
        cache_dir=str(tmp_path / "cache"),
    )
    e = run_elicitation(meta, settings)
    p = e.prior
    assert p.source == "llm" and p.features == meta.encoded_columns and p.provenance["fresh_calls"] == calls
    scores = np.asarray(p.mean)
    assert scores.shape == ((3, len(meta.encoded_columns)) if calls == 3 else (len(meta.encoded_columns),))
    assert np.all(np.abs(scores) <= 10) and np.all(scores == np.round(scores))
    assert p.classes == (meta.target.classes if calls == 3 else None)
    assert run_elicitation(meta, settings).prior.provenance["fresh_calls"] == 0
