"""Ways of turning LLM answers into one score vector per sample.

Each strategy is one `Strategy` object: ``run(ctx, meta, settings, sample) -> SampleResult``
(per_feature: every sample in one ``run``) with scores in `meta.encoded_columns` order, the
prompt recorded in the prior's provenance, and the number of calls a sample costs (the
progress bar's total). Independent questions within a sample (per_feature, yes_no) go out
together through `CallContext.map`. Answers are matched to features by name and validated
(every feature exactly once, no unknown names, integers in range); an invalid answer is
re-asked with a new seed at most ``settings.max_invalid`` times, then the sample fails
with an error listing every reason.

- ``reason_then_parse``: the paper's flow (free-text reasoning, then a schema-constrained parse).
- ``direct``: one schema-constrained JSON object of all scores.
- ``per_feature``: one short question per feature, answer constrained to one integer
  (``{"score": n}``; with ``compact_answer`` on the local server only the integer is generated; the local default: the best rank agreement with the oracle in benchmarks/bench_priors.py,
  as each answer is a single, tightly constrained choice about one feature).
- ``yes_no``: 1-token Yes/No questions per feature ("does more of it make the class more
  likely?" and, with ``yes_no_mirror``, "... less likely?"); score from the log-odds of Yes
  vs No, the mirrored question's subtracted so an overall Yes/No bias cancels.
- ``elimination``: repeatedly ask for the most important remaining feature (enum schema),
  rank -> magnitude; signs from the Yes/No log-probs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laat.elicit import prompts as P
from laat.elicit.calls import AnswerInvalid, CallContext
from laat.elicit.errors import InvalidAnswerError


@dataclass
class SampleResult:
    scores: list[float]
    details: dict[str, Any] = field(default_factory=dict)


# ---- validation --------------------------------------------------------------------------


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise AnswerInvalid(f"features given more than once: {dupes}")
    return dict(pairs)


def _load_json_object(content: str) -> dict[str, Any]:
    try:
        obj = json.loads(content, object_pairs_hook=_pairs_no_duplicates)
    except json.JSONDecodeError as exc:
        snippet = content if len(content) <= 80 else content[:40] + " ... " + content[-30:]
        raise AnswerInvalid(f"not valid JSON ({exc.msg} at char {exc.pos}): {snippet!r}") from None
    if not isinstance(obj, dict):
        raise AnswerInvalid(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _as_int_score(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnswerInvalid(f"score of {name!r} is {value!r}, not an integer")
    if isinstance(value, float) and not value.is_integer():
        raise AnswerInvalid(f"score of {name!r} is {value}, not an integer")
    if not P.SCORE_LO <= value <= P.SCORE_HI:
        raise AnswerInvalid(f"score of {name!r} is {value}, outside [{P.SCORE_LO}, {P.SCORE_HI}]")
    return int(value)


def parse_scores(content: str, features: Sequence[str]) -> list[float]:
    """Scores by name from a JSON object; every feature exactly once, nothing unknown."""
    obj = _load_json_object(content)
    missing = [f for f in features if f not in obj]
    unknown = [k for k in obj if k not in set(features)]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing features {missing}")
        if unknown:
            parts.append(f"unknown features {unknown}")
        raise AnswerInvalid("; ".join(parts))
    return [float(_as_int_score(f, obj[f])) for f in features]


def reask(ctx: CallContext, fn: Callable[[int], Any], max_invalid: int, what: str) -> Any:
    """Call ``fn(attempt)`` until it returns; each AnswerInvalid costs one of the re-asks.

    When every attempt was invalid, those answers are set aside (out of the cache), so a rerun
    after fixing the endpoint or model asks again instead of replaying the same failure.
    """
    reasons: list[str] = []
    rejected: list[tuple[str, bool]] = []
    for attempt in range(max_invalid + 1):
        try:
            return fn(attempt)
        except AnswerInvalid as exc:
            reasons.append(f"attempt {attempt}: {exc}")
            rejected.append(ctx.reject_last(str(exc)))
    where = ctx.set_aside([key for key, _ in rejected])
    replayed = sum(cached for _, cached in rejected)
    origin = f"{replayed} of them replayed from the LLM cache, " if replayed else ""
    raise InvalidAnswerError(
        f"{what}: {len(reasons)} invalid answers, giving up ({origin}all moved out of the cache to {where}, "
        "so the next run asks the model again; setting `refresh: true` re-asks every answer). " + " | ".join(reasons)
    )


# ---- helpers -----------------------------------------------------------------------------


def _seed(settings, sample: int, attempt: int, offset: int = 0) -> int:
    return int(settings.seed) + 1009 * sample + 7919 * attempt + offset


def _scores_budget(settings, features: Sequence[str], attempt: int = 0) -> int:
    """Token budget of a JSON score answer; a re-ask gets 2x, then 4x (a cut-off answer is
    the usual reason for a re-ask: small models pad constrained JSON with whitespace)."""
    base = settings.max_tokens or 64 + sum(len(f) // 2 + 10 for f in features)
    return base * 2 ** min(attempt, 2)


def _what(ctx: CallContext, meta, sample: int, extra: str = "") -> str:
    return f"{ctx.strategy} on {meta.name!r}, sample {sample}{extra}"


# ---- strategies ----------------------------------------------------------------------------


def direct(ctx: CallContext, meta, settings, sample: int) -> SampleResult:
    features = meta.encoded_columns
    prompt = P.direct_prompt(meta)

    def attempt(a: int) -> list[float]:
        r = ctx.chat(
            prompt,
            step="scores",
            sample=sample,
            attempt=a,
            temperature=settings.temperature,
            max_tokens=_scores_budget(settings, features, a),
            seed=_seed(settings, sample, a),
            response_format=P.scores_schema(features),
        )
        return parse_scores(r.content, features)

    return SampleResult(reask(ctx, attempt, settings.max_invalid, _what(ctx, meta, sample)))


def reason_then_parse(ctx: CallContext, meta, settings, sample: int) -> SampleResult:
    features = meta.encoded_columns
    prompt = P.laat_prompt(meta)

    def attempt(a: int) -> list[float]:
        r1 = ctx.chat(
            prompt,
            step="reason",
            sample=sample,
            attempt=a,
            temperature=settings.temperature,
            max_tokens=settings.reasoning_max_tokens,
            seed=_seed(settings, sample, a),
        )
        text = r1.content.strip()
        if not text:
            raise AnswerInvalid("empty reasoning")
        r2 = ctx.chat(
            P.parse_prompt(features, text),
            step="parse",
            sample=sample,
            attempt=a,
            temperature=0.0,
            max_tokens=_scores_budget(settings, features, a),
            seed=_seed(settings, sample, a),
            response_format=P.scores_schema(features),
            model=settings.parse_model,
        )
        return parse_scores(r2.content, features)

    return SampleResult(reask(ctx, attempt, settings.max_invalid, _what(ctx, meta, sample)))


def _json_score(name: str, content: str) -> int:
    obj = _load_json_object(content)
    if set(obj) != {"score"}:
        raise AnswerInvalid(f"expected exactly the key 'score', got {sorted(obj)}")
    return _as_int_score(name, obj["score"])


def _prefilled_score(name: str, content: str) -> int:
    """The score of a prefilled answer, with or without the prefill echoed (llama.cpp echoes it)."""
    return _json_score(name, content if content.startswith(P.SCORE_PREFILL) else P.SCORE_PREFILL + content)


def per_feature(ctx: CallContext, meta, settings) -> list[SampleResult]:
    """Every sample at once, feature by feature: a feature's samples are asked back to back on
    one thread, so the llama.cpp slot that just answered holds that very prompt and evaluates
    only its last token again, instead of the feature's whole line once per sample."""
    # On a llama.cpp endpoint the answer's JSON start is given (prefill) and only the integer
    # and the closing brace are generated, by grammar: ~5 tokens instead of the ~15-20 a small
    # model spends on braces, key and whitespace under the JSON schema that any other endpoint gets.
    # Opt-in (`compact_answer`): it lowered rank agreement with the oracle in bench_priors.
    if ctx.endpoint.grammar and settings.compact_answer:
        answer = {"grammar": P.score_grammar(), "prefill": P.SCORE_PREFILL, "max_tokens": 8}
        parse = _prefilled_score
    else:
        answer, parse = {"response_format": P.single_score_schema(), "max_tokens": 40}, _json_score

    def ask(j: int, sample: int) -> float:
        f = meta.encoded_columns[j]
        prompt = P.per_feature_prompt(meta, f)

        def attempt(a: int) -> float:
            r = ctx.chat(
                prompt,
                step=f"feature:{f}",
                sample=sample,
                attempt=a,
                temperature=settings.temperature,
                seed=_seed(settings, sample, a, j),
                **answer,
            )
            return float(parse(f, r.content))

        return reask(ctx, attempt, settings.max_invalid, _what(ctx, meta, sample, f", feature {f!r}"))

    by_feature = ctx.map(lambda j: [ask(j, i) for i in range(settings.n_samples)], range(len(meta.encoded_columns)))
    return [SampleResult([scores[i] for scores in by_feature]) for i in range(settings.n_samples)]


