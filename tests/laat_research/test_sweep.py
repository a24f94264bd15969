"""The sweep end to end on a tiny configuration: rows, labels, pairing, resume, reports."""

import pandas as pd
import pytest

from laat.priors import PriorError, oracle_prior
from laat_research.cells import plan_cells, prepare_dataset
from laat_research.summary import auc_vs_k_figures, key_metrics, summary_markdown
from laat_research.sweep import run_sweep

from .conftest import tiny_config


def test_rows_cover_every_cell_and_repetition(swept, contexts):
    cfg, first = swept
    res = first.results
    cells, notes = plan_cells(cfg, contexts)
    reps = {"few_shot": 2, "skew": 1}
    assert len(res) == sum(reps[c.protocol] for c in cells)
    assert first.info["cells_computed"] == len(cells) and first.info["cells_cached"] == 0
    # bodyfat has no expert prior: skipped and said so
    assert any("bodyfat" in n and "expert" in n for n in notes)
    assert not ((res["dataset"] == "bodyfat") & (res["prior_source"] == "expert")).any()
    assert set(res["protocol"]) == {"few_shot", "skew"}
    for col in ("roc_auc", "accuracy", "f1"):
        assert res[col].between(0, 1).all()
    assert (res["fit_seconds"] > 0).all()
    # k = 1: 2 training rows, all others are test rows
    few = res[res["protocol"] == "few_shot"]
    assert (few["n_train"] == 2).all()
    assert (few["n_train"] + few["n_test"]).isin([768, 252]).all()


def test_prior_labels_never_claim_llm(swept):
    res = swept[1].results
    assert "llm" not in set(res["prior_kind"])
    laat = res[res["method"].str.startswith("laat_")]
    assert set(laat["prior_kind"]) == {"oracle", "random", "expert"}
    assert (laat.loc[laat["prior_source"] == "oracle_noise:0.5", "noise"] == 0.5).all()
    others = res[~res["method"].str.startswith("laat_")]
    assert (others["prior_source"] == "none").all() and (others["prior_kind"] == "none").all()


def test_paired_design_same_rows_for_every_method(swept):
    res = swept[1].results
    per_rep = res.groupby(["dataset", "protocol", "k", "repetition"])
    assert (per_rep["train_index_hash"].nunique() == 1).all()
    assert (per_rep["seed"].nunique() == 1).all()
    # ...but different repetitions draw different rows
    few = res[res["protocol"] == "few_shot"]
    assert few.groupby(["dataset", "k"])["train_index_hash"].nunique().eq(2).all()


def test_the_prior_matters(swept):
    """Wiring check: the oracle prior must beat a random one by a wide margin for LAAT-LR."""
    res = swept[1].results
    lr = res[(res["method"] == "laat_lr") & (res["protocol"] == "few_shot")]
    auc = lr.groupby("prior_source")["roc_auc"].mean()
    assert auc["oracle"] > auc["random"] + 0.15
    assert lr.loc[lr["prior_source"] == "oracle", "prior_alignment"].gt(0.9).all()


def test_skew_rows_report_group_and_fairness(swept):
    res = swept[1].results
    skew = res[res["protocol"] == "skew"]
    assert (skew["k"] == 0).all()
    assert skew["skew_group_n"].gt(0).all()
    assert skew["skew_group_recall"].between(0, 1).all()
    assert skew["fairness.Age.equalized_odds_difference"].notna().all()
    # the condition's rows were removed from training only
    n = {"diabetes": 768, "bodyfat": 252}
    assert (skew["n_train"] + skew["n_test"] < skew["dataset"].map(n)).all()


def test_resume_computes_nothing_and_gives_the_same_table(swept, contexts):
    cfg, first = swept
    again = run_sweep(cfg, contexts=contexts)
    assert again.info["cells_computed"] == 0
    assert again.info["cells_cached"] == first.info["cells_total"]
    pd.testing.assert_frame_equal(again.results, first.results)


def test_a_changed_setting_recomputes_only_its_cells(swept, contexts):
    cfg, first = swept
    changed = cfg.model_copy(
        update={"laat": cfg.laat.model_copy(update={"gamma": 10.0}), "datasets": ["bodyfat"], "protocols": ["few_shot"]}
    )
    out = run_sweep(changed, contexts=contexts)
    torch_cells = out.results[out.results["method"].isin(["laat_lr", "laat_mlp", "plain_lr"])]
    assert out.info["cells_computed"] == torch_cells[["method", "prior_source"]].drop_duplicates().shape[0]
    assert out.info["cells_cached"] == 5  # lr, mlp, rf, hgb, xgb


def test_reports(swept):
    cfg, first = swept
    md = summary_markdown(first.results, first.info, cfg.model_dump())
    assert "## Few-shot ROC AUC" in md and "## Skew protocol" in md
    assert "| diabetes | 1 |" in md and "LAAT-LR [oracle]†" in md and "LAAT-LR [random]" in md
    assert "bodyfat: no expert prior" in md
    figs = auc_vs_k_figures(first.results)
    assert set(figs) == {"lr", "mlp", "overview", "trust_lr", "trust_mlp"}
    assert "no few-shot rows" in figs["trust_lr"].texts[0].get_text()  # this sweep has no trust cells
    metrics = key_metrics(first.results, first.info)
    mean = first.results.query("protocol == 'few_shot' and dataset == 'diabetes' and method == 'lr'")["roc_auc"].mean()
    assert metrics["few_shot.diabetes.k1.lr.roc_auc"] == pytest.approx(mean)
    assert "few_shot.diabetes.k1.laat_lr.oracle_noise_0.5.roc_auc" in metrics


def test_llm_slot_refuses_a_prior_that_is_not_from_an_llm(tmp_path):
    """A non-LLM prior can never be reported as `llm_local`."""
    cfg = tiny_config(tmp_path, datasets=["bodyfat"], prior_sources=["llm_local"])

    def not_an_llm(meta):
        from laat.datasets import encode, labels, load_dataset

        df = load_dataset(meta)
        return oracle_prior(encode(df, meta), labels(df, meta), meta)

    with pytest.raises(PriorError, match="llm_local prior has source 'oracle'"):
        prepare_dataset("bodyfat", cfg, llm_prior=not_an_llm)


def test_unknown_dataset_is_named(tmp_path):
    with pytest.raises(Exception, match="no_such_data"):
        run_sweep(tiny_config(tmp_path, datasets=["no_such_data"]))
