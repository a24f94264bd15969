"""Missing values as part of the model: the imputer fitted on the training rows.

`laat.datasets.encode` leaves a missing numeric or boolean value as NaN and sets the
feature's ``<name>_missing`` column (a missing category is its own one-hot column). The
imputer fills each NaN with its column's median over the rows it was fitted on, the
training rows only; as the first step of the fitted model (`with_imputer`) it is pickled
with it, so evaluation and the served model fill test and request rows with the same values.

The median stays inside the training range, so Min-Max scaling is unchanged by it; what a
gap means is left to the indicator column, which gets a prior like any other feature.

Min-Max scaling, fitted on the training rows, is how the model sees every feature (the
paper's preprocessing): `minmax_scaler` and `model_input` are its one definition for the
estimator, the oracle prior, the prior diagnostic and the benchmarks (`laat.engine.minmax_stack`
is its batched torch form).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

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


def minmax_scaler() -> MinMaxScaler:
    """Each column to [0, 1] over the rows it is fitted on (the training rows only); a constant
    column is only shifted."""
    return MinMaxScaler()


def model_input(X: Any, scaler: Any = None) -> np.ndarray:
    """Rows as the torch model takes them: transformed by a fitted ``scaler`` (or a fitted
    imputer + scaler pipeline; None = as they are), in float32."""
    return np.asarray(X if scaler is None else scaler.transform(X), dtype=np.float32)
