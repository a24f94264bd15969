"""From the long results table to the paper's tables (mean ± std over repetitions, ×100) and a
plain account of where LAAT beats the baselines and where it loses.

Oracle priors are logistic-regression coefficients fit on the full labelled data, test rows
included: their columns carry a dagger, and they never count as a LAAT "win".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from laat.hyperparams import MODELS
from laat_research.baselines import DISPLAY
from laat_research.config import Method, PriorSpec

BASELINES = tuple(DISPLAY)  # lr, mlp, rf, hgb, xgb (scikit-learn / XGBoost)
ORACLE_MARK = "†"
# priors of the trust-mode figures: <= 4 priors x (fixed, trust) + plain + baseline = 10 lines (10 colours)
TRUST_PLOT_PRIORS = ("oracle", "oracle_flip", "random", "llm_local")


# ---- labels -----------------------------------------------------------------------------------


def method_label(method: str, prior_source: str = "none") -> str:
    """Display name: ``LAAT-LR [llm_local]``, ``LAAT-MLP [oracle]†``, ``LAAT-LR trust [random]``,
    ``LR``, ``LR (torch, γ=0)``."""
    m = Method.parse(method)
    if m.family == "laat":
        mark = ORACLE_MARK if PriorSpec.parse(prior_source).base == "oracle" else ""
        mode = " trust" if m.trust else ""
        return f"LAAT-{m.model.upper()}{mode} [{prior_source}]{mark}"
    if m.family == "plain":
        return f"{m.model.upper()} (torch, γ=0)"
    return DISPLAY[m.model]


def _uses_prior(names: pd.Series) -> pd.Series:
    """Which rows' methods are LAAT (use a prior), from the method names of a results table."""
    return names.map(lambda n: Method.parse(n).uses_prior).astype(bool)


def with_labels(results: pd.DataFrame) -> pd.DataFrame:
    out = results.copy()
    out["label"] = [method_label(m, p) for m, p in zip(out["method"], out["prior_source"])]
    return out


def _label_order(results: pd.DataFrame) -> list[str]:
    """LAAT columns first (by prior, in sweep order; trust mode right after fixed gamma), then
    the torch twins, then baselines."""
    order: list[tuple[int, int, str]] = []
    priors = list(dict.fromkeys(results["prior_source"]))
    rank_of = {"laat": 0, "plain": 1, "baseline": 2}
    for (name, p), _ in results.groupby(["method", "prior_source"], sort=False):
        m = Method.parse(name)
        rank = rank_of[m.family]
        sub = priors.index(p) if rank == 0 else (BASELINES.index(m.model) if rank == 2 else 0)
        order.append((rank, sub * 10 + (2 if m.model == "mlp" else 0) + m.trust, method_label(name, p)))
    return [lab for *_, lab in sorted(order)]


# ---- aggregation ------------------------------------------------------------------------------


def aggregate(results: pd.DataFrame, metric: str = "roc_auc") -> pd.DataFrame:
    """Mean, std (ddof 1) and count over repetitions per protocol, dataset, k and method label."""
    if metric not in results.columns:
        raise ValueError(f"results have no column {metric!r}")
    df = with_labels(results)
    return (
        df.groupby(["protocol", "dataset", "k", "method", "prior_source", "label"], sort=False)[metric]
        .agg(["mean", "std", "count"])
        .reset_index()
    )


