"""The imputer is fitted on training rows only and travels with the model."""

import numpy as np
import pandas as pd

from laat.datasets import encode, labels, parse_metadata
from laat.preprocess import missing_value_imputer, with_imputer


def test_gaps_are_filled_with_the_training_median_not_the_scored_rows_median():
    train = pd.DataFrame({"a b": np.float32([1, np.nan, 3, 10]), "é": np.float32([0, 1, 1, 0])})
    scored = pd.DataFrame({"a b": np.float32([np.nan, 100, 200]), "é": np.float32([1, 0, 1])})
    out = missing_value_imputer().fit(train).transform(scored)
    assert list(out.columns) == ["a b", "é"]  # names kept: the prior is matched by name
    assert out["a b"].tolist() == [3.0, 100.0, 200.0]  # median of 1, 3, 10


def test_a_column_empty_in_the_training_rows_is_filled_with_zero():
    train = pd.DataFrame({"x": [np.nan, np.nan], "y": [1.0, 2.0]})
    out = missing_value_imputer().fit(train).transform(pd.DataFrame({"x": [np.nan, 5.0], "y": [np.nan, 1.0]}))
    assert out.to_numpy().tolist() == [[0.0, 1.5], [5.0, 1.0]]


def test_a_model_behind_the_imputer_trains_and_scores_rows_with_gaps(gappy):
    from sklearn.linear_model import LogisticRegression

    raw, df = gappy
    meta = parse_metadata(raw)
    train, test = df.iloc[:100], df.iloc[100:]
    model = with_imputer(LogisticRegression(max_iter=5000)).fit(encode(train, meta), labels(train, meta))
    X_test = encode(test, meta)
    assert X_test["mother_weight"].isna().any() and X_test["mother_weight_missing"].sum() > 0
    medians = encode(train, meta).median()  # independent reference: pandas over the training rows
    expected = model[-1].predict_proba(X_test.fillna(medians))
    np.testing.assert_array_equal(model.predict_proba(X_test), expected)
