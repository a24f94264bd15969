"""Run ids, process liveness and store lock paths used by laat.hooks.RunIsolation."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from kedro.validation import ParameterValidationError

from laat.hooks import _process_alive, check_run_id, new_run_id
from laat.store_lock import lock_path


def test_fresh_run_ids_are_distinct_usable_folder_names():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(check_run_id(i) == i for i in ids)
    assert str(os.getpid()) in next(iter(ids))


@pytest.mark.parametrize("bad", ["", "../other-run", "a/b", ".hidden", "-x", "x" * 129, "run id"])
def test_a_run_id_that_is_not_a_plain_folder_name_is_refused_with_the_value(bad):
    with pytest.raises(ParameterValidationError, match="is not a usable folder name") as err:
        check_run_id(bad)
    assert repr(bad) in str(err.value)


def test_a_finished_process_is_not_alive_and_this_one_is():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid no longer exists
    assert not _process_alive(child.pid)
    assert _process_alive(os.getpid())


def test_the_lock_sits_next_to_a_sqlite_store_and_in_the_temp_dir_otherwise():
    assert lock_path("sqlite:////data/mlflow.db") == Path("/data/mlflow.db.lock")
    assert lock_path("sqlite:///mlflow.db") == Path("mlflow.db.lock")
    remote = lock_path("http://127.0.0.1:5000")
    assert remote.parent == Path(tempfile.gettempdir()) and remote != lock_path("http://127.0.0.1:5001")
