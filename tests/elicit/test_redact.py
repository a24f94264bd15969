"""Credentials in URLs are masked wherever settings, messages or logs are written."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from laat.elicit import ElicitationSettings, LLMCallError
from laat.elicit.client import RetryPolicy, call_with_retries, chat_completion, make_client
from laat.elicit.redact import redact

SECRET = "sk-secret-in-url-123"


@pytest.mark.parametrize(
    "url, expected",
    [
        (f"http://user:{SECRET}@api.example.com/v1", "http://***@api.example.com/v1"),
        (f"https://{SECRET}@api.example.com:8443/v1", "https://***@api.example.com:8443/v1"),
        (f"https://api.example.com/v1?api_key={SECRET}", "https://api.example.com/v1?api_key=***"),
        (
            f"https://h/v1?api-version=2024-02-01&access_token={SECRET}&x=1",
            "https://h/v1?api-version=2024-02-01&access_token=***&x=1",
        ),
        (f"https://h/v1?sig={SECRET}", "https://h/v1?sig=***"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("user@example.com wrote: no URL here", "user@example.com wrote: no URL here"),
    ],
)
def test_redact_masks_userinfo_and_secret_query_values(url, expected):
    assert redact(url) == expected


def test_redact_walks_containers_and_leaves_other_values_alone():
    value = {"a": [f"http://u:{SECRET}@h/v1", 3], "b": (f"x?token={SECRET}",), "c": None, "d": 1.5}
    assert redact(value) == {"a": ["http://***@h/v1", 3], "b": ("x?token=***",), "c": None, "d": 1.5}
    # Inside a printed dict (how kedro-mlflow writes the runtime_params tag) as well.
    assert SECRET not in redact(str({"prior_elicitation": {"base_url": f"http://u:{SECRET}@h/v1"}}))


def test_settings_print_and_dump_masked_but_connect_with_the_real_url():
    url = f"http://user:{SECRET}@127.0.0.1:9/v1"
    s = ElicitationSettings(source="openai", model="m", base_url=url)
    assert SECRET not in str(s) and SECRET not in repr(s)
    assert s.public_dump()["base_url"] == "http://***@127.0.0.1:9/v1"
    assert s.base_url == url and s.model_dump()["base_url"] == url


def test_a_settings_validation_error_does_not_quote_the_url():
    with pytest.raises(ValidationError) as info:
        ElicitationSettings(source="openai", base_url=f"http://user:{SECRET}@h/v1")  # no model
    assert "needs `model`" in str(info.value) and SECRET not in str(info.value)


def test_http_request_logs_and_errors_mask_the_key(fake_llm, caplog):
    caplog.set_level(logging.DEBUG)
    with fake_llm(["500"] * 2) as srv:
        url = srv.base_url.replace("http://", f"http://user:{SECRET}@")
        client = make_client(url, "sk-x", timeout=5)
        request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        with pytest.raises(LLMCallError) as info:
            call_with_retries(
                lambda: chat_completion(client, request), policy=RetryPolicy(2, 0.01, 0.02), what=f"call to {url}"
            )
        assert chat_completion(client, request)["choices"]  # masking never touches the URL used
    assert "HTTP Request: POST http://***@127.0.0.1" in caplog.text  # the log line exists, masked
    assert SECRET not in caplog.text and SECRET not in str(info.value)
