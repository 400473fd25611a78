"""Synthetic histories: the generator's ground truth, its sampler, and large look-alikes."""

import numpy as np
import pytest

from minivae.data import DataError, make_synthetic, strong_generalization_split, synthetic_like


@pytest.fixture(scope="module")
def syn():
    return make_synthetic(n_users=500, n_items=200, n_tastes=4, seed=0)


def test_shapes_and_distributions(syn):
    assert syn.x.shape == syn.probs.shape == (500, 200)
    assert syn.weights.shape == (500, 4) and syn.tastes.shape == (4, 200)
    np.testing.assert_allclose(syn.probs.sum(axis=1), 1)
    np.testing.assert_allclose(syn.weights.sum(axis=1), 1)
    np.testing.assert_allclose(syn.tastes.sum(axis=1), 1)
    np.testing.assert_allclose(syn.probs, syn.weights @ syn.tastes)
    np.testing.assert_array_equal(syn.taste, syn.weights.argmax(axis=1))


def test_histories_are_canonical_binary_and_long_enough(syn):
    x = syn.x
    assert x.format == "csr" and x.dtype == np.float32
    assert x.has_canonical_format and np.all(x.data == 1)
    assert x.getnnz(axis=1).min() >= 5


def test_popularity_is_zipf_in_random_order(syn):
    ranks = np.arange(1, 201)
    np.testing.assert_allclose(np.sort(syn.popularity)[::-1], (1 / ranks) / np.sum(1 / ranks))
    assert not np.all(np.diff(syn.popularity) <= 0)


def test_taste_favours_its_home_items_by_the_strength(syn):
    # beta_ti / w_i is s on home items and 1 elsewhere, up to one factor per taste.
    ratio = syn.tastes / syn.popularity
    home = syn.item_taste[None, :] == np.arange(4)[:, None]
    np.testing.assert_allclose(ratio[home] / np.repeat(ratio.min(axis=1), home.sum(axis=1)), 20)


def test_same_seed_same_data_other_seed_other_data():
    a = make_synthetic(n_users=50, n_items=40, seed=5)
    b = make_synthetic(n_users=50, n_items=40, seed=5)
    c = make_synthetic(n_users=50, n_items=40, seed=6)
    assert (a.x != b.x).nnz == 0 and np.array_equal(a.probs, b.probs)
    assert (a.x != c.x).nnz > 0


def test_single_draws_follow_the_true_probabilities():
    # With exactly one item per user, Gumbel-top-k is one categorical draw from
    # pi_u, so item counts over users have mean sum_u pi_ui and variance
    # sum_u pi_ui (1 - pi_ui).
    syn = make_synthetic(n_users=20_000, n_items=20, n_tastes=3, mean_items=1, min_items=1,
                         seed=1)
    counts = syn.x.sum(axis=0).A1
    mean = syn.probs.sum(axis=0)
    std = np.sqrt((syn.probs * (1 - syn.probs)).sum(axis=0))
    assert np.all(np.abs(counts - mean) < 5 * std)


def test_true_probabilities_rank_watched_items_first(syn):
    watched = syn.x.toarray() > 0
    assert syn.probs[watched].mean() > 3 * syn.probs[~watched].mean()


def test_users_mostly_watch_their_dominant_taste(syn):
    rows = np.repeat(np.arange(500), syn.x.getnnz(axis=1))
    share = np.mean(syn.item_taste[syn.x.indices] == syn.taste[rows])
    home = syn.item_taste[None, :] == syn.taste[:, None]
    # If every user drew from the average distribution, the share of home items
    # would be about 1/4; with their own pi_u a first draw hits home with the
    # probability mass pi_u puts there. Later draws without replacement dilute it.
    user_agnostic = np.mean(home @ syn.probs.mean(axis=0))
    first_draw = np.mean((syn.probs * home).sum(axis=1))
    assert 2 * user_agnostic < share < first_draw


def test_interactions_round_trip_and_split(syn):
    events = syn.interactions()
    assert len(events) == syn.x.nnz
    np.testing.assert_array_equal(events.item, syn.x.indices)
    split = strong_generalization_split(events, n_heldout_users=50, seed=0)
    assert len(split.train_users) == 400


def test_bad_parameters_are_named():
    with pytest.raises(DataError, match="min_items=50 exceeds n_items=10"):
        make_synthetic(n_items=10, min_items=50, mean_items=60)
    with pytest.raises(DataError, match="n_users must be a whole number"):
        make_synthetic(n_users=0)


def test_synthetic_like_has_shape_fill_and_long_tail():
    x = synthetic_like(2000, 500, 40_000, seed=0)
    assert x.shape == (2000, 500) and x.nnz == 40_000
    assert x.has_canonical_format and x.dtype == np.float32 and np.all(x.data == 1)
    assert x.getnnz(axis=1).min() >= 5
    item_counts = np.sort(x.getnnz(axis=0))[::-1]
    assert item_counts[0] > 10 * np.median(item_counts)
    y = synthetic_like(2000, 500, 40_000, seed=0)
    assert (x != y).nnz == 0


def test_synthetic_like_rejects_impossible_fill():
    with pytest.raises(DataError, match="less than n_users"):
        synthetic_like(100, 50, 100, min_items=5)
    with pytest.raises(DataError, match="exceeds"):
        synthetic_like(10, 5, 51, min_items=0)
