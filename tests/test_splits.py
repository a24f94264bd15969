import numpy as np
import pandas as pd
import pytest

from laat.datasets import labels, load_dataset, load_metadata
from laat.splits import few_shot_split, fraction_split, skewed_split


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
    meta = load_metadata("diabetes")
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
