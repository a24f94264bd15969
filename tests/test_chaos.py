"""Production faults for real: concurrent `kedro run` processes, concurrent promotion, kill -9,
a fresh store opened by two processes at once, and stages run alone.

Priors come from `oracle` and `random`, so no LLM is started. Each test uses its own copy
of the project (`project`) with its own sqlite MLflow store.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode: make project_copy importable

from project_copy import cli_env, copy_project, run_session

pytestmark = pytest.mark.slow

# What `kedro run` prints to claim a dead run (laat.hooks.RunIsolation).
KILLED_LOG = "marked KILLED"
# Barrier for processes that must act at the same moment: each touches `<dir>/<step>-<name>`,
# then waits until `n` such files exist (a peer that died fails the wait, not a hang).
BARRIER = """
import pathlib, time
def barrier(path, step, me, n=2, timeout=60):
    pathlib.Path(path, f"{step}-{me}").touch()
    deadline = time.monotonic() + timeout
    while len(list(pathlib.Path(path).glob(f"{step}-*"))) < n:
        assert time.monotonic() < deadline, f"barrier {step}: a peer process never arrived"
        time.sleep(0.001)
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # in-process sessions write ./mlruns here, as `kedro run` in the copy does
    return copy_project(tmp_path, ["diabetes"])


def _kedro_run(project: Path, log_name: str, *args: str) -> subprocess.Popen:
    """`kedro run` in the project copy, as a user starts it; output goes to `<log_name>.log`."""
    log = open(project / f"{log_name}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", *args], cwd=project, env=cli_env(), stdout=log, stderr=subprocess.STDOUT
    )


def _finish(project: Path, log_name: str, proc: subprocess.Popen, timeout: float = 240) -> str:
    rc = proc.wait(timeout=timeout)
    out = (project / f"{log_name}.log").read_text()
    assert rc == 0, f"`kedro run` ({log_name}) exited {rc}:\n{out[-4000:]}"
    return out


def _client(path: Path):
    """Tracking and registry both on the store at `path` (never a registry URI set globally)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{path / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _versions_by_prior(client) -> dict[str, list]:
    out: dict[str, list] = {}
    for mv in client.search_model_versions("name = 'laat-diabetes'"):
        source = client.get_run(mv.run_id).data.tags["diabetes.prior.source"]
        out.setdefault(source, []).append(mv)
    return out


def _predict(project: Path, version) -> np.ndarray:
    """The registered version's answers on every CSV row.

    Loading a pyfunc model puts its bundled copy of `laat` first on sys.path and drops the
    imported `laat` modules; both are restored so later tests run the project's own code.
    """
    import mlflow

    path, own = list(sys.path), {k: m for k, m in sys.modules.items() if k.split(".")[0] == "laat"}
    try:
        mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
        model = mlflow.pyfunc.load_model(f"models:/laat-diabetes/{version.version}")
        rows = pd.read_csv(project / "data/01_raw/diabetes.csv").drop(columns=["Outcome"])
        return model.predict(rows)["p_yes"].to_numpy()
    finally:
        sys.path[:] = path
        for name in [k for k in sys.modules if k.split(".")[0] == "laat"]:
            del sys.modules[name]
        sys.modules.update(own)


def test_two_concurrent_runs_each_register_the_model_a_run_alone_makes(project):
    # Both start on a fresh project: neither may die creating the MLflow store.
    oracle = _kedro_run(project, "oracle", "--params", "prior_source=oracle")
    random = _kedro_run(project, "random", "--params", "prior_source=random")
    _finish(project, "oracle", oracle)
    _finish(project, "random", random)
    alone = _kedro_run(project, "random_alone", "--params", "prior_source=random")
    _finish(project, "random_alone", alone)

    client = _client(project)
    by_prior = _versions_by_prior(client)
    assert sorted((k, len(v)) for k, v in by_prior.items()) == [("oracle", 1), ("random", 2)]
    run_ids = {client.get_run(mv.run_id).data.tags["laat.run_id"] for vs in by_prior.values() for mv in vs}
    assert len(run_ids) == 3, run_ids
    concurrent_random, random_alone = sorted(by_prior["random"], key=lambda mv: int(mv.version))
    # Same parameters, same data, same seeds: the concurrent run's version is the lone run's
    # model, bit for bit (same machine, same code path), and not the oracle run's model.
    np.testing.assert_array_equal(_predict(project, concurrent_random), _predict(project, random_alone))
    assert not np.array_equal(_predict(project, by_prior["oracle"][0]), _predict(project, concurrent_random))
    for run_id in run_ids:
        assert (project / "data/06_models/diabetes" / run_id / "laat_model.pkl").is_file()


PREPARE = (
    BARRIER
    + """
import sys
import mlflow.store.tracking.sqlalchemy_store  # imported before the barrier: only the store start races
from laat.hooks import _prepare_store
barrier(sys.argv[2], "start", sys.argv[3])
_prepare_store(sys.argv[1], "laat")
"""
)


def test_two_processes_opening_a_fresh_store_at_once_both_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PREPARE, uri, str(tmp_path), me],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for me in "ab"
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    client = _client(tmp_path)
    assert [e.name for e in client.search_experiments() if e.name == "laat"] == ["laat"]


PROMOTE = (
    BARRIER
    + """
