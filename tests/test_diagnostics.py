"""Prior diagnostic: per-feature agreement, flags only where the data is confident, the plot."""

import warnings
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score

from laat.attribution import normalized_target
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


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda X, y, p: (X, np.full(len(y), "yes"), p), "two classes"),
        (lambda X, y, p: (X, y, {**p, "e": 1.0}), r"extra 1: \['e'\]"),
        (lambda X, y, p: (X.assign(b=np.nan), y, p), r"missing values in \['b'\]"),
        (lambda X, y, p: (X, y[:-1], p), "rows but y has"),
    ],
)
def test_bad_inputs_are_named(mutate, match):
    X, y = rows(5)
    X2, y2, p2 = mutate(X, y, PRIOR)
    with pytest.raises(ValueError, match=match):
        prior_diagnostic(X2, y2, p2)


# ---- against brute force on a small table (mutation testing: docs/mutation-testing.md) ----------

# 8 rows, 4 per class; u is binary (many tied permutations), v continuous with an offset, s separates
# the classes perfectly, k is constant. Weights are uneven, so unweighted means would differ.
SMALL_X = pd.DataFrame(
    {
        "u": [1, 0, 1, 1, 0, 0, 1, 0],
        "v": [107.0, 103.5, 101.0, 108.0, 104.0, 102.0, 101.5, 106.0],
        "s": [1, 1, 1, 1, 0, 0, 0, 0],
        "k": [3.0] * 8,
    }
)
SMALL_Y = np.array(["yes"] * 4 + ["no"] * 4)
SMALL_W = np.array([1.0, 2.0, 1.0, 0.5, 1.0, 3.0, 1.0, 1.0])
SMALL_PRIOR = {"u": -3.0, "v": 6.0, "s": 9.0, "k": 2.0}


def _weighted_difference(Xs, yy, w):
    return np.array(
        [
            np.average(Xs[yy == 1, j], weights=w[yy == 1]) - np.average(Xs[yy == 0, j], weights=w[yy == 0])
            for j in range(Xs.shape[1])
        ]
    )


def _small_reference(tau=4.0, y=SMALL_Y):
    Xa = SMALL_X.to_numpy(dtype=float)
    span = Xa.max(0) - Xa.min(0)
    Xs = np.where(span > 0, (Xa - Xa.min(0)) / np.where(span > 0, span, 1.0), 0.0)
    yy = (y == "yes").astype(int)
    s = np.array([SMALL_PRIOR[f] for f in SMALL_X.columns])
    delta = _weighted_difference(Xs, yy, SMALL_W)
    # exact permutation p-value: every labelling with 4 positives among the 8 rows
    perms = []
    for pos in combinations(range(8), int(yy.sum())):
        yp = np.zeros(8, int)
        yp[list(pos)] = 1
        perms.append(_weighted_difference(Xs, yp, SMALL_W))
    perms = np.array(perms)
    p_exact = np.mean(-np.sign(s) * perms >= -np.sign(s) * delta - 1e-12, axis=0)
    auc = [roc_auc_score(yy, Xa[:, j], sample_weight=SMALL_W) for j in range(4)]
    c = normalized_target(s, tau).numpy() * delta
    mags = np.abs(c[c != 0])
    signs = np.array(list(np.ndindex(*(2,) * mags.size))) * -2 + 1
    p_flip = np.mean(signs @ mags >= c.sum() - 1e-12)
    return delta, p_exact, auc, p_flip, np.abs(c[c > 0]).sum() / np.abs(c).sum(), normalized_target(s, tau).numpy()


# five positives: the permutation distribution is not symmetric, and "yes" is the larger class
SMALL_Y5 = np.array(["yes"] * 4 + ["no"] * 3 + ["yes"])


