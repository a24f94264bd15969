"""Prior trust: the gate and the choice of gamma/tau on synthetic data where the answer is known."""

import itertools
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV

from laat.estimator import LAATClassifier
from laat.splits import few_shot_split
from laat.trust import (DEFAULT_SETTINGS, TrustProblem, TrustSettings, agreement_test, class_mean_difference,
                        decide, decide_many, sign_flip_p_value)

FEATURES = ["a", "b", "c", "d", "e", "f"]
# The truth: a and b raise P(yes), c lowers it, d-f are noise.
TRUE_PRIOR = {"a": 9.0, "b": 7.0, "c": -8.0, "d": 1.0, "e": -1.0, "f": 0.0}
FLIPPED_PRIOR = {k: -v for k, v in TRUE_PRIOR.items()}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def population(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.uniform(0, 10, size=(n, len(FEATURES))), columns=FEATURES)
    logit = 0.9 * (X["a"] - 5) + 0.7 * (X["b"] - 5) - 0.8 * (X["c"] - 5)
    y = np.where(logit + rng.logistic(size=n) > 0, "yes", "no")
    return X, y


def few_shot(k, rep=0):
    X, y = population()
    tr, te = few_shot_split(y, k, seed=69, repetition=rep)
    return X.iloc[tr], y[tr], X.iloc[te], y[te]


def auc(model, X, y):
    return roc_auc_score(y == "yes", model.decision_function(X))


# ---- the sign-flip test ------------------------------------------------------------------------


def test_exact_sign_flip_p_value_matches_brute_force():
    c = np.array([0.5, -0.2, 0.9, 0.1, 0.0])
    nz = c[c != 0]
    brute = np.mean([np.dot(s, np.abs(nz)) >= nz.sum() - 1e-12
                     for s in itertools.product([-1, 1], repeat=nz.size)])
    p, exact = sign_flip_p_value(c)
    assert exact and p == pytest.approx(brute)
    assert sign_flip_p_value(np.array([1.0, 2.0, 3.0]))[0] == pytest.approx(1 / 8)  # all agree
    assert sign_flip_p_value(np.array([-1.0, -2.0, -3.0]))[0] == 1.0  # all contradict
    assert sign_flip_p_value(np.zeros(4)) == (1.0, True)  # no evidence at all


def test_many_features_use_seeded_draws_close_to_the_normal_approximation():
    rng = np.random.default_rng(1)
    c = np.abs(rng.normal(size=40)) * np.where(rng.uniform(size=40) < 0.7, 1, -1)
    p1, exact = sign_flip_p_value(c, n_draws=20000, seed=3)
    p2, _ = sign_flip_p_value(c, n_draws=20000, seed=3)
    assert not exact and p1 == p2
    from scipy.stats import norm

    z = c.sum() / np.sqrt((c ** 2).sum())
    assert p1 == pytest.approx(norm.sf(z), abs=0.02)


def test_agreement_separates_a_true_prior_from_its_flip():
    Xtr, ytr, _, _ = few_shot(10)
    Xs = ((Xtr - Xtr.min()) / (Xtr.max() - Xtr.min())).to_numpy()
    yy = (ytr == "yes").astype(int)
    delta = class_mean_difference(Xs, yy)
    assert delta[0] > 0 and delta[2] < 0
    good = agreement_test(Xs, yy, [TRUE_PRIOR[f] for f in FEATURES])
    bad = agreement_test(Xs, yy, [FLIPPED_PRIOR[f] for f in FEATURES])
    assert good.p_value < DEFAULT_SETTINGS.alpha and bad.p_value > 0.9
    assert good.weighted_agreement > 0.9 and bad.weighted_agreement < 0.1
    assert good.n_features == 5  # f has a zero prior: it cannot agree or disagree


# ---- the decision on the estimator ---------------------------------------------------------------


