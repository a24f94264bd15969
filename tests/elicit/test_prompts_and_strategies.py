"""Prompt content/order and every strategy's plumbing (fake endpoint over real sockets)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from laat.elicit import STRATEGIES, run_elicitation
from laat.elicit import prompts as P
from laat.elicit.settings import ElicitationSettings


def test_laat_prompt_follows_the_paper_layout(toy_meta):
    text = P.laat_prompt(toy_meta)
    assert text.startswith("You are an expert who assigns feature-importance scores")
    assert "from -10 to 10" in text and "increasing the feature raises the probability" in text
    assert "Task: Will the loan be repaid?" in text
    lines = re.findall(r"^(\d+)\. ([^:]+): (.*)$", text, flags=re.M)
    assert [(int(i), n) for i, n, _ in lines] == list(enumerate(toy_meta.encoded_columns, 1))
    assert [n for _, n, _ in lines] == ["Income", "Debt", "Housing_own", "Housing_rent"]
    assert ("3", "Housing_own", "Owns a home") in lines
    assert "Housing:" not in text  # the raw categorical column is not listed
    assert 'for the class "yes"' in text and "Reason step by step" in text
    assert "No rows" not in text and "Repaid" not in text  # zero-shot: no data, no target column


def test_scores_schema_requires_each_feature_with_bounds(toy_meta):
    rf = P.scores_schema(toy_meta.encoded_columns)
    schema = rf["json_schema"]["schema"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    assert schema["required"] == toy_meta.encoded_columns and schema["additionalProperties"] is False
    assert all(v == {"type": "integer", "minimum": -10, "maximum": 10} for v in schema["properties"].values())


def test_choice_schema_is_an_enum_of_remaining(toy_meta):
    schema = P.choice_schema(["Debt", "Income"])["json_schema"]["schema"]
    assert schema["properties"]["feature"]["enum"] == ["Debt", "Income"]


def test_parse_prompt_lists_names_and_carries_the_reasoning():
    text = P.parse_prompt(["a", "b"], "a is key: 9. b: -2.")
    assert "- a\n- b" in text and text.endswith("a is key: 9. b: -2.")


def test_auto_strategy_depends_on_source():
    local = ElicitationSettings(source="local").resolved_strategy()
    hosted = ElicitationSettings(source="openai", model="m").resolved_strategy()
    # per_feature: the best local strategy measured by benchmarks/bench_priors.py.
    assert local == "per_feature" and hosted == "reason_then_parse"


def test_openai_source_needs_a_model():
    with pytest.raises(ValueError, match="needs `model`"):
        ElicitationSettings(source="openai")


@pytest.mark.parametrize(
    "strategy, calls_per_sample, structured_per_sample",
    [
        ("direct", 1, 1),
        ("reason_then_parse", 2, 1),  # free reasoning, then a parse call held to the schema
        ("per_feature", 4, 4),
        ("yes_no", 2 * 4, 0),  # read from the answer's log-probabilities, no schema
        ("elimination", 3 + 2 * 4, 3),  # the three rank steps choose from an enum
    ],
)
def test_every_strategy_gives_a_valid_prior(
    fake_llm, fake_settings, toy_meta, strategy, calls_per_sample, structured_per_sample
):
    with fake_llm() as srv:
        e = run_elicitation(toy_meta, fake_settings(srv.base_url, strategy=strategy, n_samples=2))
    p = e.prior
    assert p.features == toy_meta.encoded_columns
    assert all(-10 <= m <= 10 for m in p.mean)
    assert len(p.samples) == 2 and np.allclose(np.mean(p.samples, axis=0), p.mean)
    assert srv.n_chat == 2 * calls_per_sample == p.provenance["calls"]
    # the progress bar's total is the real number of calls
    assert (
        STRATEGIES[strategy].expected_calls(
            len(toy_meta.encoded_columns), ElicitationSettings(strategy=strategy, n_samples=2)
        )
        == srv.n_chat
    )
    assert p.provenance["strategy"] == strategy and len(p.provenance["prompt_hash"]) == 64
    assert set(e.record["prompts"]) == {c["prompt_sha256"] for c in e.record["calls"]}
    for req in srv.requests:
        assert req["max_tokens"] >= 1 and "n" not in req  # xllamacpp rejects n > 1
    formats = [req["response_format"]["type"] for req in srv.requests if "response_format" in req]
    assert formats == ["json_schema"] * (2 * structured_per_sample)


def test_samples_use_distinct_seeds_and_sampling_temperature(fake_llm, fake_settings, toy_meta):
    with fake_llm() as srv:
        run_elicitation(toy_meta, fake_settings(srv.base_url, strategy="direct", n_samples=3, temperature=0.7))
    assert len({r["seed"] for r in srv.requests}) == 3
    assert {r["temperature"] for r in srv.requests} == {0.7}


def test_reason_then_parse_parses_at_temperature_zero(fake_llm, fake_settings, toy_meta):
    with fake_llm() as srv:
        run_elicitation(
            toy_meta, fake_settings(srv.base_url, strategy="reason_then_parse", n_samples=1, parse_model="parser-model")
        )
    reason, parse = sorted(srv.requests, key=lambda r: "response_format" in r)
    assert "response_format" not in reason and reason["temperature"] == 0.7
    assert parse["temperature"] == 0.0 and parse["model"] == "parser-model"
    assert parse["messages"][0]["content"].endswith("Step by step: every feature matters a little.")


def test_yes_no_score_follows_the_recorded_logprobs(fake_llm, fake_settings, toy_meta):
    import math

    with fake_llm() as srv:
        e = run_elicitation(toy_meta, fake_settings(srv.base_url, strategy="yes_no", n_samples=1))
    probs = e.record["samples"][0]["yes_no"]
    for f, score in e.prior.scores().items():
        q = probs[f]
        log_odds = (math.log(q["p_yes"] / q["p_no"]) - math.log(q["mirror_p_yes"] / q["mirror_p_no"])) / 2
        assert math.isclose(score, 10 * math.tanh(log_odds / 2), abs_tol=1e-3)


# Known beliefs P(Yes to "more likely?") per feature, independent of the code under test: the
# score's sign and size must follow them (a swapped Yes/No or a wrong class flips the signs).
KNOWN_P_YES = {"Income": 0.9, "Housing_own": 0.75, "Housing_rent": 0.3, "Debt": 0.05}
EXPECTED = {f: 10 * (2 * p - 1) for f, p in KNOWN_P_YES.items()}  # +8, +5, -4, -9
MIRROR_WORDS = ("less likely", "lower the probability", "negatively associated")


def _model(bias: float = 0.0):
    """P(Yes) of a model holding KNOWN_P_YES, answering the mirrored question consistently,
    with an overall Yes/No bias added to every answer's log-odds."""
    import math

    def p_yes(prompt: str) -> float:
        (feature,) = [f for f in KNOWN_P_YES if f'"{f}"' in prompt]
        p = KNOWN_P_YES[feature]
        log_odds = math.log(p / (1 - p)) * (-1 if any(w in prompt for w in MIRROR_WORDS) else 1) + bias
        return 1 / (1 + math.exp(-log_odds))

    return p_yes


