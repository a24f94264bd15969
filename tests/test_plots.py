import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from laat.fairness import fairness_report
from laat.plots import (
    plot_attributions,
    plot_auc_vs_shots,
    plot_confusion_matrix,
    plot_metric_by_group,
    plot_residuals,
    plot_roc,
)


def _saves(fig: Figure, tmp_path) -> None:
    out = tmp_path / "fig.png"
    fig.savefig(out)
    assert out.stat().st_size > 1000


def test_attributions_show_top_n_normalised_with_a_note(tmp_path):
    names = [f"f{i}" for i in range(144)]
    rng = np.random.default_rng(0)
    prior = pd.Series(rng.integers(-10, 11, 144).astype(float), index=names)
    learned = pd.Series(rng.normal(size=144), index=names[::-1]).reindex(names[::-1])  # other order
    fig = plot_attributions(prior, learned, "myocardial", prior_label="oracle prior", top_n=15)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 15
    both = pd.concat([prior / np.linalg.norm(prior), learned / np.linalg.norm(learned)], axis=1)
    expected_top = both.abs().max(axis=1).sort_values(ascending=False).index[:15]
    assert set(labels) == set(expected_top)
    # bars are the unit-norm values, looked up by name (learned was given in another order)
    bars = {lab: r.get_width() for lab, r in zip(labels, ax.containers[1])}
    for lab in labels[:3]:
        assert bars[lab] == pytest.approx(learned[lab] / np.linalg.norm(learned))
    assert "oracle prior" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("top 15 of 144" in t.get_text() for t in fig.texts)
    _saves(fig, tmp_path)


def test_attribution_title_reports_cosine_and_no_note_when_all_shown():
    prior = pd.Series({"a": 10.0, "b": 0.0})
    fig = plot_attributions(prior, pd.Series({"a": 2.0, "b": 2.0}), prior_label="LLM prior")
    assert "cosine similarity 0.707" in fig.axes[0].get_title()
    assert not fig.texts


def test_prior_label_must_say_its_kind():
    with pytest.raises(ValueError, match="must say what kind of prior"):
        plot_attributions(pd.Series({"a": 1.0}), pd.Series({"a": 1.0}), prior_label="prior")


def test_mismatched_feature_names_are_named():
    with pytest.raises(ValueError, match=r"only in prior \['b'\], only in learned \['c'\]"):
        plot_attributions(pd.Series({"a": 1.0, "b": 2.0}), pd.Series({"a": 1.0, "c": 2.0}), prior_label="expert prior")


def test_roc_one_or_several_curves(tmp_path):
    y = np.array([0, 0, 1, 1, 0, 1])
    fig = plot_roc(y, {"laat": [0.1, 0.2, 0.8, 0.7, 0.3, 0.9], "lr": [0.5, 0.2, 0.4, 0.7, 0.6, 0.9]})
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["laat (AUC 1.000)", "lr (AUC 0.778)"]  # 7 of 9 pos>neg pairs
    _saves(plot_roc(y, [0.1, 0.2, 0.8, 0.7, 0.3, 0.9], label="m"), tmp_path)
    with pytest.raises(ValueError, match="one class only"):
        plot_roc([1, 1], [0.2, 0.3])


def test_metric_by_group_one_panel_per_feature(tmp_path):
    y = np.array([0, 1] * 6)
    p = np.linspace(0.05, 0.95, 12)
    sens = pd.DataFrame({"Age": np.arange(20, 80, 5), "Sex": ["f", "m"] * 6})
    _, by_group = fairness_report(y, p, sens)
    fig = plot_metric_by_group(by_group, "selection_rate")
    assert [ax.get_title() for ax in fig.axes] == ["Age", "Sex"]
    ticks = [t.get_text() for t in fig.axes[1].get_xticklabels()]
    assert ticks == ["Sex=f\n(n=6)", "Sex=m\n(n=6)"]
    _saves(fig, tmp_path)
    with pytest.raises(ValueError, match=r"lacks columns \['nope'\]"):
        plot_metric_by_group(by_group, "nope")


def test_auc_vs_shots_mean_per_method_and_k(tmp_path):
    rows = [
        {"dataset": ds, "k": k, "method": m, "roc_auc": 0.6 + 0.01 * k + (0.05 if m == "laat" else 0) + e}
        for ds in ("diabetes", "bodyfat")
        for k in (1, 5, 10)
        for m in ("laat", "lr")
        for e in (-0.02, 0.02)
    ]
    fig = plot_auc_vs_shots(pd.DataFrame(rows))
    ax = fig.axes[0]
    assert ax.get_title() == "diabetes"
    laat_line = ax.get_lines()[0]
    assert laat_line.get_label() == "laat"
    assert np.allclose(laat_line.get_ydata(), [0.66, 0.70, 0.75])
    _saves(fig, tmp_path)
    with pytest.raises(ValueError, match=r"lack columns \['roc_auc'\]"):
        plot_auc_vs_shots(pd.DataFrame(rows).drop(columns="roc_auc"))


def test_confusion_matrix_counts_and_row_shares_per_true_class(tmp_path):
    y = np.array([0, 0, 0, 0, 1, 2])
    proba = np.eye(3)[[0, 0, 0, 1, 1, 0]]
    fig = plot_confusion_matrix(y, proba, ["Adelie", "Chinstrap", "Gentoo"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[:3] == ["3\n75%", "1\n25%", "0\n0%"] and texts[6] == "1\n100%"
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["Adelie", "Chinstrap", "Gentoo"]
    _saves(fig, tmp_path)
    with pytest.raises(ValueError, match="2 class names for 3 probability columns"):
        plot_confusion_matrix(y, proba, ["a", "b"])


def test_residual_plot_draws_true_minus_predicted_against_the_prediction(tmp_path):
    y, f = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 1.0])
    fig = plot_residuals(y, f, "mpg", title="auto")
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), [[1.5, -0.5], [2.0, 0.0], [1.0, 2.0]])
    assert ax.get_title() == f"auto: residuals (RMSE {np.sqrt(4.25 / 3):.3g}, n=3)"
    _saves(fig, tmp_path)
