"""Catalog datasets that replace their file atomically: write a temp file, then ``os.replace``.

For files kept at one path across runs (validated rows, the prior of each source): two
concurrent runs may both write the same file, and a reader must see one whole version,
never a half-written one (nor, for parquet, parts of two). Local files only (``os.replace`` is atomic on one filesystem).
"""

from __future__ import annotations

import os
import secrets
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import ParquetDataset
from kedro_datasets.text import TextDataset


class _AtomicSave:
    """Mixin before a kedro-datasets file dataset: its own ``save`` writes to a temp sibling."""

    _atomic_tmp: PurePosixPath | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._protocol != "file":
            raise DatasetError(f"{type(self).__name__} writes local files only, got {self._filepath}")

    def _get_save_path(self) -> PurePosixPath:
        return self._atomic_tmp or super()._get_save_path()

    def save(self, data: Any) -> None:
        final = super()._get_save_path()
        # hidden and unique per writer, in the target's folder (os.replace must not cross filesystems)
        self._atomic_tmp = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        tmp = get_filepath_str(self._atomic_tmp, self._protocol)
        try:
            super().save.__wrapped__(self, data)  # the parent's undecorated save, into the temp path
            os.replace(tmp, get_filepath_str(final, self._protocol))
        finally:
            self._atomic_tmp = None
            if os.path.exists(tmp):
                os.remove(tmp)


class AtomicJSONDataset(_AtomicSave, JSONDataset):
    """``json.JSONDataset`` with an atomic save."""


class AtomicParquetDataset(_AtomicSave, ParquetDataset):
    """``pandas.ParquetDataset`` with an atomic save, read through one open file.

    ``pd.read_parquet(path)`` may open the path more than once (footer, then row groups); a
    replace in between mixes two versions ("Invalid column metadata"). One handle pins one.
    """

    def load(self) -> pd.DataFrame:
        with self._fs.open(get_filepath_str(self._get_load_path(), self._protocol), mode="rb") as f:
            return pd.read_parquet(f, **self._load_args)


class AtomicTextDataset(_AtomicSave, TextDataset):
    """``text.TextDataset`` with an atomic save."""
