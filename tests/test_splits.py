import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laat.datasets import labels, load_dataset, load_metadata
from laat.splits import few_rows_split, few_shot_split, fraction_split, skewed_split


@pytest.mark.parametrize("k", [1, 5, 10])
def test_few_shot_split_takes_k_per_class_and_the_rest_for_test(k):
    y = np.array([0] * 30 + [1] * 12)
    train, test = few_shot_split(y, k, seed=69, repetition=3)
    assert len(train) == 2 * k and len(test) == len(y) - 2 * k
    assert np.bincount(y[train]).tolist() == [k, k]
    assert not set(train) & set(test)
    assert sorted(np.concatenate([train, test])) == list(range(len(y)))


def test_splits_depend_only_on_their_key():
    y = np.array([0, 1] * 50)
    a = few_shot_split(y, 5, seed=69, repetition=0)[0]
    assert np.array_equal(a, few_shot_split(y, 5, seed=69, repetition=0)[0])
    np.random.seed(123)  # the global RNG must not matter
    assert np.array_equal(a, few_shot_split(y, 5, seed=69, repetition=0)[0])
    assert not np.array_equal(a, few_shot_split(y, 5, seed=69, repetition=1)[0])


def test_few_shot_split_refuses_k_that_leaves_no_test_rows():
    with pytest.raises(ValueError, match="class 1 has 3 rows"):
        few_shot_split(np.array([0] * 10 + [1] * 3), 3)


def test_fraction_split_sizes():
    train, test = fraction_split(100, 0.2, seed=1)
    assert len(test) == 20 and len(train) == 80 and not set(train) & set(test)


def test_skewed_split_removes_condition_rows_from_train_only():
    meta = load_metadata("conf/base/datasets/diabetes.yml")
    df = load_dataset(meta)
    train, test = skewed_split(df, meta.skew.condition, test_fraction=0.2, seed=69)
    assert not df.iloc[train].eval(meta.skew.condition).any()
    assert df.iloc[test].eval(meta.skew.condition).any()  # the affected group is still tested
    full_train, _ = fraction_split(len(df), 0.2, seed=69)
    removed = set(full_train) - set(train)
    assert removed and df.iloc[sorted(removed)].eval(meta.skew.condition).all()
    assert labels(df.iloc[train], meta).sum() > 0


def test_skewed_split_bad_condition_names_it():
    df = pd.DataFrame({"a": [1, 2, 3, 4, 5]})
    with pytest.raises(ValueError, match="nosuchcol"):
        skewed_split(df, "nosuchcol > 1")


# ---- properties over generated shapes ---------------------------------------------------------


@st.composite
def labels_and_k(draw):
    """A label vector (2-4 classes, shuffled, each with more than k rows) and k."""
    k = draw(st.integers(1, 6))
    sizes = draw(st.lists(st.integers(k + 1, k + 15), min_size=2, max_size=4))
    names = draw(st.sampled_from([["no", "yes", "maybe", "x"], [0, 1, 2, 3], [-1.5, 2.0, 7.25, 9.0]]))
    y = np.concatenate([np.full(n, names[i]) for i, n in enumerate(sizes)])
    order = draw(st.permutations(range(len(y))))
    return y[list(order)], k


@settings(max_examples=60, deadline=None, derandomize=True)
@given(labels_and_k(), st.integers(0, 2**31), st.integers(0, 20))
def test_few_shot_split_is_disjoint_complete_sorted_and_k_per_class(yk, seed, rep):
    y, k = yk
    train, test = few_shot_split(y, k, seed=seed, repetition=rep)
    assert not set(train) & set(test)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
    assert np.array_equal(train, np.sort(train)) and np.array_equal(test, np.sort(test))
    for cls in np.unique(y):
        assert np.sum(y[train] == cls) == k


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(2, 400), st.floats(0.01, 0.99), st.integers(0, 2**31), st.integers(0, 20))
def test_fraction_split_is_disjoint_complete_and_sized_by_the_rounded_fraction(n, frac, seed, rep):
    train, test = fraction_split(n, frac, seed=seed, repetition=rep)
    assert len(test) == max(1, int(round(n * frac)))
    assert not set(train) & set(test)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))
    assert np.array_equal(train, np.sort(train)) and np.array_equal(test, np.sort(test))