YES_TOKENS = {"yes"}
NO_TOKENS = {"no"}


def _yes_probability(reply) -> tuple[float, float]:
    """Total probability of Yes-like and No-like first tokens among the top log-probs."""
    content = (reply.logprobs or {}).get("content") or []
    if not content or not content[0].get("top_logprobs"):
        cached = (
            (
                " This answer came from the LLM cache: after switching to an endpoint that returns "
                "log-probabilities, set `refresh: true`."
            )
            if reply.cached
            else ""
        )
        raise InvalidAnswerError(
            "the endpoint returned no log-probabilities; strategy 'yes_no' "
            "(and elimination signs) need `logprobs`/`top_logprobs` support." + cached
        )
    p_yes = p_no = 0.0
    for cand in content[0]["top_logprobs"]:
        tok = str(cand.get("token", "")).strip().lower()
        p = math.exp(float(cand.get("logprob", -math.inf)))
        if tok in YES_TOKENS:
            p_yes += p
        elif tok in NO_TOKENS:
            p_no += p
    return p_yes, p_no


# Log-odds are clipped here: a token missing from the top 20 has a small, unknown probability.
MAX_LOG_ODDS = 9.0


def _log_odds(p_yes: float, p_no: float) -> float:
    """log P(Yes)/P(No); 0 (no evidence either way) when neither is among the top tokens."""
    if p_yes + p_no <= 0:
        return 0.0
    if p_yes <= 0 or p_no <= 0:
        return math.copysign(MAX_LOG_ODDS, p_yes - p_no)
    return max(-MAX_LOG_ODDS, min(MAX_LOG_ODDS, math.log(p_yes / p_no)))


