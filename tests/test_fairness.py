import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from laat.fairness import (
    BY_GROUP_COLUMNS,
    GROUP_METRICS,
    MULTICLASS_BY_GROUP_COLUMNS,
    REGRESSION_BY_GROUP_COLUMNS,
    fairness_report,
    group_labels,
    multiclass_fairness_report,
    quantile_edges,
    regression_fairness_report,
)


def test_yes_for_one_group_no_for_the_other_is_maximally_unfair():
    # Group A always predicted yes, group B always no, both groups half positive.
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4])
    summary, by_group = fairness_report(y, p, pd.DataFrame({"Group": list("AAAABBBB")}))
    assert summary["fairness.Group.demographic_parity_difference"] == 1.0
    assert summary["fairness.Group.equalized_odds_difference"] == 1.0
    assert list(by_group.columns) == ["feature", "group", *GROUP_METRICS]
    rows = by_group.set_index("group")
    assert rows.loc["Group=A", "selection_rate"] == 1.0 and rows.loc["Group=B", "selection_rate"] == 0.0
    assert rows.loc["Group=A", "tpr"] == 1.0 and rows.loc["Group=A", "fpr"] == 1.0
    assert rows.loc["Group=B", "tpr"] == 0.0 and rows.loc["Group=B", "fpr"] == 0.0
    assert rows["count"].tolist() == [4, 4] and rows["accuracy"].tolist() == [0.5, 0.5]
    # within A the ranking is inverted (AUC 0.25), within B it is right (0.75)
    assert rows.loc["Group=A", "roc_auc"] == 0.25 and rows.loc["Group=B", "roc_auc"] == 0.75
    assert summary["fairness.Group.roc_auc_difference"] == 0.5


def test_group_blind_predictions_on_identical_groups_are_fair():
    y = np.array([0, 1, 1, 0] * 2)
    p = np.array([0.2, 0.7, 0.4, 0.6] * 2)
    summary, _ = fairness_report(y, p, pd.DataFrame({"Sex": ["f"] * 4 + ["m"] * 4}))
    assert summary["fairness.Sex.demographic_parity_difference"] == 0.0
    assert summary["fairness.Sex.equalized_odds_difference"] == 0.0


def test_gaps_agree_with_fairlearn_when_every_group_has_both_classes():
    rng = np.random.default_rng(0)
    n = 400
    g = rng.choice(["a", "b", "c"], size=n)
    y = rng.integers(0, 2, size=n)
    p = np.clip(0.3 * y + 0.2 * (g == "a") + rng.uniform(0, 0.6, size=n), 0, 1)
    summary, _ = fairness_report(y, p, pd.DataFrame({"G": g}), threshold=0.5)
    y_hat = (p >= 0.5).astype(int)
    assert summary["fairness.G.demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, y_hat, sensitive_features=g)
    )
    assert summary["fairness.G.equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, y_hat, sensitive_features=g)
    )


def test_group_without_positives_has_undefined_tpr_and_is_left_out_of_equalized_odds():
    # Group B has no positives: its TPR is undefined (fairlearn would call it 0).
    y = np.array([0, 1, 0, 1, 0, 0, 0, 0])
    p = np.array([0.1, 0.9, 0.2, 0.8, 0.6, 0.1, 0.1, 0.1])
    summary, by_group = fairness_report(y, p, pd.DataFrame({"G": list("AAAABBBB")}))
    b = by_group.set_index("group").loc["G=B"]
    assert np.isnan(b["tpr"]) and np.isnan(b["roc_auc"]) and b["fpr"] == 0.25
    assert summary["fairness.G.equalized_odds_difference"] == 0.25  # FPR gap only
    assert "fairness.G.roc_auc_difference" not in summary  # one group defines AUC
    assert equalized_odds_difference(y, (p >= 0.5).astype(int), sensitive_features=list("AAAABBBB")) == 1.0