def test_fraction_split_keeps_one_test_row_when_the_fraction_rounds_to_zero():
    train, test = fraction_split(10, 0.01)
    assert len(test) == 1 and len(train) == 9


@pytest.mark.parametrize("frac", [0.0, 1.0, -0.2, 1.5])
def test_fraction_split_refuses_a_fraction_outside_the_open_unit_interval(frac):
    with pytest.raises(ValueError, match=rf"test_fraction must be in \(0, 1\), got {frac}"):
        fraction_split(10, frac)


@pytest.mark.parametrize("k", [0, -1])
def test_few_shot_split_refuses_k_below_one(k):
    with pytest.raises(ValueError, match=rf"k \(rows per class\) must be >= 1, got {k}"):
        few_shot_split(np.array([0, 1] * 10), k)


def test_few_shot_split_with_k_one_and_two_rows_per_class():
    train, test = few_shot_split(np.array([0, 1, 0, 1]), 1)
    assert len(train) == 2 and len(test) == 2 and sorted(np.array([0, 1, 0, 1])[train]) == [0, 1]


def test_the_seed_and_the_repetition_each_change_the_split():
    y = np.array([0, 1] * 50)
    base = few_shot_split(y, 5, seed=69, repetition=0)[0]
    assert not np.array_equal(base, few_shot_split(y, 5, seed=70, repetition=0)[0])
    f = fraction_split(100, 0.2, seed=69)[1]
    assert not np.array_equal(f, fraction_split(100, 0.2, seed=70)[1])
    assert not np.array_equal(f, fraction_split(100, 0.2, seed=69, repetition=1)[1])


@pytest.mark.parametrize("keep", [0.25, 0.5, 1.0])
def test_skewed_split_keeps_the_requested_share_of_the_matching_train_rows(keep):
    df = pd.DataFrame({"a": np.arange(200)})
    full_train, full_test = fraction_split(200, 0.2, seed=5)
    train, test = skewed_split(df, "a % 2 == 0", test_fraction=0.2, seed=5, keep_fraction=keep)
    hit = full_train[full_train % 2 == 0]
    kept = np.intersect1d(train, hit)
    assert len(kept) == int(round(len(hit) * keep))
    assert np.array_equal(np.setdiff1d(train, hit), full_train[full_train % 2 == 1])
    assert np.array_equal(test, full_test) and np.array_equal(train, np.sort(train))


def test_defaults_are_the_protocol_seed_69_and_repetition_0():
    y = np.array([0, 1] * 30)
    df = pd.DataFrame({"a": np.arange(60)})
    for a, b in (
        (few_shot_split(y, 3), few_shot_split(y, 3, seed=69, repetition=0)),
        (fraction_split(60, 0.2), fraction_split(60, 0.2, seed=69, repetition=0)),
        (skewed_split(df, "a > 40"), skewed_split(df, "a > 40", 0.2, seed=69, repetition=0)),
    ):
        assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_skewed_split_follows_the_repetition_of_its_fraction_split():
    df = pd.DataFrame({"a": np.arange(100)})
    for rep in (0, 1, 2):
        full_train, full_test = fraction_split(100, 0.2, seed=3, repetition=rep)
        train, test = skewed_split(df, "a < 30", test_fraction=0.2, seed=3, repetition=rep)
        assert np.array_equal(test, full_test)
        assert np.array_equal(train, full_train[full_train >= 30])


def test_few_rows_split_draws_k_rows_from_all_reproducibly():
    train, test = few_rows_split(50, 10, seed=3, repetition=1)
    assert len(train) == 10 and sorted(np.concatenate([train, test])) == list(range(50))
    assert np.array_equal(train, few_rows_split(50, 10, seed=3, repetition=1)[0])
    assert not np.array_equal(train, few_rows_split(50, 10, seed=3, repetition=2)[0])
    with pytest.raises(ValueError, match=r"k \(training rows\) must be in \[1, 9\] for 10 rows, got 10"):
        few_rows_split(10, 10)
