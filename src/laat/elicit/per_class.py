"""A per-class LLM prior for a multiclass task: one elicitation per class, stacked.

Each class is asked about through a one-vs-rest view of the metadata
(`laat.elicit.prompts.one_vs_rest`), with the same strategies, client, cache and retries as a
binary task; its scores become that class's row of a per-class `laat.priors.Prior`. Sample i
of the prior is the k rows of sample i of every class.
"""

from __future__ import annotations

from typing import Any

from laat.elicit.calls import USAGE_KEYS
from laat.elicit.prompts import one_vs_rest
from laat.priors import Prior


def elicit_per_class(meta, settings, elicit) -> tuple[Prior, dict[str, Any]]:
    """(per-class prior, record) from ``elicit(view, settings)`` (`laat.elicit.run.run_elicitation`)
    run once per class of ``meta``, in the classes' order."""
    runs = {c: elicit(one_vs_rest(meta, c), settings) for c in meta.target.classes}
    priors = [r.prior for r in runs.values()]
    first = priors[0].provenance
    provenance = {k: v for k, v in first.items() if k not in ("target_class", "prompt", "prompt_hash")}
    provenance.update({k: _total(p.provenance.get(k) for p in priors) for k in USAGE_KEYS if k in first})
    provenance["per_class"] = {
        c: {"prompt_hash": p.provenance["prompt_hash"], "prompt": p.provenance["prompt"]} for c, p in zip(runs, priors)
    }
    samples = [[p.samples[i] for p in priors] for i in range(len(priors[0].samples))]
    prior = Prior(
        features=list(meta.encoded_columns),
        mean=[p.mean for p in priors],
        spread=[p.spread for p in priors],
        source="llm",
        provenance=provenance,
        samples=samples,
        classes=list(meta.target.classes),
    )
    usage = {
        k: _total(r.record["usage"].get(k) for r in runs.values()) for k in runs[meta.target.classes[0]].record["usage"]
    }
    record = {
        "dataset": meta.name,
        "strategy": first["strategy"],
        "settings": runs[meta.target.classes[0]].record["settings"],
        "usage": usage,
        "per_class": {c: r.record for c, r in runs.items()},
    }
    return prior, record


def _total(values) -> float | int | None:
    values = list(values)
    if any(v is None for v in values):
        return None  # e.g. no price known: the total is unknown too
    return round(sum(values), 6) if any(isinstance(v, float) for v in values) else sum(values)
