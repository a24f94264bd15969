"""A fault-injecting OpenAI-compatible HTTP server on 127.0.0.1 (real sockets, stdlib only).

Well-formed answers follow the request's JSON schema deterministically (sha256 of the
property name mapped into [minimum, maximum]; enum choices by hash), or pick one of the
text of a llama.cpp grammar (`answer_for_grammar`) after echoing the assistant's
prefill as llama.cpp does, so the whole client,
cache, retry and validation path runs without a model. A script of faults is consumed one
per chat request; when it runs out, every answer is well-formed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# truncated_body: Content-Length promises more than is sent (the connection drops);
# cut_json: a 200 whose complete body is JSON cut short; html: a 200 text/html page (a proxy's);
# truncated_json: a well-formed completion whose *answer* is cut off (finish_reason "length").
FAULTS = {
    "ok",
    "429",
    "500",
    "503",
    "400",
    "timeout",
    "truncated_body",
    "cut_json",
    "html",
    "truncated_json",
    "missing",
    "extra",
    "renamed",
    "out_of_range",
    "duplicate",
    "not_integer",
    "no_logprobs",
    "no_choices",
}


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def answer_for_schema(schema: dict, salt: int = 0) -> dict:
    """Deterministic answer; a different ``salt`` gives different integers (a sampling model)."""
    out = {}
    for name, spec in schema.get("properties", {}).items():
        if "enum" in spec:
            opts = spec["enum"]
            out[name] = opts[_h("|".join(opts)) % len(opts)]
        elif spec.get("type") == "integer":
            lo, hi = int(spec.get("minimum", -10)), int(spec.get("maximum", 10))
            out[name] = lo + (_h(name) + salt) % (hi - lo + 1)
        else:
            out[name] = "x"
    return out


def answer_for_grammar(grammar: str, salt: int) -> str:
    """One string a GBNF grammar admits, for the subset the project writes: rules that are either
    alternatives of literals (one picked by ``salt``) or a sequence of literals, optional
    literals (``"x"?``, taken) and rule names."""
    rules = dict(line.split(" ::= ", 1) for line in grammar.strip().splitlines())

    def expand(name: str) -> str:
        body = rules[name]
        if "|" in body:
            options = re.findall(r'"([^"]*)"', body)
            return json.loads(f'"{options[salt % len(options)]}"')
        return "".join(
            json.loads(f'"{lit}"') if lit else expand(ref) for lit, ref in re.findall(r'"([^"]*)"\??|(\w+)', body)
        )

    return expand("root")


class FakeLLM:
    def __init__(
        self,
        script: list[str] | None = None,
        hang_s: float = 3.0,
        vary: bool = False,
        p_yes: Callable[[str], float] | None = None,
        retry_after: Callable[[], str] | None = None,
        latency_s: float = 0.0,
    ):
        """``vary``: every request gets a different answer (like sampling at T > 0).
        ``p_yes``: P(Yes) of a log-prob request as a function of its prompt (default: a hash);
        the mass is then spread over token variants as a real tokenizer does ("Yes", " yes", ...).
        ``retry_after``: the ``Retry-After`` header value of each 429/503, made when it is sent.
        ``latency_s``: every chat answer takes this long; `max_in_flight` counts the overlap.
        """
        for f in script or []:
            assert f in FAULTS, f
        self.script = deque(script or [])
        self.hang_s = hang_s
        self.vary = vary
        self.p_yes = p_yes
        self.retry_after = retry_after
        self.requests: list[dict] = []
        self.times: list[float] = []  # time.monotonic() of each chat request's arrival
        self.paths: list[str] = []  # request paths with their query strings
        self.served: list[str] = []
        self.latency_s = latency_s
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle --
    def __enter__(self) -> FakeLLM:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def n_chat(self) -> int:
        return len(self.requests)

    def push(self, *faults: str) -> None:
        with self._lock:
            self.script.extend(faults)

    def _next(self, body: dict) -> tuple[str, int]:
        """The fault for this request and the request's index (0-based)."""
        with self._lock:
            self.requests.append(body)
            self.times.append(time.monotonic())
            fault = self.script.popleft() if self.script else "ok"
            self.served.append(fault)
            return fault, len(self.requests) - 1


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLM
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, obj: dict, truncate: bool = False, headers: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        self._send_bytes(status, data, "application/json", truncate, headers)

    def _send_bytes(
        self, status: int, data: bytes, content_type: str, truncate: bool = False, headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if truncate else data)
        if truncate:
            self.wfile.flush()
            self.close_connection = True

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            self._send(200, {"status": "ok"})
        elif self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": "not found"}})
            return
        self.fake.paths.append(self.path)
        with self.fake._lock:
            self.fake.in_flight += 1
            self.fake.max_in_flight = max(self.fake.max_in_flight, self.fake.in_flight)
        try:
            time.sleep(self.fake.latency_s)
            self._answer(body)
        finally:
            with self.fake._lock:
                self.fake.in_flight -= 1

    def _answer(self, body: dict) -> None:
        fault, index = self.fake._next(body)
        if fault in {"429", "500", "503", "400"}:
            headers = (
                {"Retry-After": self.fake.retry_after()} if self.fake.retry_after and fault in {"429", "503"} else None
            )
            self._send(
                int(fault),
                {"error": {"message": f"injected {fault}", "type": "injected", "code": fault}},
                headers=headers,
            )
            return
        if fault == "html":
            self._send_bytes(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html; charset=utf-8")
            return
        if fault == "timeout":
            time.sleep(self.fake.hang_s)
        if fault == "cut_json":
            data = json.dumps(self._completion(body, fault, index)).encode()
            self._send_bytes(200, data[: len(data) // 2], "application/json")
            return
        self._send(200, self._completion(body, fault, index), truncate=(fault == "truncated_body"))

    def _completion(self, body: dict, fault: str, index: int) -> dict:
        prompt = body["messages"][0]["content"]
        logprobs = None
        finish = "stop"
        rf = body.get("response_format")
        if body.get("grammar"):
            pick = answer_for_grammar(body["grammar"], _h(prompt) + (index if self.fake.vary else 0))
            prefill = body["messages"][-1]["content"] if body["messages"][-1]["role"] == "assistant" else ""
            content = prefill + ("x" if fault == "not_integer" else pick)
        elif rf and rf.get("type") == "json_schema":
            salt = index if self.fake.vary else 0
            obj = answer_for_schema(rf["json_schema"]["schema"], salt)
            keys = list(obj)
            if fault == "missing":
                obj.pop(keys[0])
            elif fault == "extra":
                obj["NotAFeature"] = 1
            elif fault == "renamed":
                obj[keys[0].lower() + "_renamed"] = obj.pop(keys[0])
            elif fault == "out_of_range":
                obj[keys[0]] = 42
            elif fault == "not_integer":
                obj[keys[0]] = 2.5
            content = json.dumps(obj)
            if fault == "duplicate":
                content = content[:-1] + f', "{keys[0]}": 0}}'
            if fault == "truncated_json":
                content, finish = content[: len(content) // 2], "length"
        elif body.get("logprobs") and self.fake.p_yes is not None:
            p_yes = self.fake.p_yes(prompt)
            content = "Yes" if p_yes >= 0.5 else "No"
            # 80% of the mass on yes/no variants (split unevenly, so dropping a variant changes
            # the ratio), the rest on tokens that are neither.
            top = [
                {"token": t, "logprob": math.log(w)}
                for t, w in [
                    ("Yes", 0.2 * p_yes),
                    (" yes", 0.5 * p_yes),
                    ("YES", 0.1 * p_yes),
                    ("No", 0.6 * (1 - p_yes)),
                    (" no", 0.1 * (1 - p_yes)),
                    ("NO", 0.1 * (1 - p_yes)),
                    ("Not", 0.08),
                    ("Y", 0.06),
                    ("The", 0.06),
                ]
                if w > 0
            ]
            top.sort(key=lambda t: -t["logprob"])
            logprobs = {"content": [{"token": content, "logprob": top[0]["logprob"], "top_logprobs": top}]}
        elif body.get("logprobs"):
            p_yes = 0.05 + 0.9 * (_h(prompt) % 1000) / 1000
            content = "Yes" if p_yes >= 0.5 else "No"
            top = [
                {"token": "Yes", "logprob": math.log(p_yes * 0.9)},
                {"token": "No", "logprob": math.log((1 - p_yes) * 0.9)},
                {"token": "The", "logprob": math.log(0.1)},
            ]
            top.sort(key=lambda t: -t["logprob"])
            if fault != "no_logprobs":
                logprobs = {"content": [{"token": content, "logprob": top[0]["logprob"], "top_logprobs": top}]}
        else:
            content = "Step by step: every feature matters a little. " * 3
        choice = {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}
        if logprobs:
            choice["logprobs"] = logprobs
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": [] if fault == "no_choices" else [choice],
            "usage": {
                "prompt_tokens": len(prompt.split()),
                "completion_tokens": len(content.split()),
                "total_tokens": len(prompt.split()) + len(content.split()),
            },
        }