def test_continuous_feature_is_binned_into_readable_ordered_groups():
    age = pd.Series([21, 22, 25, 29, 31, 33, 40, 45, 52, 60, 66, 70], name="Age")
    g = group_labels(age, n_bins=3)
    assert list(g.cat.categories) == ["Age<30", "30<=Age<47", "Age>=47"]
    assert g.tolist()[:5] == ["Age<30"] * 4 + ["30<=Age<47"]
    assert quantile_edges(age, 3) == [30.0, 47.0]  # 30.33 and 47.33 (linear interpolation), rounded


def test_fixed_bins_and_missing_values():
    age = pd.Series([20.0, 35.0, 50.0, np.nan, 64.0])
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.2, 0.6, 0.7, 0.4, 0.9])
    _, by_group = fairness_report(y, p, pd.DataFrame({"Age": age}), bins={"Age": [30, 50]})
    assert by_group["group"].tolist() == ["Age<30", "30<=Age<50", "Age>=50", "Age missing"]
    assert by_group["count"].tolist() == [1, 1, 2, 1]


def test_few_valued_numeric_and_categoricals_are_used_as_is():
    flag = pd.Series([0.0, 1.0, 1.0, 0.0], name="NodeCaps")
    assert group_labels(flag).tolist() == ["NodeCaps=0", "NodeCaps=1", "NodeCaps=1", "NodeCaps=0"]
    sex = pd.Series(["male", "female", "male", "male"], name="SEX")
    assert list(group_labels(sex).cat.categories) == ["SEX=female", "SEX=male"]


