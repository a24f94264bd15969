"""Train/test splits of the LAAT protocol, each derived from (seed, k, repetition).

Deriving every split from its own key, rather than from a shared global RNG, keeps the
splits paired across methods: LAAT and every baseline see exactly the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEED = 69  # the protocol's split seed (the paper's); the conf/ YAMLs repeat it


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in key])


def rows_per_class_needed(strategy: str, shots: int) -> tuple[int, str]:
    """Rows each class needs for a split (few_shot: ``shots``, fraction: any), and why.

    Every split keeps at least one row of each class out for testing. A regression table is
    one "class": few_shot draws ``shots`` rows in all (`few_rows_split`).
    """
    if strategy == "few_shot":
        return shots + 1, f"training.split.shots = {shots} for training and at least 1 for testing"
    return 2, "at least 1 in the training rows and 1 in the test rows (training.split.strategy = fraction)"


def few_shot_split(y: np.ndarray, k: int, seed: int = SEED, repetition: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k training rows per class (drawn by a permutation within each class); the rest is test.

    Returns sorted positional indices (train, test).
    """
    y = np.asarray(y)
    if k < 1:
        raise ValueError(f"k (rows per class) must be >= 1, got {k}")
    rng = _rng(seed, k, repetition)
    train = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        if len(members) <= k:
            raise ValueError(f"class {cls} has {len(members)} rows; k={k} per class leaves none for testing")
        train.append(rng.permutation(members)[:k])
    train_idx = np.sort(np.concatenate(train))
    test_idx = np.setdiff1d(np.arange(len(y)), train_idx)
    return train_idx, test_idx


def few_rows_split(n: int, k: int, seed: int = SEED, repetition: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k training rows drawn from all n (a regression's few-shot split); the rest is test."""
    if not 1 <= k < n:
        raise ValueError(f"k (training rows) must be in [1, {n - 1}] for {n} rows, got {k}")
    perm = _rng(seed, k, repetition).permutation(n)
    return np.sort(perm[:k]), np.sort(perm[k:])


def fraction_split(
    n: int, test_fraction: float, seed: int = SEED, repetition: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A random (unstratified) split, as in the skew protocol's 80/20."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    perm = _rng(seed, repetition).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def skewed_split(
    df: pd.DataFrame,
    condition: str,
    test_fraction: float = 0.2,
    seed: int = SEED,
    repetition: int = 0,
    keep_fraction: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction split, then drop from *train only* the rows matching `condition`.

    `keep_fraction` (the paper's δ) keeps that share of the matching rows; the paper uses 0.
    The test rows are untouched so the damage to the affected group stays measurable.
    """
    train_idx, test_idx = fraction_split(len(df), test_fraction, seed, repetition)
    try:
        matches = df.iloc[train_idx].eval(condition).to_numpy(dtype=bool)
    except Exception as exc:
        raise ValueError(
            f"skew condition {condition!r} cannot be evaluated on columns {list(df.columns)}: {exc}"
        ) from exc
    hit = train_idx[matches]
    keep = _rng(seed, repetition, 1).permutation(hit)[: int(round(len(hit) * keep_fraction))]
    return np.sort(np.concatenate([train_idx[~matches], keep])), test_idx
