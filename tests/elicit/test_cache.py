"""Content-addressed cache: reruns cost nothing, refresh re-asks, kills keep what was paid for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC
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


@pytest.mark.parametrize(
    "change", [{"temperature": 0.3}, {"seed": 1}, {"model": "other-model"}, {"strategy": "reason_then_parse"}]
)
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
import tempfile
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
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                KILL_SCRIPT,
                str(ROOT / "conf/base/datasets/diabetes.yml"),
                srv.base_url,
                str(cache_dir),
            ],
            env=env,
            cwd=ROOT,
        )
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
        e = run_elicitation(
            diabetes_meta, fake_settings(srv.base_url, n_samples=4, concurrency=1, cache_dir=str(cache_dir))
        )
        assert srv.n_chat == 5
    assert e.prior.provenance["cached_calls"] == 2 and e.prior.provenance["fresh_calls"] == 2


def test_first_answer_written_is_kept_unless_refreshing(tmp_path):
    cache = ResponseCache(tmp_path)
    key = cache_key({"k": "race"})
    assert cache.put(key, {"response": "first"})["response"] == "first"
    # A later writer of the same key gets the stored answer back and changes nothing.
    assert cache.put(key, {"response": "second"})["response"] == "first"
    assert cache.get(key)["response"] == "first"
    assert cache.put(key, {"response": "refreshed"}, replace=True)["response"] == "refreshed"
    assert cache.get(key)["response"] == "refreshed"
    assert not list(tmp_path.rglob("*.tmp"))


WRITER_SCRIPT = """
import json, sys, time
from pathlib import Path
from laat.elicit.cache import ResponseCache, cache_key
root, writer, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
cache = ResponseCache(root)
while not go.exists():
    time.sleep(0.001)
