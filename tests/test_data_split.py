"""Binarisation and the strong-generalisation split, checked against a plain re-derivation."""

import os

import numpy as np
import pytest

from minivae.data import (DataError, Interactions, Ratings, binarize, load_ratings,
                          make_synthetic, strong_generalization_split)


def ratings_from(rows):
    user, item, rating = (np.array(c) for c in zip(*rows))
    return Ratings(user, item, rating.astype(np.float32), np.zeros(len(rows), dtype=np.int64))


@pytest.fixture(scope="module")
def small_events():
    return binarize(load_ratings("ml-latest-small"))


@pytest.fixture(scope="module")
def small_split(small_events):
    return strong_generalization_split(small_events)


def test_binarize_keeps_ratings_strictly_above_threshold_and_active_users():
    # User 7's events are not contiguous: the filter must select by id.
    rows = [(7, 1, 4.0), (3, 1, 5.0), (7, 2, 4.5), (3, 2, 3.5), (7, 3, 5.0), (3, 3, 1.0),
            (7, 4, 4.0), (7, 5, 4.0), (3, 4, 4.0)]
    events = binarize(ratings_from(rows), min_rating=3.5, min_user_count=5)
    np.testing.assert_array_equal(events.user, [7, 7, 7, 7, 7])
    np.testing.assert_array_equal(events.item, [1, 2, 3, 4, 5])
    events = binarize(ratings_from(rows), min_rating=3.5, min_user_count=2)
    np.testing.assert_array_equal(events.user, [3, 3, 7, 7, 7, 7, 7])
    np.testing.assert_array_equal(events.item, [1, 4, 1, 2, 3, 4, 5])


def test_item_filter_runs_before_user_filter():
    rows = [(1, 10, 5.0), (1, 11, 5.0), (2, 10, 5.0), (2, 12, 5.0), (3, 10, 5.0), (3, 11, 5.0)]
    # Items 10 and 11 have two or more events; then only users 1 and 3 keep two.
    events = binarize(ratings_from(rows), min_user_count=2, min_item_count=2)
    np.testing.assert_array_equal(events.user, [1, 1, 3, 3])
    np.testing.assert_array_equal(events.item, [10, 11, 10, 11])


def test_binarize_removes_repeated_pairs():
    events = binarize(ratings_from([(1, 5, 4.0), (1, 5, 5.0), (1, 2, 4.0)]), min_user_count=1)
    np.testing.assert_array_equal(events.item, [2, 5])


@pytest.mark.parametrize("kwargs, message", [
    ({"min_rating": 5.0}, r"no rating is above min_rating=5.0 \(ratings range from 1 to 5\)"),
    ({"min_user_count": 10}, r"no user has min_user_count=10 .*the most is 2"),
    ({"min_item_count": 3, "min_user_count": 1}, r"no item has min_item_count=3 .*the most is 2"),
])
def test_empty_result_names_the_filter(kwargs, message):
    rows = [(1, 1, 5.0), (1, 2, 4.0), (2, 1, 1.0), (2, 2, 4.0)]
    with pytest.raises(DataError, match=message):
        binarize(ratings_from(rows), **kwargs)


def reference_split(user, item, n_heldout, test_prop=0.2, seed=98765):
    """The authors' procedure restated with Python sets, dicts and loops.

    Returns the user lists of the three parts, the item vocabulary and, for the
    validation and test parts, dicts user -> (input items, held-out items).
    """
    histories = {}
    for u, i in zip(user.tolist(), item.tolist()):
        histories.setdefault(u, []).append(i)
    users = sorted(histories)
    order = np.random.RandomState(seed).permutation(len(users))
    shuffled = [users[k] for k in order]
    n_train = len(users) - 2 * n_heldout
    train = shuffled[:n_train]
    vocabulary = sorted({i for u in train for i in histories[u]})
    known = set(vocabulary)
    parts = []
    for part_users in (shuffled[n_train:n_train + n_heldout], shuffled[n_train + n_heldout:]):
        rng = np.random.RandomState(seed)
        part = {}
        for u in sorted(part_users):
            items = sorted(i for i in histories[u] if i in known)
            if not items:
                continue
            held = set()
            if len(items) >= 5:
                held = {items[k] for k in rng.choice(len(items), size=int(test_prop * len(items)),
                                                     replace=False)}
            part[u] = ([i for i in items if i not in held], sorted(held))
        parts.append(part)
    return sorted(train), vocabulary, parts


def rows_as_items(x, item_ids):
    return [item_ids[x.indices[x.indptr[r]:x.indptr[r + 1]]].tolist() for r in range(x.shape[0])]


def assert_matches_reference(split, events, n_heldout):
    train, vocabulary, (val, test) = reference_split(events.user, events.item, n_heldout)
    assert split.train_users.tolist() == train
    assert split.item_ids.tolist() == vocabulary
    parts = ((split.val_users, split.val_input, split.val_heldout, val),
             (split.test_users, split.test_input, split.test_heldout, test))
    for users, x_in, x_out, expected in parts:
        assert users.tolist() == sorted(expected)
        got = list(zip(rows_as_items(x_in, split.item_ids), rows_as_items(x_out, split.item_ids)))
        assert got == [expected[u] for u in users.tolist()]


def test_split_of_ml_latest_small_matches_reference(small_split, small_events):
    assert_matches_reference(small_split, small_events, n_heldout=60)


