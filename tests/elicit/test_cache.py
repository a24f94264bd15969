"""Content-addressed cache: reruns cost nothing, refresh re-asks, kills keep what was paid for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from laat.elicit import run_elicitation
from laat.elicit.cache import ResponseCache, cache_key

ROOT = Path(__file__).resolve().parents[2]


def test_second_identical_run_makes_zero_http_requests(fake_llm, fake_settings, diabetes_meta):
    with fake_llm() as srv:
        s = fake_settings(srv.base_url, n_samples=3)
        first = run_elicitation(diabetes_meta, s)
        assert srv.n_chat == 3
        second = run_elicitation(diabetes_meta, s)
        assert srv.n_chat == 3  # nothing new reached the server
    assert second.prior.mean == first.prior.mean
    assert second.prior.provenance["fresh_calls"] == 0 and second.prior.provenance["cached_calls"] == 3
    # tokens of the prior are still reported (what it cost), fresh tokens are zero
    assert second.prior.provenance["tokens_in"] == first.prior.provenance["tokens_in"] > 0
    assert second.prior.provenance["fresh_tokens_in"] == 0


def test_second_run_needs_no_api_key(fake_llm, fake_settings, diabetes_meta, monkeypatch):
    with fake_llm() as srv:
        s = fake_settings(srv.base_url, n_samples=1, api_key_env="LAAT_TEST_KEY", credentials_path=None)
        run_elicitation(diabetes_meta, s)
        monkeypatch.delenv("LAAT_TEST_KEY")
        run_elicitation(diabetes_meta, s)  # fully cached: the key is never looked up
        assert srv.n_chat == 1


def test_refresh_forces_new_calls(fake_llm, fake_settings, diabetes_meta):
    with fake_llm() as srv:
        s = fake_settings(srv.base_url, n_samples=2)
        run_elicitation(diabetes_meta, s)
        run_elicitation(diabetes_meta, s.model_copy(update={"refresh": True}))
        assert srv.n_chat == 4


@pytest.mark.parametrize("change", [{"temperature": 0.3}, {"seed": 1}, {"model": "other-model"},
                                    {"strategy": "reason_then_parse"}])
def test_changed_inputs_are_cache_misses(fake_llm, fake_settings, diabetes_meta, change):
    with fake_llm() as srv:
        s = fake_settings(srv.base_url, n_samples=1)
        run_elicitation(diabetes_meta, s)
        before = srv.n_chat
        run_elicitation(diabetes_meta, s.model_copy(update=change))
        assert srv.n_chat > before


def test_more_samples_reuse_the_first_ones(fake_llm, fake_settings, diabetes_meta):
    with fake_llm() as srv:
        run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=2))
        run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=5))
        assert srv.n_chat == 5  # samples 0 and 1 came from the cache


def test_samples_run_concurrently(fake_llm, fake_settings, diabetes_meta):
    # Each request hangs 0.6 s (answered after the hang, within the timeout): 4 samples with
    # 4 workers take about one hang, not four.
    with fake_llm(["timeout"] * 4, hang_s=0.6) as srv:
        t0 = time.perf_counter()
        run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=4, concurrency=4, timeout_s=10))
        wall = time.perf_counter() - t0
    assert srv.n_chat == 4
    assert wall < 4 * 0.6


def test_corrupt_or_foreign_entries_are_misses_and_get_replaced(tmp_path):
    cache = ResponseCache(tmp_path)
    key = cache_key({"a": 1})
    cache.put(key, {"response": {"x": 1}})
    assert cache.get(key)["response"] == {"x": 1}
    cache.path(key).write_text('{"response": {"x"')  # damaged from outside
    assert cache.get(key) is None
    cache.put(key, {"response": {"x": 2}})
    assert cache.get(key)["response"] == {"x": 2}
    other = cache_key({"a": 2})
    cache.path(other).parent.mkdir(parents=True, exist_ok=True)
    cache.path(key).rename(cache.path(other))  # a file under the wrong name
    assert cache.get(other) is None


def test_cache_key_is_canonical():
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 1.5})


def test_failed_write_leaves_no_temp_file(tmp_path):
    cache = ResponseCache(tmp_path)

    class Unserialisable:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        cache.put(cache_key({"k": 1}), {"response": Unserialisable()})
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.json"))


KILL_SCRIPT = """
import sys
from laat.datasets import load_metadata
from laat.elicit import run_elicitation
meta = load_metadata(sys.argv[1])
run_elicitation(meta, source="openai", model="fake-model", base_url=sys.argv[2], cache_dir=sys.argv[3],
                strategy="direct", n_samples=4, concurrency=1, timeout_s=60, max_attempts=1)
"""


def test_killed_run_keeps_the_samples_already_paid_for(fake_llm, fake_settings, diabetes_meta, tmp_path):
    cache_dir = tmp_path / "cache"
    # Requests 1-2 answer at once, request 3 hangs: kill the process while it waits.
    with fake_llm(["ok", "ok", "timeout"], hang_s=30) as srv:
        env = {**os.environ, "OPENAI_API_KEY": "sk-test"}
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(ROOT / "conf/base/datasets/diabetes.yml"),
                                 srv.base_url, str(cache_dir)], env=env, cwd=ROOT)
        deadline = time.monotonic() + 60
        while srv.n_chat < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert srv.n_chat == 3, f"child made {srv.n_chat} requests (exit code {proc.poll()})"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        entries = list(cache_dir.rglob("*.json"))
        assert len(entries) == 2 and not list(cache_dir.rglob("*.tmp"))
        for f in entries:
            json.loads(f.read_text())
        # The rerun only pays for the two samples that were never answered.
        e = run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=4, concurrency=1,
                                                         cache_dir=str(cache_dir)))
        assert srv.n_chat == 5
    assert e.prior.provenance["cached_calls"] == 2 and e.prior.provenance["fresh_calls"] == 2
