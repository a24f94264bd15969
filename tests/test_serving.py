"""The deployable model against a real sqlite MLflow store and registry under tmp_path."""

from __future__ import annotations

import json
import os
import re
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
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from laat.datasets import encode, labels, load_dataset, load_metadata
from laat.metrics import classification_metrics
from laat.serving import (
    CHAMPION,
    InputError,
    LAATPyfuncModel,
    ServedError,
    check_raw_rows,
    log_model,
    pip_requirements_for,
    predict_raw,
    promote_if_better,
)


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
    shipped = {f.name for f in (local / "code" / "laat").iterdir()}
    assert {"serving.py", "datasets.py"} <= shipped and "estimator.py" not in shipped  # no torch model, no estimator
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
        predict_raw(logged["good"]["est"], meta, rows)
    served = mlflow.pyfunc.load_model(logged["good"]["uri"])
    with pytest.raises(ServedError, match=r"missing raw columns \['Glucose', 'BMI'\]") as err:
        served.predict(rows)
    assert err.value.get_http_status_code() == 400


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


def _diabetes_rows(diabetes, **values) -> pd.DataFrame:
    rows = diabetes[2][diabetes[0].raw_columns].head(4).astype(float)
    for column, (row, value) in values.items():
        rows.loc[rows.index[row], column] = value
    return rows


def test_out_of_range_values_are_rejected_by_default_naming_column_values_and_range(diabetes):
    meta = diabetes[0]
    rows = _diabetes_rows(diabetes, Glucose=(0, -50), Age=(3, 500), Pregnancies=(1, 2.5), BMI=(2, np.inf))
    with pytest.raises(InputError) as err:
        check_raw_rows(rows, meta)
    msg, at = str(err.value), rows.index
    assert f"'Glucose' has values outside its range [0, no max]: -50 (row {at[0]})" in msg
    assert f"'Age' has values outside its range [0, 120]: 500 (row {at[3]})" in msg
    assert f"'Pregnancies' is an integer column but has non-whole values: 2.5 (row {at[1]})" in msg
    assert f"'BMI' has infinite values: inf (row {at[2]})" in msg


def test_out_of_range_clip_moves_values_into_range_and_allow_passes_them(diabetes):
    meta = diabetes[0]
    rows = _diabetes_rows(diabetes, Glucose=(0, -50), Age=(3, 500), Pregnancies=(1, 2.5))
    clipped = check_raw_rows(rows, meta, "clip")
    assert clipped["Glucose"].iloc[0] == 0 and clipped["Age"].iloc[3] == 120
    assert clipped["Pregnancies"].iloc[1] == 2  # rounded half to even
    pd.testing.assert_frame_equal(
        clipped.drop(columns=["Glucose", "Age", "Pregnancies"]), rows.drop(columns=["Glucose", "Age", "Pregnancies"])
    )
    pd.testing.assert_frame_equal(check_raw_rows(rows, meta, "allow"), rows)
    with pytest.raises(InputError, match="infinite"):  # no policy scores an infinite value
        check_raw_rows(_diabetes_rows(diabetes, BMI=(0, -np.inf)), meta, "allow")
    with pytest.raises(InputError, match=r"out_of_range must be one of \['reject', 'clip', 'allow'\]"):
        check_raw_rows(rows, meta, "drop")


def test_zero_rows_give_zero_predictions_but_still_need_the_columns(diabetes, logged):
    meta = diabetes[0]
    model = LAATPyfuncModel(meta.model_dump(), logged["good"]["est"])
    out = model.predict(None, diabetes[2].head(0))
    assert list(out.columns) == ["p_no", "p_yes"] and len(out) == 0
    with pytest.raises(ServedError, match=r"missing raw columns \['Pregnancies', 'Glucose',"):
        model.predict(None, pd.DataFrame())


def test_an_internal_failure_is_a_500_whose_body_has_no_traceback(diabetes):
    meta, train, test = diabetes
    # fit on 3 unnamed columns: it cannot score the 8 the dataset encodes to (what _check_estimator refuses at logging)
    est = LogisticRegression().fit(encode(train, meta).to_numpy()[:, :3], labels(train, meta))
    with pytest.raises(ServedError) as err:
        LAATPyfuncModel(meta.model_dump(), est).predict(None, test)
    assert err.value.get_http_status_code() == 500
    assert json.loads(err.value.serialize_as_json()) == {
        "error_code": "INTERNAL_ERROR",
        "message": "internal error while scoring (ValueError); the traceback is in the server's log",
    }
    assert isinstance(err.value.__cause__, ValueError)  # the cause stays with the exception


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


