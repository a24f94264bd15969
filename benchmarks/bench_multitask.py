"""Multiclass and regression LAAT (issue 15): does a prior help at small n, and is trust safe?

Tables shipped inside installed packages (no download): multiclass iris, wine
(scikit-learn) and penguins (palmerpenguins); regression diabetes (scikit-learn), fair
(affairs) and star98 (share of pupils above the maths median; both statsmodels, the
``research`` extra). For k rows per class (multiclass) or n rows (regression) and 20
repetitions (seeded per table, size and repetition), with Min-Max scaling fit on the
training rows and every other row (at most 2000) as the test set, it trains on the same rows
and initialisation, with the estimators' default settings (Adam lr 1e-2 for classes; for
regression 1e-1 with LR, 1e-2 with the MLP; 200 full-batch epochs):

- ``plain``: the same model without a prior (gamma = 0),
- ``<prior>/off``: gamma = 100, tau = 1 (the paper's fixed rule; ``oracle/off tau=4`` with
  trust mode's softer tau), and ``<prior>/trust``: `laat.trust_multi` decides (the rule
  behind ``trust="auto"``),
- ``sklearn``: scikit-learn's LogisticRegression (default C) or RidgeCV on the same rows.

Priors (all labelled; none is an LLM's): ``oracle`` (multinomial LR / ridge on ALL rows,
an upper bound, `laat.priors.oracle_prior`), ``noisy`` (the oracle with 30% of the entries
re-drawn uniformly, per repetition), ``flipped`` (every sign flipped), ``random`` (seeded
integers per repetition). For multiclass it also trains ``shared`` (one score per feature:
the per-class oracle's largest magnitude) to compare the two prior forms.

It prints mean test macro one-vs-rest ROC AUC x 100 / R^2 x 100 over the tables per method
and size, and the issue's checks.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_multitask.py               # LR, the README table
    PYTHONPATH=src .venv/bin/python benchmarks/bench_multitask.py --model mlp
    PYTHONPATH=src .venv/bin/python benchmarks/bench_multitask.py --reps 3 --tables iris diabetes
"""

from __future__ import annotations

import argparse
import time
import zlib

import numpy as np
import pandas as pd

from laat.attribution import normalized_target
from laat.estimator import LAATClassifier
from laat.estimator_multi import LAATRegressor
from laat.hyperparams import REGRESSOR_DEFAULT_LR
from laat.multioutput import fit_multi
from laat.priors import oracle_prior, random_prior
from laat.trust import DEFAULT_SETTINGS
from laat.trust_multi import MultiTrustProblem, cv_score, decide_many

SEED = 69
MAX_TEST = 2000
GAMMA = 100.0
SIZES = {"multiclass": (5, 10, 20), "regression": (20, 50, 100)}


def load_table(name: str) -> tuple[pd.DataFrame, np.ndarray, str]:
    """(one-hot features, target, task) for a bundled table; rows with missing values dropped."""
    if name in ("iris", "wine", "diabetes"):
        from sklearn import datasets

        X, y = getattr(datasets, f"load_{name}")(return_X_y=True, as_frame=True)
        return X, y.to_numpy(), "regression" if name == "diabetes" else "multiclass"
    if name == "penguins":
        from palmerpenguins import load_penguins

        df = load_penguins().dropna()
        y = pd.factorize(df.pop("species"), sort=True)[0]
        return pd.get_dummies(df, columns=["island", "sex"], dtype=float), y, "multiclass"
    import statsmodels.api as sm

    if name == "fair":
        df = sm.datasets.fair.load_pandas().data
        return df.drop(columns="affairs"), df["affairs"].to_numpy(), "regression"
    if name == "star98":
        df = sm.datasets.star98.load_pandas().data
        y = (df["NABOVE"] / (df["NABOVE"] + df["NBELOW"])).to_numpy()
        return df.drop(columns=["NABOVE", "NBELOW"]), y, "regression"
    raise ValueError(f"unknown table {name!r}")


