"""Trust-mode cells (issue 7): ignored priors give exactly the plain model, a right prior is
followed, adding trust to a cached sweep computes only the trust cells, and the report."""

import numpy as np
import pandas as pd
import pytest

from laat_research.cells import Cell, run_cell
from laat_research.config import BenchmarkConfig, Method
from laat_research.summary import method_label, summary_markdown
from laat_research.sweep import run_sweep

from .conftest import tiny_config

# Every result column that depends on the fitted model and the split (not on labels or timing).
SAME = [
    "n_train",
    "n_test",
    "train_index_hash",
    "seed",
    "roc_auc",
    "accuracy",
    "f1",
    "precision",
    "recall",
    "log_loss",
    "brier",
]


def _cfg(tmp_path, **kw) -> BenchmarkConfig:
    base = dict(
        datasets=["bodyfat"],
        shots=[5],
        repetitions=4,
        protocols=["few_shot"],
        methods=["laat_trust_lr", "plain_lr"],
        prior_sources=["oracle", "oracle_flip"],
    )
    base.update(kw)
    return tiny_config(tmp_path, **base)


def test_an_ignored_prior_gives_the_plain_rows_bit_for_bit(tmp_path, contexts):
    cfg = _cfg(tmp_path)
    ctx = contexts["bodyfat"]
    plain = pd.DataFrame(run_cell(Cell("bodyfat", "few_shot", 5, Method.parse("plain_lr")), ctx, cfg))
    trust = pd.DataFrame(
        run_cell(Cell("bodyfat", "few_shot", 5, Method.parse("laat_trust_lr"), "oracle_flip"), ctx, cfg)
    )
    ignored = trust["trust_gamma"] == 0
    assert ignored.any(), "a sign-flipped oracle should be ignored in some repetition"
    assert (~trust.loc[ignored, "trust_followed"].astype(bool)).all()
    pd.testing.assert_frame_equal(trust.loc[ignored, SAME], plain.loc[ignored, SAME], check_exact=True)
    assert set(trust["trust_regime"]) == {"few_shot"}
    assert trust["trust_p_value"].between(0, 1).all()


def test_a_right_prior_is_followed_and_helps(tmp_path, contexts):
    cfg = _cfg(tmp_path)
    ctx = contexts["bodyfat"]
    plain = pd.DataFrame(run_cell(Cell("bodyfat", "few_shot", 5, Method.parse("plain_lr")), ctx, cfg))
    trust = pd.DataFrame(run_cell(Cell("bodyfat", "few_shot", 5, Method.parse("laat_trust_lr"), "oracle"), ctx, cfg))
    assert trust["trust_followed"].astype(bool).mean() >= 0.75
    followed = trust["trust_gamma"] > 0
    assert (trust.loc[followed, "trust_gamma"] <= cfg.laat.gamma).all()
    assert trust["roc_auc"].mean() > plain["roc_auc"].mean()
    assert trust.loc[followed, "prior_alignment"].gt(0.5).all()


def test_adding_trust_to_a_cached_sweep_computes_only_trust_cells(tmp_path, contexts):
    old = _cfg(tmp_path, methods=["laat_lr", "plain_lr", "lr"], repetitions=2)
    first = run_sweep(old, contexts=contexts)
    assert first.info["cells_computed"] == 4  # 2 priors x laat_lr, plain_lr, lr

    grown = old.model_copy(
        update={"methods": old.methods + [Method("laat", "lr", trust=True), Method("laat", "mlp", trust=True)]}
    )
    second = run_sweep(grown, contexts=contexts)
    assert second.info["cells_cached"] == 4 and second.info["cells_computed"] == 4  # 2 priors x 2 trust
    assert first.info["trust_rule"] is None and len(second.info["trust_rule"]) == 16
    kept = second.results[second.results["method"].isin(["laat_lr", "plain_lr", "lr"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept[first.results.columns], first.results)

    # a trust setting only touches trust cells
    stricter = grown.model_copy(update={"trust": {"alpha": 0.05}})
    third = run_sweep(stricter, contexts=contexts)
    assert third.info["cells_cached"] == 4 and third.info["cells_computed"] == 4


def test_trust_settings_are_checked_by_name(tmp_path):
    with pytest.raises(ValueError, match="no_such_knob"):
        _cfg(tmp_path, trust={"no_such_knob": 1})
    with pytest.raises(ValueError, match="alpha"):
        _cfg(tmp_path, trust={"alpha": 0.0})
    assert _cfg(tmp_path, trust={"cv_taus": [2.0]}).trust_settings.cv_taus == (2.0,)


def test_labels_put_trust_next_to_fixed_gamma():
    assert method_label("laat_trust_lr", "oracle") == "LAAT-LR trust [oracle]†"
    assert method_label("laat_trust_mlp", "random") == "LAAT-MLP trust [random]"
    assert method_label("laat_lr", "random") == "LAAT-LR [random]"


def _long(auc: dict[tuple[str, str, int], float], reps: int = 2) -> pd.DataFrame:
    rows = []
    for (method, prior, k), a in auc.items():
        for r in range(reps):
            rows.append(
                {
                    "dataset": "d",
                    "protocol": "few_shot",
                    "k": k,
                    "repetition": r,
                    "method": method,
                    "prior_source": prior,
                    "roc_auc": a,
                    "f1": 0.5,
                    "trust_followed": (r == 0) if method.startswith("laat_trust") else np.nan,
                }
            )
    return pd.DataFrame(rows)


def test_trust_report_quotes_the_configured_gamma_and_tau_and_judges_nothing(tmp_path):
    """Figures only, with the settings of the run: acceptance bars belong in tests, not in the report."""
    res = _long(
        {
            ("plain_lr", "none", 1): 0.60,
            ("plain_lr", "none", 5): 0.70,
            ("laat_lr", "oracle", 1): 0.80,
            ("laat_trust_lr", "oracle", 1): 0.75,
            ("laat_lr", "random", 1): 0.40,
            ("laat_trust_lr", "random", 1): 0.58,
            ("laat_lr", "random", 5): 0.50,
            ("laat_trust_lr", "random", 5): 0.68,
        }
    )
    cfg = _cfg(tmp_path, laat={"gamma": 30.0, "tau": 2.0}, trust={"alpha": 0.1})
    md = summary_markdown(res, None, cfg.model_dump(mode="json"))
    assert "fixed = γ=30, τ=2 whatever the prior" in md and "picks γ (0 to 30) and τ" in md and "alpha = 0.1" in md
    assert "LAAT: γ=30, τ=2" in md and "γ=100" not in md and "τ=1," not in md
    assert "| random | fixed | 40.0 | 50.0 |" in md
    assert "| random | trust | 58.0 (50% followed) | 68.0 (50% followed) |" in md
    assert "| oracle † | trust | 75.0 (50% followed) | – |" in md
    assert not any(word in md for word in ("PASS", "FAIL", "Acceptance", "must"))
