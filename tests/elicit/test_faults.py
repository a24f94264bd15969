"""Fault injection over real sockets: every fault ends in a correct prior or one clear error,
and the on-disk cache is never left corrupt."""

from __future__ import annotations

import email.utils
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from laat.elicit import InvalidAnswerError, LLMCallError, run_elicitation
from laat.elicit.cache import answer_digest
from laat.elicit.strategies import parse_scores


def set_aside(cache_dir: Path) -> list[Path]:
    """Answers a failed sample moved out of the cache."""
    return sorted((cache_dir / "invalid").rglob("*.json")) if cache_dir.exists() else []


def assert_cache_sound(cache_dir: Path) -> int:
    """Every live cache file is complete JSON with its own key and answer digest; no temp files.
    Returns the number of live entries (answers set aside under invalid/ are not counted)."""
    files = list(cache_dir.rglob("*")) if cache_dir.exists() else []
    assert not [f for f in files if f.name.endswith(".tmp")], "temp files left in the cache"
    entries = [f for f in files if f.suffix == ".json" and f not in set(set_aside(cache_dir))]
    for f in entries:
        entry = json.loads(f.read_text())
        assert entry["key"] == f.stem
        assert "response" in entry and "key_payload" in entry
        assert entry["response_sha256"] == answer_digest(entry["response"])
    return len(entries)


def expected_scores(fake_answer, features):
    from fake_llm import answer_for_schema

    from laat.elicit.prompts import scores_schema

    return [float(v) for v in answer_for_schema(scores_schema(features)["json_schema"]["schema"]).values()]


def test_well_formed_answers_give_the_prior_by_name(fake_llm, fake_settings, diabetes_meta, tmp_path):
    with fake_llm() as srv:
        e = run_elicitation(diabetes_meta, fake_settings(srv.base_url))
    p = e.prior
    assert p.features == diabetes_meta.encoded_columns
    assert p.mean == expected_scores(None, diabetes_meta.encoded_columns)
    assert p.spread == [0.0] * 8  # the fake answers the same schema identically
    assert p.source == "llm" and p.provenance["endpoint_kind"] == "openai"
    assert srv.n_chat == 2 and p.provenance["fresh_calls"] == 2
    assert p.provenance["tokens_in"] > 0 and p.provenance["tokens_out"] > 0
    assert assert_cache_sound(tmp_path / "cache") == 2


@pytest.mark.parametrize(
    "faults, http_calls",
    [
        (["429", "ok"], 2),
        (["429", "429", "ok"], 3),
        (["500", "ok"], 2),
        (["503", "ok"], 2),
        (["timeout", "ok"], 2),
        (["truncated_body", "ok"], 2),
        (["cut_json", "ok"], 2),
        (["html", "ok"], 2),
        (["html", "cut_json", "429", "ok"], 4),
    ],
)
def test_transient_http_faults_are_retried(fake_llm, fake_settings, diabetes_meta, tmp_path, faults, http_calls):
    with fake_llm(faults, hang_s=3.0) as srv:
        e = run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, timeout_s=1.0))
    assert srv.served == faults
    assert srv.n_chat == http_calls
    assert e.prior.mean == expected_scores(None, diabetes_meta.encoded_columns)
    assert assert_cache_sound(tmp_path / "cache") == 1  # failed attempts are never cached


def test_persistent_5xx_fails_with_one_clear_error(fake_llm, fake_settings, diabetes_meta, tmp_path):
    with fake_llm(["500"] * 10) as srv, pytest.raises(LLMCallError) as info:
        run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, max_attempts=3))
    msg = str(info.value)
    assert "failed after 3 attempts" in msg and "3x HTTP 500 InternalServerError" in msg
    assert "fake-model" in msg and "127.0.0.1" in msg
    assert srv.n_chat == 3
    assert assert_cache_sound(tmp_path / "cache") == 0