got = {str(i): cache.put(cache_key({"i": i}), {"writer": writer})["writer"] for i in range(300)}
print(json.dumps(got))
"""


def test_two_processes_writing_the_same_keys_agree_on_the_first_answer(tmp_path):
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, str(tmp_path / "cache"), w, str(go)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for w in ("A", "B")
    ]
    time.sleep(0.5)  # both are importing / waiting at the start line
    go.touch()
    outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    cache = ResponseCache(tmp_path / "cache")
    on_disk = {str(i): cache.get(cache_key({"i": i}))["writer"] for i in range(300)}
    # Whoever lost a key was handed the winner's answer: both processes and the disk agree.
    assert outs[0] == outs[1] == on_disk
    assert not list((tmp_path / "cache").rglob("*.tmp"))


def test_concurrent_runs_of_one_elicitation_agree_and_reruns_reproduce_them(fake_llm, fake_settings, diabetes_meta):
    from concurrent.futures import ThreadPoolExecutor

    # vary: each request gets different scores (a sampling model); both requests hang 0.5 s,
    # so both runs miss the cache and pay for their own answer before either is stored.
    with fake_llm(["timeout", "timeout"], hang_s=0.5, vary=True) as srv:
        s = fake_settings(srv.base_url, n_samples=1, timeout_s=10)
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda _: run_elicitation(diabetes_meta, s), range(2)))
        assert srv.n_chat == 2
        assert srv.requests[0]["seed"] == srv.requests[1]["seed"]  # the same cache key
        rerun = run_elicitation(diabetes_meta, s)
        assert srv.n_chat == 2
    assert runs[0].prior.mean == runs[1].prior.mean == rerun.prior.mean
    assert [r.prior.provenance["fresh_calls"] for r in runs] == [1, 1]


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(p for p in cache_dir.rglob("*.json") if "invalid" not in p.parts)


def test_hand_edited_answer_is_refused_not_served_as_llm(fake_llm, fake_settings, diabetes_meta, tmp_path):
    from laat.elicit import CacheEntryEditedError

    with fake_llm() as srv:
        s = fake_settings(srv.base_url, n_samples=1)
        first = run_elicitation(diabetes_meta, s)
        (path,) = _entries(tmp_path / "cache")
        entry = json.loads(path.read_text())
        scores = json.loads(entry["response"]["choices"][0]["message"]["content"])
        scores["Glucose"] = -10 if scores["Glucose"] != -10 else 10
        entry["response"]["choices"][0]["message"]["content"] = json.dumps(scores)
        path.write_text(json.dumps(entry, indent=1))
        with pytest.raises(CacheEntryEditedError) as info:
            run_elicitation(diabetes_meta, s)
        msg = str(info.value)
        assert str(path) in msg and "refresh: true" in msg and "prior_source=expert" in msg
        assert srv.n_chat == 1
        # A refresh pays for the answer again and replaces the edited entry.
        again = run_elicitation(diabetes_meta, s.model_copy(update={"refresh": True}))
        assert srv.n_chat == 2 and again.prior.mean == first.prior.mean
        assert run_elicitation(diabetes_meta, s).prior.provenance["cached_calls"] == 1


def test_entry_without_answer_digest_is_refused(tmp_path):
    from laat.elicit import CacheEntryEditedError

    cache = ResponseCache(tmp_path)
    key = cache_key({"k": 1})
    cache.put(key, {"response": {"x": 1}})
    entry = json.loads(cache.path(key).read_text())
    del entry["response_sha256"]
    cache.path(key).write_text(json.dumps(entry))
    with pytest.raises(CacheEntryEditedError, match="records no answer digest"):
        cache.get(key)
    # Reformatting an entry (indentation, key order) is not an edit of its answer.
    cache.put(key, {"response": {"b": 2, "a": [1, 2]}}, replace=True)
    stored = json.loads(cache.path(key).read_text())
    cache.path(key).write_text(json.dumps({**stored, "response": {"a": [1, 2], "b": 2}}, indent=4))
    assert cache.get(key)["response"] == {"a": [1, 2], "b": 2}


def test_a_changed_feature_description_changes_the_prompt_and_the_cache_key(fake_llm, fake_settings, diabetes_meta):
    # Issue 17: a cache key without the prompt passed every other test; here only the text changes.
    from laat.datasets import parse_metadata

    raw = diabetes_meta.model_dump()
    raw["features"][1]["description"] = "Plasma glucose two hours after an oral glucose load, in mg/dL"
    edited = parse_metadata(raw)
    assert edited.encoded_columns == diabetes_meta.encoded_columns
    with fake_llm(vary=True) as srv:
        s = fake_settings(srv.base_url, n_samples=1)
        before = run_elicitation(diabetes_meta, s)
        after = run_elicitation(edited, s)
        assert srv.n_chat == 2
        assert "two hours after an oral glucose load" in srv.requests[1]["messages"][-1]["content"]
    assert after.prior.provenance["fresh_calls"] == 1 and after.prior.mean != before.prior.mean
    assert after.record["calls"][0]["cache_key"] != before.record["calls"][0]["cache_key"]


def test_values_json_cannot_hold_are_stored_as_their_text(tmp_path):
    # The answer digest reads such values as text; the stored entry must hold the same text.
    from datetime import datetime

    cache = ResponseCache(tmp_path)
    key = cache_key({"k": "when"})
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    cache.put(key, {"response": {"at": when}, "path": tmp_path})
    got = cache.get(key)
    assert got["response"] == {"at": "2026-01-02 03:04:05+00:00"} and got["path"] == str(tmp_path)


@pytest.fixture
def no_hard_links(monkeypatch):
    """A file system without hard links (some network and FAT mounts): os.link fails."""

    def refuse(src, dst, *a, **kw):
        raise PermissionError(1, "Operation not permitted", str(dst))

    monkeypatch.setattr(os, "link", refuse)


def test_without_hard_links_the_first_answer_is_still_kept(tmp_path, no_hard_links):
    cache = ResponseCache(tmp_path)
    key = cache_key({"k": "nolink"})
    assert cache.put(key, {"response": "first"})["response"] == "first"
    assert cache.get(key)["response"] == "first"
    assert cache.put(key, {"response": "second"})["response"] == "first"
    assert cache.get(key)["response"] == "first"
    # A damaged entry is replaced, and nothing is left behind.
    cache.path(key).write_text("{")
    assert cache.put(key, {"response": "third"})["response"] == "third"
    assert cache.get(key)["response"] == "third"
    assert not list(tmp_path.rglob("*.tmp"))


def test_answers_set_aside_twice_under_one_prefix_are_all_kept(tmp_path):
    cache = ResponseCache(tmp_path)
    first = cache_key({"i": 0})
    keys = [first, next(k for k in (cache_key({"i": i}) for i in range(1, 10_000)) if k[:2] == first[:2])]
    moved = []
    for n, key in enumerate([keys[0], keys[1], keys[0]]):
        cache.put(key, {"response": n}, replace=True)
        moved.append(cache.set_aside(key))
    assert all(p is not None and p.is_relative_to(cache.invalid_dir) for p in moved)
    assert sorted(json.loads(p.read_text())["response"] for p in moved) == [0, 1, 2]
    assert cache.get(keys[0]) is None and cache.get(keys[1]) is None
    assert cache.set_aside(keys[1]) is None  # nothing left to move


def test_writes_stay_atomic_when_the_system_temp_dir_is_another_file_system(tmp_path, monkeypatch):
    # The temporary file must sit next to its entry: a hard link or rename across file systems fails.
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a file system other than the test's temporary directory")
    monkeypatch.setattr(tempfile, "tempdir", str(other))
    cache = ResponseCache(tmp_path)
    key = cache_key({"k": "fs"})
    assert cache.put(key, {"response": "kept"})["response"] == "kept"
    assert cache.get(key)["response"] == "kept"


CACHED_CHILD = r"""
import json, sys
from laat.datasets import load_metadata
from laat.elicit import ElicitationSettings, run_elicitation
e = run_elicitation(load_metadata(sys.argv[1]), ElicitationSettings.model_validate_json(sys.argv[2]))
print(json.dumps({"cached": e.prior.provenance["cached_calls"], "fresh": e.prior.provenance["fresh_calls"],
                  "imported": sorted(m for m in ("openai", "tenacity") if m in sys.modules)}))
"""


def test_a_cached_run_imports_no_llm_client(fake_llm, fake_settings, diabetes_meta):
    # openai and tenacity take about a second to import; a warm `kedro run` needs neither
    with fake_llm() as srv:
        s = fake_settings(srv.base_url, n_samples=2)
        run_elicitation(diabetes_meta, s)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CACHED_CHILD,
            str(ROOT / "conf" / "base" / "datasets" / "diabetes.yml"),
            s.model_dump_json(),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout.splitlines()[-1])
    assert got == {"cached": 2, "fresh": 0, "imported": []}