TABLES = {"multiclass": ("iris", "wine", "penguins"), "regression": ("diabetes", "fair", "star98")}


def split(y: np.ndarray, task: str, size: int, rep: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, size, rep])
    if task == "multiclass":
        train = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:size] for c in np.unique(y)])
    else:
        train = rng.permutation(len(y))[:size]
    rest = np.setdiff1d(np.arange(len(y)), train)
    return train, rng.permutation(rest)[:MAX_TEST]


def priors(X: pd.DataFrame, y: np.ndarray, task: str, name: str, reps: int) -> dict[str, list[np.ndarray]]:
    """Prior scores per repetition: (k, d) per class, or (d,)."""
    cols = list(X.columns)
    k = len(np.unique(y)) if task == "multiclass" else None
    classes = [str(c) for c in range(k)] if k else None
    oracle = oracle_prior(X, y, task=task, classes=classes).matrix()
    out = {"oracle": [oracle] * reps, "flipped": [-oracle] * reps}
    noisy, rand = [], []
    for r in range(reps):
        rng = np.random.default_rng([SEED, zlib.crc32(name.encode()), r])
        s = oracle.copy()
        hit = rng.random(s.shape) < 0.3
        s[hit] = rng.integers(-10, 11, size=int(hit.sum()))
        noisy.append(s)
        rand.append(random_prior(cols, seed=int(rng.integers(2**31)), classes=classes).matrix())
    out["noisy"], out["random"] = noisy, rand
    if task == "multiclass":
        out["shared"] = [np.abs(oracle).max(axis=0)] * reps
    return out


