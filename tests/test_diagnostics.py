"""Prior diagnostic: per-feature agreement, flags only where the data is confident, the plot."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from laat.diagnostics import diagnostic_metrics, plot_prior_diagnostic, prior_diagnostic
from laat.priors import Prior
from laat.splits import few_shot_split
from laat.trust import agreement_test

FEATURES = ["a", "b", "c", "d"]
# a raises P(yes) strongly, c lowers it, b and d are noise. The prior gets a's sign WRONG.
PRIOR = {"a": -8.0, "b": 2.0, "c": -6.0, "d": 0.0}


def rows(k, seed=0, rep=0):
    rng = np.random.default_rng(seed)
    n = 2000
    X = pd.DataFrame(rng.uniform(0, 100, size=(n, 4)), columns=FEATURES)
    logit = 0.08 * (X["a"] - 50) - 0.05 * (X["c"] - 50)
    y = np.where(logit + rng.logistic(size=n) > 0, "yes", "no")
    tr, _ = few_shot_split(y, k, seed=69, repetition=rep)
    return X.iloc[tr].reset_index(drop=True), y[tr]


def test_a_confidently_wrong_sign_is_flagged_and_right_ones_are_not():
    X, y = rows(30)
    table, summary = prior_diagnostic(X, y, PRIOR)
    t = table.set_index("feature")
    assert list(table["feature"]) == FEATURES
    assert t.loc["a", "agreement"] == "disagrees" and t.loc["a", "flagged"]
    assert t.loc["a", "class_mean_difference"] > 0 and t.loc["a", "univariate_auc"] > 0.7
    assert t.loc["c", "agreement"] == "agrees" and not t.loc["c", "flagged"]
    assert t.loc["d", "agreement"] == "no evidence" and np.isnan(t.loc["d", "p_contradicts"])
    assert summary["flagged"] == ["a"] and summary["n_flagged"] == 1
    assert summary["n_agree"] + summary["n_disagree"] == summary["n_with_evidence"] == 3
    assert summary["n_rows"] == 60 and summary["n_smaller_class"] == 30


def test_two_rows_cannot_flag_anything():
    X, y = rows(1)
    table, summary = prior_diagnostic(X, y, PRIOR)
    assert summary["n_flagged"] == 0 and not table["flagged"].any()
    assert (table["p_contradicts"].dropna() >= 0.4).all()  # two labellings: never confident


def test_summary_p_value_is_the_one_trust_mode_uses():
    X, y = rows(10)
    _, summary = prior_diagnostic(X, y, PRIOR)
    Xs = ((X - X.min()) / (X.max() - X.min())).to_numpy()
    agr = agreement_test(Xs, (y == "yes").astype(int), [PRIOR[f] for f in FEATURES], tau=summary["tau"])
    assert summary["sign_flip_p_value"] == pytest.approx(agr.p_value)
    assert summary["weighted_agreement"] == pytest.approx(agr.weighted_agreement)


def test_prior_object_positive_class_and_zero_weight_rows():
    X, y = rows(20)
    prior = Prior(features=FEATURES, mean=[PRIOR[f] for f in FEATURES], source="expert")
    t1, s1 = prior_diagnostic(X, y, prior)
    # the same scores stated for "no" are the opposite claim about "yes"
    t2, _ = prior_diagnostic(X, y, {k: -v for k, v in PRIOR.items()}, positive="no")
    pd.testing.assert_series_equal(t1["agreement"], t2["agreement"])
    # rows with weight 0 do not count, whatever they say
    junk = X.copy()
    junk["a"] = np.where(y == "yes", 0.0, 100.0)
    X3, y3 = pd.concat([X, junk], ignore_index=True), np.concatenate([y, y])
    w = np.r_[np.ones(len(y)), np.zeros(len(y))]
    t3, s3 = prior_diagnostic(X3, y3, PRIOR, sample_weight=w)
    assert s3["flagged"] == s1["flagged"] and s3["n_rows"] == s1["n_rows"]
    np.testing.assert_allclose(t3["class_mean_difference"], t1["class_mean_difference"])


def test_metrics_are_numbers_only():
    X, y = rows(10)
    _, summary = prior_diagnostic(X, y, PRIOR)
    m = diagnostic_metrics(summary)
    assert {"n_flagged", "sign_flip_p_value", "weighted_agreement"} <= set(m)
    assert all(isinstance(v, float) for v in m.values())


def test_plot_marks_flagged_features_and_names_the_prior_kind():
    X, y = rows(30)
    table, summary = prior_diagnostic(X, y, PRIOR)
    fig = plot_prior_diagnostic(table, summary, prior_label="expert prior", title="synthetic")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert "1 feature(s) flagged" in ax.get_title()
    red = {t.get_text() for t in ax.get_yticklabels() if t.get_color() == "#d7191c"}
    assert red == {"a"}
    with pytest.raises(ValueError, match="must say what kind of prior"):
        plot_prior_diagnostic(table, summary, prior_label="my prior")


def test_plot_keeps_flagged_features_when_showing_only_the_top():
    X, y = rows(30)
    table, summary = prior_diagnostic(X, y, PRIOR)
    fig = plot_prior_diagnostic(table, summary, prior_label="llm prior", top_n=1)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a"]


@pytest.mark.parametrize("mutate,match", [
    (lambda X, y, p: (X, np.full(len(y), "yes"), p), "two classes"),
    (lambda X, y, p: (X, y, {**p, "e": 1.0}), r"extra 1: \['e'\]"),
    (lambda X, y, p: (X.assign(b=np.nan), y, p), r"missing values in \['b'\]"),
    (lambda X, y, p: (X, y[:-1], p), "rows but y has"),
])
def test_bad_inputs_are_named(mutate, match):
    X, y = rows(5)
    X2, y2, p2 = mutate(X, y, PRIOR)
    with pytest.raises(ValueError, match=match):
        prior_diagnostic(X2, y2, p2)