def test_split_of_synthetic_data_with_sparse_items_matches_reference():
    # Few events per item, so held-out users lose items outside the vocabulary
    # and some fall below five events.
    events = make_synthetic(n_users=400, n_items=2000, mean_items=8, min_items=3,
                            popularity_exponent=0.3, seed=3).interactions()
    split = strong_generalization_split(events, n_heldout_users=50, seed=98765)
    assert_matches_reference(split, events, n_heldout=50)
    n_u = split.val_input.getnnz(axis=1) + split.val_heldout.getnnz(axis=1)
    assert np.any(n_u < 5) and np.all(split.val_heldout.getnnz(axis=1)[n_u < 5] == 0)


def test_parts_partition_users_and_events(small_split, small_events):
    s = small_split
    assert (len(s.train_users), len(s.val_users), len(s.test_users)) == (483, 60, 60)
    all_users = np.concatenate([s.train_users, s.val_users, s.test_users])
    assert sorted(all_users.tolist()) == small_events.users.tolist()
    in_vocabulary = np.isin(small_events.item, s.item_ids)
    assert s.train.nnz + s.val_input.nnz + s.val_heldout.nnz + s.test_input.nnz \
        + s.test_heldout.nnz == np.count_nonzero(in_vocabulary)
    assert s.val_input.multiply(s.val_heldout).nnz == 0
    assert s.test_input.multiply(s.test_heldout).nnz == 0
    n_u = s.val_input.getnnz(axis=1) + s.val_heldout.getnnz(axis=1)
    np.testing.assert_array_equal(s.val_heldout.getnnz(axis=1),
                                  np.where(n_u >= 5, (0.2 * n_u).astype(int), 0))
    assert np.all(s.train.getnnz(axis=0) > 0)


def test_matrices_are_canonical_binary_float32(small_split):
    for name in ("train", "val_input", "val_heldout", "test_input", "test_heldout"):
        x = getattr(small_split, name)
        assert x.format == "csr" and x.dtype == np.float32
        assert x.shape[1] == small_split.n_items
        assert x.has_canonical_format and np.all(x.data == 1)
    assert np.all(np.diff(small_split.item_ids) > 0)


def test_stats_and_summary(small_split):
    stats = small_split.stats()
    assert list(stats) == ["train", "val_input", "val_heldout", "test_input", "test_heldout"]
    train = stats["train"]
    assert train["users"] == 483 and train["items"] == small_split.n_items
    assert train["interactions"] == small_split.train.nnz
    assert train["density"] == pytest.approx(train["interactions"] / (483 * train["items"]))
    table = small_split.summary()
    assert "val_heldout" in table and f"{small_split.train.nnz:,}" in table


def test_seed_controls_the_split(small_events):
    a = strong_generalization_split(small_events, seed=1)
    b = strong_generalization_split(small_events, seed=1)
    c = strong_generalization_split(small_events, seed=np.random.default_rng(1))
    assert np.array_equal(a.test_users, b.test_users)
    assert (a.test_heldout != b.test_heldout).nnz == 0
    assert not np.array_equal(a.test_users, c.test_users)


def test_held_out_user_with_only_unknown_items_is_dropped():
    # Users 1-6 share items 1-5; user 7 only watched item 99. With seed 9 user 7
    # is held out, so item 99 is outside the vocabulary and user 7 has nothing.
    user = np.repeat(np.arange(1, 8), [5] * 6 + [1])
    item = np.concatenate([np.arange(1, 6)] * 6 + [[99]])
    events = Interactions(user, item)
    split = strong_generalization_split(events, n_heldout_users=1, seed=9)
    held = set(np.random.RandomState(9).permutation(7)[-2:].tolist())
    assert 6 in held  # index 6 is user 7
    assert 7 not in split.val_users.tolist() + split.test_users.tolist()
    assert 99 not in split.item_ids


@pytest.mark.parametrize("n_heldout_users, message", [
    (0, "gives 0 validation"), (302, "training needs at least one"),
    (0.6, r"fraction in \(0, 0.5\)"), (True, "must be a number"),
])
def test_bad_heldout_sizes(small_events, n_heldout_users, message):
    with pytest.raises(DataError, match=message):
        strong_generalization_split(small_events, n_heldout_users=n_heldout_users)


def test_split_wants_interactions():
    ratings = ratings_from([(1, 1, 5.0)])
    with pytest.raises(DataError, match="expects Interactions"):
        strong_generalization_split(ratings)


def test_interactions_sort_and_to_csr():
    events = Interactions([5, 2, 5, 2], [30, 10, 10, 10])
    np.testing.assert_array_equal(events.user, [2, 5, 5])
    np.testing.assert_array_equal(events.item, [10, 10, 30])
    x, user_ids, item_ids = events.to_csr()
    np.testing.assert_array_equal(x.toarray(), [[1, 0], [1, 1]])
    assert user_ids.tolist() == [2, 5] and item_ids.tolist() == [10, 30]
    assert events.stats()["interactions"] == 3


@pytest.mark.skipif(not os.environ.get("MINIVAE_ML20M"),
                    reason="set MINIVAE_ML20M to the ml-20m.zip archive or its folder")
def test_ml20m_matches_the_paper():
    ratings = load_ratings("ml-20m", path=os.environ["MINIVAE_ML20M"])
    split = strong_generalization_split(binarize(ratings), n_heldout_users=10_000)
    assert len(split.train_users) + len(split.val_users) + len(split.test_users) == 136_677
    assert len(split.train_users) == 116_677
    assert split.n_items == 20_108