@pytest.mark.parametrize("k,regime", [(5, "few_shot"), (20, "cross_validated")])
def test_informative_prior_is_followed_and_adversarial_prior_ignored(k, regime):
    Xtr, ytr, Xte, yte = few_shot(k)
    plain = LAATClassifier(gamma=0.0, random_state=0).fit(Xtr, ytr)
    fixed = LAATClassifier(prior=TRUE_PRIOR, trust="off", gamma=100.0, tau=4.0, random_state=0).fit(Xtr, ytr)
    good = LAATClassifier(prior=TRUE_PRIOR, trust="auto", random_state=0).fit(Xtr, ytr)
    bad = LAATClassifier(prior=FLIPPED_PRIOR, trust="auto", random_state=0).fit(Xtr, ytr)

    assert good.trust_["regime"] == regime and good.trust_["followed"] and good.trust_["gamma"] > 0
    assert auc(good, Xte, yte) > auc(plain, Xte, yte) + 0.02
    assert auc(good, Xte, yte) > auc(fixed, Xte, yte) - 0.02  # close to following the true prior outright

    assert bad.trust_["gamma"] == 0.0 and not bad.trust_["followed"]
    np.testing.assert_array_equal(bad.decision_function(Xte), plain.decision_function(Xte))  # = plain training
    flipped_fixed = LAATClassifier(prior=FLIPPED_PRIOR, trust="off", random_state=0).fit(Xtr, ytr)
    assert auc(flipped_fixed, Xte, yte) < 0.5 < auc(bad, Xte, yte)  # what trust saved us from


def test_with_one_row_per_class_the_pair_decides_more_often_right_than_wrong():
    """Two rows can contradict even the true prior (here 3 pairs in 10), so the check is on rates."""
    followed_good, followed_bad, gain, loss = [], [], [], []
    for rep in range(10):
        Xtr, ytr, Xte, yte = few_shot(1, rep)
        plain = auc(LAATClassifier(gamma=0.0, random_state=rep).fit(Xtr, ytr), Xte, yte)
        good = LAATClassifier(prior=TRUE_PRIOR, trust="auto", random_state=rep).fit(Xtr, ytr)
        bad = LAATClassifier(prior=FLIPPED_PRIOR, trust="auto", random_state=rep).fit(Xtr, ytr)
        assert good.trust_["regime"] == "one_shot" and good.trust_["alpha"] == DEFAULT_SETTINGS.alpha_one_shot
        followed_good.append(good.trust_["followed"])
        followed_bad.append(bad.trust_["followed"])
        gain.append(auc(good, Xte, yte) - plain)
        loss.append(auc(bad, Xte, yte) - plain)
        if good.trust_["followed"]:
            assert good.trust_["tau"] == DEFAULT_SETTINGS.tau_one_shot
    assert np.mean(followed_good) >= 0.3 and np.mean(followed_bad) <= 0.1
    assert np.mean(gain) > 0.02 and np.mean(loss) > -0.03


def test_few_shot_veto_alternative_drops_a_gated_prior_only_when_plain_cross_validates_better():
    """Off by default (measured not worth it); as an alternative it must do what it says."""
    noise_only = {"a": 0.0, "b": 0.0, "c": 0.0, "d": 10.0, "e": -10.0, "f": 10.0}
    seen = set()
    for prior, rep in itertools.product((TRUE_PRIOR, noise_only), range(12)):
        prob, kw = _problem(5, prior, rep)
        assert decide(prob, kw).candidates == []  # the kept rule does not cross-validate below 10 rows
        d = decide(prob, kw, TrustSettings(veto_margin=0.0))
        if d.agreement.p_value >= DEFAULT_SETTINGS.alpha:
            continue
        plain, follow = (c["cv_score"] for c in d.candidates)
        assert [(c["gamma"], c["tau"]) for c in d.candidates] == [(0.0, 4.0), (100.0, 4.0)]
        assert d.followed == (plain - follow <= 0.0)
        seen.add(d.followed)
    assert seen == {True, False}  # both branches were exercised


def test_random_priors_are_rarely_followed_with_enough_rows():
    """Over many random priors the gate lets through about its alpha (0.2) share, not more."""
    Xtr, ytr, _, _ = few_shot(10)
    rng = np.random.default_rng(0)
    followed = []
    for i in range(40):
        prior = dict(zip(FEATURES, rng.integers(-10, 11, size=len(FEATURES)).astype(float)))
        m = LAATClassifier(prior=prior, trust="auto", random_state=i, epochs=20).fit(Xtr, ytr)
        followed.append(m.trust_["followed"])
    assert np.mean(followed) < 0.35


def test_cross_validation_reports_every_candidate_and_prefers_plain_on_ties():
    Xtr, ytr, _, _ = few_shot(20)
    m = LAATClassifier(prior=TRUE_PRIOR, trust="auto", gamma=50.0, random_state=0).fit(Xtr, ytr)
    cands = m.trust_["candidates"]
    assert [(c["gamma"], c["tau"]) for c in cands][:3] == [(0.0, 4.0), (0.5, 2.0), (0.5, 4.0)]
    assert len(cands) == 1 + 5 * 2 and max(c["gamma"] for c in cands) == 50.0
    best = max(c["cv_score"] for c in cands)
    chosen = [c for c in cands if (c["gamma"], c["tau"]) == (m.trust_["gamma"], m.trust_["tau"])]
    assert chosen and chosen[0]["cv_score"] == best
    assert all(0.0 <= c["cv_score"] <= 1.0 for c in cands)


