"""The deployable model against a real sqlite MLflow store and registry under tmp_path."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from importlib import metadata as importlib_metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from laat.datasets import encode, labels, load_dataset, load_metadata
from laat.metrics import classification_metrics
from laat.serving import (CHAMPION, InputError, LAATPyfuncModel, check_raw_rows, log_model,
                          pip_requirements_for, promote_if_better)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A sqlite tracking store + registry with artifacts under the same temp dir."""
    root = tmp_path_factory.mktemp("mlflow")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    exp_id = mlflow.create_experiment("serving-tests", artifact_location=(root / "artifacts").as_uri())
    yield {"uri": uri, "experiment_id": exp_id, "client": MlflowClient(), "root": root}
    mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def diabetes(project_root):
    meta = load_metadata(project_root / "conf/base/datasets/diabetes.yml")
    df = load_dataset(meta, root=project_root)
    test = df.sample(frac=0.3, random_state=0)
    train = df.drop(test.index)
    return meta, train, test


def _fit(meta, train, shuffle_labels: bool = False):
    y = labels(train, meta)
    if shuffle_labels:  # a genuinely worse model: it learns from permuted labels
        y = np.random.default_rng(0).permutation(y)
    return make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=2000)).fit(encode(train, meta), y)


def _log(store, est, meta, train, name=None):
    with mlflow.start_run(experiment_id=store["experiment_id"]):
        return log_model(est, meta.model_dump(), train, registered_model_name=name)


@pytest.fixture(scope="module")
def logged(store, diabetes):
    """A good and a worse model, each logged once with its test metrics in its run.

    Registry tests register new versions of these (cheap) instead of re-logging.
    """
    meta, train, test = diabetes
    out = {}
    for kind, est in (("good", _fit(meta, train)), ("bad", _fit(meta, train, shuffle_labels=True))):
        metrics = classification_metrics(labels(test, meta), est.predict_proba(encode(test, meta))[:, 1])
        with mlflow.start_run(experiment_id=store["experiment_id"]):
            mlflow.log_metrics(metrics)
            info = log_model(est, meta, train, registered_model_name=f"diab-logged-{kind}")
        assert info.registered_model_version == 1
        out[kind] = {"est": est, "uri": info.model_uri, **metrics}
    # preconditions of the promotion tests, measured rather than assumed
    assert out["bad"]["roc_auc"] < out["good"]["roc_auc"] and out["good"]["log_loss"] < out["bad"]["log_loss"]
    return out


@pytest.fixture(scope="module")
def laat_model(diabetes):
    from laat.estimator import LAATClassifier
    from laat.priors import oracle_prior

    meta, train, _ = diabetes
    X, y = encode(train, meta), labels(train, meta)
    prior = oracle_prior(X, y, meta)  # ORACLE prior (fit on these labels): a test fixture, not an LLM prior
    return LAATClassifier(gamma=100.0, prior=prior, epochs=50, random_state=0).fit(X, y)


def _register(model: dict, name: str) -> str:
    return str(mlflow.register_model(model["uri"], name).version)


def _champion(client, name) -> str:
    return str(client.get_model_version_by_alias(name, CHAMPION).version)


def test_champion_from_registry_predicts_raw_rows_like_the_estimator(store, diabetes, logged):
    meta, _, test = diabetes
    good = logged["good"]
    version = _register(good, "diab-roundtrip")
    assert version == "1"
    decision = promote_if_better(store["client"], "diab-roundtrip", version, "roc_auc", good["roc_auc"])
    assert decision["promoted"] and "no version held" in decision["reason"]

    served = mlflow.pyfunc.load_model(f"models:/diab-roundtrip@{CHAMPION}")
    out = served.predict(test)  # raw CSV rows, target column included (ignored)
    assert list(out.columns) == ["p_no", "p_yes"]
    expected = good["est"].predict_proba(encode(test, meta))
    np.testing.assert_allclose(out.to_numpy(), expected, rtol=1e-10, atol=1e-12)
    # same numbers for rows sent as floats, as a JSON client would
    np.testing.assert_allclose(served.predict(test[meta.raw_columns].astype(float)).to_numpy(), expected)


def test_logged_model_pins_installed_versions_and_ships_laat(diabetes, logged):
    meta = diabetes[0]
    local = Path(mlflow.artifacts.download_artifacts(logged["good"]["uri"]))
    reqs = (local / "requirements.txt").read_text().split()
    assert f"scikit-learn=={importlib_metadata.version('scikit-learn')}" in reqs
    assert f"pandas=={importlib_metadata.version('pandas')}" in reqs
    assert not any(r.startswith("torch") for r in reqs)  # a scikit-learn model does not need torch
    assert (local / "code" / "laat" / "datasets.py").exists()
    example = json.loads((local / "input_example.json").read_text())
    assert example["columns"] == meta.raw_columns  # raw columns only, no target
    sig = mlflow.models.get_model_info(logged["good"]["uri"]).signature
    assert sig.inputs.input_names() == meta.raw_columns
    assert sig.outputs.input_names() == ["p_no", "p_yes"]


