"""Recall@R and NDCG@R against hand-computed values and a brute-force oracle."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from minivae import metrics
from minivae.metrics import evaluate, ndcg_at_k, ranking_metrics, recall_at_k, summarize, top_k


def brute_force(scores, heldout, exclude, recall_at, ndcg_at):
    """Full sort per user in plain Python: score descending, then item index ascending."""
    scores = np.asarray(scores, dtype=np.float64)
    heldout = heldout.toarray() if sp.issparse(heldout) else np.asarray(heldout)
    if exclude is None:
        exclude = np.zeros(scores.shape)
    exclude = exclude.toarray() if sp.issparse(exclude) else np.asarray(exclude)
    out = {f"recall@{R}": [] for R in recall_at}
    out.update({f"ndcg@{R}": [] for R in ndcg_at})
    for u in range(scores.shape[0]):
        relevant = {i for i in range(scores.shape[1]) if heldout[u, i] > 0}
        rankable = [i for i in range(scores.shape[1])
                    if exclude[u, i] <= 0 and scores[u, i] > -math.inf]
        ranking = sorted(rankable, key=lambda i: (-scores[u, i], i))
        for R in recall_at:
            if not relevant:
                out[f"recall@{R}"].append(math.nan)
                continue
            hits = sum(1 for i in ranking[:R] if i in relevant)
            out[f"recall@{R}"].append(hits / min(R, len(relevant)))
        for R in ndcg_at:
            if not relevant:
                out[f"ndcg@{R}"].append(math.nan)
                continue
            dcg = sum(1 / math.log2(p + 2) for p, i in enumerate(ranking[:R]) if i in relevant)
            idcg = sum(1 / math.log2(p + 2) for p in range(min(R, len(relevant))))
            out[f"ndcg@{R}"].append(dcg / idcg)
    return {name: np.array(values) for name, values in out.items()}


def random_case(rng, n_users, n_items, n_score_levels=None, dtype=np.float64):
    """Scores, held-out and disjoint fold-in CSR matrices of random sizes per user.

    With n_score_levels, scores are integers in 0..n_score_levels-1, so ties abound.
    """
    if n_score_levels is None:
        scores = rng.standard_normal((n_users, n_items)).astype(dtype)
    else:
        scores = rng.integers(0, n_score_levels, (n_users, n_items)).astype(dtype)
    heldout = np.zeros((n_users, n_items))
    exclude = np.zeros((n_users, n_items))
    for u in range(n_users):
        # Held-out counts from 0 to well above the cutoffs used below.
        n_heldout = rng.integers(0, n_items // 2)
        n_fold_in = rng.integers(0, n_items // 3)
        items = rng.permutation(n_items)
        heldout[u, items[:n_heldout]] = 1
        exclude[u, items[n_heldout:n_heldout + n_fold_in]] = 1
    heldout[0] = 0  # at least one user without held-out items
    return scores, sp.csr_array(heldout), sp.csr_array(exclude)


def assert_metrics_equal(actual, expected):
    assert actual.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-12, atol=0,
                                   equal_nan=True, err_msg=name)


def test_hand_computed_example():
    # Ranking by score: items 2, 1, 0, 3, 4; held out: {0, 2}.
    scores = np.array([[0.7, 0.8, 0.9, 0.2, 0.1]])
    heldout = sp.csr_array(np.array([[1, 0, 1, 0, 0]]))
    m = ranking_metrics(scores, heldout, recall_at=(1, 2, 3), ndcg_at=(1, 2, 3, 5))
    assert m["recall@1"][0] == pytest.approx(1.0)        # 1 hit / min(1, 2)
    assert m["recall@2"][0] == pytest.approx(0.5)        # 1 hit / min(2, 2)
    assert m["recall@3"][0] == pytest.approx(1.0)        # 2 hits / 2
    assert m["ndcg@1"][0] == pytest.approx(1.0)          # 1 / 1
    assert m["ndcg@2"][0] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    dcg = 1 + 1 / math.log2(4)                           # hits at positions 1 and 3
    idcg = 1 + 1 / math.log2(3)
    assert m["ndcg@3"][0] == pytest.approx(dcg / idcg)
    assert m["ndcg@5"][0] == pytest.approx(dcg / idcg)
    assert m["ndcg@3"][0] == pytest.approx(0.9197207891481876)


def test_hand_computed_example_with_exclusion():
    # Item 3 is fold-in and has the best score; without it the ranking is 2, 1, 0, 4.
    scores = np.array([[0.7, 0.8, 0.9, 5.0, 0.1]])
    heldout = np.array([[1, 0, 1, 0, 0]])
    exclude = np.array([[0, 0, 0, 1, 0]])
    m = ranking_metrics(scores, heldout, exclude=exclude, recall_at=(1, 2), ndcg_at=(3,))
    assert m["recall@1"][0] == pytest.approx(1.0)
    assert m["recall@2"][0] == pytest.approx(0.5)
    assert m["ndcg@3"][0] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))


def test_recall_denominator_is_min_of_cutoff_and_heldout():
    # Five held-out items, all ranked on top: Recall@2 is 2 / min(2, 5) = 1, not 2 / 5.
    scores = np.arange(10.0)[::-1][None, :]
    heldout = np.zeros((1, 10))
    heldout[0, :5] = 1
    assert recall_at_k(scores, heldout, 2)[0] == pytest.approx(1.0)
    assert ndcg_at_k(scores, heldout, 2)[0] == pytest.approx(1.0)
    assert recall_at_k(scores, heldout, 10)[0] == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_with_distinct_scores(dtype, seed):
    rng = np.random.default_rng(seed)
    scores, heldout, exclude = random_case(rng, n_users=30, n_items=40, dtype=dtype)
    cutoffs = dict(recall_at=(1, 5, 20), ndcg_at=(3, 10, 25))
    expected = brute_force(scores, heldout, exclude, **cutoffs)
    assert_metrics_equal(ranking_metrics(scores, heldout, exclude, **cutoffs), expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ties_are_broken_by_item_index(seed):
    # Three score levels: almost every cut falls inside a block of tied items.
    rng = np.random.default_rng(seed)
    scores, heldout, exclude = random_case(rng, n_users=30, n_items=40, n_score_levels=3)
    cutoffs = dict(recall_at=(1, 5, 20), ndcg_at=(3, 10, 25))
    expected = brute_force(scores, heldout, exclude, **cutoffs)
    assert_metrics_equal(ranking_metrics(scores, heldout, exclude, **cutoffs), expected)


def test_ties_with_all_scores_equal():
    scores = np.ones((2, 6), dtype=np.float32)
    np.testing.assert_array_equal(top_k(scores, 4), [[0, 1, 2, 3], [0, 1, 2, 3]])
    exclude = sp.csr_array(np.array([[1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]]))
    np.testing.assert_array_equal(top_k(scores, 4, exclude), [[1, 3, 4, 5], [0, 1, 2, 3]])


def test_many_chunks_match_one_chunk(monkeypatch):
    rng = np.random.default_rng(3)
    scores, heldout, exclude = random_case(rng, n_users=25, n_items=40, n_score_levels=4)
    cutoffs = dict(recall_at=(2, 7), ndcg_at=(9,))
    whole = ranking_metrics(scores, heldout, exclude, **cutoffs)
    monkeypatch.setattr(metrics, "_CHUNK_ENTRIES", 3 * 40)  # three users per chunk
    chunked = ranking_metrics(scores, heldout, exclude, **cutoffs)
    assert_metrics_equal(chunked, whole)
    assert_metrics_equal(chunked, brute_force(scores, heldout, exclude, **cutoffs))


def test_dense_and_sparse_inputs_agree():
    rng = np.random.default_rng(4)
    scores, heldout, exclude = random_case(rng, n_users=10, n_items=30)
    cutoffs = dict(recall_at=(5,), ndcg_at=(10,))
    sparse = ranking_metrics(scores, heldout, exclude, **cutoffs)
    dense = ranking_metrics(scores, heldout.toarray(), exclude.toarray(), **cutoffs)
    matrix = ranking_metrics(scores, sp.csr_matrix(heldout), sp.csr_matrix(exclude), **cutoffs)
    assert_metrics_equal(dense, sparse)
    assert_metrics_equal(matrix, sparse)


def test_users_without_heldout_get_nan():
    scores = np.array([[0.3, 0.2, 0.1], [0.3, 0.2, 0.1]])
    heldout = np.array([[0, 1, 0], [0, 0, 0]])
    m = ranking_metrics(scores, heldout, recall_at=(2,), ndcg_at=(2,))
    assert m["recall@2"][0] == pytest.approx(1.0)
    assert m["ndcg@2"][0] == pytest.approx(1 / math.log2(3))
    assert np.isnan(m["recall@2"][1]) and np.isnan(m["ndcg@2"][1])


def test_excluded_items_are_never_ranked():
    rng = np.random.default_rng(5)
    n_users, n_items, k = 20, 30, 10
    scores = rng.standard_normal((n_users, n_items))
    exclude = (rng.random((n_users, n_items)) < 0.4).astype(float)
    # The excluded items get the best scores, so any leak would show up on top.
    scores[exclude > 0] += 100
    exclude[0, : n_items - 3] = 1  # only three rankable items for user 0
    top = top_k(scores, k, sp.csr_array(exclude))
    for u in range(n_users):
        ranked = top[u][top[u] >= 0]
        assert not np.any(exclude[u, ranked] > 0)
        n_rankable = int(np.sum(exclude[u] == 0))
        assert ranked.size == min(k, n_rankable)
        # The ranked items are the best rankable ones, in decreasing order.
        best = sorted(np.flatnonzero(exclude[u] == 0), key=lambda i: -scores[u, i])[:k]
        np.testing.assert_array_equal(ranked, best)
    np.testing.assert_array_equal(top[0, 3:], -1)


def test_user_with_fewer_rankable_items_than_cutoff():
    # Two rankable items, one held out and ranked second: Recall@3 = 1 / min(3, 1).
    scores = np.array([[0.9, 0.5, 0.1, 0.8]])
    heldout = np.array([[0, 0, 0, 1]])
    exclude = np.array([[0, 1, 1, 0]])
    m = ranking_metrics(scores, heldout, exclude, recall_at=(1, 3), ndcg_at=(3,))
    assert m["recall@1"][0] == pytest.approx(0.0)
    assert m["recall@3"][0] == pytest.approx(1.0)
    assert m["ndcg@3"][0] == pytest.approx(1 / math.log2(3))


def test_inplace_flag_controls_the_scores_array():
    scores = np.array([[0.1, 0.2, 0.3]])
    exclude = np.array([[0, 0, 1]])
    heldout = np.array([[1, 0, 0]])
    ranking_metrics(scores, heldout, exclude, recall_at=(1,), ndcg_at=())
    np.testing.assert_array_equal(scores, [[0.1, 0.2, 0.3]])
    ranking_metrics(scores, heldout, exclude, recall_at=(1,), ndcg_at=(), inplace=True)
    np.testing.assert_array_equal(scores, [[0.1, 0.2, -np.inf]])


def test_integer_scores_are_accepted():
    scores = np.array([[3, 1, 2]])
    heldout = np.array([[0, 0, 1]])
    assert recall_at_k(scores, heldout, 2)[0] == pytest.approx(1.0)
    assert ndcg_at_k(scores, heldout, 2)[0] == pytest.approx(1 / math.log2(3))


def test_wrappers_match_ranking_metrics():
    rng = np.random.default_rng(6)
    scores, heldout, exclude = random_case(rng, n_users=12, n_items=30)
    m = ranking_metrics(scores, heldout, exclude, recall_at=(5,), ndcg_at=(7,))
    np.testing.assert_array_equal(recall_at_k(scores, heldout, 5, exclude), m["recall@5"])
    np.testing.assert_array_equal(ndcg_at_k(scores, heldout, 7, exclude), m["ndcg@7"])


def test_bad_inputs_raise_clear_errors():
    scores = np.zeros((2, 4))
    heldout = np.array([[1, 0, 0, 0], [0, 1, 0, 0]])
    with pytest.raises(ValueError, match=r"scores contain NaN \(user 1\)"):
        ranking_metrics(np.array([[0, 0, 0, 0], [0.1, np.nan, 0.2, 0.3]]), heldout,
                        recall_at=(2,), ndcg_at=())
    with pytest.raises(ValueError, match="cutoff 5 is outside"):
        ranking_metrics(scores, heldout, recall_at=(5,), ndcg_at=())
    with pytest.raises(ValueError, match="heldout has shape"):
        ranking_metrics(scores, heldout[:, :3], recall_at=(1,), ndcg_at=())
    with pytest.raises(ValueError, match="at least one cutoff"):
        ranking_metrics(scores, heldout, recall_at=(), ndcg_at=())
    with pytest.raises(TypeError, match="must be integers"):
        ranking_metrics(scores, heldout, recall_at=(2.5,), ndcg_at=())
    with pytest.raises(ValueError, match="user 1, item 1 is both excluded"):
        ranking_metrics(scores, heldout, exclude=np.array([[0, 0, 1, 0], [0, 1, 0, 0]]),
                        recall_at=(1,), ndcg_at=())


def test_summarize_skips_nan_and_reports_standard_error():
    per_user = {"ndcg@2": np.array([1.0, np.nan, 0.0, 0.5]), "empty@1": np.array([np.nan])}
    summary = summarize(per_user)
    mean, stderr, n = summary["ndcg@2"]
    assert n == 3
    assert mean == pytest.approx(0.5)
    # Population std of (1, 0, 0.5) is sqrt(1/6); divided by sqrt(3).
    assert stderr == pytest.approx(math.sqrt(1 / 6) / math.sqrt(3))
    assert summarize(per_user, ddof=1)["ndcg@2"][1] == pytest.approx(0.5 / math.sqrt(3))
    mean, stderr, n = summary["empty@1"]
    assert n == 0 and math.isnan(mean) and math.isnan(stderr)


@pytest.mark.parametrize("batch_size", [1, 4, 100])
def test_evaluate_concatenates_batches(batch_size):
    rng = np.random.default_rng(7)
    n_users, n_items = 11, 30
    weights = rng.standard_normal((n_items, n_items))
    _, heldout, inputs = random_case(rng, n_users, n_items)
    seen_types = set()

    def score_fn(x):
        seen_types.add(type(x))
        return x @ weights + 0.01 * np.arange(n_items)

    cutoffs = dict(recall_at=(3, 8), ndcg_at=(10,))
    per_user = evaluate(score_fn, inputs, heldout, batch_size=batch_size, **cutoffs)
    expected = brute_force(inputs @ weights + 0.01 * np.arange(n_items), heldout, inputs,
                           **cutoffs)
    assert_metrics_equal(per_user, expected)
    assert seen_types == {type(inputs)}


def test_evaluate_checks_score_shape():
    inputs = sp.csr_array(np.eye(3))
    with pytest.raises(ValueError, match="score_fn returned shape"):
        evaluate(lambda x: np.zeros((1, 3)), inputs, inputs * 0, batch_size=2,
                 recall_at=(1,), ndcg_at=())


def test_evaluate_copies_read_only_scores_before_masking():
    rng = np.random.default_rng(8)
    _, heldout, inputs = random_case(rng, 6, 20)
    fixed = rng.standard_normal((6, 20))
    fixed.setflags(write=False)
    per_user = evaluate(lambda x: fixed, inputs, heldout, batch_size=6,
                        recall_at=(3,), ndcg_at=(5,))
    assert_metrics_equal(per_user, brute_force(np.array(fixed), heldout, inputs,
                                               recall_at=(3,), ndcg_at=(5,)))