def _fmt(mean: float, std: float) -> str:
    if np.isnan(mean):
        return "–"
    return f"{100 * mean:.1f} ± {100 * (0.0 if np.isnan(std) else std):.1f}"


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub Markdown table (no extra dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        lines.append(
            "| " + " | ".join("" if pd.isna(v) and not isinstance(v, str) else str(v) for v in row.tolist()) + " |"
        )
    return "\n".join(lines)


def paper_table(
    results: pd.DataFrame,
    protocol: str = "few_shot",
    metric: str = "roc_auc",
    labels: Sequence[str] | None = None,
    bold_best: bool = True,
) -> pd.DataFrame:
    """Rows dataset × k, a column per method: ``mean ± std`` ×100. The best non-oracle mean
    of a row is in bold."""
    sub = results[results["protocol"] == protocol]
    if sub.empty:
        return pd.DataFrame()
    agg = aggregate(sub, metric)
    order = [lab for lab in _label_order(sub) if labels is None or lab in labels]
    rows = []
    for (ds, k), g in agg.groupby(["dataset", "k"], sort=False):
        stats = {r.label: (r.mean, r.std) for r in g.itertuples()}
        candidates = {
            lab: m for lab, (m, _) in stats.items() if lab in order and ORACLE_MARK not in lab and not np.isnan(m)
        }
        best = max(candidates.values()) if candidates else None
        row: dict[str, Any] = {"dataset": ds, "k": k}
        for lab in order:
            if lab not in stats:
                row[lab] = "–"
                continue
            text = _fmt(*stats[lab])
            row[lab] = (
                f"**{text}**"
                if bold_best and best is not None and stats[lab][0] == best and ORACLE_MARK not in lab
                else text
            )
        rows.append(row)
    out = pd.DataFrame(rows)
    if protocol == "skew":
        out = out.drop(columns=["k"])
    return out


# ---- LAAT vs baselines ------------------------------------------------------------------------


def comparison(results: pd.DataFrame, protocol: str = "few_shot", metric: str = "roc_auc") -> pd.DataFrame:
    """Per dataset × k × LAAT variant: its mean, the best baseline's mean and name, the gap, and
    the paired comparison with its own model family (LAAT-LR vs LR, LAAT-MLP vs MLP): mean
    paired difference, repetitions won, and a Wilcoxon signed-rank p-value."""
    from scipy.stats import wilcoxon

    sub = results[results["protocol"] == protocol]
    out = []
    for (ds, k), g in sub.groupby(["dataset", "k"], sort=False):
        base = g[g["method"].isin(BASELINES)]
        if base.empty:
            continue
        base_means = base.groupby("method")[metric].mean()
        best_m = base_means.idxmax()
        for (m, p), lg in g[_uses_prior(g["method"])].groupby(["method", "prior_source"], sort=False):
            row = {
                "dataset": ds,
                "k": k,
                "method": method_label(m, p),
                "model": m,
                "prior_source": p,
                "laat": lg[metric].mean(),
                "best_baseline": DISPLAY[best_m],
                "best_baseline_mean": base_means[best_m],
                "delta_vs_best": lg[metric].mean() - base_means[best_m],
            }
            fam = Method.parse(m).family_baseline.name
            fg = g[g["method"] == fam]
            if not fg.empty:
                paired = lg.set_index("repetition")[metric].sub(fg.set_index("repetition")[metric]).dropna()
                row.update(
                    {
                        "family_baseline": DISPLAY[fam],
                        "family_mean": fg[metric].mean(),
                        "paired_delta": paired.mean(),
                        "reps_won": int((paired > 0).sum()),
                        "reps": int(paired.size),
                    }
                )
                nz = paired[paired != 0]
                row["wilcoxon_p"] = float(wilcoxon(nz).pvalue) if nz.size >= 5 else float("nan")
            out.append(row)
    return pd.DataFrame(out)


def wins_and_losses(comp: pd.DataFrame, protocol: str = "few_shot") -> str:
    """A few sentences per LAAT variant: against the best baseline and against its own family."""
    if comp.empty:
        return "_No LAAT rows to compare._"
    few = protocol == "few_shot"

    def where(r) -> str:
        return f"{r.dataset} k={r.k}" if few else str(r.dataset)

    lines = []
    for (m, p), g in comp.groupby(["model", "prior_source"], sort=False):
        label = method_label(m, p)
        d = 100 * g["delta_vs_best"]
        wins = int((d > 0).sum())
        top, low = g.loc[d.idxmax()], g.loc[d.idxmin()]
        text = (
            f"- **{label}** vs the best baseline of each {'dataset × k' if few else 'dataset'}: higher in "
            f"{wins}/{len(g)} (mean gap {d.mean():+.1f} points; best {100 * top.delta_vs_best:+.1f} on "
            f"{where(top)} vs {top.best_baseline}; worst {100 * low.delta_vs_best:+.1f} on {where(low)} "
            f"vs {low.best_baseline})."
        )
        if "paired_delta" in g:
            pd_ = 100 * g["paired_delta"]
            sig_w = int(((g["wilcoxon_p"] < 0.05) & (g["paired_delta"] > 0)).sum())
            sig_l = int(((g["wilcoxon_p"] < 0.05) & (g["paired_delta"] < 0)).sum())
            text += (
                f" Paired vs {g['family_baseline'].iloc[0]} (same splits): higher in "
                f"{int((pd_ > 0).sum())}/{len(g)}, mean {pd_.mean():+.1f} points; significant "
                f"(Wilcoxon p<0.05) wins {sig_w}, losses {sig_l}."
            )
        if ORACLE_MARK in label:
            text += " (Oracle: an upper bound that has seen the test labels, not a real prior.)"
        lines.append(text)
    return "\n".join(lines)


def _comparison_table(comp: pd.DataFrame) -> pd.DataFrame:
    cols = {
        "dataset": comp["dataset"],
        "k": comp["k"],
        "LAAT variant": comp["method"],
        "LAAT": (100 * comp["laat"]).round(1),
        "best baseline": comp["best_baseline"] + " " + (100 * comp["best_baseline_mean"]).round(1).astype(str),
        "Δ vs best": (100 * comp["delta_vs_best"]).round(1),
    }
    if "paired_delta" in comp:
        cols.update(
            {
                "paired Δ vs family": (100 * comp["paired_delta"]).round(1),
                "reps won": comp["reps_won"].astype("Int64").astype(str)
                + "/"
                + comp["reps"].astype("Int64").astype(str),
                "Wilcoxon p": comp["wilcoxon_p"].map(lambda v: "–" if np.isnan(v) else f"{v:.3g}"),
            }
        )
    return pd.DataFrame(cols)


# ---- trust mode (issue 7) ------------------------------------------------------------------------


def _trust_modes(model: str) -> dict[str, str]:
    """Method names of the three ways a torch model treats a prior: ignore, follow at the
    configured gamma and tau, or let the training rows decide."""
    return {
        "plain": Method("plain", model).name,
        "fixed": Method("laat", model).name,
        "trust": Method("laat", model, trust=True).name,
    }


def _trust_columns(results: pd.DataFrame) -> list[tuple[str, int]]:
    return sorted(
        {(p, int(k)) for p, k in zip(results["protocol"], results["k"])}, key=lambda c: (c[0] != "few_shot", c[1])
    )


def _column_name(protocol: str, k: int) -> str:
    return f"k={k}" if protocol == "few_shot" else "skew"


def trust_means(results: pd.DataFrame, model: str = "lr") -> pd.DataFrame:
    """Mean ROC AUC ×100 per prior source, mode (plain / fixed / trust) and k (plus skew),
    over datasets and repetitions, and the share of repetitions in which trust followed the prior.

    For each prior the three modes are averaged over the same (dataset, protocol, k) groups:
    those with trust rows for that prior (e.g. the expert prior only where one exists).
    Long format: prior_source, mode, protocol, k, auc, followed, datasets.
    """
    modes = _trust_modes(model)
    trust = results[results["method"] == modes["trust"]]
    out = []
    for p in dict.fromkeys(trust["prior_source"]):
        tp = trust[trust["prior_source"] == p]
        for (protocol, k), tg in tp.groupby(["protocol", "k"], sort=False):
            groups = set(tg["dataset"])
            here = results[(results["protocol"] == protocol) & (results["k"] == k) & results["dataset"].isin(groups)]
            for mode, name in modes.items():
                m = here[here["method"] == name]
                if mode != "plain":
                    m = m[m["prior_source"] == p]
                if m.empty:
                    continue
                out.append(
                    {
                        "prior_source": p,
                        "mode": mode,
                        "protocol": protocol,
                        "k": int(k),
                        "auc": 100 * m["roc_auc"].mean(),
                        "datasets": len(set(m["dataset"])),
                        "followed": float(m["trust_followed"].astype(float).mean())
                        if mode == "trust" and "trust_followed" in m
                        else np.nan,
                    }
                )
    return pd.DataFrame(out, columns=["prior_source", "mode", "protocol", "k", "auc", "datasets", "followed"])


def trust_table(results: pd.DataFrame, model: str = "lr") -> pd.DataFrame:
    """Rows prior × mode, a column per k (and skew): mean ROC AUC ×100; trust rows also give
    the share of repetitions in which the prior was followed."""
    long = trust_means(results, model)
    if long.empty:
        return pd.DataFrame()
    cols = _trust_columns(long)
    rows = []
    for (p, mode), g in long.groupby(["prior_source", "mode"], sort=False):
        mark = f" {ORACLE_MARK}" if PriorSpec.parse(p).base == "oracle" else ""
        row: dict[str, Any] = {"prior": p + mark, "mode": mode}
        for protocol, k in cols:
            hit = g[(g["protocol"] == protocol) & (g["k"] == k)]
            if hit.empty:
                row[_column_name(protocol, k)] = "–"
                continue
            text = f"{hit['auc'].iloc[0]:.1f}"
            if mode == "trust":
                text += f" ({100 * hit['followed'].iloc[0]:.0f}% followed)"
            row[_column_name(protocol, k)] = text
        row["datasets"] = int(g["datasets"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def trust_section(results: pd.DataFrame, config: dict[str, Any]) -> list[str]:
    """Markdown lines comparing plain, fixed and trust per model family present in the results;
    gamma and tau are quoted from the run's ``config`` (`BenchmarkConfig` as JSON)."""
    laat, trust = config["laat"], config.get("trust") or {}
    settings = ", ".join(f"{k} = {v}" for k, v in trust.items()) or "the defaults of `laat.trust.TrustSettings`"
    parts: list[str] = []
    for model in MODELS:
        table = trust_table(results, model)
        if table.empty:
            continue
        fam = model.upper()
        parts += [
            f"### LAAT-{fam}: plain vs fixed vs trust, mean ROC AUC ×100",
            "",
            f"Over datasets and repetitions (`datasets`: how many datasets each row averages; every "
            f"mode of a prior averages the same ones). plain = {fam} (torch, γ=0); fixed = "
            f"γ={laat['gamma']:g}, τ={laat['tau']:g} whatever the prior; trust = `laat.trust` picks γ "
            f"(0 to {laat['gamma']:g}) and τ from the training rows ({settings}).",
            "",
            markdown_table(table),
            "",
        ]
    if parts:
        parts = [
            "## Trust mode: plain vs fixed vs trust",
            "",
            f"The oracle prior{ORACLE_MARK} has seen the test labels: it shows whether trust follows a "
            "prior that is right, nothing more.",
            "",
        ] + parts
    return parts


# ---- skew protocol ----------------------------------------------------------------------------


def skew_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and method: AUC, F1, the removed group's recall vs other positives', and the
    largest fairness gaps (×100), all mean ± std over repetitions."""
    sub = results[results["protocol"] == "skew"]
    if sub.empty:
        return pd.DataFrame()
    df = with_labels(sub)
    fair_cols = [c for c in df.columns if c.startswith("fairness.")]
    rows = []
    for (ds, lab), g in df.groupby(["dataset", "label"], sort=False):
        row = {"dataset": ds, "method": lab}
        for col, name in (
            ("roc_auc", "ROC AUC"),
            ("f1", "F1"),
            ("skew_group_recall", "removed-group recall"),
            ("recall_outside_skew", "other positives' recall"),
        ):
            row[name] = _fmt(g[col].mean(), g[col].std()) if col in g else "–"
        for gap, short in (("equalized_odds_difference", "EO gap"), ("demographic_parity_difference", "DP gap")):
            parts = [
                f"{c.split('.')[1]} {100 * g[c].mean():.1f}"
                for c in fair_cols
                if c.endswith(gap) and g[c].notna().any()
            ]
            row[short] = ", ".join(parts) if parts else "–"
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {lab: i for i, lab in enumerate(_label_order(sub))}
    return out.sort_values(
        ["dataset", "method"], key=lambda s: s.map(order) if s.name == "method" else s, kind="stable"
    ).reset_index(drop=True)


# ---- the report ---------------------------------------------------------------------------------


def summary_markdown(results: pd.DataFrame, info: dict[str, Any] | None, config: dict[str, Any]) -> str:
    """The whole Markdown report of a sweep; ``config`` is the sweep's `BenchmarkConfig` as JSON
    (``model_dump(mode="json")``), so the report quotes the settings the rows were computed with."""
    info = info or {}
    parts = _report_head(info, config)
    few = results[results["protocol"] == "few_shot"]
    if not few.empty:
        parts += _few_shot_sections(results, few, config)
    if not results[results["protocol"] == "skew"].empty:
        parts += _skew_sections(results)
    return "\n".join(parts).rstrip() + "\n"


def _report_head(info: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """Title, the settings the rows were computed with, how to read the tables, prior notes."""
    laat = config["laat"]
    parts = [
        "# LAAT benchmark",
        "",
        f"Datasets: {', '.join(config['datasets'])}. Shots k: {config['shots']}; "
        f"{config['repetitions']} repetitions (seed {config['seed']}); protocols: "
        f"{', '.join(config['protocols'])}. LAAT: γ={laat['gamma']:g}, τ={laat['tau']:g}, "
        f"attribution {laat['attribution']}. Baseline grids: {config['baselines']['grid']}.",
    ]
    if info:
        parts.append(
            f"Cells: {info.get('cells_total')} ({info.get('cells_computed')} computed, "
            f"{info.get('cells_cached')} from cache); wall time {info.get('wall_seconds')} s "
            f"on {info.get('backend')}."
        )
    parts += [
        "",
        "Values are mean ± std over repetitions, ×100. Bold: the best mean of the row among "
        f"non-oracle methods. {ORACLE_MARK}: oracle prior = logistic-regression coefficients fit on the "
        "FULL labelled dataset (test rows included): an upper bound, never a real prior. "
        "`k`: training rows per class; the test set is every other row. "
        "`(torch, γ=0)`: the LAAT training loop without the attribution term.",
        "",
    ]
    notes = _prior_notes(info)
    if notes or info.get("notes"):
        parts += ["## Priors and skipped cells", ""] + [f"- {n}" for n in notes + list(info.get("notes", []))] + [""]
    return parts


def _few_shot_sections(results: pd.DataFrame, few: pd.DataFrame, config: dict[str, Any]) -> list[str]:
    """ROC AUC (by method, then by prior source when noisy or flipped priors ran), trust, wins and F1."""
    main_labels = [lab for lab in _label_order(few) if not any(t in lab for t in ("_noise:", "_flip"))]
    parts = ["## Few-shot ROC AUC", "", markdown_table(paper_table(results, "few_shot", labels=main_labels)), ""]
    robust = _label_order(few[_uses_prior(few["method"])])
    if any(t in lab for lab in robust for t in ("_noise:", "_flip")):
        parts += [
            "## Few-shot ROC AUC by prior source (noise = share of entries re-drawn at random)",
            "",
            markdown_table(paper_table(results, "few_shot", labels=robust, bold_best=False)),
            "",
        ]
    parts += trust_section(results, config)
    comp = comparison(results, "few_shot")
    if not comp.empty:
        parts += [
            "## Where LAAT wins and loses (few-shot ROC AUC, points ×100)",
            "",
            wins_and_losses(comp),
            "",
            markdown_table(_comparison_table(comp)),
            "",
        ]
    parts += ["## Few-shot F1", "", markdown_table(paper_table(results, "few_shot", "f1", labels=main_labels)), ""]
    return parts


def _skew_sections(results: pd.DataFrame) -> list[str]:
    """The skew protocol's table (recall of the removed group, fairness gaps) and its wins and losses."""
    parts = [
        "## Skew protocol (80/20 split; training rows matching the dataset's skew condition removed)",
        "",
        "removed-group recall: share of test rows matching the skew condition (all positives of the "
        "group removed from training) predicted positive; EO/DP gap: largest equalized-odds / "
        "demographic-parity difference between groups of each sensitive feature (fixed bins), ×100.",
        "",
        markdown_table(skew_table(results)),
        "",
    ]
    comp = comparison(results, "skew")
    if not comp.empty:
        parts += ["### Where LAAT wins and loses (skew ROC AUC)", "", wins_and_losses(comp, "skew"), ""]
    return parts


def _prior_notes(info: dict[str, Any]) -> list[str]:
    notes = []
    for ds, priors in (info.get("priors") or {}).items():
        for base, p in priors.items():
            if p.get("source") == "llm":
                what = f"{p.get('model')} via {p.get('strategy')}, {p.get('n_samples')} samples"
                note = f" {p['quality_note']}" if p.get("quality_note") else ""
                notes.append(f"{ds}: `{base}` prior from the LLM ({what}).{note}")
            elif p.get("source") == "expert":
                notes.append(f"{ds}: `expert` prior from {p.get('path', 'an expert file')}.")
    return notes


# ---- figures and MLflow metrics -------------------------------------------------------------------


def auc_vs_k_figures(results: pd.DataFrame) -> dict[str, Any]:
    """Few-shot ROC AUC vs k, a panel per dataset, mean ± std bands:

    - ``lr``: LAAT-LR for each prior source with LR and its torch twin;
    - ``mlp``: the same for the MLP;
    - ``overview``: LAAT with the LLM and oracle priors against every baseline;
    - ``trust_lr`` / ``trust_mlp``: fixed γ and trust mode side by side for the priors in
      `TRUST_PLOT_PRIORS`, with the plain torch twin and the scikit-learn baseline.
    """
    from laat.plots import plot_auc_vs_shots

    few = with_labels(results[results["protocol"] == "few_shot"]) if not results.empty else results
    names = ("lr", "mlp", "overview", "trust_lr", "trust_mlp")
    if few.empty:
        return {name: _empty_figure("no few-shot rows in this sweep") for name in names}
    # <= 10 lines per panel: the plot cycles through 10 colours
    headline = few["prior_source"].isin(["llm_local", "oracle"])
    shown = few["prior_source"].isin(TRUST_PLOT_PRIORS)

    def named(*methods: Method) -> pd.Series:
        return few["method"].isin([m.name for m in methods])

    def family(model: str) -> pd.Series:  # the prior-free references of a model's figures
        return named(Method("plain", model), Method("baseline", model))

    picks = {
        "lr": named(Method("laat", "lr")) | family("lr"),
        "mlp": named(Method("laat", "mlp")) | family("mlp"),
        "overview": (named(Method("laat", "lr"), Method("laat", "mlp")) & headline) | few["method"].isin(BASELINES),
        "trust_lr": (named(Method("laat", "lr"), Method("laat", "lr", trust=True)) & shown) | family("lr"),
        "trust_mlp": (named(Method("laat", "mlp"), Method("laat", "mlp", trust=True)) & shown) | family("mlp"),
    }
    figs = {}
    for name, mask in picks.items():
        sub = few[mask]
        if name.startswith("trust_") and not sub["method"].map(lambda n: Method.parse(n).trust).any():
            sub = sub.iloc[:0]  # no trust rows: say so rather than repeat the family plot
        if sub.empty:
            figs[name] = _empty_figure(f"no few-shot rows for '{name}' in this sweep")
            continue
        order = _label_order(sub)
        sub = sub.assign(method=sub["label"]).sort_values("method", key=lambda s: s.map(order.index), kind="stable")
        fig = plot_auc_vs_shots(sub[["dataset", "k", "method", "roc_auc"]])
        fig.suptitle(f"Few-shot ROC AUC vs k ({name}); {ORACLE_MARK} oracle has seen test labels", fontsize=10)
        figs[name] = fig
    return figs


def _empty_figure(text: str):
    """A placeholder, so that a sweep without some methods still saves every declared plot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 1.5))
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=9)
    return fig


def _metric_name(*parts: Any) -> str:
    """MLflow metric names allow alphanumerics, _ - . / and spaces."""
    import re

    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", ".".join(str(p) for p in parts))


def key_metrics(results: pd.DataFrame, info: dict[str, Any] | None = None) -> dict[str, float]:
    """Flat name -> value: mean ROC AUC per protocol/dataset/k/method/prior, plus run counters."""
    out: dict[str, float] = {}
    if not results.empty:
        agg = aggregate(results, "roc_auc")
        for r in agg.itertuples():
            key = [r.protocol, r.dataset] + ([f"k{r.k}"] if r.protocol == "few_shot" else []) + [r.method]
            if r.prior_source != "none":
                key.append(r.prior_source)
            out[_metric_name(*key, "roc_auc")] = float(r.mean)
    for k in ("wall_seconds", "cells_total", "cells_computed", "cells_cached"):
        if info and k in info:
            out[f"run.{k}"] = float(info[k])
    return out
