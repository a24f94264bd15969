"""The training engine: logistic regressions and one-hidden-layer MLPs, R stacked copies at once.

LAAT's few-shot protocol fits thousands of tiny models (2-20 rows, <= 144 features). At
that size every PyTorch op costs far more in dispatch than in arithmetic, so the cost is
the number of ops per step, not FLOPs. Hence:

- R independent models live in stacked tensors (``W`` is ``(R, d, out)``, `stacked`) and
  train in one loop with ``bmm``; Adam is element-wise, so one Adam over the stack equals R
  Adams (`optim`).
- The default ``grad_impl="analytic"`` writes the gradients of BCE + gamma * L_att in
  closed form (`lr_program`, `mlp_program`); ``grad_impl="autograd"`` computes the same
  loss with `laat.attribution` (double back-prop, `objective`); the tests check both give
  the same gradients and fits.
- Ragged inputs (different row counts or widths) are zero-padded (`inputs`): padded rows get
  weight 0 and padded features are masked, which is also how feature suppression works: a
  masked feature's input column is zeroed and its first-layer weights start (`init`) and
  stay at exactly 0, so its attribution is exactly 0 for LR and MLP alike. A cost model
  decides which shapes share one program (`grouping`).

`fit` validates, pads and trains (`fit_many`); a single fit is the R = 1 case of the same
code (`laat.estimator.LAATClassifier`).
"""

from laat.engine.fit import fit_many
from laat.engine.init import init_params
from laat.engine.inputs import minmax_stack, pad_stack
from laat.engine.stacked import StackedModel, forward, input_gradients

__all__ = [
    "StackedModel",
    "fit_many",
    "forward",
    "init_params",
    "input_gradients",
    "minmax_stack",
    "pad_stack",
]
