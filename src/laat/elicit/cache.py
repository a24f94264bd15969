"""Content-addressed on-disk cache of raw LLM responses.

Each LLM call is stored under the sha256 of everything that determines its answer (model
identity, endpoint kind, strategy, the full request including prompt and sampling
parameters, sample index and attempt). Writes are atomic (temp file in the same directory,
then published under the final name), so a run killed mid-elicitation leaves only complete
entries and keeps every sample already paid for.

The first answer written for a key wins: it is published with `os.link`, which fails
instead of overwriting, so two processes eliciting the same key at once both end up using
the same stored answer, and every rerun reproduces it. Only an explicit refresh replaces it.

Each entry records the sha256 of its answer: an entry edited by hand (or by anything but
this module) no longer matches and is refused with `CacheEntryEditedError`, instead of
passing for the model's answer. Answers a sample gave up on are moved to ``invalid/``
(`set_aside`), out of the way of the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from laat.elicit.errors import CacheEntryEditedError
from laat.priors import HOW_TO_EDIT

log = logging.getLogger(__name__)

CACHE_VERSION = 1
INVALID_DIR = "invalid"


def _canonical_sha256(obj: Any) -> str:
    canon = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def cache_key(payload: dict[str, Any]) -> str:
    return _canonical_sha256({"v": CACHE_VERSION, **payload})


def answer_digest(response: Any) -> str:
    """sha256 of an answer as stored (key order and whitespace do not matter)."""
    return _canonical_sha256(response)


class ResponseCache:
    """JSON files at ``<root>/<key[:2]>/<key>.json``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    @property
    def invalid_dir(self) -> Path:
        return self.root / INVALID_DIR

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        try:
            with p.open(encoding="utf-8") as fh:
                entry = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            # Only possible if something outside this module damaged the file: treat as a miss.
            log.warning("ignoring unreadable LLM cache entry %s (%s)", p, exc)
            return None
        if not isinstance(entry, dict) or entry.get("key") != key:
            log.warning("ignoring LLM cache entry %s: key mismatch", p)
            return None
        if entry.get("response_sha256") != answer_digest(entry.get("response")):
            why = (
                "records no answer digest"
                if "response_sha256" not in entry
                else "no longer matches the answer digest recorded when it was paid for"
            )
            raise CacheEntryEditedError(
                f"LLM cache entry {p} {why}: it was edited or written by another tool, and would pass "
                "for the model's own answer. Delete the file, or set `refresh: true`, to ask the model "
                f"again. To change a prior by hand, {HOW_TO_EDIT.format(dataset='<dataset>')}."
            )
        return entry

    def put(self, key: str, entry: dict[str, Any], *, replace: bool = False) -> dict[str, Any]:
        """Store ``entry`` under ``key`` unless a valid entry is already there.

        Returns the entry now stored: ``entry`` itself, or the answer another writer stored
        first (use it, so this run agrees with the cache). ``replace=True`` (a refresh)
        overwrites instead. A damaged entry is always replaced.
        """
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        stored = {**entry, "key": key, "response_sha256": answer_digest(entry.get("response"))}
        data = json.dumps(stored, ensure_ascii=False, indent=1, default=str)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        try:
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; cache entries are not secret
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if replace:
                os.replace(tmp, p)
                return stored
            winner = self._publish_first(tmp, p, key)
            return stored if winner is None else winner
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def _publish_first(self, tmp: str, p: Path, key: str) -> dict[str, Any] | None:
        """Give ``tmp`` the name ``p`` unless a valid entry holds it; return that entry if so."""
        try:
            os.link(tmp, p)  # atomic and never overwrites: exactly one writer gets the name
            return None
        except FileExistsError:
            pass
        except OSError:
            # No hard links on this file system: check, then rename (a tiny race window remains).
            existing = self.get(key) if p.exists() else None
            if existing is not None:
                return existing
            os.replace(tmp, p)
            return None
        existing = self.get(key)
        if existing is not None:
            log.debug("LLM cache entry %s was written first by another run: using it", p)
            return existing
        os.replace(tmp, p)  # the file there is damaged or foreign (get() said why): replace it
        return None

    def set_aside(self, key: str) -> Path | None:
        """Move the entry for ``key`` to ``invalid/`` (time-stamped, nothing overwritten)."""
        p = self.path(key)
        dest = self.invalid_dir / key[:2] / f"{key}.{time.time_ns()}.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(p, dest)
        except FileNotFoundError:  # already set aside by a concurrent run
            return None
        return dest