@pytest.mark.parametrize("mirror", [True, False])
def test_yes_no_scores_have_the_sign_and_size_of_known_logprobs(fake_llm, fake_settings, toy_meta, mirror):
    with fake_llm(p_yes=_model()) as srv:
        e = run_elicitation(toy_meta, fake_settings(srv.base_url, strategy="yes_no", n_samples=3, yes_no_mirror=mirror))
    assert e.prior.scores() == pytest.approx(EXPECTED, abs=1e-3)
    assert all(f'"{toy_meta.positive_class}"' in r["messages"][0]["content"] for r in srv.requests)
    n_mirrored = sum(any(w in r["messages"][0]["content"] for w in MIRROR_WORDS) for r in srv.requests)
    assert n_mirrored == (3 * 4 if mirror else 0) and srv.n_chat == 3 * 4 * (2 if mirror else 1)


def test_mirrored_question_cancels_an_overall_no_bias(fake_llm, fake_settings, toy_meta):
    # A model that leans "No" to every question (log-odds -3), as SmolLM2-135M does.
    with fake_llm(p_yes=_model(bias=-3.0)) as srv:
        mirrored = run_elicitation(toy_meta, fake_settings(srv.base_url, strategy="yes_no", n_samples=1))
        plain = run_elicitation(
            toy_meta, fake_settings(srv.base_url, strategy="yes_no", n_samples=1, yes_no_mirror=False)
        )
    assert mirrored.prior.scores() == pytest.approx(EXPECTED, abs=1e-3)
    assert all(v < 0 for v in plain.prior.mean)  # without the mirror every sign is "negative"