def test_decision_is_exposed_readable_and_json_serialisable():
    Xtr, ytr, _, _ = few_shot(5)
    m = LAATClassifier(prior=FLIPPED_PRIOR, trust="auto", random_state=0).fit(Xtr, ytr)
    d = json.loads(json.dumps(m.trust_))
    assert d["mode"] == "auto" and d["gamma"] == 0.0 and d["regime"] == "few_shot"
    assert d["reason"].startswith("ignored the prior") and "contradict" in d["reason"]
    assert f"p = {d['agreement']['p_value']:.3f}" in d["reason"]
    assert d["n_smaller_class"] == 5 and d["alpha"] == DEFAULT_SETTINGS.alpha

    followed = LAATClassifier(prior=TRUE_PRIOR, trust="auto", random_state=0).fit(Xtr, ytr)
    assert followed.trust_["reason"].startswith("followed the prior")
    # the target the model was trained on is the one at the chosen tau
    tau = followed.trust_["tau"]
    ref = LAATClassifier(prior=TRUE_PRIOR, trust="off", tau=tau, random_state=0).fit(Xtr, ytr)
    np.testing.assert_allclose(followed.prior_target_, ref.prior_target_)
    np.testing.assert_array_equal(followed.decision_function(Xtr), ref.decision_function(Xtr))

    off = LAATClassifier(prior=FLIPPED_PRIOR, trust="off", tau=2.0, random_state=0).fit(Xtr, ytr)
    assert off.trust_["mode"] == "off" and off.trust_["gamma"] == 100.0 and off.trust_["tau"] == 2.0


def test_trust_is_deterministic_with_random_state_and_survives_clone_pickle_and_grid_search():
    Xtr, ytr, _, _ = few_shot(10)
    est = LAATClassifier(prior=TRUE_PRIOR, trust="auto", random_state=7)
    a, b = clone(est).fit(Xtr, ytr), clone(est).fit(Xtr, ytr)
    assert a.trust_ == b.trust_
    np.testing.assert_array_equal(a.decision_function(Xtr), b.decision_function(Xtr))
    restored = pickle.loads(pickle.dumps(a))
    assert restored.trust_ == a.trust_
    np.testing.assert_array_equal(restored.predict_proba(Xtr), a.predict_proba(Xtr))
    grid = GridSearchCV(est, {"trust": ["off", "auto"]}, cv=2, scoring="roc_auc").fit(Xtr, ytr)
    assert grid.best_estimator_.trust_["mode"] in ("off", "auto")


def test_zero_weight_rows_and_suppressed_features_do_not_count_as_evidence():
    Xtr, ytr, _, _ = few_shot(5)
    base = LAATClassifier(prior=TRUE_PRIOR, trust="auto", random_state=0).fit(Xtr, ytr)
    # rows that contradict the prior, but with weight 0
    noise = Xtr.copy()
    noise["a"] = np.where(ytr == "yes", 0.0, 10.0)
    X2, y2 = pd.concat([Xtr, noise]), np.concatenate([ytr, ytr])
    w = np.r_[np.ones(len(ytr)), np.zeros(len(ytr))]
    weighted = LAATClassifier(prior=TRUE_PRIOR, trust="auto", random_state=0).fit(X2, y2, sample_weight=w)
    assert weighted.trust_["agreement"]["p_value"] == pytest.approx(base.trust_["agreement"]["p_value"])
    assert weighted.trust_["n_smaller_class"] == 5

    sup = LAATClassifier(prior=TRUE_PRIOR, trust="auto", suppress=["a"], random_state=0).fit(Xtr, ytr)
    assert sup.trust_["agreement"]["n_features"] == base.trust_["agreement"]["n_features"] - 1


def test_custom_settings_are_used_and_recorded():
    Xtr, ytr, _, _ = few_shot(5)
    strict = TrustSettings(alpha=1e-6)  # no prior can pass this gate
    m = LAATClassifier(prior=TRUE_PRIOR, trust=strict, random_state=0).fit(Xtr, ytr)
    assert not m.trust_["followed"] and m.trust_["settings"]["alpha"] == 1e-6
    assert json.loads(json.dumps(m.trust_))["settings"]["cv_taus"] == [2.0, 4.0]
    assert clone(LAATClassifier(trust=strict)).get_params()["trust"] == strict


