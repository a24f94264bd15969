"""One inter-process lock per MLflow store, for the steps that read, decide and then write.

SQLite serialises single statements, not an MLflow-level read-compare-write: creating the
tables of a fresh store (alembic migrations) and moving the champion alias both race when
two processes do them at once. For a ``sqlite:///`` store the lock file sits next to the
database (``mlflow.db.lock``), so every process using that file shares it; for any other
store it lives in the temp directory, keyed by the URI, which protects processes on this
machine only.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from filelock import FileLock

SQLITE_PREFIX = "sqlite:///"
# Long enough for a slow migration on a busy machine; a lock held longer than this is a bug.
TIMEOUT_S = 300.0


def lock_path(store_uri: str) -> Path:
    """Where the lock file for ``store_uri`` lives (relative sqlite paths follow the CWD, as in MLflow)."""
    if store_uri.startswith(SQLITE_PREFIX):
        db = Path(store_uri.removeprefix(SQLITE_PREFIX).split("?", 1)[0])
        return db.with_name(db.name + ".lock")
    digest = hashlib.sha256(store_uri.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"laat-mlflow-{digest}.lock"


def store_lock(store_uri: str) -> FileLock:
    """A (re-entrant, blocking) file lock for ``store_uri``; use it as a context manager."""
    path = lock_path(store_uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path), timeout=TIMEOUT_S)