def test_several_features_stack_into_one_long_table(project_root):
    from laat.datasets import labels, load_dataset, load_metadata

    meta = load_metadata("conf/base/datasets/indian_liver.yml")
    df = load_dataset(meta)
    y = labels(df, meta)
    p = np.clip(0.5 + 0.3 * (df["Gender"] == "Male") - 0.005 * (df["Age"] - 45), 0, 1)
    summary, by_group = fairness_report(y, p, df[meta.sensitive_features])
    assert set(by_group["feature"]) == {"Age", "Gender"}
    assert by_group.groupby("feature")["count"].sum().tolist() == [len(df), len(df)]
    assert {
        f"fairness.{f}.{k}"
        for f in ("Age", "Gender")
        for k in ("demographic_parity_difference", "equalized_odds_difference")
    } <= set(summary)
    assert all(0.0 <= v <= 1.0 for v in summary.values())


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"sensitive": pd.DataFrame({"G": list("AB")})}, "sensitive has 2 rows but y_true has 4"),
        ({"sensitive": pd.DataFrame({"G": list("ABAB")}), "bins": {"Age": [30]}}, r"bins given for \['Age'\]"),
        ({"sensitive": pd.DataFrame({"Age": [1, "x", 3, 4]}), "bins": {"Age": [2]}}, "non-numeric values"),
        ({"sensitive": pd.Series(list("ABAB"))}, "must be a DataFrame"),
    ],
)
def test_bad_input_names_the_problem(kwargs, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        fairness_report([0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], **kwargs)


def test_no_sensitive_features_gives_no_gaps_and_a_table_that_reads_back(tmp_path):
    y, p = [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8]
    summary, by_group = fairness_report(y, p, pd.DataFrame(index=range(4)))
    assert summary == {}
    assert list(by_group.columns) == list(BY_GROUP_COLUMNS) and by_group.empty
    by_group.to_csv(tmp_path / "by_group.csv", index=False)
    back = pd.read_csv(tmp_path / "by_group.csv")
    assert list(back.columns) == list(BY_GROUP_COLUMNS) and back.empty


# ---- multiclass and regression ---------------------------------------------------------------


def test_multiclass_groups_get_accuracy_and_macro_f1_with_their_gaps():
    y = np.array([0, 1, 2, 0, 1, 2])
    proba = np.eye(3)[[0, 1, 2, 1, 2, 0]]  # group A all right, group B all wrong
    summary, by_group = multiclass_fairness_report(y, proba, pd.DataFrame({"Group": list("AAABBB")}))
    assert tuple(by_group.columns) == MULTICLASS_BY_GROUP_COLUMNS
    rows = by_group.set_index("group")
    assert rows["accuracy"].tolist() == [1.0, 0.0] and rows["f1_macro"].tolist() == [1.0, 0.0]
    assert rows["count"].tolist() == [3, 3]
    assert summary == {"fairness.Group.accuracy_difference": 1.0, "fairness.Group.f1_macro_difference": 1.0}


def test_regression_groups_get_their_errors_and_the_gaps_between_them():
    y = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    f = np.array([1.0, 2.0, 3.0, 3.0, 4.0, 5.0])  # group B over-predicted by 2 everywhere
    summary, by_group = regression_fairness_report(y, f, pd.DataFrame({"Sex": list("fffmmm")}))
    assert tuple(by_group.columns) == REGRESSION_BY_GROUP_COLUMNS
    rows = by_group.set_index("group")
    assert rows.loc["Sex=m", ["rmse", "mae", "mean_error"]].tolist() == [2.0, 2.0, 2.0]
    assert rows.loc["Sex=f", ["rmse", "mae", "mean_error"]].tolist() == [0.0, 0.0, 0.0]
    assert summary == {
        "fairness.Sex.rmse_difference": 2.0,
        "fairness.Sex.mae_difference": 2.0,
        "fairness.Sex.mean_error_difference": 2.0,
    }


def test_without_sensitive_features_every_task_returns_an_empty_table_with_its_columns():
    none = pd.DataFrame(index=range(6))
    summary, table = regression_fairness_report(np.arange(6.0), np.arange(6.0), none)
    assert summary == {} and tuple(table.columns) == REGRESSION_BY_GROUP_COLUMNS and table.empty
    summary, table = multiclass_fairness_report([0, 1, 2] * 2, np.eye(3)[[0, 1, 2] * 2], none)
    assert summary == {} and tuple(table.columns) == MULTICLASS_BY_GROUP_COLUMNS and table.empty


def test_by_group_table_matches_fairlearns_metric_frame():
    """fairness_report slices the groups itself (MetricFrame was the benchmark's slowest step):
    the table must be fairlearn's, row for row, on mixed numeric, categorical and missing groups."""
    from fairlearn.metrics import MetricFrame, count, selection_rate
    from sklearn.metrics import accuracy_score, roc_auc_score

    rng = np.random.default_rng(3)
    n = 300
    y = rng.integers(0, 2, n)
    p = np.round(rng.random(n), 2)
    sens = pd.DataFrame({"Age": rng.integers(18, 90, n).astype(float), "Sex": rng.choice(["f", "m", None], n)})
    _, by_group = fairness_report(y, p, sens, bins={"Age": [30, 60]})
    y_hat = (p >= 0.5).astype(int)
    for name in sens.columns:
        groups = group_labels(sens[name], name=name, edges=[30, 60] if name == "Age" else None)
        mf = MetricFrame(
            metrics={"count": count, "selection_rate": selection_rate, "accuracy": accuracy_score},
            y_true=y,
            y_pred=y_hat,
            sensitive_features=pd.Series(groups.astype(str).to_numpy(), name=name),
        )
        want = mf.by_group.reindex(list(groups.cat.categories))
        got = by_group[by_group["feature"] == name].set_index("group")
        assert list(got.index) == list(want.index) and len(got) >= 3
        assert got["count"].tolist() == want["count"].astype(int).tolist()
        assert got["selection_rate"].tolist() == want["selection_rate"].astype(float).tolist()
        assert got["accuracy"].tolist() == want["accuracy"].astype(float).tolist()
        for label in got.index:
            in_group = (groups == label).to_numpy()
            assert got.loc[label, "roc_auc"] == pytest.approx(roc_auc_score(y[in_group], p[in_group]), abs=1e-12)
