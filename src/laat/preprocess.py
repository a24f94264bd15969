"""Missing values as part of the model: the imputer fitted on the training rows.

`laat.datasets.encode` leaves a missing numeric or boolean value as NaN and sets the
feature's ``<name>_missing`` column (a missing category is its own one-hot column). The
imputer fills each NaN with its column's median over the rows it was fitted on, the
training rows only; as the first step of the fitted model (`with_imputer`) it is pickled
with it, so evaluation and the served model fill test and request rows with the same values.

The median stays inside the training range, so Min-Max scaling is unchanged by it; what a
gap means is left to the indicator column, which gets a prior like any other feature.
"""

from __future__ import annotations

from typing import Any

from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

IMPUTE_STEP, MODEL_STEP = "impute", "model"


def missing_value_imputer() -> SimpleImputer:
    """Median per encoded column, DataFrame in and out (the model keeps the column names).

    A column with no value at all in the fitted rows is filled with 0: its indicator is 1 on
    every one of them, which is all those rows say.
    """
    return SimpleImputer(strategy="median", keep_empty_features=True).set_output(transform="pandas")


def with_imputer(estimator: Any) -> Pipeline:
    """``estimator`` behind a fresh imputer; fit it on encoded training rows (``model__<param>`` routes fit args)."""
    return Pipeline([(IMPUTE_STEP, missing_value_imputer()), (MODEL_STEP, estimator)])
