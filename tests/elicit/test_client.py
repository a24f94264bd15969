"""Client factory, credentials and the retry policy (against the fake endpoint over sockets)."""

from __future__ import annotations

import json

import openai
import pytest

from laat.elicit import LLMCallError, run_elicitation
from laat.elicit.client import RetryPolicy, call_with_retries, endpoint_label, make_client, resolve_api_key


def test_client_has_sdk_retries_off():
    c = make_client("http://127.0.0.1:9/v1", "sk-x", timeout=3)
    assert c.max_retries == 0
    c.close()


def test_api_key_from_env_then_credentials_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "from-env")
    assert resolve_api_key("MY_KEY", None) == "from-env"
    monkeypatch.delenv("MY_KEY")
    creds = tmp_path / "credentials.yml"
    creds.write_text("openai:\n  api_key: from-file\n")
    assert resolve_api_key("MY_KEY", creds) == "from-file"
    monkeypatch.setenv("OTHER", "via-oc-env")
    creds.write_text("openai:\n  api_key: ${oc.env:OTHER}\n")
    assert resolve_api_key("MY_KEY", creds) == "via-oc-env"
    with pytest.raises(LLMCallError, match="set the environment variable MY_KEY"):
        resolve_api_key("MY_KEY", tmp_path / "absent.yml")


def test_endpoint_label_drops_secrets_from_urls():
    assert endpoint_label("https://user:pw@api.example.com/v1?token=abc") == "https://api.example.com"
    assert endpoint_label("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080"


def test_key_never_reaches_provenance_record_or_cache(fake_llm, fake_settings, diabetes_meta, tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY_VAR", "sk-very-secret-123")
    with fake_llm() as srv:
        e = run_elicitation(
            diabetes_meta, fake_settings(srv.base_url, api_key_env="SECRET_KEY_VAR", strategy="reason_then_parse")
        )
    blob = json.dumps(e.prior.to_dict()) + json.dumps(e.record, default=str)
    blob += "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert "sk-very-secret-123" not in blob
    assert "SECRET_KEY_VAR" in json.dumps(e.record["settings"])  # the variable name is fine


def test_retry_then_success_counts_requests(fake_llm):
    with fake_llm(["429", "500", "ok"]) as srv:
        client = make_client(srv.base_url, "sk-x", timeout=5)
        resp = call_with_retries(
            lambda: client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]),
            policy=RetryPolicy(max_attempts=5, wait_initial=0.01, wait_max=0.02),
            what="test call",
        )
        assert resp.choices[0].message.content
        assert srv.n_chat == 3


def test_non_retryable_status_is_wrapped_with_context(fake_llm):
    with fake_llm(["400"]) as srv:
        client = make_client(srv.base_url, "sk-x", timeout=5)
        with pytest.raises(LLMCallError, match="my call was rejected with HTTP 400") as info:
            call_with_retries(
                lambda: client.chat.completions.create(model="m", messages=[]),
                policy=RetryPolicy(3, 0.01, 0.02),
                what="my call",
            )
        assert isinstance(info.value.__cause__, openai.BadRequestError)


def test_connection_refused_is_retried_then_reported():
    client = make_client("http://127.0.0.1:9/v1", "sk-x", timeout=2)  # port 9: nothing listens
    with pytest.raises(LLMCallError, match=r"failed after 2 attempts \(2x APIConnectionError\)"):
        call_with_retries(
            lambda: client.chat.completions.create(model="m", messages=[]),
            policy=RetryPolicy(2, 0.01, 0.02),
            what="call",
        )
