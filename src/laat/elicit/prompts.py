"""Prompt texts and JSON schemas for eliciting feature-importance scores.

Every prompt is built from the dataset metadata only (zero-shot, no data rows), lists the
one-hot columns in `meta.encoded_columns` order and asks about `meta.positive_class`, so
the prompt, the training matrix and the prior share one feature layout.

What a score means follows the task. Binary: the effect of increasing the feature on the
probability of the positive class. Multiclass: the same, asked once per class of a
one-vs-rest view (`one_vs_rest`), which gives the per-class prior (row i for class i).
Regression: the signed effect of increasing the feature on the target's value. The binary
texts are unchanged, so cached answers stay valid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

SCORE_LO, SCORE_HI = -10, 10


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _feature_lines(descriptions: dict[str, str], order: Sequence[str] | None = None) -> str:
    names = list(order) if order is not None else list(descriptions)
    return "\n".join(f"{i}. {n}: {descriptions[n]}" for i, n in enumerate(names, 1))


_RULES = (
    "Rules:\n"
    f"- Give exactly one integer score from {SCORE_LO} to {SCORE_HI} to every feature.\n"
    "- A positive score means that increasing the feature raises the probability of the class; "
    "a negative score means that increasing it lowers that probability. "
    "The larger the magnitude, the stronger the effect; 0 means no effect.\n"
    "- Score every feature listed; do not skip, merge or rename any."
)
_REGRESSION_RULES = (
    "Rules:\n"
    f"- Give exactly one integer score from {SCORE_LO} to {SCORE_HI} to every feature.\n"
    "- A positive score means that increasing the feature raises the value of the target; "
    "a negative score means that increasing it lowers the target. "
    "The larger the magnitude, the stronger the effect; 0 means no effect.\n"
    "- Score every feature listed; do not skip, merge or rename any."
)


def one_vs_rest(meta, cls: str):
    """A binary view of a multiclass `meta`: ``cls`` against all other classes.

    Every prompt about ``cls`` is built from it, so a per-class score means what a binary one
    does: the effect of increasing the feature on the probability of that class.
    """
    from laat.datasets import TargetSpec

    if cls not in meta.target.classes:
        raise ValueError(f"dataset {meta.name!r} has no class {cls!r}; classes: {meta.target.classes}")
    rest = f"any class other than {cls}"
    return meta.model_copy(update={"target": TargetSpec(column=meta.target.column, classes=[rest, cls])})


def _regression(meta) -> bool:
    return meta.target.kind == "regression"


def _kind(meta) -> str:
    return "regression" if _regression(meta) else "classification"


def _rules(meta) -> str:
    return _REGRESSION_RULES if _regression(meta) else _RULES


def _ask_for(meta) -> str:
    """What every score is about, as the prompts' request says it."""
    if _regression(meta):
        return f'Give the importance score of every feature for the target "{meta.target.column}".\n'
    return f'Give the importance score of every feature for the class "{meta.positive_class}".\n'


def laat_prompt(meta) -> str:
    """The paper's single user message: role, rules, task, features, class, reason step by step."""
    return (
        f"You are an expert who assigns feature-importance scores for a {_kind(meta)} task.\n\n"
        f"{_rules(meta)}\n\n"
        f"Task: {meta.task}\n\n"
        f"Features:\n{_feature_lines(meta.encoded_descriptions())}\n\n"
        + _ask_for(meta)
        + "Reason step by step about each feature first, then give the score of every feature, "
        "in the order listed."
    )


def direct_prompt(meta) -> str:
    """Same content as the LAAT prompt, but the answer is the JSON object itself."""
    return (
        f"You are an expert who assigns feature-importance scores for a {_kind(meta)} task.\n\n"
        f"{_rules(meta)}\n\n"
        f"Task: {meta.task}\n\n"
        f"Features:\n{_feature_lines(meta.encoded_descriptions())}\n\n"
        + _ask_for(meta)
        + "Answer with a JSON object mapping each feature name to its integer score."
    )


def parse_prompt(features: Sequence[str], reasoning: str) -> str:
    """Second step of reason-then-parse: turn free text into scores by feature name."""
    names = "\n".join(f"- {f}" for f in features)
    return (
        "Below is an expert's analysis of feature importance. Extract the final integer score "
        f"({SCORE_LO} to {SCORE_HI}) the analysis gives to each feature in this list:\n{names}\n\n"
        "Use exactly these feature names. If the analysis gives no score for a feature, use 0.\n\n"
        f"Analysis:\n{reasoning}"
    )


def context_block(meta, order: Sequence[str] | None = None) -> str:
    """Task and feature list shared by the per-feature strategies (a cacheable prefix)."""
    return f"Task: {meta.task}\n\nFeatures:\n{_feature_lines(meta.encoded_descriptions(), order)}\n\n"


def per_feature_prompt(meta, feature: str) -> str:
    """Everything but the feature first, the feature last: a run's prompts then share all but
    their last line, which llama.cpp's prompt cache evaluates once per run instead of per call."""
    if _regression(meta):
        effect = f'positive if increasing it raises "{meta.target.column}", negative if it lowers it'
    else:
        effect = (
            f'positive if increasing it makes the class "{meta.positive_class}" more likely, negative if less likely'
        )
    return (
        f"You are an expert who judges how single features affect a {_kind(meta)}.\n\n"
        + context_block(meta)
        + f"Give one integer from {SCORE_LO} to {SCORE_HI} for the feature named below: {effect}, "
        "larger magnitude for a stronger effect, 0 for no effect.\n\n"
        f'Feature: "{feature}" ({meta.encoded_descriptions()[feature]})'
    )


