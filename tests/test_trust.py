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
from laat.trust import (
    DEFAULT_SETTINGS,
    TrustProblem,
    TrustSettings,
    agreement_test,
    class_mean_difference,
    decide,
    decide_many,
    sign_flip_p_value,
)

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
    brute = np.mean([np.dot(s, np.abs(nz)) >= nz.sum() - 1e-12 for s in itertools.product([-1, 1], repeat=nz.size)])
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

    z = c.sum() / np.sqrt((c**2).sum())
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
        assert good.trust_["tau"] == bad.trust_["tau"] == DEFAULT_SETTINGS.tau_one_shot  # followed or not
    # The gate lets a prior of random signs through with probability <= alpha (the p-value is
    # exact): a right prior must pass more often than that, a flipped one less often.
    assert np.mean(followed_bad) < DEFAULT_SETTINGS.alpha_one_shot < np.mean(followed_good)
    assert np.mean(gain) > 0.02 and np.mean(loss) > -0.03


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
    with pytest.raises(ValueError, match=r"trust='yes' \(Input should be 'auto' or 'off' or .*TrustSettings"):
        LAATClassifier(prior=TRUE_PRIOR, trust="yes").fit(Xtr, ytr)
    with pytest.raises(ValueError, match="needs a prior"):
        LAATClassifier(trust="auto").fit(Xtr, ytr)


# ---- the batched path used by the benchmark ------------------------------------------------------


def _problem(k, prior, rep=0, seed=0):
    Xtr, ytr, _, _ = few_shot(k, rep)
    est = LAATClassifier(prior=prior, random_state=seed)
    inp = est.prepare_fit_inputs(Xtr, ytr)
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


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(alpha=0.0), "alpha must be in"),
        (dict(tau=-1.0), "tau must be > 0"),
        (dict(cv_folds=1), "cv_folds >= 2"),
        (dict(gamma_fractions=(0.0,)), "gamma_fractions"),
    ],
)
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


# ---- the rule's edges, checked without training where possible (docs/mutation-testing.md) ------


def _tie_data(per_class):
    """Every feature equals the label: each candidate ranks validation rows perfectly (AUC 1)."""
    y = np.repeat([0, 1], per_class)
    X = np.repeat(y[:, None], 3, axis=1).astype(float)
    return X, y, np.array([5.0, 5.0, 5.0])


def _tie_decision(per_class, settings=DEFAULT_SETTINGS):
    X, y, s = _tie_data(per_class)
    kw = LAATClassifier(random_state=0)._train_kwargs()
    return decide(TrustProblem(X=X, y=y, scores=s, gamma=100.0), kw, settings)


def test_cross_validated_tie_decision_says_why_in_full():
    d = _tie_decision(12)
    assert (d.gamma, d.tau, d.followed, d.regime, d.alpha, d.n_smaller_class) == (
        0.0,
        4.0,
        False,
        "cross_validated",
        0.2,
        12,
    )
    assert d.reason == (
        "ignored the prior: the prior's signs agree with the class differences of the training rows "
        "(sign-flip p = 0.125 < 0.2); 5-fold cross-validated ROC AUC over gamma x tau found plain "
        "training at least as good (1.000 vs 1.000 at best with the prior); trained without it "
        "(gamma = 0)"
    )


def test_followed_reason_quotes_plain_and_best_scores():
    Xtr, ytr, _, _ = few_shot(20)
    m = LAATClassifier(prior=TRUE_PRIOR, trust="auto", gamma=50.0, random_state=0).fit(Xtr, ytr)
    c = m.trust_["candidates"]
    assert m.trust_["followed"] and m.trust_["gamma"] > 0
    best = max(c, key=lambda r: r["cv_score"])
    assert (
        f"chose gamma = {best['gamma']:g}, tau = {best['tau']:g} ({best['cv_score']:.3f} vs "
        f"{c[0]['cv_score']:.3f} without the prior)"
    ) in m.trust_["reason"]


