"""Are two versions of the training engine bit-identical? Save a fixed set of fits, compare.

A refactor of the engine (issue 14 split `laat.models` into `laat.engine`) must not move a
single bit of any fit. This runs a fixed set of fits and saves every resulting tensor:

- `fit_many` for LR and MLP on real few-shot rows (diabetes, bodyfat) and on synthetic
  ragged inputs: gamma = 0 without a prior, gamma = 100 with one, a gamma grid as one batch,
  the input x gradient attribution, confidence weights, a feature mask, sample weights,
  mini-batches, the written-out Adam, autograd gradients and the loss history; several seeds;
- `LAATClassifier` on diabetes and bodyfat (LR and MLP; trust off and auto, at 5 and 10 rows
  per class, so that trust's sign-flip test and its cross-validation both run): parameters,
  learned attributions, logits on held-out rows and the trust decision.

Priors are RANDOM (laat.priors.random_prior): identity does not depend on where a prior came
from. Usage, e.g. against the sources of the commit before a change:

    git archive main src | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before/src python benchmarks/check_engine_identity.py save /tmp/before.pt \
        --engine-module laat.models
    PYTHONPATH=src python benchmarks/check_engine_identity.py save /tmp/after.pt
    python benchmarks/check_engine_identity.py compare /tmp/before.pt /tmp/after.pt

``--engine-module`` names the module that holds `fit_many` in the version being run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

import numpy as np
import torch

from laat.attribution import normalized_target
from laat.datasets import encode, labels, load_dataset, load_metadata
from laat.estimator import LAATClassifier
from laat.priors import random_prior
from laat.splits import few_shot_split

DATASETS = ("diabetes", "bodyfat")
MODELS = ("lr", "mlp")
SEEDS = [3, 17, 69]
GAMMA_GRID = [0.0, 1.0, 10.0, 100.0, 1000.0]


def _rows(name: str, k: int, repetition: int = 0):
    """Encoded rows of a dataset, a few-shot split of k rows per class, and a random prior."""
    meta = load_metadata(f"conf/base/datasets/{name}.yml")  # run from the project root
    df = load_dataset(meta)
    X = encode(df, meta)
    y = labels(df, meta)
    train, test = few_shot_split(y, k, seed=69, repetition=repetition)
    return X, y, train, test, random_prior(meta.encoded_columns, seed=1)


def fit_many_cases(fit_many, minmax_stack) -> dict[str, dict]:
    """name -> fit_many call (all keyword arguments); inputs are the same in every version."""
    cases = {}
    for name in DATASETS:
        X, y, train, _, prior = _rows(name, 5)
        (xs,) = minmax_stack(X.to_numpy(dtype=np.float32)[train][None])
        ys = torch.tensor(y[train], dtype=torch.float32)[None]
        t = normalized_target(prior.mean).numpy()
        d = xs.shape[-1]
        for m in MODELS:
            base = dict(
                X=xs.expand(len(SEEDS), -1, -1), y=ys.expand(len(SEEDS), -1), model=m, hidden=16, epochs=60, seeds=SEEDS
            )
            cases[f"{name}/{m}/gamma0_no_prior"] = dict(base, target=None, gamma=0.0)
            cases[f"{name}/{m}/gamma100"] = dict(base, target=t, gamma=100.0)
            cases[f"{name}/{m}/grid"] = dict(
                base,
                X=xs.expand(len(GAMMA_GRID), -1, -1),
                y=ys.expand(len(GAMMA_GRID), -1),
                target=t,
                gamma=GAMMA_GRID,
                seeds=7,
            )
            cases[f"{name}/{m}/input_x_grad_conf"] = dict(
                base, target=t, attribution="input_x_grad", confidence=np.linspace(0.2, 2.0, d)
            )
            cases[f"{name}/{m}/mask_weights_wd"] = dict(
                base,
                target=t,
                feature_mask=np.arange(d) % 3 != 1,
                weight_decay=0.01,
                sample_weight=np.linspace(0.5, 1.5, xs.shape[1])[None].repeat(len(SEEDS), 0),
            )
            cases[f"{name}/{m}/written_out_adam_history"] = dict(base, target=t, fused_adam=False, record_history=True)
            cases[f"{name}/{m}/autograd"] = dict(base, target=t, grad_impl="autograd", epochs=15)
    g = torch.Generator().manual_seed(5)
    shapes = [(2, 30), (6, 30), (4, 3), (6, 3), (40, 8), (40, 8), (25, 8)]
    X = [torch.rand(n, d, generator=g) for n, d in shapes]
    Y = [torch.tensor([0.0, 1.0] * (n // 2) + [0.0] * (n % 2)) for n, _ in shapes]
    T = [normalized_target(torch.randint(-10, 11, (d,), generator=g)) for _, d in shapes]
    for m in MODELS:
        for bucket in (True, False):
            cases[f"ragged/{m}/bucket={bucket}"] = dict(
                X=X,
                y=Y,
                target=T,
                model=m,
                hidden=6,
                epochs=30,
                gamma=[100.0, 30.0, 0.0, 100.0, 50.0, 0.0, 100.0],
                batch_size=16,
                bucket=bucket,
                seeds=SEEDS * 2 + [1],
            )
    return cases


def run_fit_many(engine) -> dict[str, torch.Tensor]:
    out = {}
    for name, kw in fit_many_cases(engine.fit_many, engine.minmax_stack).items():
        kw = dict(kw)
        fit = engine.fit_many(kw.pop("X"), kw.pop("y"), kw.pop("target"), **kw)
        out.update({f"fit_many/{name}/{k}": v for k, v in fit.params.items()})
        if fit.history is not None:
            out[f"fit_many/{name}/history"] = fit.history
    return out


def run_estimator() -> dict[str, torch.Tensor]:
    out = {}
    for name in DATASETS:
        for k in (5, 10):
            X, y, train, test, prior = _rows(name, k, repetition=1)
            scores = dict(zip(prior.features, prior.mean))
            for m in MODELS:
                for trust in ("off", "auto"):
                    est = LAATClassifier(model=m, hidden=16, epochs=80, trust=trust, prior=scores, random_state=11)
                    est.fit(X.iloc[train], y[train])
                    key = f"estimator/{name}/k={k}/{m}/trust={trust}"
                    out.update({f"{key}/{p}": v for p, v in est.model_.params.items()})
                    out[f"{key}/attributions"] = torch.tensor(est.feature_attributions_.to_numpy())
                    out[f"{key}/logits"] = torch.tensor(est.decision_function(X.iloc[test]))
                    decision = json.dumps(est.trust_, sort_keys=True, default=str).encode()
                    out[f"{key}/trust_json"] = torch.tensor(list(decision), dtype=torch.uint8)
    return out


def compare(a_path: str, b_path: str) -> int:
    a, b = torch.load(a_path), torch.load(b_path)
    if a.keys() != b.keys():
        print(
            f"different fits: only in {a_path}: {sorted(a.keys() - b.keys())}; "
            f"only in {b_path}: {sorted(b.keys() - a.keys())}"
        )
        return 1
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    for k in differ:
        print(f"DIFFERS {k}: max |a - b| = {(a[k].double() - b[k].double()).abs().max().item():.3g}")
    print(f"{len(a) - len(differ)} of {len(a)} tensors bit-identical (torch.equal)")
    return 1 if differ else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    save = sub.add_parser("save", help="run the fits and save their tensors")
    save.add_argument("out")
    save.add_argument("--engine-module", default="laat.engine", help="module holding fit_many")
    cmp_ = sub.add_parser("compare", help="compare two saved files with torch.equal")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    args = ap.parse_args()
    if args.command == "compare":
        return compare(args.a, args.b)
    torch.set_num_threads(1)
    tensors = {**run_fit_many(importlib.import_module(args.engine_module)), **run_estimator()}
    torch.save(tensors, args.out)
    print(f"saved {len(tensors)} tensors to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