# Paraphrases of the yes/no question: sample i uses variant i % len, so repeated samples
# average over wording instead of repeating one deterministic answer.
YES_NO_VARIANTS = (
    'Does a higher value of "{name}" ({desc}) make the answer "{cls}" more likely? Answer Yes or No.',
    'Would an increase in "{name}" ({desc}) raise the probability that the answer is "{cls}"? Answer Yes or No.',
    'Answer Yes or No: is "{name}" ({desc}) positively associated with the answer "{cls}"?',
)


# The same questions with the direction reversed ("less likely"). A model that answers "No"
# to nearly everything (SmolLM2-135M does) says "No" to both; the difference of the two
# answers' log-odds cancels that bias and keeps what depends on the direction.
YES_NO_MIRROR_VARIANTS = (
    'Does a higher value of "{name}" ({desc}) make the answer "{cls}" less likely? Answer Yes or No.',
    'Would an increase in "{name}" ({desc}) lower the probability that the answer is "{cls}"? Answer Yes or No.',
    'Answer Yes or No: is "{name}" ({desc}) negatively associated with the answer "{cls}"?',
)


# The same for a regression: does the feature raise (mirror: lower) the target's value?
YES_NO_REGRESSION_VARIANTS = (
    'Does a higher value of "{name}" ({desc}) make "{target}" higher? Answer Yes or No.',
    'Would an increase in "{name}" ({desc}) raise "{target}"? Answer Yes or No.',
    'Answer Yes or No: is "{name}" ({desc}) positively associated with "{target}"?',
)
YES_NO_REGRESSION_MIRROR_VARIANTS = (
    'Does a higher value of "{name}" ({desc}) make "{target}" lower? Answer Yes or No.',
    'Would an increase in "{name}" ({desc}) lower "{target}"? Answer Yes or No.',
    'Answer Yes or No: is "{name}" ({desc}) negatively associated with "{target}"?',
)


def yes_no_prompt(meta, feature: str, variant: int = 0, mirror: bool = False) -> str:
    """Yes/No question about ``feature`` raising the class probability or, for a regression,
    the target (``mirror``: lowering it)."""
    if _regression(meta):
        variants = YES_NO_REGRESSION_MIRROR_VARIANTS if mirror else YES_NO_REGRESSION_VARIANTS
        what = {"target": meta.target.column}
    else:
        variants = YES_NO_MIRROR_VARIANTS if mirror else YES_NO_VARIANTS
        what = {"cls": meta.positive_class}
    q = variants[variant % len(variants)]
    return f"Task: {meta.task}\n\n" + q.format(name=feature, desc=meta.encoded_descriptions()[feature], **what)


def elimination_prompt(meta, order: Sequence[str], chosen: Sequence[str]) -> str:
    """One elimination step: pick the most important feature not yet chosen."""
    already = ", ".join(chosen) if chosen else "none yet"
    return (
        f"You are an expert who ranks features by how important they are for a {_kind(meta)}.\n\n"
        + context_block(meta, order)
        + f"Already ranked as more important: {already}.\n"
        f"Of the features not ranked yet, which ONE matters most for predicting {_predicted(meta)}? "
        "Answer with its exact name."
    )


def _predicted(meta) -> str:
    return f'"{meta.target.column}"' if _regression(meta) else f'the answer "{meta.positive_class}"'


# ---- schemas --------------------------------------------------------------------------------


def _schema(name: str, schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}


def scores_schema(features: Sequence[str]) -> dict:
    """Every feature required exactly once, integer within bounds, nothing else allowed."""
    return _schema(
        "feature_scores",
        {
            "type": "object",
            "properties": {f: {"type": "integer", "minimum": SCORE_LO, "maximum": SCORE_HI} for f in features},
            "required": list(features),
            "additionalProperties": False,
        },
    )


# The start of a {"score": n} answer as SmolLM2 writes it under the JSON schema, cut where its
# own tokens split: after '":' it writes ' ' or ' -' (one token each) and then the digits. A
# prefill ending in the space made the sign a token of its own, which the model seldom picks
# (benchmarks/README.md, "Compact answers").
SCORE_PREFILL = '{\n  "score":'


def score_grammar() -> str:
    """A llama.cpp GBNF grammar for the rest of the prefilled answer: an integer in
    [SCORE_LO, SCORE_HI] and the closing brace, so the answer is ``SCORE_PREFILL`` + this = JSON.

    About 5 generated tokens instead of the ~15-20 the JSON schema's grammar lets a small
    model spend on fences, braces, a key and whitespace. The brace matters: with end-of-text
    right after the digits, which the model rarely writes there, "1" was nearly always
    continued to "10" (6 datasets: no 1 among 237 answers, 26% 10s; JSON: 6% 1s, 20% 10s).
    """
    integers = " | ".join(f'"{v}"' for v in range(SCORE_LO, SCORE_HI + 1))
    return f'root ::= " "? integer "\\n"? "}}"\ninteger ::= {integers}'


def single_score_schema() -> dict:
    return _schema(
        "feature_score",
        {
            "type": "object",
            "properties": {"score": {"type": "integer", "minimum": SCORE_LO, "maximum": SCORE_HI}},
            "required": ["score"],
            "additionalProperties": False,
        },
    )


def choice_schema(options: Sequence[str]) -> dict:
    return _schema(
        "feature_choice",
        {
            "type": "object",
            "properties": {"feature": {"type": "string", "enum": list(options)}},
            "required": ["feature"],
            "additionalProperties": False,
        },
    )