def _yes_no_scores(ctx: CallContext, meta, settings, sample: int) -> tuple[list[float], dict[str, Any]]:
    """Score = 10 * (2 P - 1) with P = sigmoid(l): l is the log-odds of Yes to "more likely?",
    minus those of Yes to "less likely?" (halved, so a model answering both consistently keeps
    its own P) when ``settings.yes_no_mirror``."""

    def ask(f: str, j: int, mirror: bool) -> tuple[float, float]:
        r = ctx.chat(
            P.yes_no_prompt(meta, f, variant=sample, mirror=mirror),
            step=f"{'yes_no_mirror' if mirror else 'yes_no'}:{f}",
            sample=sample,
            attempt=0,
            temperature=0.0,
            max_tokens=1,
            seed=_seed(settings, sample, 0, j),
            top_logprobs=20,
        )
        return _yes_probability(r)

    def score(j: int) -> tuple[float, dict[str, float]]:
        f = meta.encoded_columns[j]
        p_yes, p_no = ask(f, j, mirror=False)
        probs = {"p_yes": round(p_yes, 6), "p_no": round(p_no, 6)}
        log_odds = _log_odds(p_yes, p_no)
        if settings.yes_no_mirror:
            m_yes, m_no = ask(f, j, mirror=True)
            probs.update(mirror_p_yes=round(m_yes, 6), mirror_p_no=round(m_no, 6))
            log_odds = (log_odds - _log_odds(m_yes, m_no)) / 2.0
        # 10 (2 sigmoid(l) - 1) = 10 tanh(l / 2); without the mirror this is 10 (2 P(Yes|Yes or No) - 1).
        return round(10.0 * math.tanh(log_odds / 2.0), 4), probs

    answers = ctx.map(score, range(len(meta.encoded_columns)))
    return [s for s, _ in answers], {f: p for f, (_, p) in zip(meta.encoded_columns, answers)}


