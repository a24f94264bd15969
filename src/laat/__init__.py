"""LAAT: LLM attribution priors as regularisers for small tabular models.

`laat.LAATClassifier` and `laat.LAATRegressor` are imported on first use, so that `kedro`
commands, which import this package, start without torch or scikit-learn.
"""

__version__ = "0.1.0"

_ESTIMATORS = {"LAATClassifier": "laat.estimator", "LAATRegressor": "laat.estimator_multi"}


def __getattr__(name: str):
    if name in _ESTIMATORS:
        import importlib

        return getattr(importlib.import_module(_ESTIMATORS[name]), name)
    raise AttributeError(f"module 'laat' has no attribute {name!r}")
