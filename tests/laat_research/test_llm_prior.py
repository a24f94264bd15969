"""The `llm_local` prior from the real local llama.cpp server: labelled llm, and cached for reruns."""

import pytest

from laat_research.sweep import run_sweep

from .conftest import tiny_config


@pytest.mark.llm
def test_llm_local_prior_is_labelled_and_a_rerun_makes_no_calls(tmp_path):
    llm = {"strategy": "direct", "n_samples": 1, "n_threads": 1, "cache_dir": str(tmp_path / "llm_cache")}
    cfg = tiny_config(
        tmp_path / "cells",
        datasets=["diabetes"],
        protocols=["few_shot"],
        methods=["laat_lr"],
        prior_sources=["llm_local", "llm_local_flip"],
        llm=llm,
    )
    first = run_sweep(cfg)
    res = first.results
    assert set(res["prior_source"]) == {"llm_local", "llm_local_flip"}
    assert set(res["prior_kind"]) == {"llm"}
    used = first.info["priors"]["diabetes"]["llm_local"]
    assert used["source"] == "llm" and used["fresh_calls"] >= 1 and "quality_note" in used
    # LAAT-LR follows whichever target it is given, the flipped one included
    align = res.groupby("prior_source")["prior_alignment"].mean()
    assert align["llm_local"] > 0.5 and align["llm_local_flip"] > 0.5  # each follows its own target

    again = run_sweep(cfg)
    assert again.info["priors"]["diabetes"]["llm_local"]["fresh_calls"] == 0
    assert again.info["cells_computed"] == 0
