"""LAATClassifier with k >= 3 classes and LAATRegressor: the scikit-learn contract and LAAT's."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris, load_wine
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

import laat
from laat.estimator import LAATClassifier
from laat.estimator_multi import LAATRegressor
from laat.priors import Prior, oracle_prior, random_prior


def iris(n_per_class=None):
    X, y = load_iris(return_X_y=True, as_frame=True)
    y = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y])
    if n_per_class:
        rows = np.concatenate([np.flatnonzero(y == c)[:n_per_class] for c in np.unique(y)])
        X, y = X.iloc[rows], y.iloc[rows]
    return X.reset_index(drop=True), y.reset_index(drop=True)


def diabetes(n=None):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return (X, y) if n is None else (X.iloc[:n], y.iloc[:n])


@parametrize_with_checks(
    [
        LAATRegressor(gamma=0.0),
        LAATRegressor(model="mlp", gamma=0.0, hidden=16, epochs=60, loss="huber"),
    ],
    expected_failed_checks=lambda est: {
        "check_sample_weight_equivalence_on_dense_data": "float32 training: agreement depends on the CPU's summation order (1e-7 demanded)",
    },
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_both_estimators_are_exported_from_the_package():
    assert laat.LAATClassifier is LAATClassifier and laat.LAATRegressor is LAATRegressor
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        laat.Nope  # noqa: B018


def test_multiclass_probabilities_classes_and_per_class_attributions():
    X, y = iris()
    est = LAATClassifier(gamma=0, random_state=0).fit(X, y)
    P = est.predict_proba(X)
    assert list(est.classes_) == ["setosa", "versicolor", "virginica"] and P.shape == (150, 3)
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=0, atol=1e-12)
    assert est.score(X, y) > 0.8  # a softmax LR separates iris far above chance (1/3)
    att = est.feature_attributions_
    assert list(att.columns) == list(est.classes_) and list(att.index) == list(X.columns)
    np.testing.assert_allclose(np.linalg.norm(att.to_numpy(), axis=0), 1.0, rtol=1e-12)


def test_an_oracle_per_class_prior_at_gamma_100_sets_the_attribution_of_every_class():
    X, y = iris()
    prior = oracle_prior(X, y, task="multiclass")
    assert prior.source == "oracle" and prior.classes == ["setosa", "versicolor", "virginica"]
    Xs, ys = iris(n_per_class=5)
    est = LAATClassifier(trust="off", tau=4.0, prior=prior, random_state=0).fit(Xs, ys)
    cos = (est.feature_attributions_ * est.prior_target_).sum() / np.linalg.norm(est.prior_target_, axis=0)
    assert (cos > 0.95).all(), cos


def test_a_per_class_prior_is_read_by_name_in_every_form():
    X, y = iris(n_per_class=5)
    prior = random_prior(list(X.columns), seed=3, classes=["setosa", "versicolor", "virginica"])
    as_dict = {c: {f: s for f, s in row.items()} for c, row in prior.class_scores().items()}
    shuffled = {c: dict(reversed(list(as_dict[c].items()))) for c in reversed(list(as_dict))}
    frame = pd.DataFrame(as_dict)
    fits = [
        LAATClassifier(trust="off", prior=p, random_state=1).fit(X, y).decision_function(X)
        for p in (prior, as_dict, shuffled, frame, prior.matrix())
    ]
    for z in fits[1:]:
        np.testing.assert_array_equal(z, fits[0])


def test_a_shared_prior_is_accepted_and_reported_as_magnitudes():
    X, y = iris(n_per_class=5)
    est = LAATClassifier(
        trust="off", prior={c: (-3.0 if i % 2 else 8.0) for i, c in enumerate(X.columns)}, random_state=0
    ).fit(X, y)
    assert isinstance(est.prior_target_, pd.Series) and (est.prior_target_ >= 0).all()


@pytest.mark.parametrize(
    "params, prior, match",
    [
        ({"attribution": "input_x_grad"}, None, "binary-only; k >= 3 classes use 'grad'"),
        ({"confidence": "spread"}, None, "confidence weights are binary-only"),
        ({"prior_class": "setosa"}, None, "prior_class is for a binary prior"),
        ({}, {"setosa": {}, "versicolor": {}}, r"cover exactly the classes .*missing \['virginica'\]"),
        ({}, np.zeros((2, 4)), r"must be \(classes, features\) = \(3, 4\), got \(2, 4\)"),
    ],
)
def test_multiclass_misuse_is_refused_with_the_reason(params, prior, match):
    X, y = iris(n_per_class=5)
    prior = prior if prior is not None else {c: 1.0 for c in X.columns}
    with pytest.raises(ValueError, match=match):
        LAATClassifier(prior=prior, **params).fit(X, y)


def test_regression_predicts_in_original_units_and_follows_an_oracle_prior():
    X, y = diabetes()
    prior = oracle_prior(X, y, task="regression")
    assert prior.source == "oracle" and not prior.per_class and prior.provenance["task"] == "regression"
    Xs, ys = diabetes(n=30)
    plain = LAATRegressor(gamma=0, random_state=0).fit(Xs, ys)
    assert abs(plain.predict(Xs).mean() - ys.mean()) < 0.2 * ys.std()  # original units, not standardised
    est = LAATRegressor(trust="off", tau=4.0, prior=prior, random_state=0).fit(Xs, ys)
    cos = float(est.feature_attributions_ @ est.prior_target_)
    assert cos > 0.95, cos
    assert est.score(X, y) > plain.score(X, y)  # the oracle's direction generalises from 30 rows


def test_trust_ignores_a_flipped_regression_prior_and_follows_the_oracle():
    X, y = diabetes()
    good = oracle_prior(X, y, task="regression")
    flipped = Prior(features=good.features, mean=[-m for m in good.mean], source="oracle")
    Xs, ys = diabetes(n=100)
    follows = LAATRegressor(prior=good, random_state=0).fit(Xs, ys).trust_
    ignores = LAATRegressor(prior=flipped, random_state=0).fit(Xs, ys).trust_
    assert follows["followed"] and follows["gamma"] == 100.0
    assert not ignores["followed"] and ignores["gamma"] == 0.0 and "ignored the prior" in ignores["reason"]


def test_trust_follows_an_oracle_multiclass_prior_and_ignores_its_mirror_image():
    X, y = load_wine(return_X_y=True, as_frame=True)
    good = oracle_prior(X, y, task="multiclass", classes=["a", "b", "c"])
    flipped = Prior(features=good.features, mean=(-good.matrix()).tolist(), classes=good.classes, source="oracle")
    y = pd.Series(np.array(["a", "b", "c"])[y])
    rows = np.concatenate([np.flatnonzero(y == c)[:5] for c in "abc"])
    follows = LAATClassifier(prior=good, random_state=0).fit(X.iloc[rows], y.iloc[rows]).trust_
    ignores = LAATClassifier(prior=flipped, random_state=0).fit(X.iloc[rows], y.iloc[rows]).trust_
    assert follows["followed"] and not ignores["followed"]


def test_random_state_clone_pickle_and_grid_search_for_both_estimators():
    X, y = iris(n_per_class=10)
    prior = random_prior(list(X.columns), seed=0, classes=["setosa", "versicolor", "virginica"])
    a = LAATClassifier(trust="off", prior=prior, random_state=5, epochs=50).fit(X, y)
    b = clone(a).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(a)).predict_proba(X), a.predict_proba(X))
    grid = GridSearchCV(LAATClassifier(prior=prior, trust="off", epochs=50), {"gamma": [0.0, 10.0]}, cv=2).fit(X, y)
    assert grid.best_params_["gamma"] in (0.0, 10.0)
    Xr, yr = diabetes(n=60)
    r = LAATRegressor(gamma=0, random_state=3, epochs=50).fit(Xr, yr)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(r)).predict(Xr), clone(r).fit(Xr, yr).predict(Xr))
    grid = GridSearchCV(LAATRegressor(gamma=0, epochs=50), {"loss": ["squared", "huber"]}, cv=2).fit(Xr, yr)
    assert grid.best_params_["loss"] in ("squared", "huber")


def test_regression_misuse_is_refused_with_the_reason():
    X, y = diabetes(n=30)
    per_class = random_prior(list(X.columns), classes=["a", "b"])
    with pytest.raises(ValueError, match="one signed score per feature; this one is per class"):
        LAATRegressor(prior=per_class).fit(X, y)
    with pytest.raises(ValueError, match=r"LAATRegressor: invalid hyper-parameter loss='l1'"):
        LAATRegressor(loss="l1", gamma=0).fit(X, y)
    with pytest.raises(ValueError, match="gamma=100.0 needs a prior"):
        LAATRegressor().fit(X, y)