def test_gamma_zero_or_bad_trust_value():
    Xtr, ytr, _, _ = few_shot(5)
    m = LAATClassifier(gamma=0.0, trust="auto", random_state=0).fit(Xtr, ytr)
    assert m.trust_["gamma"] == 0.0 and "gamma = 0 was requested" in m.trust_["reason"]
    with pytest.raises(ValueError, match="trust must be one of"):
        LAATClassifier(prior=TRUE_PRIOR, trust="yes").fit(Xtr, ytr)
    with pytest.raises(ValueError, match="needs a prior"):
        LAATClassifier(trust="auto").fit(Xtr, ytr)


# ---- the batched path used by the benchmark ------------------------------------------------------


def _problem(k, prior, rep=0, seed=0):
    Xtr, ytr, _, _ = few_shot(k, rep)
    est = LAATClassifier(prior=prior, random_state=seed)
    inp = est._prepare(Xtr, ytr)
    return TrustProblem(X=inp.X, y=inp.y, scores=inp.scores, gamma=100.0, seed=inp.seed), est._train_kwargs()


def test_batched_decisions_equal_one_at_a_time():
    probs = [_problem(k, p, rep)[0] for k in (1, 5, 12) for p in (TRUE_PRIOR, FLIPPED_PRIOR) for rep in (0, 1)]
    kw = _problem(5, TRUE_PRIOR)[1]
    batch = decide_many(probs, kw)
    for prob, d in zip(probs, batch):
        one = decide(prob, kw)
        assert (one.gamma, one.tau, one.regime) == (d.gamma, d.tau, d.regime)
        for c1, c2 in zip(one.candidates, d.candidates):
            assert c1["cv_score"] == pytest.approx(c2["cv_score"], abs=1e-6)


def test_alternative_rules_are_reachable_through_settings():
    prob, kw = _problem(12, FLIPPED_PRIOR)
    no_gate = decide(prob, kw, TrustSettings(gate=False, cv_score="log_loss"))
    assert no_gate.regime == "cross_validated" and len(no_gate.candidates) == 11
    assert "log-likelihood" in no_gate.reason and "sign-flip" not in no_gate.reason
    assert all(c["cv_score"] <= 0 for c in no_gate.candidates)


@pytest.mark.parametrize("bad,match", [
    (dict(alpha=0.0), "alpha must be in"), (dict(tau=-1.0), "tau must be > 0"),
    (dict(cv_folds=1), "cv_folds >= 2"), (dict(gamma_fractions=(0.0,)), "gamma_fractions"),
    (dict(cv_score="brier"), "cv_score"), (dict(veto_margin=-0.1), "veto_margin"),
])
def test_settings_are_validated(bad, match):
    with pytest.raises(ValueError, match=match):
        TrustSettings(**bad)


def test_trust_auto_is_the_estimator_default_and_ignores_a_flipped_prior():
    Xtr, ytr, _, _ = few_shot(10)
    assert LAATClassifier().get_params()["trust"] == "auto"
    m = LAATClassifier(prior=FLIPPED_PRIOR, random_state=0).fit(Xtr, ytr)
    assert m.trust_["mode"] == "auto" and not m.trust_["followed"] and m.trust_["gamma"] == 0.0


def test_cross_validation_prefers_plain_training_on_an_exact_tie():
    """Every feature equals the label, so each candidate's out-of-fold logits take two values,
    higher for the positive rows: every candidate scores ROC AUC exactly 1 and plain must win."""
    y = np.repeat(["no", "yes"], 12)
    X = pd.DataFrame({f: np.where(y == "yes", 10.0, 0.0) for f in ("a", "b", "c")})
    m = LAATClassifier(prior={"a": 5.0, "b": 5.0, "c": 5.0}, trust="auto", random_state=0).fit(X, y)
    assert m.trust_["regime"] == "cross_validated"
    assert m.trust_["agreement"]["p_value"] == pytest.approx(1 / 8)  # the gate passes: 3 of 3 agree
    assert [c["cv_score"] for c in m.trust_["candidates"]] == [1.0] * 11  # an exact tie
    assert m.trust_["gamma"] == 0.0 and not m.trust_["followed"]
    assert m.trust_["reason"].startswith("ignored the prior") and "at least as good" in m.trust_["reason"]