def test_pip_requirements_are_exact_pins():
    reqs = pip_requirements_for(LogisticRegression())
    assert all("==" in r for r in reqs)
    assert f"mlflow=={mlflow.__version__}" in reqs


def test_promotion_keeps_champion_against_worse_and_moves_for_better(store, logged):
    client, name = store["client"], "diab-promo"
    good, bad = logged["good"], logged["bad"]

    v1 = _register(bad, name)
    assert promote_if_better(client, name, v1, "roc_auc", bad["roc_auc"])["promoted"]

    v2 = _register(bad, name)  # the same model again: a tie does not move the alias
    tie = promote_if_better(client, name, v2, "roc_auc", bad["roc_auc"])
    assert not tie["promoted"] and tie["previous_version"] == v1
    assert _champion(client, name) == v1

    v3 = _register(good, name)
    win = promote_if_better(client, name, v3, "roc_auc", good["roc_auc"])
    assert win["promoted"] and win["previous_value"] == pytest.approx(bad["roc_auc"])
    assert "beats" in win["reason"]
    assert _champion(client, name) == v3

    v4 = _register(bad, name)
    lose = promote_if_better(client, name, v4, "roc_auc", bad["roc_auc"])
    assert not lose["promoted"] and "does not beat" in lose["reason"]
    assert lose["previous_version"] == v3 and lose["previous_value"] == pytest.approx(good["roc_auc"])
    assert _champion(client, name) == v3

    tags = client.get_model_version(name, v4).tags
    assert tags["promotion.promoted"] == "False" and tags["promotion.previous_version"] == v3
    assert float(tags["eval.roc_auc"]) == pytest.approx(bad["roc_auc"])


def test_lower_is_better_and_champion_metric_read_from_its_run(store, logged):
    client, name = store["client"], "diab-logloss"
    good, bad = logged["good"], logged["bad"]
    v1 = _register(bad, name)
    client.set_registered_model_alias(name, CHAMPION, v1)  # by hand: no eval.* tag, metric only in its run
    v2 = _register(good, name)
    d = promote_if_better(client, name, v2, "log_loss", good["log_loss"], higher_is_better=False)
    assert d["promoted"] and d["previous_value"] == pytest.approx(bad["log_loss"])
    assert "lower is better" in d["reason"]
    assert _champion(client, name) == v2


def test_champion_without_a_recorded_metric_is_not_replaced(store, logged):
    client, name = store["client"], "diab-unknown"
    v1 = _register(logged["bad"], name)
    client.set_registered_model_alias(name, CHAMPION, v1)
    v2 = _register(logged["good"], name)
    d = promote_if_better(client, name, v2, "brier_at_0.3", 0.01)  # a metric nobody recorded
    assert not d["promoted"] and "no recorded brier_at_0.3" in d["reason"]
    assert _champion(client, name) == v1
    with pytest.raises(ValueError, match="is nan"):
        promote_if_better(client, name, v2, "roc_auc", float("nan"))


def test_missing_raw_column_is_named(diabetes, logged):
    meta, _, test = diabetes
    rows = test.drop(columns=["Glucose", "BMI"])
    with pytest.raises(InputError, match=r"missing raw columns \['Glucose', 'BMI'\]"):
        LAATPyfuncModel(meta.model_dump(), logged["good"]["est"]).predict(None, rows)
    served = mlflow.pyfunc.load_model(logged["good"]["uri"])
    with pytest.raises(MlflowException, match=r"missing inputs \['Glucose', 'BMI'\]"):
        served.predict(rows)


def test_bad_values_are_named(project_root):
    meta = load_metadata(project_root / "conf/base/datasets/indian_liver.yml")
    rows = load_dataset(meta, root=project_root).head(3).copy()
    rows["Gender"] = rows["Gender"].astype(object)
    rows["Age"] = rows["Age"].astype(object)
    rows.loc[rows.index[0], "Gender"] = "Other"
    rows.loc[rows.index[1], "Age"] = "forty"
    with pytest.raises(InputError) as err:
        check_raw_rows(rows, meta)
    assert "'Gender' has unknown categories ['Other'] (known: ['Female', 'Male'])" in str(err.value)
    assert "'Age' has non-numeric values ['forty']" in str(err.value)