@pytest.mark.parametrize("tau,y", [(4.0, SMALL_Y), (1.0, SMALL_Y), (4.0, SMALL_Y5)])
def test_small_table_matches_brute_force(tau, y):
    delta, p_exact, auc, p_flip, share, target = _small_reference(tau, y)
    table, summary = prior_diagnostic(SMALL_X, y, SMALL_PRIOR, sample_weight=SMALL_W, n_permutations=20000, tau=tau)
    assert list(table.columns) == [
        "feature",
        "prior_score",
        "prior_weight",
        "class_mean_difference",
        "univariate_auc",
        "agreement",
        "p_contradicts",
        "flagged",
    ]
    np.testing.assert_allclose(table["class_mean_difference"], delta, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(table["univariate_auc"], auc, rtol=1e-12)
    np.testing.assert_allclose(table["prior_weight"], target, rtol=1e-12)
    # a seeded estimate of the exact p-value: 4 binomial standard deviations at 20000 draws
    np.testing.assert_allclose(table["p_contradicts"], p_exact, atol=0.015)
    assert list(table["agreement"])[3] == "no evidence" and (table["agreement"] == "disagrees").sum() == 1
    assert summary["sign_flip_p_value"] == pytest.approx(p_flip, rel=1e-12)
    assert summary["weighted_agreement"] == pytest.approx(share, rel=1e-12)
    assert summary["n_rows"] == 8 and summary["n_smaller_class"] == min((y == "yes").sum(), (y == "no").sum())
    assert summary["n_features"] == 4
    assert (summary["n_with_evidence"], summary["n_agree"], summary["n_disagree"]) == (3, 2, 1)
    assert summary["sign_agreement"] == pytest.approx(2 / 3) and summary["level"] == 0.05 and summary["tau"] == tau
    assert set(summary) == {
        "n_rows",
        "n_smaller_class",
        "n_features",
        "n_with_evidence",
        "n_agree",
        "n_disagree",
        "n_flagged",
        "sign_agreement",
        "weighted_agreement",
        "sign_flip_p_value",
        "flagged",
        "level",
        "tau",
    }


def test_p_value_uses_plus_one_over_n_plus_one_and_flags_strictly_below_level():
    # one permutation: p is (1 + hit) / 2, so exactly 0.5 or 1
    table, _ = prior_diagnostic(SMALL_X, SMALL_Y, SMALL_PRIOR, n_permutations=1)
    assert set(table["p_contradicts"].dropna()) <= {0.5, 1.0}
    # s contradicts a prior of -9 as strongly as any labelling can: with 19 permutations and no hit
    # p = 1 / 20 = 0.05, which is not below level 0.05, and is below 0.06
    wrong = {**SMALL_PRIOR, "s": -9.0}
    for level, flagged in ((0.05, False), (0.06, True)):
        t, _ = prior_diagnostic(SMALL_X, SMALL_Y, wrong, n_permutations=19, level=level, seed=3)
        row = t.set_index("feature").loc["s"]
        assert row["p_contradicts"] == pytest.approx(1 / 20) and row["flagged"] == flagged
    # more permutations than one chunk of 256: still one p-value per permutation count
    t, _ = prior_diagnostic(SMALL_X, SMALL_Y, SMALL_PRIOR, n_permutations=300)
    assert t["p_contradicts"].max() <= 1.0 and t.set_index("feature").loc["s", "p_contradicts"] == 1.0


def test_defaults_are_seed_0_and_2000_permutations_and_runs_repeat():
    a, _ = prior_diagnostic(SMALL_X, SMALL_Y, SMALL_PRIOR)
    b, _ = prior_diagnostic(SMALL_X, SMALL_Y, SMALL_PRIOR, n_permutations=2000, seed=0, level=0.05)
    pd.testing.assert_frame_equal(a, b)
    assert ((a["p_contradicts"].dropna() * 2001).round(9) % 1 == 0).all()  # counts over 2000 + 1


def test_a_prior_without_evidence_has_no_sign_agreement_metric():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" on the way
        _, summary = prior_diagnostic(SMALL_X, SMALL_Y, dict.fromkeys(SMALL_X.columns, 0.0))
    assert summary["n_with_evidence"] == 0 and np.isnan(summary["sign_agreement"])
    m = diagnostic_metrics(summary)
    assert set(m) == {
        "n_flagged",
        "n_agree",
        "n_disagree",
        "n_with_evidence",
        "weighted_agreement",
        "sign_flip_p_value",
    } - ({"weighted_agreement"} if np.isnan(summary["weighted_agreement"]) else set())
    _, full = prior_diagnostic(SMALL_X, SMALL_Y, SMALL_PRIOR)
    assert set(diagnostic_metrics(full)) == {
        "n_flagged",
        "n_agree",
        "n_disagree",
        "n_with_evidence",
        "sign_agreement",
        "weighted_agreement",
        "sign_flip_p_value",
    }


def test_arrays_and_one_hot_boolean_columns_are_accepted():
    t_df, _ = prior_diagnostic(SMALL_X, SMALL_Y, SMALL_PRIOR)
    t_arr, _ = prior_diagnostic(SMALL_X.to_numpy(), SMALL_Y, dict(zip(["x0", "x1", "x2", "x3"], SMALL_PRIOR.values())))
    assert list(t_arr["feature"]) == ["x0", "x1", "x2", "x3"]
    np.testing.assert_array_equal(t_arr["class_mean_difference"], t_df["class_mean_difference"])
    onehot = SMALL_X.assign(u=SMALL_X["u"].astype(bool))  # pandas get_dummies gives bool columns
    t_bool, _ = prior_diagnostic(onehot, SMALL_Y, SMALL_PRIOR)
    np.testing.assert_array_equal(t_bool["class_mean_difference"], t_df["class_mean_difference"])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(level=0.0), r"^level must be in \(0, 1\), got 0.0$"),
        (dict(level=1.0), r"^level must be in \(0, 1\), got 1.0$"),
        (dict(level=1.5), r"^level must be in \(0, 1\), got 1.5$"),
        (dict(n_permutations=0), r"^n_permutations must be >= 1, got 0$"),
        (dict(sample_weight=[1.0] * 7), r"^sample_weight must be one finite weight >= 0 per row$"),
        (dict(sample_weight=[1.0] * 7 + [np.inf]), r"^sample_weight must be one finite weight >= 0 per row$"),
        (dict(sample_weight=[1.0] * 7 + [-0.5]), r"^sample_weight must be one finite weight >= 0 per row$"),
        (dict(sample_weight=[1.0] * 4 + [0.0] * 4), r"^the rows with positive weight hold a single class: nothing"),
        (dict(positive="maybe"), r"^positive='maybe' is not one of the classes \['no', 'yes'\]$"),
    ],
)
def test_bad_arguments_get_exact_messages(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prior_diagnostic(SMALL_X, SMALL_Y, SMALL_PRIOR, **kwargs)


def test_shape_and_class_messages_list_at_most_ten():
    with pytest.raises(ValueError, match=r"^X must be 2-D \(rows x features\), got shape \(8,\)$"):
        prior_diagnostic(np.arange(8.0), SMALL_Y, {"x0": 1.0})
    with pytest.raises(
        ValueError,
        match=r"^the diagnostic needs exactly two classes in y, got \[0, 1, 2, 3, 4, 5, "
        r"6, 7, 8, 9\]$",
    ):
        prior_diagnostic(np.zeros((12, 1)), np.arange(12), {"x0": 1.0})
    X = pd.DataFrame(np.full((8, 12), np.nan), columns=[f"c{i}" for i in range(12)])
    with pytest.raises(
        ValueError,
        match=r"missing values in \['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', "
        r"'c8', 'c9'\]; impute them first$",
    ):
        prior_diagnostic(X, SMALL_Y, dict.fromkeys(X.columns, 1.0))


def test_plot_bars_are_scaled_ordered_and_counted():
    table, summary = prior_diagnostic(SMALL_X, SMALL_Y, SMALL_PRIOR, sample_weight=SMALL_W)
    fig = plot_prior_diagnostic(table, summary, prior_label="expert prior", title="small", top_n=3)
    ax = fig.axes[0]
    t = table.set_index("feature")
    d = t["class_mean_difference"] / t["class_mean_difference"].abs().max()
    size = pd.concat([(t["prior_score"] / 10).abs(), d.abs()], axis=1).max(axis=1)
    shown = list(size.sort_values(ascending=False).index[:3])[::-1]  # largest at the top (last)
    assert [x.get_text() for x in ax.get_yticklabels()] == shown
    prior_bars, data_bars = ax.containers
    np.testing.assert_allclose([b.get_width() for b in prior_bars], t.loc[shown, "prior_score"] / 10, rtol=1e-12)
    np.testing.assert_allclose([b.get_width() for b in data_bars], d[shown], rtol=1e-12)
    assert prior_bars.get_label() == "expert prior (score / 10)"
    assert ax.get_xlim() == (-1.05, 1.05)
    assert ax.get_title() == (
        f"small\n8 training rows: {100 * summary['weighted_agreement']:.0f}% of the weighted "
        f"evidence agrees\nsign-flip p = {summary['sign_flip_p_value']:.3f}, 0 feature(s) flagged"
    )
    assert [x.get_text() for x in fig.texts] == ["showing 3 of 4 features"]
    # all features shown: no "showing" note; no class difference at all: flat data bars, no error
    flat = table.assign(class_mean_difference=0.0)
    fig = plot_prior_diagnostic(flat, summary, prior_label="llm prior")
    assert fig.texts == [] and all(b.get_width() == 0 for b in fig.axes[0].containers[1])
    assert fig.axes[0].get_title().startswith("Prior diagnostic\n")


def test_plot_layout_texts_and_defaults():
    from matplotlib.colors import to_rgba

    from laat.plots import PRIOR_COLOR

    table, summary = prior_diagnostic(SMALL_X, SMALL_Y, SMALL_PRIOR, sample_weight=SMALL_W)
    half = table.assign(class_mean_difference=table["class_mean_difference"] / 2)  # largest |difference| 0.5
    ax = plot_prior_diagnostic(half, summary, prior_label="llm prior").axes[0]
    prior_bars, data_bars = ax.containers
    d = table.set_index("feature")["class_mean_difference"]
    shown = [x.get_text() for x in ax.get_yticklabels()]
    np.testing.assert_allclose([b.get_width() for b in data_bars], d[shown] / d.abs().max(), rtol=1e-12)
    for pb, db in zip(prior_bars, data_bars):  # each feature: its prior bar right above its data bar
        assert pb.get_y() == pytest.approx(db.get_y() + db.get_height(), abs=1e-9)
        assert pb.get_height() == pytest.approx(db.get_height(), abs=1e-9)
    assert all(b.get_facecolor() == to_rgba(PRIOR_COLOR) for b in prior_bars)
    assert data_bars.get_label() == "training rows: class-mean difference (scaled)"
    assert ax.get_xlabel() == (
        "bars on the same side: the data agrees with the prior's sign\n"
        "red feature: the data confidently disagrees (flagged)"
    )
    # a summary without its numbers still plots, and says what it does not know
    assert plot_prior_diagnostic(table, {}, prior_label="llm prior").axes[0].get_title() == (
        "Prior diagnostic\n? training rows: nan% of the weighted evidence agrees\nsign-flip p = nan, "
        "0 feature(s) flagged"
    )
    # 30 features: the 25 largest by default
    many = pd.DataFrame(
        {
            "feature": [f"f{i}" for i in range(30)],
            "prior_score": np.linspace(-10, 10, 30),
            "class_mean_difference": np.linspace(0.5, -0.5, 30),
            "flagged": False,
        }
    )
    fig = plot_prior_diagnostic(many, summary, prior_label="random prior")
    assert [x.get_text() for x in fig.texts] == ["showing 25 of 30 features"]
