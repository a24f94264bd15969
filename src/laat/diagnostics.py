"""Prior diagnostic: before training, how well does the prior agree with the rows you have?

Per feature it sets the prior's sign against the data's: the class-mean difference of the
Min-Max scaled feature (the direction a linear model sees) and its univariate ROC AUC. A
feature is **flagged** when the data confidently goes the other way than the prior says: a
one-sided label-permutation test of the class-mean difference, against the prior's
direction, below ``level``. With one row per class no permutation can be confident, so
nothing is flagged: two rows cannot overrule anyone.

The summary carries the same sign-flip test that `laat.trust` uses to decide whether to
follow the prior, so the diagnostic shows in advance what ``trust="auto"`` will see.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from laat.attribution import normalized_target
from laat.estimator import resolve_prior
from laat.hyperparams import DIAGNOSTIC_LEVEL, DIAGNOSTIC_PERMUTATIONS
from laat.plots import PRIOR_COLOR, check_prior_label
from laat.preprocess import minmax_scaler
from laat.trust import DEFAULT_SETTINGS, agreement_test, class_mean_difference, class_mean_differences

AGREES, DISAGREES, NO_EVIDENCE = "agrees", "disagrees", "no evidence"


def _weighted_rows(X, y, sample_weight, positive) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The rows with positive weight as float64, labels as 0/1 (1 = ``positive``), their weights
    and the feature names; every way the input can be unusable is refused by name."""
    names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2:
        raise ValueError(f"X must be 2-D (rows x features), got shape {Xa.shape}")
    names = names or [f"x{i}" for i in range(Xa.shape[1])]
    y = np.asarray(y)
    if len(y) != len(Xa):
        raise ValueError(f"X has {len(Xa)} rows but y has {len(y)} labels")
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(f"the diagnostic needs exactly two classes in y, got {classes.tolist()[:10]}")
    pos = classes[1] if positive is None else positive
    if pos not in set(classes.tolist()):
        raise ValueError(f"positive={positive!r} is not one of the classes {classes.tolist()}")
    yy = (y == pos).astype(int)
    w = np.ones(len(yy)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if w.shape != yy.shape or np.any(~np.isfinite(w)) or np.any(w < 0):
        raise ValueError("sample_weight must be one finite weight >= 0 per row")
    keep = w > 0
    Xa, yy, w = Xa[keep], yy[keep], w[keep]
    if yy.min() == yy.max():
        raise ValueError("the rows with positive weight hold a single class: nothing to compare the prior with")
    if np.isnan(Xa).any():
        bad = [n for n, col in zip(names, np.isnan(Xa).any(axis=0)) if col]
        raise ValueError(f"X has missing values in {bad[:10]}; impute them first")
    return Xa, yy, w, names


def prior_diagnostic(
    X,
    y,
    prior,
    *,
    sample_weight=None,
    positive=None,
    level: float = DIAGNOSTIC_LEVEL,
    n_permutations: int = DIAGNOSTIC_PERMUTATIONS,
    tau: float = DEFAULT_SETTINGS.test_tau,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-feature agreement of ``prior`` with the rows (X, y), and a summary.

    Args:
        X: encoded features (DataFrame; or an array, features then named x0, x1, ...).
        y: binary labels; ``positive`` names the class the prior's scores refer to
            (default: the larger label, e.g. 1 or "yes").
        prior: a `laat.priors.Prior`, a mapping or Series feature -> score, covering X's columns.
        sample_weight: rows with weight 0 do not count.
        level: a feature is flagged when the data contradicts its prior sign at this level.

    Returns (table, summary). ``table`` has one row per feature: prior score, the prior's
    weight in the target at ``tau``, the class-mean difference (scaled) and univariate AUC,
    ``agreement`` (agrees / disagrees / no evidence), ``p_contradicts`` and ``flagged``.
    ``summary`` holds counts, the weighted agreement share, the sign-flip p-value of the
    whole prior and the names of flagged features.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations!r}")
    Xa, yy, w, names = _weighted_rows(X, y, sample_weight, positive)
    scores, _ = resolve_prior(prior, names)

    Xs = minmax_scaler().fit_transform(Xa)  # Min-Max on these rows, as the model will see them

    delta = class_mean_difference(Xs, yy, w)
    sgn = np.sign(scores)
    p_contra = _p_contradicts(Xs, yy, w, sgn, delta, n_permutations, seed)
    agreement = np.where((sgn == 0) | (delta == 0), NO_EVIDENCE, np.where(sgn * delta > 0, AGREES, DISAGREES))
    flagged = (agreement == DISAGREES) & (p_contra < level)
    table = pd.DataFrame(
        {
            "feature": names,
            "prior_score": scores,
            "prior_weight": normalized_target(scores, tau).numpy(),
            "class_mean_difference": delta,
            "univariate_auc": [_auc(Xs[:, j], yy, w) for j in range(Xs.shape[1])],
            "agreement": agreement,
            "p_contradicts": p_contra,
            "flagged": flagged,
        }
    )
    agr = agreement_test(Xs, yy, scores, tau=tau, sample_weight=w)
    return table, _summary(yy, names, agreement, flagged, agr, level, tau)


def _p_contradicts(Xs, yy, w, sgn, delta, n_permutations: int, seed: int) -> np.ndarray:
    """One-sided permutation p-value per feature: how often a random labelling goes at least as
    far against the prior's sign as the data does (NaN where the prior is 0)."""
    perm = _permuted_differences(Xs, yy, w, n_permutations, seed)  # (B, d)
    against = -sgn * delta
    p_contra = (1 + np.sum(-sgn[None, :] * perm >= against[None, :] - 1e-12, axis=0)) / (n_permutations + 1)
    return np.where(sgn == 0, np.nan, p_contra)


def _summary(yy, names, agreement, flagged, agr, level: float, tau: float) -> dict[str, Any]:
    """Counts per verdict, the flagged features and the whole prior's sign-flip test (``agr``)."""
    with_evidence = agreement != NO_EVIDENCE
    return {
        "n_rows": int(len(yy)),
        "n_smaller_class": int(min(yy.sum(), len(yy) - yy.sum())),
        "n_features": int(len(names)),
        "n_with_evidence": int(with_evidence.sum()),
        "n_agree": int(np.sum(agreement == AGREES)),
        "n_disagree": int(np.sum(agreement == DISAGREES)),
        "n_flagged": int(flagged.sum()),
        "sign_agreement": (float(np.mean(agreement[with_evidence] == AGREES)) if with_evidence.any() else float("nan")),
        "weighted_agreement": agr.weighted_agreement,
        "sign_flip_p_value": agr.p_value,
        "flagged": [n for n, f in zip(names, flagged) if f],
        "level": level,
        "tau": tau,
    }


def diagnostic_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The numeric part of a summary, e.g. for MLflow metrics."""
    keys = (
        "n_flagged",
        "n_agree",
        "n_disagree",
        "n_with_evidence",
        "sign_agreement",
        "weighted_agreement",
        "sign_flip_p_value",
    )
    return {k: float(summary[k]) for k in keys if summary.get(k) is not None and np.isfinite(summary[k])}


def plot_prior_diagnostic(
    table: pd.DataFrame, summary: Mapping[str, Any], *, prior_label: str, title: str = "", top_n: int = 25
) -> Figure:
    """Prior score vs the data's class difference per feature; flagged features in red.

    Both are scaled to [-1, 1] (prior / 10, difference / its largest magnitude) so that
    bars on the same side agree. ``prior_label`` must say what kind of prior this is
    (llm / expert / oracle / random), as in `laat.plots`. With many features the ``top_n``
    with the largest prior or data magnitude are shown, flagged ones always.
    """
    check_prior_label(prior_label)
    t = table.set_index("feature")
    p = t["prior_score"] / 10.0
    dmax = float(t["class_mean_difference"].abs().max())
    d = t["class_mean_difference"] / dmax if dmax > 0 else t["class_mean_difference"] * 0.0
    size = pd.concat([p.abs(), d.abs()], axis=1).max(axis=1)
    order = list(size.sort_values(ascending=False).index)
    shown = [f for f in order if t.loc[f, "flagged"]]
    shown += [f for f in order if f not in shown][: max(0, top_n - len(shown))]
    shown = sorted(shown, key=lambda f: -size[f])[::-1]  # largest at the top
    n = len(shown)
    fig = Figure(figsize=(9, 2.0 + 0.32 * n), layout="constrained")
    ax = fig.add_subplot()
    ypos = np.arange(n)
    h = 0.4
    ax.barh(ypos + h / 2, p[shown], height=h, color=PRIOR_COLOR, label=f"{prior_label} (score / 10)")
    ax.barh(ypos - h / 2, d[shown], height=h, color="#7570b3", label="training rows: class-mean difference (scaled)")
    ax.set_yticks(ypos, shown, fontsize=8 if n > 25 else 9)
    for tick, f in zip(ax.get_yticklabels(), shown):
        if t.loc[f, "flagged"]:
            tick.set_color("#d7191c")
            tick.set_fontweight("bold")
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel(
        "bars on the same side: the data agrees with the prior's sign\n"
        "red feature: the data confidently disagrees (flagged)",
        fontsize=8,
    )
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8)
    heading = title or "Prior diagnostic"
    pv = summary.get("sign_flip_p_value", float("nan"))
    share = summary.get("weighted_agreement", float("nan"))
    ax.set_title(
        f"{heading}\n{summary.get('n_rows', '?')} training rows: {100 * share:.0f}% of the weighted "
        f"evidence agrees\nsign-flip p = {pv:.3f}, {summary.get('n_flagged', 0)} feature(s) flagged",
        fontsize=9,
    )
    if len(order) > n:
        fig.text(0.01, 0.005, f"showing {n} of {len(order)} features", fontsize=7, style="italic")
    return fig


def _permuted_differences(Xs, yy, w, n_permutations: int, seed: int, chunk: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n_permutations, chunk):
        m = min(chunk, n_permutations - start)
        Y = np.stack([rng.permutation(yy) for _ in range(m)])
        out.append(class_mean_differences(Xs, Y, w))
    return np.concatenate(out)


def _auc(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    return float(roc_auc_score(y, x, sample_weight=w))
