"""LAAT: LLM attribution priors as regularisers for small tabular models.

Import the pieces you need (`laat.datasets`, `laat.priors`, `laat.estimator`, ...); this
package file stays empty on purpose so that `kedro` commands start without torch or mlflow.
"""

__version__ = "0.1.0"