def test_estimator_fit_on_other_columns_is_refused_at_logging(store, diabetes):
    meta, train, _ = diabetes
    X = encode(train, meta).drop(columns=["Age"])
    est = LogisticRegression(max_iter=2000).fit(X, labels(train, meta))
    with mlflow.start_run(experiment_id=store["experiment_id"]):
        with pytest.raises(ValueError, match=r"missing \['Age'\]"):
            log_model(est, meta, train)


# ---- the real HTTP server ------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_raw_rows(store, diabetes, laat_model, tmp_path):
    """A LAATClassifier (torch inside) served from the registry by a fresh process."""
    meta, train, test = diabetes
    est, name = laat_model, "diab-served"
    info = _log(store, est, meta, train, name)
    auc = classification_metrics(labels(test, meta), est.predict_proba(encode(test, meta))[:, 1])["roc_auc"]
    assert promote_if_better(store["client"], name, info.registered_model_version, "roc_auc", auc)["promoted"]

    port = _free_port()
    log = tmp_path / "serve.log"
    bin_dir = Path(sys.executable).parent
    # serve runs `exec uvicorn` through a shell: the venv's bin must be on PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"], "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    mlflow_cli = bin_dir / "mlflow"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(mlflow_cli), "models", "serve", "-m", f"models:/{name}@{CHAMPION}", "--env-manager", "local",
             "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            started = time.monotonic()
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"mlflow models serve exited with {proc.returncode}:\n{log.read_text()}")
                try:
                    with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                        if r.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"server not ready after 120 s:\n{log.read_text()}")
                time.sleep(0.5)
            print(f"mlflow models serve ready after {time.monotonic() - started:.1f} s")

            rows = test.head(20)
            body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
            req = urllib.request.Request(f"{base}/invocations", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                preds = json.loads(r.read())["predictions"]
            got = pd.DataFrame(preds)
            assert list(got.columns) == ["p_no", "p_yes"]
            np.testing.assert_allclose(got.to_numpy(), est.predict_proba(encode(rows, meta)), rtol=1e-9)

            bad = {"dataframe_split": json.loads(rows.drop(columns=["Glucose"]).to_json(orient="split", index=False))}
            req = urllib.request.Request(f"{base}/invocations", data=json.dumps(bad).encode(),
                                         headers={"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=30)
            assert err.value.code == 400 and "Glucose" in err.value.read().decode()
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_laat_classifier_round_trips_and_pins_cpu_torch(store, diabetes, laat_model):
    meta, train, test = diabetes
    info = _log(store, laat_model, meta, train)
    reqs = (Path(mlflow.artifacts.download_artifacts(info.model_uri)) / "requirements.txt").read_text().splitlines()
    torch_version = importlib_metadata.version("torch").split("+")[0]
    assert f"torch=={torch_version}" in reqs
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in reqs
    served = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_allclose(served.predict(test).to_numpy(), laat_model.predict_proba(encode(test, meta)),
                               rtol=1e-10, atol=1e-12)


def test_served_model_scores_raw_rows_with_gaps_using_the_training_medians(gappy, tmp_path):
    """The imputer fitted on training rows is saved inside the pyfunc and applied to requests."""
    from mlflow.models import ModelSignature

    from laat.datasets import parse_metadata
    from laat.estimator import LAATClassifier
    from laat.preprocess import with_imputer
    from laat.serving import input_schema

    raw, df = gappy
    meta = parse_metadata(raw)
    train, test = df.iloc[:60], df.iloc[60:]
    model = with_imputer(LAATClassifier(gamma=0.0, epochs=30, random_state=0))
    model.fit(encode(train, meta), labels(train, meta))
    mlflow.pyfunc.save_model(path=tmp_path / "gappy", python_model=LAATPyfuncModel(meta.model_dump(mode="json"), model),
                             signature=ModelSignature(inputs=input_schema(meta)))
    served = mlflow.pyfunc.load_model(str(tmp_path / "gappy"))

    rows = test.drop(columns=["low birth.weight"])
    assert rows["mother_weight"].isna().sum() > 5 and rows["birth place"].isna().sum() > 5
    out = served.predict(rows)
    assert list(out.columns) == ["p_0", "p_1"]
    medians = encode(train, meta).median()  # pandas over the training rows: the independent reference
    np.testing.assert_array_equal(out.to_numpy(), model[-1].predict_proba(encode(rows, meta).fillna(medians)))
    check_raw_rows(rows, meta)  # gaps in nullable columns are accepted as input
    no_smoke_answer = rows.assign(smokes=rows["smokes"].where(rows.index != rows.index[0]))
    with pytest.raises(InputError, match="'smokes' has 1 missing values but is not nullable"):
        served.predict(no_smoke_answer)