def test_persistent_html_fails_naming_endpoint_model_and_body(fake_llm, fake_settings, diabetes_meta, tmp_path):
    with fake_llm(["html"] * 10) as srv:
        with pytest.raises(LLMCallError) as info:
            run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, max_attempts=3))
        port = srv.base_url.split(":")[2].split("/")[0]
    msg = str(info.value)
    assert "failed after 3 attempts (3x MalformedResponseError)" in msg
    assert f"http://127.0.0.1:{port}" in msg and "'fake-model'" in msg
    assert "Content-Type text/html" in msg and "502 Bad Gateway" in msg
    assert assert_cache_sound(tmp_path / "cache") == 0


def test_cut_json_body_is_a_typed_error_saying_where_it_stopped(fake_llm, fake_settings, diabetes_meta):
    with fake_llm(["cut_json"] * 10) as srv:
        with pytest.raises(LLMCallError, match=r"2x MalformedResponseError.*JSON body cut short or malformed") as info:
            run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, max_attempts=2))
    assert "fake-model" in str(info.value)


def _http_date(seconds_from_now: float) -> str:
    return email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize("retry_after", [lambda: "1", lambda: _http_date(2)], ids=["seconds", "http-date"])
def test_retry_after_is_waited_for(fake_llm, fake_settings, diabetes_meta, retry_after):
    # Without the header the wait is at most wait_initial_s (0.01 s) here; the server asks
    # for 1 s (or a date 1-2 s ahead: HTTP dates have whole seconds).
    with fake_llm(["429", "ok"], retry_after=retry_after) as srv:
        run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, wait_max_s=5))
        gap = srv.times[1] - srv.times[0]
    assert srv.n_chat == 2
    assert 0.9 <= gap < 4


def test_retry_after_is_capped_by_the_longest_wait_and_reported(fake_llm, fake_settings, diabetes_meta):
    with fake_llm(["429"] * 10, retry_after=lambda: "60") as srv:
        t0 = time.monotonic()
        with pytest.raises(LLMCallError) as info:
            run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, max_attempts=3, wait_max_s=0.2))
        assert time.monotonic() - t0 < 10  # two waits of 0.2 s, not of 60 s
    msg = str(info.value)
    assert "failed after 3 attempts (3x HTTP 429 RateLimitError)" in msg and "fake-model" in msg
    assert "asked to wait 60 s (Retry-After), waits are capped at 0.2 s" in msg


def test_mixed_faults_are_counted_in_the_error(fake_llm, fake_settings, diabetes_meta):
    with fake_llm(["429", "timeout", "500", "ok"], hang_s=2.0) as srv:
        with pytest.raises(
            LLMCallError,
            match=r"after 3 attempts \(1x HTTP 429 RateLimitError, "
            r"1x APITimeoutError, 1x HTTP 500 InternalServerError\)",
        ):
            run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, max_attempts=3, timeout_s=0.5))


def test_client_errors_are_not_retried(fake_llm, fake_settings, diabetes_meta):
    with fake_llm(["400", "ok"]) as srv, pytest.raises(LLMCallError, match="rejected with HTTP 400"):
        run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1))
    assert srv.n_chat == 1


@pytest.mark.parametrize(
    "fault", ["truncated_json", "missing", "extra", "renamed", "out_of_range", "duplicate", "not_integer", "no_choices"]
)
def test_invalid_answer_is_reasked_then_correct(fake_llm, fake_settings, diabetes_meta, tmp_path, fault):
    with fake_llm([fault, "ok"]) as srv:
        e = run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1))
    assert srv.n_chat == 2
    assert e.prior.mean == expected_scores(None, diabetes_meta.encoded_columns)
    # Both answers are kept (the invalid one too: it was paid for), each complete.
    assert assert_cache_sound(tmp_path / "cache") == 2
    attempts = [c["attempt"] for c in e.record["calls"]]
    assert attempts == [0, 1]


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("truncated_json", "not valid JSON"),
        ("missing", "missing features ['Pregnancies']"),
        ("extra", "unknown features ['NotAFeature']"),
        ("renamed", "missing features ['Pregnancies']; unknown features ['pregnancies_renamed']"),
        ("out_of_range", "score of 'Pregnancies' is 42, outside [-10, 10]"),
        ("duplicate", "features given more than once: ['Pregnancies']"),
    ],
)
def test_persistently_invalid_answers_fail_clearly(fake_llm, fake_settings, diabetes_meta, tmp_path, fault, reason):
    with fake_llm([fault] * 10) as srv, pytest.raises(InvalidAnswerError) as info:
        run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, max_invalid=2))
    msg = str(info.value)
    assert "3 invalid answers" in msg and "'diabetes', sample 0" in msg
    assert reason in msg
    assert srv.n_chat == 3
    # The failed answers are kept (they were paid for) but out of the cache, and the message says so.
    assert assert_cache_sound(tmp_path / "cache") == 0 and len(set_aside(tmp_path / "cache")) == 3
    assert str(tmp_path / "cache" / "invalid") in msg and "refresh: true" in msg


