"""Training template on an in-memory catalog: split sizes, prior alignment, trust, diagnostic, typed params."""

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.pandas import ParquetDataset
from kedro_datasets.pickle import PickleDataset
from pydantic import ValidationError

from laat.datasets import encode, labels, load_metadata
from laat.datasets import parse_metadata as load_metadata_from
from laat.pipelines.training import create_pipeline
from laat.pipelines.training.nodes import TrainingParams
from laat.priors import Prior, oracle_prior, random_prior


def _metadata():
    with open("conf/base/datasets/diabetes.yml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _params(**estimator):
    with open("conf/base/parameters_training.yml", encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)["training"]
    raw["estimator"].update(estimator)
    return TrainingParams.model_validate(raw)


def _run(prior: dict, params: TrainingParams, tmp_path):
    raw = pd.read_csv("data/01_raw/diabetes.csv")
    catalog = DataCatalog(
        {
            "validated": MemoryDataset(raw),
            "metadata": MemoryDataset(_metadata()),
            "prior": MemoryDataset(prior),
            "params:training": MemoryDataset(params),
            # persisted, as in catalog_training.yml, so they can be inspected after the run
            "train_rows": ParquetDataset(filepath=str(tmp_path / "train.parquet")),
            "test_rows": ParquetDataset(filepath=str(tmp_path / "test.parquet")),
        }
    )
    out = SequentialRunner().run(create_pipeline(), catalog)
    return out, catalog, raw


def test_pipeline_fits_on_k_rows_per_class_and_reports_attributions(tmp_path):
    meta = load_metadata("conf/base/datasets/diabetes.yml")
    prior = random_prior(meta.encoded_columns, seed=3).to_dict()
    out, catalog, raw = _run(prior, _params(trust="off"), tmp_path)
    train, test = catalog.load("train_rows"), catalog.load("test_rows")
    assert train["Outcome"].value_counts().to_dict() == {"no": 10, "yes": 10}
    assert len(train) + len(test) == len(raw)
    table = out["attributions"].load()
    assert list(table["feature"]) == meta.encoded_columns
    assert np.isclose(np.linalg.norm(table["learned"]), 1.0)
    # gamma=100 with a prior pulls the learned direction towards the prior target
    cos = float(np.dot(table["learned"], table["prior_target"]))
    assert cos > 0.9, cos
    assert out["trust_decision"].load()["mode"] == "off"


def _oracle(flip=False):
    meta = load_metadata("conf/base/datasets/diabetes.yml")
    raw = pd.read_csv("data/01_raw/diabetes.csv")
    p = oracle_prior(encode(raw, meta), labels(raw, meta), meta)
    if flip:
        p = Prior(features=p.features, mean=[-v for v in p.mean], source="oracle", provenance={"flipped": True})
    return p.to_dict()


def test_default_trust_mode_follows_a_good_prior_and_ignores_a_flipped_one(tmp_path):
    params = _params()
    assert params.estimator.trust == "auto"  # the documented default of the pipeline
    good, _, _ = _run(_oracle(), params, tmp_path / "good")
    bad, _, _ = _run(_oracle(flip=True), params, tmp_path / "bad")
    g, b = good["trust_decision"].load(), bad["trust_decision"].load()
    assert g["mode"] == "auto" and g["followed"] and g["gamma"] > 0
    assert b["gamma"] == 0.0 and not b["followed"] and b["reason"].startswith("ignored the prior")
    metrics = bad["trust_metrics"].load()
    assert metrics["trust.gamma"] == {"value": 0.0, "step": 0}
    assert metrics["trust.p_value"]["value"] == pytest.approx(b["agreement"]["p_value"])
    # a flipped prior trained without it: the learned direction no longer follows its target
    table = bad["attributions"].load()
    assert float(np.dot(table["learned"], table["prior_target"])) < 0.5


def test_prior_diagnostic_outputs_table_plot_and_metrics(tmp_path):
    from matplotlib.figure import Figure

    out, _, _ = _run(_oracle(flip=True), _params(), tmp_path)
    table = out["prior_diagnostic"].load()
    assert list(table["feature"]) == load_metadata("conf/base/datasets/diabetes.yml").encoded_columns
    assert {"prior_score", "class_mean_difference", "agreement", "flagged"} <= set(table.columns)
    assert table["flagged"].any()  # 10 rows per class confidently contradict a flipped oracle somewhere
    assert isinstance(out["prior_diagnostic_plot"].load(), Figure)
    metrics = out["prior_diagnostic_metrics"].load()
    assert metrics["prior_diagnostic.n_flagged"]["value"] == float(table["flagged"].sum())
    assert metrics["prior_diagnostic.sign_flip_p_value"]["value"] > 0.5


def test_prior_for_other_features_is_refused_by_name(tmp_path):
    prior = random_prior(["Glucose", "NotAColumn"], seed=0).to_dict()
    with pytest.raises(Exception, match="NotAColumn"):
        _run(prior, _params(), tmp_path)


@pytest.mark.parametrize(
    "bad",
    [
        {"gamma": -1},
        {"model": "forest"},
        {"tau": 0},
        {"lr_rate": 0.1},
        {"trust": "maybe"},
        {"epochs": 0},
        {"batch_size": 0},
        {"weight_decay": -0.1},
        {"grad_impl": "numeric"},
        {"gamma": float("inf")},
    ],
)
def test_wrong_parameters_fail_at_validation_naming_the_knob(bad):
    (knob,) = bad
    with pytest.raises(ValidationError, match=rf"estimator\.{knob}\b"):
        _params(**bad)


def test_the_yaml_and_the_estimator_share_the_defaults_of_laat_hyperparams():
    """conf/base/parameters_training.yml repeats laat.hyperparams' defaults (the two homes agree),
    and the Kedro parameters build exactly the default estimator."""
    from laat.estimator import LAATClassifier
    from laat.hyperparams import DEFAULTS
    from laat.pipelines.training.nodes import _estimator

    knobs = DEFAULTS.model_dump()
    from_yaml = _params().estimator
    # lr: null in the YAML stands for the estimator's own default for the task
    assert from_yaml.lr is None
    assert from_yaml.model_dump(include=set(knobs) - {"lr"}) == {k: v for k, v in knobs.items() if k != "lr"}
    built = _estimator(from_yaml, "binary").get_params()
    assert {k: built[k] for k in knobs} == {k: LAATClassifier().get_params()[k] for k in knobs} == knobs


def test_a_table_with_gaps_runs_validation_training_and_scoring_with_train_medians(gappy, tmp_path):
    """Gaps, real column names, yes/no booleans and a 0/1 target first, through the real runner."""
    from laat.pipelines import data_validation, evaluation

    metadata, raw = gappy
    meta = load_metadata_from(metadata)
    prior = random_prior(meta.encoded_columns, seed=3).to_dict()  # RANDOM prior: plumbing, not a result
    catalog = DataCatalog(
        {
            "raw": MemoryDataset(raw),
            "metadata": MemoryDataset(metadata),
            "prior": MemoryDataset(prior),
            "params:training": MemoryDataset(_params(trust="off")),
            "train_rows": ParquetDataset(filepath=str(tmp_path / "train.parquet")),
            "test_rows": ParquetDataset(filepath=str(tmp_path / "test.parquet")),
            "model": PickleDataset(filepath=str(tmp_path / "model.pkl")),  # as in catalog_training.yml
        }
    )
    chain = (
        data_validation.create_pipeline() + create_pipeline() + evaluation.create_pipeline().only_nodes("predict_test")
    )
    out = SequentialRunner().run(chain, catalog)
    train, test, model = catalog.load("train_rows"), catalog.load("test_rows"), catalog.load("model")
    assert train["low birth.weight"].value_counts().to_dict() == {0: 10, 1: 10}
    X_train, X_test = encode(train, meta), encode(test, meta)
    medians = X_train.median()  # pandas over the training rows only: the independent reference
    assert dict(zip(model[0].feature_names_in_, model[0].statistics_)) == pytest.approx(medians.to_dict())
    assert medians["mother_weight"] != encode(raw, meta)["mother_weight"].median()  # train-only is visible
    assert list(out["attributions"].load()["feature"]) == meta.encoded_columns
    assert {"mother_weight_missing", "birth place_missing"} <= set(meta.encoded_columns)
    predictions = out["predictions"].load()
    gaps = X_test["mother_weight_missing"].to_numpy() == 1
    assert gaps.sum() > 5 and np.isfinite(predictions["p_yes"]).all()
    assert predictions["y_true"].tolist() == test["low birth.weight"].tolist()
    np.testing.assert_array_equal(predictions["p_yes"], model[-1].predict_proba(X_test.fillna(medians))[:, 1])


# ---- multiclass and regression ------------------------------------------------------------------


def test_a_regression_split_draws_shots_rows_in_all_and_binary_only_settings_are_refused():
    from laat.datasets import load_dataset
    from laat.pipelines.training.nodes import fit_model, split_rows

    meta = load_metadata("conf/base/datasets/diabetes_progression.yml")
    df, raw = load_dataset(meta), meta.model_dump(mode="json")
    train, test = split_rows(df, raw, _params())
    assert len(train) == 10 and len(test) == len(df) - 10
    prior = random_prior(meta.encoded_columns).to_dict()
    with pytest.raises(ValueError, match="'confidence': 'spread'} are binary-only; a numeric target needs"):
        fit_model(train, raw, prior, _params(confidence="spread"))


def test_a_per_class_prior_reaches_the_model_in_class_code_order_and_attributions_are_per_class():
    """The prior's rows are named by class; the model's classes are codes 0..k-1 in the metadata's order."""
    from laat.datasets import load_dataset
    from laat.pipelines.training.nodes import attribution_table, fit_model, split_rows

    meta = load_metadata("conf/base/datasets/wine.yml")
    df, raw = load_dataset(meta), meta.model_dump(mode="json")
    train, _ = split_rows(df, raw, _params())
    prior = random_prior(meta.encoded_columns, seed=1, classes=meta.target.classes)
    shuffled = prior.aligned(meta.encoded_columns[::-1], classes=meta.target.classes[::-1])  # same scores
    model = fit_model(train, raw, shuffled.to_dict(), _params(trust="off", epochs=20))
    target = model[-1].prior_target_
    table = attribution_table(model, shuffled.to_dict(), raw)
    assert list(table["class"].unique()) == meta.target.classes and len(table) == 3 * len(meta.encoded_columns)
    for i, cls in enumerate(meta.target.classes):  # class i's target has the signs of cls's prior row
        rows = table[table["class"] == cls].set_index("feature")
        scores = pd.Series(prior.class_scores()[cls])
        assert (rows["prior_score"] == scores[rows.index]).all()
        nonzero = scores[scores != 0].index
        assert (np.sign(target[str(i)][nonzero]) == np.sign(scores[nonzero])).all()
