"""`PriorJSONDataset`: the prior JSON file, which refuses to overwrite a hand-edited prior.

Editing ``prior_<source>.json`` is not how a prior is changed (the expert YAML is): when the
file on disk no longer matches its fingerprint, saving stops with an error naming the file,
so the edit is neither silently lost nor silently used. The file is replaced atomically, as
every file shared by concurrent runs is (laat.pipelines.atomic).
"""

from __future__ import annotations

import json
from typing import Any

from kedro.io.core import get_filepath_str

from laat.pipelines.atomic import AtomicJSONDataset
from laat.priors import HOW_TO_EDIT, Prior, PriorError

_HOW = f"To change a prior, {HOW_TO_EDIT.format(dataset='<dataset>')}; delete this file to regenerate it."


class PriorJSONDataset(AtomicJSONDataset):
    """An atomic `json.JSONDataset` that checks the file it is about to replace (see the module docstring)."""

    def save(self, data: Any) -> None:
        if self._exists():  # the latest version, when versioned
            path = get_filepath_str(self._get_load_path(), self._protocol)
            with self._fs.open(path, "r") as fh:
                text = fh.read()
            try:
                previous = json.loads(text)
            except json.JSONDecodeError as exc:
                raise PriorError(f"{path}: not valid JSON ({exc}); it was edited by hand. " + _HOW) from None
            Prior.from_dict(previous, origin=path)  # raises if the scores were edited
        super().save(data)