import sys
from mlflow import MlflowClient
from laat.serving import promote_if_better
uri, barrier_dir, me, version, value, trials = sys.argv[1:7]
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
for t in range(int(trials)):
    barrier(barrier_dir, t, me)
    promote_if_better(client, f"m{t}", version, "roc_auc", float(value))
"""
)


def test_two_processes_promoting_at_once_leave_the_best_as_champion(tmp_path):
    trials = 6
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = _client(tmp_path)
    for t in range(trials):
        client.create_registered_model(f"m{t}")
        for _ in range(2):
            client.create_model_version(f"m{t}", source=str(tmp_path))
    # v1 (worse) and v2 (better) are promoted from two processes at the same moment
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROMOTE, uri, str(tmp_path), me, version, value, str(trials)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for me, version, value in [("a", "1", "0.70"), ("b", "2", "0.90")]
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs

    for t in range(trials):
        assert str(client.get_model_version_by_alias(f"m{t}", "champion").version) == "2", t
        best = client.get_model_version(f"m{t}", "2").tags
        worse = client.get_model_version(f"m{t}", "1").tags
        assert best["promotion.promoted"] == "True", best
        # the worse one either lost the comparison or held the alias until the better one came
        assert worse["promotion.promoted"] == "False" or worse["promotion.superseded_by"] == "2", worse


def _running_run_of(db: Path, pid: int) -> str | None:
    """The MLflow run tagged with `pid` while it is RUNNING (read-only: never create the store)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            row = con.execute(
                "SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                "WHERE r.status = 'RUNNING' AND t.key = 'laat.pid' AND t.value = ?",
                (str(pid),),
            ).fetchone()
    except sqlite3.OperationalError:  # the store does not exist yet, or is being created
        return None
    return row[0] if row else None


def test_a_run_killed_with_sigkill_is_marked_killed_by_the_next_run(project):
    victim = _kedro_run(project, "victim", "--params", "prior_source=oracle")
    deadline = time.monotonic() + 120
    while (run_id := _running_run_of(project / "mlflow.db", victim.pid)) is None:
        assert victim.poll() is None, (project / "victim.log").read_text()[-4000:]
        assert time.monotonic() < deadline, "the run never showed up as RUNNING"
        time.sleep(0.1)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    client = _client(project)
    assert client.get_run(run_id).info.status == "RUNNING"  # nobody ended it

    out = _finish(
        project, "next", _kedro_run(project, "next", "--pipeline", "data_validation", "--namespaces", "diabetes")
    )
    killed = client.get_run(run_id)
    assert killed.info.status == "KILLED"
    assert killed.info.end_time is not None
    assert f"process {victim.pid} " in killed.data.tags["laat.recovered"]
    assert KILLED_LOG in out and run_id in out


def test_each_stage_runs_alone_once_its_inputs_exist(project):
    only = {"namespaces": ["diabetes"]}
    params = {"prior_source": "oracle", "run_id": "stages-alone"}
    run_session(project, "data_validation", {}, **only)
    assert (project / "data/02_intermediate/diabetes/validated.parquet").is_file()

    run_session(project, "prior_elicitation", {"prior_source": "oracle"}, **only)
    assert (project / "data/04_feature/diabetes/prior_oracle.json").is_file()

    run_session(project, "training", params, **only)
    model = project / "data/06_models/diabetes/stages-alone/laat_model.pkl"
    assert model.is_file()
    client = _client(project)
    assert client.search_registered_models() == []

    run_session(project, "evaluation", params, **only)
    registration = pd.read_json(project / "data/08_reporting/diabetes/stages-alone/registration.json", typ="series")
    assert registration["registered"] and registration["new_version"] == "1"

    # --from-nodes: refit from the persisted split of the same run, then evaluate again
    fitted_at = model.stat().st_mtime_ns
    run_session(project, "diabetes", params, from_nodes=["diabetes.fit_model"])
    assert model.stat().st_mtime_ns > fitted_at
    versions = client.search_model_versions("name = 'laat-diabetes'")
    assert sorted(str(mv.version) for mv in versions) == ["1", "2"]
    runs = [client.get_run(mv.run_id) for mv in versions]
    assert len({r.info.run_id for r in runs}) == 2
    assert {r.data.tags["laat.run_id"] for r in runs} == {"stages-alone"}


def test_a_hand_edited_prior_json_is_neither_overwritten_nor_used(project):
    from kedro.io import DatasetError

    from laat.priors import PriorError

    only = {"namespaces": ["diabetes"]}
    run_session(project, "data_validation", {}, **only)
    run_session(project, "prior_elicitation", {"prior_source": "oracle"}, **only)
    path = project / "data/04_feature/diabetes/prior_oracle.json"
    edited = json.loads(path.read_text())
    edited["mean"][0] += 1.0
    path.write_text(json.dumps(edited))

    with pytest.raises(DatasetError, match=r"prior_oracle.json: this generated prior was edited by hand"):
        run_session(project, "prior_elicitation", {"prior_source": "oracle"}, **only)
    assert json.loads(path.read_text())["mean"] == edited["mean"]
    with pytest.raises(PriorError, match="edited by hand"):
        run_session(project, "training", {"prior_source": "oracle"}, **only)