def run_cell(
    name: str,
    X: pd.DataFrame,
    y: np.ndarray,
    task: str,
    size: int,
    reps: int,
    model: str,
    pri: dict[str, list[np.ndarray]],
    cv_min: int | None = None,
    lr: float | None = None,
) -> list[dict]:
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.preprocessing import MinMaxScaler

    k = len(np.unique(y)) if task == "multiclass" else 1
    Xa = X.to_numpy(dtype=np.float64)
    tr_X, tr_y, te_X, te_y, mu_sd = [], [], [], [], []
    rows = []
    for r in range(reps):
        tr, te = split(y, task, size, r, SEED + zlib.crc32(name.encode()))
        sc = MinMaxScaler().fit(Xa[tr])
        tr_X.append(sc.transform(Xa[tr]).astype(np.float32))
        te_X.append(sc.transform(Xa[te]).astype(np.float32))
        yt = y[tr].astype(float)
        mu, sd = (yt.mean(), yt.std() or 1.0) if task == "regression" else (0.0, 1.0)
        tr_y.append((yt - mu) / sd)
        te_y.append(y[te])
        mu_sd.append((mu, sd))
        base = (LogisticRegression(max_iter=5000) if task == "multiclass" else RidgeCV()).fit(tr_X[-1], y[tr])
        out = base.decision_function(te_X[-1]) if task == "multiclass" else base.predict(te_X[-1])
        rows.append({"method": "sklearn", "rep": r, "score": cv_score(task, y[te], out, np.ones(len(te)))})
    est = LAATClassifier(model=model) if task == "multiclass" else LAATRegressor(model=model)
    if lr is None:  # the estimator's default unless --lr
        lr = est.lr if task == "multiclass" else REGRESSOR_DEFAULT_LR[model]
    kw = {"task": task, "n_outputs": k, "model": model, "lr": lr}
    # fixed-gamma jobs: (label, rep, scores or None, gamma, tau)
    jobs = [("plain", r, None, 0.0, 1.0) for r in range(reps)]
    for p in pri:
        jobs += [(f"{p}/off", r, pri[p][r], GAMMA, 1.0) for r in range(reps)]
    jobs += [("oracle/off tau=4", r, pri["oracle"][r], GAMMA, DEFAULT_SETTINGS.tau) for r in range(reps)]
    trust_priors = list(pri)
    problems = [
        MultiTrustProblem(X=tr_X[r], y=tr_y[r], scores=pri[p][r], task=task, n_outputs=k, gamma=GAMMA, seed=SEED + r)
        for p in trust_priors
        for r in range(reps)
    ]
    decisions = decide_many(problems, {"model": model, "lr": lr}, DEFAULT_SETTINGS, cv_min=cv_min)
    followed = {}
    for (p, r), dec in zip([(p, r) for p in trust_priors for r in range(reps)], decisions):
        jobs.append((f"{p}/trust", r, pri[p][r], dec["gamma"], dec["tau"]))
        followed.setdefault(p, []).append(dec["followed"])
    for form in ("per_class", "shared"):
        sel = [
            j for j in jobs if (j[2] is not None and np.ndim(j[2]) == 1 and task == "multiclass") == (form == "shared")
        ]
        if not sel:
            continue
        d = tr_X[0].shape[1]
        T = np.stack(
            [
                normalized_target(
                    j[2] if j[2] is not None else np.ones(d if form == "shared" or task == "regression" else (k, d)),
                    j[4],
                ).numpy()
                for j in sel
            ]
        )
        m = fit_multi(
            np.stack([tr_X[j[1]] for j in sel]),
            np.stack([tr_y[j[1]] for j in sel]),
            T,
            gamma=[j[3] for j in sel],
            seeds=[SEED + j[1] for j in sel],
            prior_form=form,
            **kw,
        )
        import torch

        with torch.no_grad():
            for i, j in enumerate(sel):
                out = m.outputs(te_X[j[1]])[i].double().numpy()
                r = j[1]
                pred = out[:, 0] * mu_sd[r][1] + mu_sd[r][0] if task == "regression" else out
                rows.append({"method": j[0], "rep": r, "score": cv_score(task, te_y[r], pred, np.ones(len(te_y[r])))})
    for p, f in followed.items():
        rows.append({"method": f"{p}/trust", "rep": -1, "followed": float(np.mean(f))})
    for row in rows:
        row.update(table=name, task=task, size=size)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="lr", choices=["lr", "mlp"])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--tables", nargs="*", default=[t for ts in TABLES.values() for t in ts])
    ap.add_argument("--sizes", nargs="*", type=int, default=None, help="k per class / n rows (default: the task's)")
    ap.add_argument(
        "--cv-min",
        type=int,
        default=None,
        help="rows (smallest class, or all for regression) from which trust cross-validates",
    )
    ap.add_argument("--lr", type=float, default=None, help="Adam step size (default: the estimator's)")
    ap.add_argument("--out", default=None, help="CSV of every (table, size, method, repetition) score")
    args = ap.parse_args()
    rows = []
    t0 = time.time()
    for name in args.tables:
        X, y, task = load_table(name)
        pri = priors(X, y, task, name, args.reps)
        for size in args.sizes or SIZES[task]:
            rows += run_cell(name, X, y, task, size, args.reps, args.model, pri, args.cv_min, args.lr)
            print(f"{name} {size}: {time.time() - t0:.0f}s", flush=True)
    df = pd.DataFrame(rows)
    if args.out:
        df.to_csv(args.out, index=False)
    scores = df[df.rep >= 0]
    for task, g in scores.groupby("task"):
        per_table = g.groupby(["method", "size", "table"]).score.mean().groupby(["method", "size"]).mean()
        table = (100 * per_table).unstack("size").round(1)
        fol = df[(df.task == task) & (df.rep < 0)].groupby(["method", "size"]).followed.mean().unstack("size")
        metric = "macro OvR ROC AUC x 100" if task == "multiclass" else "R^2 x 100"
        print(f"\n{task} ({metric}, mean over {g.table.nunique()} tables, {args.reps} reps, {args.model}):")
        print(table.to_string())
        print("share of repetitions where trust followed the prior:")
        print((100 * fol).round(0).to_string())
        plain = table.loc["plain"]
        print(
            "checks: oracle/off - plain:",
            (table.loc["oracle/off"] - plain).round(1).to_dict(),
            "| random/trust - plain:",
            (table.loc["random/trust"] - plain).round(1).to_dict(),
        )
    print(f"total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
