"""prior_elicitation template on an in-memory catalog, for every source kind."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from laat.datasets import load_metadata
from laat.elicit.settings import LOCAL_DEFAULT_STRATEGY
from laat.pipelines.prior_elicitation import create_pipeline
from laat.pipelines.prior_elicitation.nodes import PriorElicitationParams
from laat.priors import Prior


def _base_params(**kw) -> PriorElicitationParams:
    with open("conf/base/parameters_prior_elicitation.yml", encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)["prior_elicitation"]
    raw.update(kw)
    return PriorElicitationParams.model_validate(raw)


def _run(params: PriorElicitationParams, prior_source: str | None = None):
    with open("conf/base/datasets/diabetes.yml", encoding="utf-8") as fh:
        metadata = yaml.safe_load(fh)
    catalog = DataCatalog(
        {
            "metadata": MemoryDataset(metadata),
            "validated": MemoryDataset(pd.read_csv("data/01_raw/diabetes.csv")),
            "params:prior_elicitation": MemoryDataset(params),
            "params:prior_source": MemoryDataset(prior_source or params.source),
        }
    )
    out = SequentialRunner().run(create_pipeline(), catalog)
    return {k: v.load() for k, v in out.items()}


def test_random_source_is_labelled_random_everywhere():
    out = _run(_base_params(source="random", seed=4))
    prior = Prior.from_dict(out["prior"])
    assert prior.source == "random" and "RANDOM" in prior.provenance["note"]
    assert prior.features == load_metadata("conf/base/datasets/diabetes.yml").encoded_columns
    assert "source: random" in out["prior_yaml"] and "(source: random)" in out["prior_yaml"]
    assert Prior.from_yaml(out["prior_yaml"]).mean == prior.mean
    assert out["elicitation_record"]["source"] == "random" and out["elicitation_record"]["calls"] == []


def test_oracle_source_fits_on_the_validated_rows():
    prior = Prior.from_dict(_run(_base_params(source="oracle"))["prior"])
    assert prior.source == "oracle" and "upper bound" in prior.provenance["note"]
    assert prior.provenance["n_rows"] == 768 and max(prior.mean) == 10.0


def test_expert_source_reads_the_shipped_yaml():
    prior = Prior.from_dict(_run(_base_params(source="expert"))["prior"])
    assert prior.source == "expert" and prior.provenance["path"].endswith("priors/diabetes.yml")


def test_expert_prior_for_another_dataset_is_refused(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("scores:\n  Glucose: 5\n  Cholesterol: 3\n")
    with pytest.raises(Exception, match=r"bad.yml: .*missing \['Pregnancies'.*unknown \['Cholesterol'\]"):
        _run(_base_params(source="expert", expert_prior_path=str(bad)))


def test_source_must_match_the_file_name_parameter():
    with pytest.raises(Exception, match="prior_source=oracle"):
        _run(_base_params(source="oracle"), prior_source="local")


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="temperature"):
        _base_params(temperature=5)
    with pytest.raises(ValueError, match="source"):
        _base_params(source="gpt")


@pytest.mark.parametrize("runtime, expected", [(None, "local"), ({"prior_source": "oracle"}, "oracle")])
def test_catalog_names_prior_files_after_the_source(runtime, expected):
    from laat.settings import CONFIG_LOADER_ARGS  # the project's loader: its resolvers (run_id)

    loader = OmegaConfigLoader("conf", **CONFIG_LOADER_ARGS, runtime_params=runtime)
    params, catalog = loader["parameters"], loader["catalog"]
    assert params["prior_source"] == params["prior_elicitation"]["source"] == expected
    paths = [catalog[f"{{ds}}.{k}"]["dataset"]["filepath"] for k in ("prior", "prior_yaml", "elicitation_record")]
    assert paths == [
        f"data/04_feature/{{ds}}/prior_{expected}.json",
        f"data/04_feature/{{ds}}/prior_{expected}.yml",
        f"data/04_feature/{{ds}}/elicitation_record_{expected}.json",
    ]
    PriorElicitationParams.model_validate(params["prior_elicitation"])  # the shipped file is valid


@pytest.mark.llm
def test_local_source_runs_the_real_server_end_to_end(tmp_path):
    # strategy auto: the local default, i.e. the code path of a plain `kedro run`.
    params = _base_params(source="local", strategy="auto", n_samples=1, n_threads=1, cache_dir=str(tmp_path / "cache"))
    out = _run(params)
    prior = Prior.from_dict(out["prior"])
    assert prior.source == "llm" and prior.provenance["endpoint_kind"] == "local"
    assert prior.provenance["strategy"] == LOCAL_DEFAULT_STRATEGY
    assert "small local model prior" in prior.provenance["quality_note"]
    assert prior.features == load_metadata("conf/base/datasets/diabetes.yml").encoded_columns
    # One call per feature (more only if an answer had to be re-asked).
    assert prior.provenance["fresh_calls"] >= 8 and all(-10 <= m <= 10 for m in prior.mean)
    record = out["elicitation_record"]
    assert len(record["calls"]) == prior.provenance["fresh_calls"]
    assert all(c["prompt_sha256"] in record["prompts"] for c in record["calls"])
    again = Prior.from_dict(_run(params)["prior"])  # cached: no server start, no calls
    assert again.provenance["fresh_calls"] == 0 and again.mean == prior.mean


@pytest.mark.slow
def test_a_key_in_base_url_is_stored_nowhere_after_a_real_kedro_run(
    tmp_path, project_root, monkeypatch, capfd, request
):
    import logging
    import sys

    from kedro.framework.startup import bootstrap_project
    from mlflow import MlflowClient

    sys.path.insert(0, str(project_root / "tests"))
    sys.path.insert(0, str(project_root / "tests" / "elicit"))
    from fake_llm import FakeLLM

    from project_copy import copy_project, run_session

    secret = "sk-SECRET-in-base-url-4242"
    (tmp_path / "project").mkdir()
    project = copy_project(tmp_path / "project", ["diabetes"])
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    # Every log record of the run, at DEBUG, in a plain file. Bootstrap first: the first
    # bootstrap applies Kedro's logging config, which would remove a handler added before it.
    bootstrap_project(project_root)
    log_file = tmp_path / "run.log"
    handler = logging.FileHandler(log_file)
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.addHandler(handler)
    root_logger.setLevel(logging.DEBUG)
    request.addfinalizer(lambda: (root_logger.removeHandler(handler), root_logger.setLevel(level), handler.close()))
    with FakeLLM() as srv:
        url = srv.base_url.replace("http://", f"http://laat:{secret}@")
        run_session(
            project,
            runtime_params={
                "prior_source": "openai",
                "prior_elicitation": {"model": "fake-model", "base_url": url, "strategy": "direct", "n_samples": 1},
            },
        )
        assert srv.n_chat == 1

    masked = srv.base_url.replace("http://", "http://***@")
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments() if e.name == "laat"])
    # What was logged is the masked URL (so this test would see the key if it were logged).
    assert run.data.params["prior_elicitation.base_url"] == masked
    # kedro-mlflow's own logging: the whole typed parameter object as one string, and the tag.
    assert f"base_url='{masked}'" in run.data.params["prior_elicitation"]
    assert masked in run.data.tags["runtime_params"]
    stored = [p for p in project.rglob("*") if p.is_file() and p.name != "diabetes.csv"]
    assert any(p.name.startswith("mlflow.db") for p in stored) and any("mlruns" in p.parts for p in stored)
    assert any(p.parts[-3:-1] == ("04_feature", "diabetes") for p in stored)
    leaks = [str(p.relative_to(project)) for p in stored if secret.encode() in p.read_bytes()]
    assert leaks == []
    out, err = capfd.readouterr()
    logs = log_file.read_text()
    assert "HTTP Request: POST http://***@127.0.0.1" in logs  # the request was logged, masked
    assert secret not in logs + out + err


def test_prior_json_says_it_is_generated_and_a_hand_edit_is_refused_before_overwrite(tmp_path):
    from kedro.io import DatasetError

    from laat.pipelines.prior_elicitation.prior_dataset import PriorJSONDataset
    from laat.priors import PriorError

    out = _run(_base_params(source="random", seed=4))
    assert "conf/base/priors/diabetes.yml" in out["prior"]["note"] and "prior_source=expert" in out["prior"]["note"]
    path = tmp_path / "prior_random.json"
    ds = PriorJSONDataset(filepath=str(path))
    ds.save(out["prior"])
    ds.save(out["prior"])  # regenerating over an untouched file is fine
    edited = ds.load()
    edited["mean"][1] = 10.0 if edited["mean"][1] != 10.0 else -10.0
    path.write_text(json.dumps(edited, indent=2))
    with pytest.raises(
        DatasetError,
        match=r"(?s)prior_random.json: this generated prior was edited by hand.*"
        r"conf/base/priors/diabetes.yml.*prior_source=expert",
    ):
        ds.save(out["prior"])
    assert ds.load()["mean"] == edited["mean"]  # the edit is still there
    # Loading it downstream (e.g. `--pipeline training` alone) is refused the same way.
    with pytest.raises(PriorError, match="edited by hand"):
        Prior.from_dict(edited)
    path.write_text(path.read_text()[:-20])
    with pytest.raises(DatasetError, match="not valid JSON.*edited by hand"):
        ds.save(out["prior"])


def test_expert_source_without_a_file_names_the_missing_setting():
    from laat.elicit import build_prior
    from laat.priors import PriorError

    meta = load_metadata("conf/base/datasets/diabetes.yml")
    with pytest.raises(PriorError, match="source 'expert' needs expert_prior_path"):
        build_prior(meta, _base_params(source="expert", expert_prior_path=None))
