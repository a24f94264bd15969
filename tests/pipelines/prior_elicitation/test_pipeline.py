"""prior_elicitation template on an in-memory catalog, for every source kind."""

from __future__ import annotations

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
    catalog = DataCatalog({
        "metadata": MemoryDataset(metadata),
        "validated": MemoryDataset(pd.read_csv("data/01_raw/diabetes.csv")),
        "params:prior_elicitation": MemoryDataset(params),
        "params:prior_source": MemoryDataset(prior_source or params.source),
    })
    out = SequentialRunner().run(create_pipeline(), catalog)
    return {k: v.load() for k, v in out.items()}


def test_random_source_is_labelled_random_everywhere():
    out = _run(_base_params(source="random", seed=4))
    prior = Prior.from_dict(out["prior"])
    assert prior.source == "random" and "RANDOM" in prior.provenance["note"]
    assert prior.features == load_metadata("diabetes").encoded_columns
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
    assert paths == [f"data/04_feature/{{ds}}/prior_{expected}.json", f"data/04_feature/{{ds}}/prior_{expected}.yml",
                     f"data/04_feature/{{ds}}/elicitation_record_{expected}.json"]
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
    assert prior.features == load_metadata("diabetes").encoded_columns
    # One call per feature (more only if an answer had to be re-asked).
    assert prior.provenance["fresh_calls"] >= 8 and all(-10 <= m <= 10 for m in prior.mean)
    record = out["elicitation_record"]
    assert len(record["calls"]) == prior.provenance["fresh_calls"]
    assert all(c["prompt_sha256"] in record["prompts"] for c in record["calls"])
    again = Prior.from_dict(_run(params)["prior"])  # cached: no server start, no calls
    assert again.provenance["fresh_calls"] == 0 and again.mean == prior.mean
