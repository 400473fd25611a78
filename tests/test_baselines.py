"""Popularity and EASE against direct implementations of their definitions."""

import numpy as np
import pytest
import scipy.sparse as sp

from minivae.baselines import EASE, Popularity, _fill_lower_from_upper
from minivae.metrics import evaluate, summarize, top_k


def random_watch_matrix(rng, n_users, n_items, density=0.3):
    X = (rng.random((n_users, n_items)) < density).astype(np.float64)
    X[0, :] = 1  # no item without watchers, no user without items
    return X


def ease_by_direct_inverse(X, lam):
    """W = -P / diag(P) with P = inv(X^T X + lam I) from numpy.linalg.inv."""
    P = np.linalg.inv(X.T @ X + lam * np.eye(X.shape[1]))
    W = -P / np.diag(P)[None, :]
    np.fill_diagonal(W, 0.0)
    return W


# (users, items): U <= I/2 takes the thin-SVD route, U > I/2 the Cholesky route.
SHAPES = [(6, 25), (40, 15)]


@pytest.mark.parametrize("n_users, n_items", SHAPES)
@pytest.mark.parametrize("lam", [0.5, 10.0])
def test_ease_matches_direct_inverse(n_users, n_items, lam):
    X = random_watch_matrix(np.random.default_rng(0), n_users, n_items)
    model = EASE(lam).fit(sp.csr_array(X))
    assert model.weights.dtype == np.float32
    np.testing.assert_allclose(model.weights, ease_by_direct_inverse(X, lam),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.diag(model.weights), 0.0)


@pytest.mark.parametrize("n_users, n_items", SHAPES)
def test_ease_columns_are_ridge_regressions_without_the_item_itself(n_users, n_items):
    # Column j of W solves min_b ||X_j - X_{-j} b||^2 + lam ||b||^2 over the other items.
    rng = np.random.default_rng(1)
    X = random_watch_matrix(rng, n_users, n_items)
    lam = 3.0
    W = EASE(lam).fit(X).weights.astype(np.float64)
    for j in range(n_items):
        others = np.delete(np.arange(n_items), j)
        X_others = X[:, others]
        b = np.linalg.solve(X_others.T @ X_others + lam * np.eye(n_items - 1), X_others.T @ X[:, j])
        np.testing.assert_allclose(W[others, j], b, rtol=1e-5, atol=1e-6)


def test_ease_gradient_vanishes_off_the_diagonal():
    # d/dW of ||X - XW||^2 + lam ||W||^2 is 2 (X^T X W - X^T X + lam W); only the
    # diagonal, held at zero by the constraint, may be non-zero at the optimum.
    X = random_watch_matrix(np.random.default_rng(2), 30, 12)
    lam = 5.0
    W = EASE(lam).fit(X).weights.astype(np.float64)
    gram = X.T @ X
    gradient = 2 * (gram @ W - gram + lam * W)
    off_diagonal = gradient[~np.eye(12, dtype=bool)]
    assert np.abs(off_diagonal).max() < 1e-4 * np.abs(gram).max()
    assert np.abs(np.diag(gradient)).max() > 1.0  # the constraint is active


def test_ease_scores_are_history_times_weights():
    rng = np.random.default_rng(3)
    X = random_watch_matrix(rng, 20, 10)
    model = EASE(2.0).fit(X)
    x = (rng.random((4, 10)) < 0.4).astype(np.float64)
    expected = x @ model.weights.astype(np.float64)
    np.testing.assert_allclose(model.scores(x), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.scores(sp.csr_array(x)), expected, rtol=1e-5, atol=1e-6)
    # Watch matrices with counts or ratings count every entry > 0 as one watch.
    np.testing.assert_allclose(model.scores(3.5 * x), expected, rtol=1e-5, atol=1e-6)
    assert model.scores(x).dtype == np.float32


def test_ease_sparse_and_dense_training_agree():
    X = random_watch_matrix(np.random.default_rng(4), 8, 20)
    np.testing.assert_array_equal(EASE(1.0).fit(X).weights,
                                  EASE(1.0).fit(sp.csr_matrix(X)).weights)


def test_fill_lower_from_upper_across_blocks():
    rng = np.random.default_rng(5)
    symmetric = rng.standard_normal((10, 10))
    symmetric = symmetric + symmetric.T
    P = np.triu(symmetric) + np.tril(rng.standard_normal((10, 10)), -1)
    _fill_lower_from_upper(P, block=3)
    np.testing.assert_array_equal(P, symmetric)