@pytest.fixture(scope="module")
def server(store, diabetes, laat_model, project_root, tmp_path_factory):
    """`make serve` on 127.0.0.1 for a LAATClassifier (torch inside) registered as laat-diabetes.

    Started once for every HTTP test, with the venv's bin removed from PATH: the target must
    put it there itself (mlflow launches its scoring server as `uvicorn` by name).
    """
    meta, train, test = diabetes
    est, name = laat_model, f"laat-{meta.name}"
    info = _log(store, est, meta, train, name)
    auc = classification_metrics(labels(test, meta), est.predict_proba(encode(test, meta))[:, 1])["roc_auc"]
    assert promote_if_better(store["client"], name, info.registered_model_version, "roc_auc", auc)["promoted"]

    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    bin_dir = Path(sys.executable).parent
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != bin_dir)
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "PATH": path}
    env.pop("MLFLOW_TRACKING_URI", None)
    # -o: serve with the interpreter running these tests; never (re)install from inside a test
    cmd = [
        "make",
        "-C",
        str(project_root),
        "-o",
        ".venv/.installed",
        "serve",
        f"BIN={bin_dir}",
        f"DS={meta.name}",
        f"PORT={port}",
        f"TRACKING_URI={store['uri']}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        deadline = started + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"make serve exited with {proc.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after 120 s:\n{log.read_text()}")
            time.sleep(0.5)
        print(f"make serve ready after {time.monotonic() - started:.1f} s")
        yield {"base": base, "est": est, "meta": meta, "rows": test.head(20)}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _post(server, body) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{server['base']}/invocations", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _split(rows: pd.DataFrame, **params) -> dict:
    body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    return {**body, "params": params} if params else body


def _one_row(server, **values) -> pd.DataFrame:
    """The first test row with some raw values replaced (any type, as a JSON client may send)."""
    row = server["rows"][server["meta"].raw_columns].head(1).astype(object)
    for column, value in values.items():
        row.loc[row.index[0], column] = value
    return row.reset_index(drop=True)


@pytest.mark.slow
def test_served_model_answers_raw_rows_like_the_estimator(server):
    meta, rows = server["meta"], server["rows"]
    status, body = _post(server, _split(rows))
    assert status == 200
    got = pd.DataFrame(json.loads(body)["predictions"])
    assert list(got.columns) == ["p_no", "p_yes"]
    np.testing.assert_allclose(got.to_numpy(), server["est"].predict_proba(encode(rows, meta)), rtol=1e-9)


# (request, substrings the one message must contain); the JSON-shape answers are MLflow's own
BAD_REQUESTS = {
    "glucose_below_min": (
        lambda s: _split(_one_row(s, Glucose=-50)),
        ["'Glucose' has values outside its range [0, no max]: -50 (row 0)", 'out_of_range="clip"'],
    ),
    "age_above_max": (
        lambda s: _split(_one_row(s, Age=500)),
        ["'Age' has values outside its range [0, 120]: 500 (row 0)"],
    ),
    "age_not_whole": (
        lambda s: _split(_one_row(s, Age=50.5)),
        ["'Age' is an integer column but has non-whole values: 50.5 (row 0)"],
    ),
    "text_in_numeric_column": (
        lambda s: _split(_one_row(s, Glucose="high")),
        ["'Glucose' has non-numeric values ['high']"],
    ),
    "missing_column": (
        lambda s: {
            "dataframe_split": json.loads(_one_row(s).drop(columns=["Glucose"]).to_json(orient="split", index=False))
        },
        ["missing raw columns ['Glucose']"],
    ),
    "unknown_columns_only": (
        lambda s: {"dataframe_records": [{"glucose": 148, "age": 50}]},
        ["missing raw columns ['Pregnancies', 'Glucose',"],
    ),
    "empty_records_list": (
        lambda s: {"dataframe_records": []},  # carries no columns
        ["missing raw columns ['Pregnancies', 'Glucose',"],
    ),
    "unknown_policy": (
        lambda s: _split(_one_row(s), out_of_range="ignore"),
        ["out_of_range must be one of ['reject', 'clip', 'allow'], got 'ignore'"],
    ),
    "json_list_not_object": (
        lambda s: [[6, 148, 72, 35, 0, 33.6, 0.627, 50]],
        ["The input must be a JSON dictionary with exactly one of the input fields"],
    ),
    "json_without_input_field": (
        lambda s: {"rows": [[6, 148, 72, 35, 0, 33.6, 0.627, 50]]},
        ["exactly one of the input fields"],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_served_model_answers_bad_input_with_one_clear_400(server, case):
    make, expected = BAD_REQUESTS[case]
    status, body = _post(server, make(server))
    print(f"{case}: {status} {body}")
    assert status == 400
    answer = json.loads(body)
    assert answer["error_code"] in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")
    for text in expected:
        assert text in answer["message"]
    assert "stack_trace" not in answer and "Traceback" not in body
    assert "Failed to predict data" not in body  # MLflow's prefix that quotes the whole request
    assert not re.search(r"""(^|[\s'"(])/[\w.-]+/""", answer["message"])  # no absolute path


@pytest.mark.slow
def test_served_model_answers_zero_rows_with_zero_predictions(server):
    assert _post(server, _split(server["rows"].head(0))) == (200, '{"predictions": []}')


@pytest.mark.slow
@pytest.mark.parametrize(("policy", "age_seen"), [("clip", 120), ("allow", 500)])
def test_out_of_range_policy_per_request(server, policy, age_seen):
    status, body = _post(server, _split(_one_row(server, Age=500), out_of_range=policy))
    assert status == 200
    expected = server["est"].predict_proba(encode(_one_row(server, Age=age_seen), server["meta"]))
    np.testing.assert_allclose(pd.DataFrame(json.loads(body)["predictions"]).to_numpy(), expected, rtol=1e-9)


def test_laat_classifier_round_trips_and_pins_cpu_torch(store, diabetes, laat_model):
    meta, train, test = diabetes
    info = _log(store, laat_model, meta, train)
    reqs = (Path(mlflow.artifacts.download_artifacts(info.model_uri)) / "requirements.txt").read_text().splitlines()
    torch_version = importlib_metadata.version("torch").split("+")[0]
    assert f"torch=={torch_version}" in reqs
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in reqs
    served = mlflow.pyfunc.load_model(info.model_uri)
    np.testing.assert_allclose(
        served.predict(test).to_numpy(), laat_model.predict_proba(encode(test, meta)), rtol=1e-10, atol=1e-12
    )


# Loads a logged model in a new interpreter and predicts; prints where each laat module came from.
_FRESH_PREDICT = """
import io, json, sys
import mlflow, pandas as pd
served = mlflow.pyfunc.load_model(sys.argv[1])
out = served.predict(pd.read_json(io.StringIO(sys.argv[2]), orient="split"))
print(json.dumps({"p": out.to_numpy().tolist(),
                  "files": {m: mod.__file__ for m, mod in sys.modules.items() if m.split(".")[0] == "laat"}}))
"""


def test_served_model_ships_only_what_it_imports_and_predicts_from_it_in_a_fresh_process(
    store, diabetes, laat_model, tmp_path
):
    meta, train, test = diabetes
    info = _log(store, laat_model, meta, train)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(tmp_path)))
    code = local / "code" / "laat"
    shipped = sorted(str(f.relative_to(code)) for f in code.rglob("*.py"))
    assert {"__init__.py", "serving.py", "estimator.py", "datasets.py"} <= set(shipped)
    assert not [f for f in shipped if "benchmark" in f or f.startswith("pipelines") or "research" in f]
    assert (
        "pipeline_registry.py" not in shipped
        and "hooks.py" not in shipped
        and not (local / "code" / "laat_research").exists()
    )
    rows = test.head(20)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed laat is not on the path first
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH_PREDICT, str(local), rows.to_json(orient="split")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["files"] and all(Path(f).is_relative_to(code) for f in answer["files"].values()), answer["files"]
    np.testing.assert_allclose(answer["p"], laat_model.predict_proba(encode(rows, meta)), rtol=1e-10, atol=1e-12)


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
    mlflow.pyfunc.save_model(
        path=tmp_path / "gappy",
        python_model=LAATPyfuncModel(meta.model_dump(mode="json"), model),
        signature=ModelSignature(inputs=input_schema(meta)),
    )
    served = mlflow.pyfunc.load_model(str(tmp_path / "gappy"))

    rows = test.drop(columns=["low birth.weight"])
    assert rows["mother_weight"].isna().sum() > 5 and rows["birth place"].isna().sum() > 5
    out = served.predict(rows)
    assert list(out.columns) == ["p_0", "p_1"]
    medians = encode(train, meta).median()  # pandas over the training rows: the independent reference
    np.testing.assert_array_equal(out.to_numpy(), model[-1].predict_proba(encode(rows, meta).fillna(medians)))
    check_raw_rows(rows, meta)  # gaps in nullable columns are accepted as input
    no_smoke_answer = rows.assign(smokes=rows["smokes"].where(rows.index != rows.index[0]))
    with pytest.raises(ServedError, match="'smokes' has 1 missing values but is not nullable"):
        served.predict(no_smoke_answer)


def test_range_errors_quote_the_first_five_values_then_count_the_rest(diabetes):
    meta = diabetes[0]
    rows = pd.DataFrame({c: [1.0] * 7 for c in meta.raw_columns}, index=[10, 11, 12, 13, 14, 15, 16])
    rows["Age"] = [500.0, 501, 502, 503, 504, 505, 506]
    rows["BloodPressure"] = [-1.0, -2, -3, -4, -5, 1, 1]  # exactly five: nothing more to count
    with pytest.raises(InputError) as err:
        check_raw_rows(rows, meta)
    msg = str(err.value)
    assert (
        "'Age' has values outside its range [0, 120]: 500 (row 10), 501 (row 11), 502 (row 12), "
        "503 (row 13), 504 (row 14) and 2 more;"
    ) in msg
    assert (
        "'BloodPressure' has values outside its range [0, no max]: -1 (row 10), -2 (row 11), "
        "-3 (row 12), -4 (row 13), -5 (row 14);"
    ) in msg


def test_the_out_of_range_request_param_reaches_the_served_model(diabetes, logged):
    meta = diabetes[0]
    rows = _diabetes_rows(diabetes, Age=(3, 500))
    served = mlflow.pyfunc.load_model(logged["good"]["uri"])
    with pytest.raises(ServedError, match=r"'Age' has values outside its range"):
        served.predict(rows)
    clipped = served.predict(rows, params={"out_of_range": "clip"})
    expected = predict_raw(logged["good"]["est"], meta, rows.assign(Age=rows["Age"].clip(upper=120)))
    pd.testing.assert_frame_equal(clipped, expected)


# ---- multiclass and regression ------------------------------------------------------------------


def test_the_served_output_follows_the_task_and_a_model_of_the_wrong_task_is_refused(tmp_path):
    """A regression serves one `prediction` column, a multiclass model one `p_<class>` per class
    (scikit-learn models here: the LAAT ones are served end to end in test_kedro_run)."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    from laat.serving import PREDICTION, output_columns, predict_raw

    def classifier():
        return make_pipeline(StandardScaler(), LogisticRegression())

    for dataset, model, wrong, refusal in (
        ("diabetes_progression", Ridge(), classifier(), "has a numeric target; Pipeline is not a fitted regressor"),
        ("wine", classifier(), Ridge(), "Ridge is not a fitted classifier"),
    ):
        meta = load_metadata(dataset, "conf/base/datasets")
        df = load_dataset(meta)
        X, y = encode(df, meta), labels(df, meta)
        model.fit(X, y)
        rows = df.drop(columns=meta.target.column).head(4)
        out = predict_raw(model, meta, rows)
        expected = model.predict(X.head(4))[:, None] if dataset != "wine" else model.predict_proba(X.head(4))
        assert list(out.columns) == output_columns(meta)
        np.testing.assert_array_equal(out.to_numpy(), expected)
        with pytest.raises(TypeError, match=refusal):
            log_model(wrong.fit(X, y if dataset == "wine" else (y > np.median(y)).astype(int)), meta, rows)
    assert output_columns(load_metadata("diabetes_progression", "conf/base/datasets")) == [PREDICTION]
    assert output_columns(load_metadata("wine", "conf/base/datasets")) == [
        "p_cultivar_1",
        "p_cultivar_2",
        "p_cultivar_3",
    ]


def test_own_pins_skip_mlflow_requirement_check_and_given_ones_keep_it(store, diabetes, monkeypatch):
    # the check costs a `kedro run` about a second and cannot fail for exact installed pins
    import mlflow.pyfunc
    import mlflow.utils.environment

    meta, train, _ = diabetes
    est = _fit(meta, train)
    checked: list[list[str]] = []
    spies = {}
    for module in (mlflow.utils.environment, mlflow.pyfunc):
        real = module.warn_dependency_requirement_mismatches
        spies[module] = lambda reqs, real=real: (checked.append(reqs), real(reqs))
        monkeypatch.setattr(module, "warn_dependency_requirement_mismatches", spies[module])
    _log(store, est, meta, train)
    assert checked == []
    assert all(m.warn_dependency_requirement_mismatches is spy for m, spy in spies.items())  # put back
    with mlflow.start_run(experiment_id=store["experiment_id"]):
        log_model(est, meta, train, pip_requirements=pip_requirements_for(est))
    assert len(checked) == 2 and all(any(r.startswith("pandas==") for r in reqs) for reqs in checked)
