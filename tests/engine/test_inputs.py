"""Per-model Min-Max scaling of stacked data."""

import numpy as np

from laat.engine.inputs import minmax_stack


def test_minmax_stack_matches_sklearn_per_model():
    from sklearn.preprocessing import MinMaxScaler

    g = np.random.default_rng(0)
    train = g.normal(size=(3, 4, 5))
    train[:, :, 2] = 7.0  # constant on train: only shifted
    test = g.normal(size=(3, 6, 5))
    tr, te = minmax_stack(train, test)
    for r in range(3):
        sk = MinMaxScaler().fit(train[r])
        np.testing.assert_allclose(tr[r].numpy(), sk.transform(train[r]), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(te[r].numpy(), sk.transform(test[r]), rtol=1e-6, atol=1e-6)
    assert set(np.unique(tr[:, :, [0, 1, 3, 4]].numpy())) >= {0.0, 1.0}