def test_ten_rows_in_the_smaller_class_already_cross_validate_the_full_grid():
    prob, kw = _problem(10, TRUE_PRIOR)
    d = decide(prob, kw)
    assert d.regime == "cross_validated" and d.n_smaller_class == 10 and len(d.candidates) == 11


def _gate_only(y, w=None, gamma=0.0, settings=DEFAULT_SETTINGS, d=3, seed=0):
    """A decision that needs no training: gamma = 0, or a gate that fails or decides alone."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(len(y), d))
    return decide(
        TrustProblem(X=X, y=np.asarray(y), scores=np.linspace(1, 9, d), gamma=gamma, sample_weight=w), None, settings
    )


def test_smaller_class_counts_only_rows_with_positive_weight():
    y = np.array([1] * 5 + [0] * 7)
    w = np.array([1, 0, 1, 0, 1] + [2, 1, 0, 1, 1, 1, 1], float)
    d = _gate_only(y, w)
    assert d.n_smaller_class == 3 and d.regime == "few_shot"
    d = _gate_only(1 - y, w)  # the same rows with the classes swapped
    assert d.n_smaller_class == 3


@pytest.mark.parametrize(
    "per_class,regime,tau",
    [(1, "one_shot", 2.0), (2, "few_shot", 4.0), (9, "few_shot", 4.0), (10, "cross_validated", 4.0)],
)
def test_regime_and_tau_follow_the_smaller_class_size(per_class, regime, tau):
    d = _gate_only(np.repeat([0, 1], per_class))
    assert (d.regime, d.tau, d.n_smaller_class) == (regime, tau, per_class)


def test_gamma_zero_decision_in_full_and_a_small_gamma_is_not_zero():
    d = _gate_only(np.repeat([0, 1], 5))
    assert (d.gamma, d.followed, d.reason) == (
        0.0,
        False,
        "gamma = 0 was requested: the prior is not used, so there is nothing to trust",
    )
    assert isinstance(d.gamma, float) and d.tau == 4.0
    strict = TrustSettings(alpha=1e-6)  # the gate fails, so no training is needed
    assert _gate_only(np.repeat([0, 1], 5), gamma=0.5, settings=strict).reason.startswith(
        "ignored the prior: its signs"
    )


def test_the_gate_uses_the_settings_test_tau_and_n_draws():
    y = np.repeat([0, 1], 6)
    rng = np.random.default_rng(4)
    X = rng.uniform(size=(12, 20)) + 0.3 * y[:, None] * rng.uniform(-1, 1, size=20)
    scores = np.linspace(-9, 9, 20)
    s = TrustSettings(test_tau=1.0, n_draws=500, alpha=1e-6)
    d = decide(TrustProblem(X=X, y=y, scores=scores, gamma=100.0), None, s)
    ref = agreement_test(X, y, scores, tau=1.0, n_draws=500)
    assert d.agreement.p_value == ref.p_value and not d.agreement.exact
    assert round(d.agreement.p_value * 501, 9) % 1 == 0  # (hits + 1) / (500 + 1)
    assert d.agreement.p_value != agreement_test(X, y, scores, tau=4.0, n_draws=500).p_value


def test_decision_dict_nests_the_agreement():
    d = _gate_only(np.repeat([0, 1], 5)).to_dict()
    assert set(d["agreement"]) == {"statistic", "p_value", "n_features", "weighted_agreement", "exact"}


def test_off_decision_in_full():
    from laat.trust import off_decision

    assert off_decision(0.5, 2.0) == {
        "mode": "off",
        "gamma": 0.5,
        "tau": 2.0,
        "followed": True,
        "reason": "trust='off': fixed gamma = 0.5, tau = 2 from the parameters, whatever the data says about the prior",
    }
    assert off_decision(0.0, 1.0)["followed"] is False


@pytest.mark.parametrize(
    "ok",
    [
        dict(tau=0.5),
        dict(alpha=1.0),
        dict(cv_folds=2, cv_min_per_class=2),
        dict(gamma_fractions=(1.0,)),
        dict(cv_taus=(0.5,)),
    ],
)
def test_settings_accept_their_boundaries(ok):
    TrustSettings(**ok)


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(tau=0.0), r"^TrustSettings.tau must be > 0, got 0.0$"),
        (dict(alpha=1.5), r"^TrustSettings.alpha must be in \(0, 1\], got 1.5$"),
        (dict(cv_min_per_class=1), r"^TrustSettings needs cv_folds >= 2 and cv_min_per_class >= 2$"),
        (dict(gamma_fractions=(1.5,)), r"^TrustSettings.gamma_fractions must be fractions in \(0, 1\]$"),
        (dict(cv_taus=()), r"^TrustSettings.cv_taus must be positive temperatures$"),
        (dict(cv_taus=(0.0,)), r"^TrustSettings.cv_taus must be positive temperatures$"),
        (dict(cv_taus=(float("inf"),)), r"^TrustSettings.cv_taus must be positive temperatures$"),
    ],
)
def test_settings_messages_in_full(bad, match):
    with pytest.raises(ValueError, match=match):
        TrustSettings(**bad)


def test_decision_dict_has_exactly_the_documented_keys():
    d = _gate_only(np.repeat([0, 1], 5)).to_dict()
    assert set(d) == {
        "gamma",
        "tau",
        "followed",
        "regime",
        "reason",
        "agreement",
        "alpha",
        "n_smaller_class",
        "candidates",
        "mode",
    }


def test_zero_weight_rows_leave_the_cross_validation_unchanged_and_large_seeds_work():
    prob, kw = _problem(10, TRUE_PRIOR)
    base = decide(prob, kw)
    n = len(prob.y)
    padded = TrustProblem(
        X=np.vstack([prob.X, prob.X[::-1]]),
        y=np.r_[prob.y, 1 - prob.y[::-1]],
        scores=prob.scores,
        gamma=prob.gamma,
        seed=prob.seed,
        sample_weight=np.r_[np.ones(n), np.zeros(n)],
    )
    assert decide(padded, kw).candidates == base.candidates
    big = decide(TrustProblem(X=prob.X, y=prob.y, scores=prob.scores, gamma=prob.gamma, seed=2**32 + 5), kw)
    assert big.regime == "cross_validated" and len(big.candidates) == 11


def _reference_cv_scores(prob, kw, settings=DEFAULT_SETTINGS):
    """The documented rule written out one fold and one candidate at a time: stratified k-fold
    (shuffled, seeded) over the rows with positive weight; each candidate trained on a fold's
    training rows with their weights, confidence and mask; pooled out-of-fold scores, weighted."""
    from sklearn.model_selection import StratifiedKFold

    from laat.attribution import normalized_target
    from laat.engine import fit_many
    from laat.trust import _grid

    y = np.asarray(prob.y).astype(int)
    w = np.ones(len(y)) if prob.sample_weight is None else np.asarray(prob.sample_weight, float)
    rows = np.flatnonzero(w > 0)
    n_min = int(min(np.sum(y[rows] == 1), np.sum(y[rows] == 0)))
    skf = StratifiedKFold(n_splits=min(settings.cv_folds, n_min), shuffle=True, random_state=prob.seed % 2**32)
    folds = [(rows[a], rows[b]) for a, b in skf.split(np.zeros(len(rows)), y[rows])]
    d = prob.X.shape[1]
    mask = np.ones(d, bool) if prob.mask is None else prob.mask
    scores = []
    for g, tau in _grid(prob.gamma, settings):
        oof = np.full(len(y), np.nan)
        for tr, va in folds:
            m = fit_many(
                [prob.X[tr].astype(np.float32)],
                [y[tr].astype(np.float32)],
                [normalized_target(prob.scores, tau, prob.mask).numpy()],
                gamma=[g],
                seeds=[prob.seed],
                sample_weight=[w[tr].astype(np.float32)],
                feature_mask=[mask],
                confidence=None if prob.confidence is None else [prob.confidence],
                **kw,
            )
            oof[va] = m.logits(prob.X[va].astype(np.float32)).double().numpy()[0]
        scores.append(roc_auc_score(y[rows], oof[rows], sample_weight=w[rows]))
    return scores


def test_cross_validation_scores_equal_the_rule_written_out_with_weights_mask_and_confidence():
    Xtr, ytr, _, _ = few_shot(12)
    est = LAATClassifier(prior=TRUE_PRIOR, random_state=3, epochs=40, lr=0.05)
    inp = est.prepare_fit_inputs(Xtr, ytr)
    n, d = inp.X.shape
    rng = np.random.default_rng(0)
    w = rng.uniform(0.2, 3.0, size=n)
    w[[0, 7]] = 0.0  # two rows that must not count anywhere
    prob = TrustProblem(
        X=inp.X,
        y=inp.y,
        scores=inp.scores,
        gamma=100.0,
        seed=inp.seed,
        sample_weight=w,
        mask=np.array([True, True, True, True, False, True]),
        confidence=np.array([1.0, 0.5, 2.0, 1.0, 1.0, 0.0]),
    )
    kw = est._train_kwargs()
    d = decide(prob, kw)
    assert d.regime == "cross_validated" and len(d.candidates) == 11  # the gate passed: all candidates scored
    got = [c["cv_score"] for c in d.candidates]
    np.testing.assert_allclose(got, _reference_cv_scores(prob, kw), rtol=0, atol=1e-5)


def test_agreement_fields_and_defaults_against_a_direct_computation():
    from laat.attribution import normalized_target

    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 8)
    X = rng.uniform(size=(16, 4)) + 0.4 * y[:, None] * np.array([1, -1, 1, 0])
    s = np.array([6.0, -3.0, 2.0, 0.0])
    delta = X[y == 1].mean(0) - X[y == 0].mean(0)
    c = normalized_target(s, 4.0).numpy() * delta
    a = agreement_test(X, y, s)
    assert a.statistic == pytest.approx(c.sum(), rel=1e-12) and a.exact is True and a.n_features == 3
    assert a.weighted_agreement == pytest.approx(np.abs(c[c > 0]).sum() / np.abs(c).sum(), rel=1e-12)
    zero = agreement_test(X, y, np.zeros(4))
    assert (zero.p_value, zero.n_features, zero.exact) == (1.0, 0, True) and np.isnan(zero.weighted_agreement)
    # more than 14 features: seeded draws, by default 20000 with seed 0
    X20, s20 = np.tile(X, 5), np.tile(s + 1.0, 5)
    p = agreement_test(X20, y, s20)
    assert not p.exact and p == agreement_test(X20, y, s20, n_draws=20000, seed=0)
    assert round(p.p_value * 20001, 6) % 1 == 0
    assert sign_flip_p_value(np.tile(c, 5)) == sign_flip_p_value(np.tile(c, 5), n_draws=20000, seed=0)
    assert round(sign_flip_p_value(np.tile(c, 5) + 0.01)[0] * 20001, 6) % 1 == 0


@pytest.mark.parametrize("w", [[0.0] * 8 + [1.0] * 8, [1.0] * 8 + [0.0] * 8])
def test_class_mean_difference_needs_weight_in_both_classes(w):
    X = np.arange(32.0).reshape(16, 2)
    with pytest.raises(ValueError, match="^class_mean_difference needs rows with positive weight in both classes$"):
        class_mean_difference(X, np.repeat([0, 1], 8), np.array(w))
    w2 = np.array(w) + np.r_[np.zeros(7), [0.5], np.zeros(7), [0.5]]  # one row of each class with weight
    delta = class_mean_difference(X, np.repeat([0, 1], 8), w2)
    y = np.repeat([0, 1], 8)
    ref = [np.average(X[y == 1, j], weights=w2[y == 1]) - np.average(X[y == 0, j], weights=w2[y == 0]) for j in (0, 1)]
    np.testing.assert_allclose(delta, ref, rtol=1e-12)


def _gate_problem(cols, scores, gamma=100.0):
    y = np.array([0, 0, 1, 1])
    return TrustProblem(X=np.array(cols, float).T, y=y, scores=np.array(scores, float), gamma=gamma)


def test_gate_reasons_in_full_without_training():
    up, down = [0, 0, 1, 1], [1, 1, 0, 0]
    # no feature with a prior score differs between the classes
    d = decide(_gate_problem([up, [1, 1, 1, 1]], [0.0, 5.0]), None)
    assert (d.gamma, d.tau, d.followed) == (0.0, 4.0, False)
    assert d.reason == (
        "ignored the prior: no feature with a non-zero prior score differs between the classes in "
        "the training rows, so nothing can confirm it; trained without it (gamma = 0)"
    )
    # three of four equal contributions agree: 75% of the evidence, p = 5/16 >= 0.2
    d = decide(_gate_problem([up, up, up, down], [5.0] * 4), None)
    assert d.agreement.weighted_agreement == 0.75 and d.agreement.p_value == 5 / 16
    assert d.reason == (
        "ignored the prior: its signs agree no better than chance with the class differences of the "
        "4 training rows (sign-flip p = 0.312 >= 0.2; 75% of the weighted evidence agrees); trained "
        "without it (gamma = 0)"
    )
    # exactly half agrees: not "mostly contradict"
    d = decide(_gate_problem([up, down], [5.0, 5.0]), None)
    assert d.agreement.weighted_agreement == 0.5 and "agree no better than chance with" in d.reason
    d = decide(_gate_problem([down, down, up], [5.0] * 3), None)
    assert "its signs mostly contradict the class differences" in d.reason
    # p equal to alpha does not pass: two agreeing features give p = 1/4
    d = decide(_gate_problem([up, up], [5.0, 5.0]), None, TrustSettings(alpha=0.25))
    assert d.agreement.p_value == 0.25 and not d.followed and "p = 0.250 >= 0.25" in d.reason
    # followed without tuning
    d = decide(_gate_problem([up, up, up, up], [5.0] * 4), None)
    assert d.followed and d.reason == (
        "followed the prior: its signs agree with the class differences of the training rows (sign-flip p = 0.062 "
        "< 0.2); with 2 row(s) in the smaller class there is too little data to tune on, so gamma = 100, tau = 4"
    )


def test_fit_with_trust_fits_ignored_problems_as_the_plain_batch_and_followed_ones_with_their_decision():
    """The one decide-then-fit path: an ignored prior's model is the plain (gamma = 0) batch's model
    bit for bit, a followed prior's model is the batch of the followed problems at their gamma and tau.
    Training settings that are not fit_many's defaults (epochs, lr) and a feature mask, row weights
    and feature confidences on half the problems must reach the decision, the targets and both fits."""
    import dataclasses

    import torch

    from laat.attribution import normalized_target
    from laat.engine import fit_many
    from laat.trust import fit_with_trust

    mask = np.array([True, True, True, True, False, True])

    def varied(prob, rep):
        if not rep:
            return prob
        weights = np.linspace(0.5, 1.5, len(prob.y)).astype(np.float32)
        return dataclasses.replace(prob, mask=mask, sample_weight=weights, confidence=np.linspace(0.5, 1.5, 6))

    problems = [
        varied(_problem(k, p, rep)[0], rep) for k in (1, 5, 12) for p in (TRUE_PRIOR, FLIPPED_PRIOR) for rep in (0, 1)
    ]
    kw = {**_problem(5, TRUE_PRIOR)[1], "epochs": 40, "lr": 0.05}
    fit = fit_with_trust(problems, kw)
    decisions = decide_many(problems, kw)
    assert [d.candidates for d in fit.decisions] == [d.candidates for d in decisions]
    assert [(d.gamma, d.tau) for d in fit.decisions] == [(d.gamma, d.tau) for d in decisions]
    followed = [i for i, d in enumerate(decisions) if d.followed]
    assert 0 < len(followed) < len(problems)  # both kinds are exercised
    assert any(problems[i].mask is not None for i in followed)
    targets = [normalized_target(p.scores, d.tau, p.mask).numpy() for p, d in zip(problems, decisions)]
    for got, want in zip(fit.targets, targets):
        np.testing.assert_array_equal(got, want)
    masks = [np.ones(6, bool) if p.mask is None else p.mask for p in problems]
    weights = [np.ones(len(p.y), np.float32) if p.sample_weight is None else p.sample_weight for p in problems]
    conf = [np.ones(6) if p.confidence is None else p.confidence for p in problems]
    plain = fit_many(
        [p.X for p in problems],
        [p.y for p in problems],
        None,
        gamma=0.0,
        seeds=[p.seed for p in problems],
        feature_mask=masks,
        sample_weight=weights,
        confidence=conf,
        **kw,
    )
    final = fit_many(
        [problems[i].X for i in followed],
        [problems[i].y for i in followed],
        [targets[i] for i in followed],
        gamma=[decisions[i].gamma for i in followed],
        seeds=[problems[i].seed for i in followed],
        feature_mask=[masks[i] for i in followed],
        sample_weight=[weights[i] for i in followed],
        confidence=[conf[i] for i in followed],
        **kw,
    )
    for i, model in enumerate(fit.models):
        want = final.select(followed.index(i)) if i in followed else plain.select(i)
        assert model.n_models == 1
        assert all(torch.equal(model.params[k], want.params[k]) for k in want.params)


def test_the_rejected_alternative_rules_are_not_settings():
    """veto_margin, gate and cv_score were measured and rejected (docs/trust-history.md)."""
    for name in ("veto_margin", "gate", "cv_score"):
        with pytest.raises(TypeError, match=name):
            TrustSettings(**{name: None})


def test_the_smallest_gamma_is_chosen_when_it_strictly_wins():
    """Candidate 1 (the smallest gamma, at the first tau) is a candidate like any other: here its
    CV score beats plain training and every other candidate by a clear margin, so it is chosen."""
    prob, kw = _problem(20, TRUE_PRIOR)
    d = decide(prob, kw)
    first, *others = d.candidates[1:]
    assert (first["gamma"], first["tau"]) == (1.0, 2.0)
    assert first["cv_score"] > max(c["cv_score"] for c in [d.candidates[0], *others]) + 0.005  # no near-tie
    assert (d.gamma, d.tau, d.followed) == (1.0, 2.0, True)


@pytest.mark.parametrize("seed", [1000, 2**32 + 77])
def test_cross_validation_uses_the_settings_fold_count_and_the_full_seed(seed):
    """Three folds (not sklearn's default five) and a fold seed of seed mod 2**32: both checked
    fold by fold against the rule written out. seed = 1000 tells mod 2**32 from a small modulus."""
    Xtr, ytr, _, _ = few_shot(12)
    est = LAATClassifier(prior=TRUE_PRIOR, random_state=0, epochs=40, lr=0.05)
    inp = est.prepare_fit_inputs(Xtr, ytr)
    prob = TrustProblem(X=inp.X, y=inp.y, scores=inp.scores, gamma=100.0, seed=seed)
    s = TrustSettings(cv_folds=3, gamma_fractions=(0.1, 1.0), cv_taus=(4.0,))
    kw = est._train_kwargs()
    d = decide(prob, kw, s)
    assert d.regime == "cross_validated" and "3-fold cross-validated" in d.reason
    got = [c["cv_score"] for c in d.candidates]
    np.testing.assert_allclose(got, _reference_cv_scores(prob, kw, s), rtol=0, atol=1e-5)


def test_a_batch_mixing_problems_with_and_without_confidence_decides_each_as_alone():
    """Problems without confidence get all-ones per-feature weights when another problem in the
    same cross-validation batch has some."""
    prob, kw = _problem(12, TRUE_PRIOR)
    s = TrustSettings(gamma_fractions=(1.0,), cv_taus=(4.0,))
    conf = TrustProblem(
        X=prob.X, y=prob.y, scores=prob.scores, gamma=prob.gamma, seed=prob.seed, confidence=np.linspace(0.0, 2.0, 6)
    )
    both = decide_many([conf, prob], kw, s)
    for one, batched in zip([decide(conf, kw, s), decide(prob, kw, s)], both):
        assert batched.regime == "cross_validated"
        np.testing.assert_allclose(
            [c["cv_score"] for c in batched.candidates], [c["cv_score"] for c in one.candidates], rtol=0, atol=1e-6
        )
