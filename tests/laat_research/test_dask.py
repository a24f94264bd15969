"""The same cells on a Dask cluster (a LocalCluster), in-process, and on local joblib workers
(the session-scoped `swept` fixture): identical rows."""

import logging

import distributed  # a required dependency (dask[distributed]): no skip when it is missing
import pandas as pd

from laat_research.sweep import run_sweep

from .conftest import tiny_config

SUBSET = dict(
    datasets=["diabetes"],
    protocols=["few_shot"],
    methods=["laat_lr", "laat_mlp", "lr", "rf"],
    prior_sources=["random", "oracle"],
)
KEYS = ["dataset", "protocol", "k", "method", "prior_source", "repetition"]


def _rows_of(reference: pd.DataFrame, subset: pd.DataFrame) -> pd.DataFrame:
    """The reference sweep's rows for the subset's cells, in the subset's order and columns."""
    ref = subset[KEYS].merge(reference, on=KEYS, how="left")
    return ref[subset.columns]


def test_dask_local_joblib_and_sequential_agree(tmp_path, contexts, swept):
    seq = run_sweep(tiny_config(tmp_path / "seq", **SUBSET), contexts=contexts)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None, silence_logs=logging.WARNING
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        dask = run_sweep(tiny_config(tmp_path / "dask", **SUBSET), contexts=contexts, client=client)
    assert dask.info["backend"] == "dask" and dask.info["cells_computed"] == dask.info["cells_total"] == 6
    timing = ["fit_seconds"]
    pd.testing.assert_frame_equal(dask.results.drop(columns=timing), seq.results.drop(columns=timing))
    loky = _rows_of(swept[1].results, dask.results)
    pd.testing.assert_frame_equal(
        dask.results.drop(columns=timing + ["cell_hash"]).dropna(axis=1, how="all"),
        loky.drop(columns=timing + ["cell_hash"]).dropna(axis=1, how="all"),
    )


def test_scheduler_address_from_config(tmp_path, contexts):
    """`dask_scheduler` alone (no client passed) connects to that cluster."""
    kw = dict(datasets=["bodyfat"], protocols=["few_shot"], methods=["laat_lr", "lr"], prior_sources=["oracle"])
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None, silence_logs=logging.WARNING
    ) as cluster:
        out = run_sweep(tiny_config(tmp_path, dask_scheduler=cluster.scheduler_address, **kw), contexts=contexts)
    ref = run_sweep(tiny_config(tmp_path / "ref", **kw), contexts=contexts).results
    assert out.info["backend"] == "dask"
    pd.testing.assert_frame_equal(out.results.drop(columns=["fit_seconds"]), ref.drop(columns=["fit_seconds"]))
