"""Property: the LLM cache key of a chat request covers every input that can change its answer.

Each example sends real requests through `CallContext.chat` to the fake endpoint (real HTTP on
127.0.0.1) and reads the key the call was recorded under: changing any one input must be a
miss under a new key; repeating the request unchanged must be a hit under the same key.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from laat.elicit.cache import ResponseCache
from laat.elicit.calls import CallContext
from laat.elicit.client import RetryPolicy
from laat.elicit.run import OpenAIEndpoint

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
schema = st.builds(
    lambda name, hi: {
        "type": "json_schema",
        "json_schema": {
            "name": "s",
            "schema": {
                "type": "object",
                "properties": {name: {"type": "integer", "minimum": -hi, "maximum": hi}},
                "required": [name],
            },
        },
    },
    st.sampled_from(["Age", "Glucose", "BMI"]),
    st.integers(1, 10),
)

# Every argument of CallContext.chat (and the context's strategy and endpoint) with its values.
INPUTS = {
    "prompt": text,
    "step": st.sampled_from(["scores", "reason", "parse", "feature:Age", "rank:0"]),
    "sample": st.integers(0, 50),
    "attempt": st.integers(0, 5),
    "temperature": st.floats(0, 2, allow_nan=False),
    "max_tokens": st.integers(1, 4096),
    "seed": st.integers(0, 2**31 - 1),
    "response_format": st.none() | schema,
    "top_logprobs": st.none() | st.integers(1, 20),
    "model": st.sampled_from(["fake-model", "other-model", "gpt-x"]),
    "grammar": st.none() | st.sampled_from(['root ::= "0" | "1"', 'root ::= "-1" | "0" | "1"']),
    "prefill": st.none() | text,
    "strategy": st.sampled_from(["direct", "reason_then_parse", "per_feature", "yes_no", "elimination"]),
    "endpoint": st.sampled_from([0, 1]),  # two servers: two base URLs
}


@pytest.fixture(scope="module")
def servers():
    from fake_llm import FakeLLM

    with FakeLLM() as one, FakeLLM() as two:
        yield one, two


def _key_of(servers, root, args: dict) -> tuple[str, bool]:
    from laat.elicit import ElicitationSettings

    a = dict(args)
    base_url = servers[a.pop("endpoint")].base_url
    endpoint = OpenAIEndpoint(
        ElicitationSettings(source="openai", model="fake-model", base_url=base_url, cache_dir=str(root), timeout_s=5)
    )
    ctx = CallContext(
        endpoint=endpoint, cache=ResponseCache(root), strategy=a.pop("strategy"), policy=RetryPolicy(2, 0.01, 0.05)
    )
    try:
        ctx.chat(a.pop("prompt"), **a)
    finally:
        endpoint.close()
    (call,) = ctx.calls
    return call["cache_key"], call["cached"]


@pytest.mark.parametrize("field", sorted(INPUTS))
@hsettings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.fixed_dictionaries(INPUTS), data=st.data())
def test_any_changed_input_changes_the_key_and_nothing_else_does(servers, tmp_path_factory, field, base, data):
    root = tmp_path_factory.mktemp("cache")
    new = data.draw(INPUTS[field], label="new value")
    assume(new != base[field])
    key, cached = _key_of(servers, root, base)
    again, cached_again = _key_of(servers, root, base)
    changed, cached_changed = _key_of(servers, root, {**base, field: new})
    assert (cached, again, cached_again) == (False, key, True)
    assert changed != key and not cached_changed


def test_the_number_of_top_logprobs_is_in_the_key(servers, tmp_path):
    # The property above mostly switches log-probs on or off; here only their count changes.
    base = {
        "prompt": "Yes or no?",
        "step": "yes_no:Age",
        "sample": 0,
        "attempt": 0,
        "temperature": 0.0,
        "max_tokens": 1,
        "seed": 1,
        "response_format": None,
        "model": "fake-model",
        "strategy": "yes_no",
        "endpoint": 0,
    }
    keys = {_key_of(servers, tmp_path, {**base, "top_logprobs": n})[0] for n in (5, 20)}
    assert len(keys) == 2