def test_elimination_signs_follow_known_logprobs(fake_llm, fake_settings, toy_meta):
    with fake_llm(p_yes=_model(bias=-3.0)) as srv:
        e = run_elicitation(toy_meta, fake_settings(srv.base_url, strategy="elimination", n_samples=2))
    signs = {f: [s["scores"][j] > 0 for s in e.record["samples"]] for j, f in enumerate(toy_meta.encoded_columns)}
    assert signs == {f: [p > 0.5] * 2 for f, p in KNOWN_P_YES.items()}


def test_elimination_ranks_every_feature_once(fake_llm, fake_settings, toy_meta):
    with fake_llm() as srv:
        e = run_elicitation(
            toy_meta, fake_settings(srv.base_url, strategy="elimination", n_samples=2, elimination_signs=False)
        )
    for s in e.record["samples"]:
        assert sorted(s["ranking"]) == sorted(toy_meta.encoded_columns)
        mags = {f: abs(v) for f, v in zip(toy_meta.encoded_columns, s["scores"])}
        assert [mags[f] for f in s["ranking"]] == sorted(mags.values(), reverse=True)
    # Each sample lists the features in its own shuffled order.
    assert e.record["samples"][0]["order_shown"] != e.record["samples"][1]["order_shown"]
    assert all(v > 0 for v in e.prior.mean)


def test_elimination_top_k_stops_early(fake_llm, fake_settings, toy_meta):
    with fake_llm() as srv:
        e = run_elicitation(
            toy_meta,
            fake_settings(srv.base_url, strategy="elimination", n_samples=1, elimination_signs=False, max_rank_steps=1),
        )
    assert srv.n_chat == 1
    ranked = e.record["samples"][0]["ranking"]
    assert len(ranked) == 1
    scores = e.prior.scores()
    assert scores[ranked[0]] == 10.0 and sorted(set(scores.values())) == [7.5, 10.0]


def test_a_samples_questions_go_out_together_up_to_the_concurrency(fake_llm, fake_settings, toy_meta):
    # 4 per-feature questions, 0.3 s each, at most 3 in flight: some overlap, never more than 3.
    with fake_llm(latency_s=0.3) as srv:
        e = run_elicitation(toy_meta, fake_settings(srv.base_url, strategy="per_feature", n_samples=1, concurrency=3))
    assert srv.n_chat == 4 and len(e.prior.mean) == 4
    assert 2 <= srv.max_in_flight <= 3