def test_failed_sample_is_asked_again_once_the_endpoint_is_fixed(fake_llm, fake_settings, diabetes_meta):
    with fake_llm(["missing"] * 3) as srv:  # after these three, the endpoint answers well
        s = fake_settings(srv.base_url, n_samples=1, max_invalid=2)
        with pytest.raises(InvalidAnswerError):
            run_elicitation(diabetes_meta, s)
        e = run_elicitation(diabetes_meta, s)
        assert srv.n_chat == 4  # a real request, not the cached failure replayed
    assert e.prior.mean == expected_scores(None, diabetes_meta.encoded_columns)
    assert e.prior.provenance["fresh_calls"] == 1 and e.prior.provenance["cached_calls"] == 0


def test_a_failure_caused_by_cached_answers_says_so(fake_llm, fake_settings, diabetes_meta):
    with fake_llm(["missing", "ok"]) as srv:
        run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, max_invalid=1))
        # Fewer re-asks: the cached invalid first answer is now the whole budget.
        with pytest.raises(InvalidAnswerError, match=r"1 of them replayed from the LLM cache.*refresh: true"):
            run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, max_invalid=0))
        assert srv.n_chat == 2


def test_rerun_after_invalid_answers_replays_them_from_cache(fake_llm, fake_settings, diabetes_meta):
    with fake_llm(["missing", "extra", "ok"]) as srv:
        first = run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1)).prior
        assert srv.n_chat == 3
        second = run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1)).prior
        assert srv.n_chat == 3
    assert second.mean == first.mean


def test_parse_scores_matches_by_name_not_position():
    feats = ["a", "b", "c"]
    assert parse_scores('{"c": 3, "a": -1, "b": 0}', feats) == [-1.0, 0.0, 3.0]
    assert parse_scores('{"a": 1.0, "b": 2, "c": -10}', feats) == [1.0, 2.0, -10.0]


def test_no_logprobs_support_is_a_clear_error(fake_llm, fake_settings, diabetes_meta):
    with fake_llm(["no_logprobs"]) as srv:
        # one request at a time: the first answer is the only one paid before the error
        s = fake_settings(srv.base_url, n_samples=1, strategy="yes_no", concurrency=1)
        with pytest.raises(InvalidAnswerError, match="no log-probabilities") as info:
            run_elicitation(diabetes_meta, s)
        assert "cache" not in str(info.value)
        # The same failure replayed from the cache says where it came from and how to re-ask.
        with pytest.raises(InvalidAnswerError, match=r"no log-probabilities.*came from the LLM cache.*refresh: true"):
            run_elicitation(diabetes_meta, s)
        assert srv.n_chat == 1


def test_cut_off_answer_is_reasked_with_a_larger_budget(fake_llm, fake_settings, diabetes_meta):
    with fake_llm(["truncated_json", "truncated_json", "truncated_json", "ok"]) as srv:
        run_elicitation(diabetes_meta, fake_settings(srv.base_url, n_samples=1, max_invalid=3))
    budgets = [r["max_tokens"] for r in srv.requests]
    assert budgets == [budgets[0], 2 * budgets[0], 4 * budgets[0], 4 * budgets[0]]