def test_ease_refuses_too_many_items():
    X = np.ones((3, 20))
    with pytest.raises(MemoryError, match="20 items needs"):
        EASE(1.0, memory_limit=12 * 20**2 - 1).fit(X)
    EASE(1.0, memory_limit=12 * 20**2).fit(X)
    with pytest.raises(MemoryError, match="EASE.select on 20 items"):
        EASE.select(X, X, X, lambdas=(1.0,), memory_limit=24 * 20**2 - 1)


def test_ease_bad_use_raises_clear_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        EASE().scores(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="fitted on 5 items"):
        EASE(1.0).fit(np.ones((2, 5))).scores(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="lam must be > 0"):
        EASE(0.0)
    X = np.ones((2, 5))
    with pytest.raises(ValueError, match="metric must look like"):
        EASE.select(X, X, X, metric="map@10")


def test_popularity_counts_and_ranks_by_watchers():
    train = np.array([[1, 0, 1, 0, 0],
                      [1, 0, 4, 0, 1],    # a rating counts as one watch
                      [1, 0, 1, 1, 0],
                      [0, 0, 1, 0, 0]])
    model = Popularity().fit(sp.csr_array(train))
    np.testing.assert_array_equal(model.counts, [3, 0, 4, 1, 1])
    scores = model.scores(sp.csr_array(np.zeros((2, 5))))
    assert scores.shape == (2, 5) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores, [[3, 0, 4, 1, 1]] * 2)
    # Items 3 and 4 tie on one watcher each: the smaller index ranks first.
    np.testing.assert_array_equal(top_k(scores, 5), [[2, 0, 3, 4, 1]] * 2)
    scores[0, 0] = -1.0  # the returned array is the caller's to modify
    assert model.scores(np.zeros((1, 5)))[0, 0] == 3
    with pytest.raises(RuntimeError, match="not fitted"):
        Popularity().scores(np.zeros((1, 5)))


def clustered_case(rng, n_users, n_items=30, n_clusters=3):
    """Users watch mostly inside one cluster of items, with some noise."""
    cluster_of_item = np.arange(n_items) % n_clusters
    cluster_of_user = rng.integers(0, n_clusters, n_users)
    p = np.where(cluster_of_item[None, :] == cluster_of_user[:, None], 0.5, 0.05)
    return (rng.random((n_users, n_items)) < p).astype(np.float64)


def test_select_picks_the_best_lambda_on_validation():
    rng = np.random.default_rng(6)
    train = sp.csr_array(clustered_case(rng, 80))
    val = clustered_case(rng, 40)
    # Hold out half of each validation user's items.
    val_heldout = val * (rng.random(val.shape) < 0.5)
    val_input = sp.csr_array(val - val_heldout)
    val_heldout = sp.csr_array(val_heldout)
    # On this case the validation NDCG@10 rises up to lambda = 1000, then falls.
    lambdas = (0.1, 5.0, 50.0, 1000.0, 1e5)

    best, table = EASE.select(train, val_input, val_heldout, lambdas=lambdas, metric="ndcg@10")

    # Each candidate refitted on its own and scored with the metrics module.
    expected = []
    for lam in lambdas:
        per_user = evaluate(EASE(lam).fit(train).scores, val_input, val_heldout,
                            recall_at=(), ndcg_at=(10,))
        expected.append(summarize(per_user)["ndcg@10"][0])
    assert [lam for lam, _ in table] == list(lambdas)
    np.testing.assert_allclose([value for _, value in table], expected, rtol=1e-6)
    assert best.lam == lambdas[int(np.argmax(expected))]
    assert best.lam not in (lambdas[0], lambdas[-1])  # neither end of the grid
    assert sorted(expected)[-1] > sorted(expected)[-2]  # a strict winner
    np.testing.assert_allclose(best.weights, EASE(best.lam).fit(train).weights, rtol=1e-6,
                               atol=1e-7)

    _, recall_table = EASE.select(train, val_input, val_heldout, lambdas=lambdas,
                                  metric="recall@5")
    per_user = evaluate(EASE(lambdas[0]).fit(train).scores, val_input, val_heldout,
                        recall_at=(5,), ndcg_at=())
    assert recall_table[0][1] == pytest.approx(summarize(per_user)["recall@5"][0])
