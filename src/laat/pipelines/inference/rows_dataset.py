"""`RowsDataset`: the new rows to score, a CSV or parquet file named at run time (`--params input=<file>`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet}


class RowsDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only: the rows as stored, chosen by suffix; a clear error when no file is named."""

    def __init__(self, filepath: str = "", metadata: dict[str, Any] | None = None):
        self._filepath = str(filepath or "")
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        path = Path(self._filepath)
        if not self._filepath:
            raise DatasetError(
                "no rows to score: name them with `--params input=<file.csv|file.parquet>` or `input=<catalog entry>`"
            )
        if path.suffix.lower() not in READERS:
            raise DatasetError(
                f"input {self._filepath!r}: not a catalog entry, and not a file ending in {sorted(READERS)}"
            )
        if not path.is_file():
            raise DatasetError(f"input {self._filepath!r}: no such file (relative paths start at the project root)")
        return READERS[path.suffix.lower()](path)

    def save(self, data: pd.DataFrame) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only (the rows to score)")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