def yes_no(ctx: CallContext, meta, settings, sample: int) -> SampleResult:
    scores, probs = _yes_no_scores(ctx, meta, settings, sample)
    return SampleResult(scores, {"yes_no": probs, "variant": sample % len(P.YES_NO_VARIANTS)})


def elimination(ctx: CallContext, meta, settings, sample: int) -> SampleResult:
    features = list(meta.encoded_columns)
    d = len(features)
    # A fresh listing order per sample, so a model that just picks by position averages out.
    order = [features[i] for i in np.random.default_rng([settings.seed, sample]).permutation(d)]
    steps = min(d - 1, settings.max_rank_steps or d - 1)
    chosen: list[str] = []
    for k in range(steps):
        remaining = [f for f in order if f not in chosen]
        prompt = P.elimination_prompt(meta, order, chosen)

        def attempt(a: int, prompt=prompt, remaining=remaining, k=k) -> str:
            r = ctx.chat(
                prompt,
                step=f"rank:{k}",
                sample=sample,
                attempt=a,
                temperature=settings.temperature,
                max_tokens=40 + max(len(f) for f in remaining),
                seed=_seed(settings, sample, a, k),
                response_format=P.choice_schema(remaining),
            )
            obj = _load_json_object(r.content)
            pick = obj.get("feature")
            if set(obj) != {"feature"} or pick not in remaining:
                raise AnswerInvalid(
                    f"expected {{'feature': one of the {len(remaining)} unranked features}}, got {r.content!r}"
                )
            return pick

        chosen.append(reask(ctx, attempt, settings.max_invalid, _what(ctx, meta, sample, f", rank step {k}")))
    if steps == d - 1:
        chosen += [f for f in order if f not in chosen]
    # Rank r (0 = most important) -> magnitude 10 (d - r) / d; unranked features share rank `steps`.
    rank = {f: chosen.index(f) if f in chosen else steps for f in features}
    magnitude = [10.0 * (d - rank[f]) / d for f in features]
    details: dict[str, Any] = {"ranking": chosen, "order_shown": order}
    if settings.elimination_signs:
        yn, probs = _yes_no_scores(ctx, meta, settings, sample)
        signs = [1.0 if s >= 0 else -1.0 for s in yn]
        details["yes_no"] = probs
    else:
        signs = [1.0] * d
    return SampleResult([round(s * m, 4) for s, m in zip(signs, magnitude)], details)


@dataclass(frozen=True)
class Strategy:
    """One elicitation strategy: how a sample is asked, the prompt it is known by, its cost."""

    name: str
    # (ctx, meta, settings, sample) -> one sample; samples run on their own threads. Or, with
    # ``all_samples``, (ctx, meta, settings) -> every sample, in whatever order is cheapest.
    run: Callable[..., Any]
    prompt: Callable[[Any], str]  # the prompt recorded (and hashed) in provenance
    calls_per_sample: Callable[[int, Any], int]  # (d, settings) -> calls when every answer is valid
    all_samples: bool = False

    def expected_calls(self, d: int, settings) -> int:
        """LLM calls an elicitation makes when every answer is valid (re-asks come on top)."""
        return self.calls_per_sample(d, settings) * settings.n_samples


def _yes_no_calls(d: int, settings) -> int:
    return d * (2 if settings.yes_no_mirror else 1)


def _elimination_calls(d: int, settings) -> int:
    return min(d - 1, settings.max_rank_steps or d - 1) + (
        _yes_no_calls(d, settings) if settings.elimination_signs else 0
    )


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("reason_then_parse", reason_then_parse, P.laat_prompt, lambda d, s: 2),
        Strategy("direct", direct, P.direct_prompt, lambda d, s: 1),
        Strategy(
            "per_feature",
            per_feature,
            lambda meta: P.per_feature_prompt(meta, meta.encoded_columns[0]),
            lambda d, s: d,
            all_samples=True,
        ),
        Strategy("yes_no", yes_no, lambda meta: P.yes_no_prompt(meta, meta.encoded_columns[0], 0), _yes_no_calls),
        Strategy(
            "elimination",
            elimination,
            lambda meta: P.elimination_prompt(meta, meta.encoded_columns, []),
            _elimination_calls,
        ),
    )
}
