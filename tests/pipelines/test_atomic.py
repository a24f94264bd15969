"""Atomic catalog datasets: a save replaces the whole file or nothing, and leaves no temp file."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from kedro.io.core import DatasetError

from laat.pipelines.atomic import AtomicJSONDataset, AtomicParquetDataset, AtomicTextDataset


def test_a_failed_save_keeps_the_previous_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "prior_oracle.json"
    ds = AtomicJSONDataset(filepath=str(path))
    ds.save({"scores": [1, 2]})
    with pytest.raises(DatasetError):
        ds.save({"scores": object()})  # not JSON-serialisable: fails half-way through writing
    assert ds.load() == {"scores": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["prior_oracle.json"]


def test_a_reader_never_sees_a_torn_parquet_file_while_another_writer_replaces_it(tmp_path):
    path = tmp_path / "sub" / "validated.parquet"
    frames = [pd.DataFrame({"x": range(n), "y": [str(i) for i in range(n)]}) for n in (20_000, 30_000)]
    writer = AtomicParquetDataset(filepath=str(path))
    writer.save(frames[0])
    stop = threading.Event()

    def keep_writing():
        i = 0
        while not stop.is_set():
            writer.save(frames[i % 2])
            i += 1

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        lengths = {len(AtomicParquetDataset(filepath=str(path)).load()) for _ in range(40)}
    finally:
        stop.set()
        thread.join()
    assert lengths <= {20_000, 30_000}
    assert [p.name for p in path.parent.iterdir()] == ["validated.parquet"]


def test_text_dataset_round_trips_and_remote_paths_are_refused(tmp_path):
    ds = AtomicTextDataset(filepath=str(tmp_path / "prior_oracle.yml"))
    ds.save("a: 1\n")
    assert ds.load() == "a: 1\n"
    with pytest.raises(DatasetError, match="local files only"):
        AtomicTextDataset(filepath="memory://prior.yml")
