"""The LLM calls behind a prior as one MLflow trace in the active run: a span per call.

Built from the elicitation record (``laat.elicit`` keeps the prompt, the raw answer, tokens,
latency and whether the cache answered for every call), so tracing adds nothing to the
call path and sees cached calls as well as paid ones. The calls run concurrently and the
record keeps their latency, not their start: each call's span starts with the elicitation
and lasts its latency (a cached call: the latency recorded when it was paid for).
Everything recorded goes through ``laat.elicit.redact`` first.

The trace is written synchronously unless MLFLOW_ENABLE_ASYNC_TRACE_LOGGING says otherwise:
it is written once and flushed at once anyway, and MLflow's async queue polls once a second,
so flushing it here and again at interpreter exit cost a `kedro run` about two seconds.
"""

from __future__ import annotations

import os
import time
from typing import Any

CALL_ATTRIBUTES = ("step", "sample", "attempt", "cached", "finish_reason", "latency_s", "cache_key", "invalid")


def log_elicitation_trace(record: dict[str, Any]) -> str | None:
    """Log ``record``'s calls as a trace linked to the active MLflow run; its id, or None without calls or run."""
    import mlflow

    from laat.elicit.redact import redact

    calls = record.get("calls") or []
    if not calls or mlflow.active_run() is None:
        return None
    # read when MLflow makes its span exporter, i.e. at the process's first span
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    usage = record.get("usage") or {}
    end_ns = time.time_ns()
    wall_s = usage.get("wall_s") or max(float(c.get("latency_s") or 0.0) for c in calls)
    start_ns = end_ns - int(wall_s * 1e9)
    root = mlflow.start_span_no_context(
        f"elicit_prior {record.get('dataset')}",
        span_type="CHAIN",
        start_time_ns=start_ns,
        inputs=redact(
            {"dataset": record.get("dataset"), "strategy": record.get("strategy"), "settings": record.get("settings")}
        ),
        attributes={f"usage.{k}": v for k, v in usage.items()},
    )
    prompts = record.get("prompts") or {}
    for call in calls:
        tokens = call.get("usage") or {}
        span = mlflow.start_span_no_context(
            f"llm {call.get('step')} sample {call.get('sample')}",
            span_type="LLM",
            parent_span=root,
            start_time_ns=start_ns,
            inputs=redact({"prompt": prompts.get(call.get("prompt_sha256"), "")}),
            attributes={
                **{k: call[k] for k in CALL_ATTRIBUTES if call.get(k) is not None},
                "tokens_in": int(tokens.get("prompt_tokens") or 0),
                "tokens_out": int(tokens.get("completion_tokens") or 0),
            },
        )
        span.set_outputs(redact({"answer": call.get("response")}))
        span.end(end_time_ns=start_ns + int(float(call.get("latency_s") or 0.0) * 1e9))
    root.set_outputs({"calls": len(calls), "cached_calls": sum(bool(c.get("cached")) for c in calls)})
    root.end(end_time_ns=end_ns)
    mlflow.flush_trace_async_logging()  # in the store before the run ends, for whoever reads it next
    return root.trace_id