def test_per_feature_asks_a_features_samples_back_to_back(fake_llm, fake_settings, toy_meta):
    # One slot: the prompt it just answered is the next one, so llama.cpp re-evaluates only its
    # last token. Sample-major order would change the prompt's last line with every call.
    with fake_llm() as srv:
        e = run_elicitation(toy_meta, fake_settings(srv.base_url, strategy="per_feature", n_samples=3, concurrency=1))
    prompts = [r["messages"][0]["content"] for r in srv.requests]
    expected = [P.per_feature_prompt(toy_meta, f) for f in toy_meta.encoded_columns for _ in range(3)]
    assert prompts == expected
    # and the samples are still the samples: sample i holds the answers asked with sample i's seeds
    by_seed = {r["seed"]: r for r in srv.requests}
    assert len(by_seed) == 12 and len(e.prior.samples) == 3
    for c in e.record["calls"]:
        j = toy_meta.encoded_columns.index(c["step"].removeprefix("feature:"))
        assert e.prior.samples[c["sample"]][j] == float(json.loads(c["response"])["score"])


def test_per_feature_prompts_differ_only_after_the_shared_context(toy_meta):
    # The prompt cache reuses the longest common prefix: the feature must come last.
    a, b = (P.per_feature_prompt(toy_meta, f) for f in ("Income", "Debt"))
    common = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    assert a[:common].endswith('Feature: "') and 'Feature: "Income"' in a[common - 10 :]


def test_every_strategy_name_has_one_strategy_object():
    """The settings' vocabulary (validated on the light start-up path) and the registry of
    `Strategy` objects name the same strategies; "auto" picks one of them per backend."""
    from typing import get_args

    from laat.elicit.settings import Strategy

    assert set(get_args(Strategy)) - {"auto"} == set(STRATEGIES)
    assert all(STRATEGIES[name].name == name for name in STRATEGIES)


def test_score_grammar_admits_exactly_the_integers_in_range_then_the_brace():
    import re

    root, integer = P.score_grammar().splitlines()
    assert root == 'root ::= " "? integer "\\n"? "}"'
    assert integer.startswith("integer ::= ")
    assert re.findall(r'"([^"]*)"', integer) == [str(v) for v in range(P.SCORE_LO, P.SCORE_HI + 1)]
    # the prefill stops before the space: SmolLM2 writes ' -' as one token (a sign token of its own
    # after a prefilled space was out of its distribution)
    assert P.SCORE_PREFILL.endswith('"score":')


@pytest.mark.parametrize(
    "content, expected",
    [
        (P.SCORE_PREFILL + " -7\n}", -7),
        (" 10}", 10),
        ("0\n}", 0),
        (P.SCORE_PREFILL + " x}", None),
        (" 11}", None),
        ("", None),
        (" 3", None),
    ],
)
def test_a_grammar_answer_is_read_with_or_without_the_echoed_prefill(content, expected):
    from laat.elicit.calls import AnswerInvalid
    from laat.elicit.strategies import _prefilled_score

    if expected is None:
        with pytest.raises(AnswerInvalid):
            _prefilled_score("Age", content)
    else:
        assert _prefilled_score("Age", content) == expected


def test_per_feature_on_a_grammar_endpoint_generates_only_the_integer(fake_llm, fake_settings, toy_meta, monkeypatch):
    # The project's llama.cpp server takes a grammar and continues a prefilled answer; the fake
    # does the same (echoing the prefill), so the whole path runs without a model.
    from laat.elicit.run import OpenAIEndpoint

    monkeypatch.setattr(OpenAIEndpoint, "grammar", True)
    with fake_llm(script=["not_integer"], vary=True) as srv:
        e = run_elicitation(
            toy_meta, fake_settings(srv.base_url, strategy="per_feature", n_samples=2, compact_answer=True)
        )
    assert srv.n_chat == 2 * 4 + 1  # one re-ask after the non-integer answer
    for req in srv.requests:
        assert "response_format" not in req and req["grammar"] == P.score_grammar() and req["max_tokens"] <= 8
        assert req["messages"][-1] == {"role": "assistant", "content": P.SCORE_PREFILL}
    answers = [json.loads(c["response"])["score"] for c in e.record["calls"] if "invalid" not in c]
    assert len(answers) == 8 and np.allclose(sorted(answers), sorted(v for s in e.prior.samples for v in s))
