"""Degraded priors for robustness curves: a share of entries randomised, or every sign flipped.

The draws come from a generator the caller seeds from the cell key (never the global RNG),
so a noisy prior is the same for every method of a repetition and across reruns.
"""

from __future__ import annotations

import numpy as np

from laat.priors import SCORE_MAX, SCORE_MIN


def randomise_entries(scores, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Replace round(ratio * d) entries, chosen without replacement, by uniform integers in [-10, 10].

    A replaced entry may by chance keep its value; the ratio is the share *re-drawn*, which
    is what "noise ratio" means for a prior on a discrete scale.
    """
    s = np.asarray(scores, dtype=float).copy()
    if s.ndim != 1:
        raise ValueError(f"scores must be one vector, got shape {s.shape}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"noise ratio must be in [0, 1], got {ratio}")
    m = int(round(ratio * s.size))
    if m:
        idx = rng.choice(s.size, size=m, replace=False)
        s[idx] = rng.integers(int(SCORE_MIN), int(SCORE_MAX) + 1, size=m)
    return s


def flip_signs(scores) -> np.ndarray:
    """The adversarial prior: every effect pointing the wrong way, magnitudes kept."""
    return -np.asarray(scores, dtype=float)
