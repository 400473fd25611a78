r"""Binary watch histories and the paper's strong-generalisation split.

Preprocessing (Liang et al., 2018, Sec. 4.1) turns explicit ratings into implicit
feedback and then splits by *user*, not by event:

1. **Binarise.** A rating :math:`r_{ui}` becomes the event :math:`x_{ui} = 1` when
   :math:`r_{ui} > 3.5` (strictly), and is dropped otherwise.
2. **Filter.** Optionally keep only items with at least ``min_item_count``
   events; then keep only users with at least ``min_user_count`` (5) events.
   Both filters select ids, so a user keeps all or none of their events.
3. **Hold out users.** The sorted user ids are shuffled with a seed; the last
   :math:`2h` of the shuffled list become validation and test users, the rest
   are training users. The paper uses :math:`h = 10{,}000` on ML-20M.
4. **Vocabulary.** The item columns are the items that training users watched,
   sorted by original id: :math:`\mathcal{I} = \{i : \exists u \in
   \mathcal{U}_{train},\, x_{ui} = 1\}`. Held-out events outside it are dropped,
   since a model trained on :math:`\mathcal{U}_{train}` has no column for them.
5. **Fold-in / held-out.** For every validation and test user with
   :math:`n_u \ge 5` remaining events, :math:`\lfloor 0.2\, n_u \rfloor` events
   chosen at random are held out as targets; the rest are the fold-in input from
   which the model infers the user. A user with :math:`n_u < 5` keeps every event
   as input and has no targets (the authors' code does the same); metrics must
   skip such rows. A user left with no events at all is dropped.

Random numbers follow the authors' notebook: with an integer ``seed`` the user
permutation, the validation hold-out and the test hold-out each draw from a fresh
``np.random.RandomState(seed)`` (NumPy's legacy Mersenne Twister, the stream that
``np.random.seed`` sets), users visited in increasing id order and each user's
items in increasing id order. ``seed=98765`` therefore reproduces their split
of ML-20M. A ``np.random.Generator`` may be passed instead; it is used for all
three steps in turn.

Every matrix is a ``scipy.sparse.csr_matrix`` of float32 ones in canonical form
(sorted column indices, no duplicates).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._common import DataError, format_stats, part_stats
from .catalog import Catalog
from .movielens import Ratings


def _is_sorted_unique(user, item):
    """True if (user, item) pairs are strictly increasing in lexicographic order."""
    if len(user) < 2:
        return True
    du = np.diff(user)
    return bool(np.all((du > 0) | ((du == 0) & (np.diff(item) > 0))))


@dataclass(frozen=True, eq=False)
class Interactions:
    """Binary (user, item) events with original ids.

    The pairs are kept sorted by user, then item, without duplicates; the
    constructor sorts and de-duplicates them when they are not.

    Attributes
    ----------
    user, item : ndarray of int64, shape (N,)
        Original ids of each event.
    catalog : Catalog or None
        Titles and genres of the items.
    name : str
        Where the events came from, for summaries.
    """

    user: np.ndarray
    item: np.ndarray
    catalog: Catalog | None = None
    name: str = "interactions"

    def __post_init__(self):
        user = np.asarray(self.user, dtype=np.int64).ravel()
        item = np.asarray(self.item, dtype=np.int64).ravel()
        if len(user) != len(item):
            raise DataError(f"Interactions needs one item per user entry; got {len(user)} "
                            f"users and {len(item)} items")
        if not _is_sorted_unique(user, item):
            order = np.lexsort((item, user))
            user, item = user[order], item[order]
            keep = np.ones(len(user), dtype=bool)
            keep[1:] = (user[1:] != user[:-1]) | (item[1:] != item[:-1])
            user, item = user[keep], item[keep]
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "item", item)

    def __len__(self):
        return len(self.user)

    def __repr__(self):
        return f"Interactions({self.name!r}, {len(self):,} events)"

    @property
    def users(self):
        """Sorted unique user ids, shape (U,)."""
        return np.unique(self.user)

    @property
    def items(self):
        """Sorted unique item ids, shape (I,)."""
        return np.unique(self.item)

    def to_csr(self):
        """All events as one matrix.

        Returns
        -------
        x : csr_matrix of float32, shape (U, I)
            Row r is user ``user_ids[r]``, column c is item ``item_ids[c]``.
        user_ids : ndarray of int64, shape (U,)
        item_ids : ndarray of int64, shape (I,)
        """
        user_ids, rows = np.unique(self.user, return_inverse=True)
        item_ids = self.items
        return _csr(rows, np.searchsorted(item_ids, self.item), len(user_ids),
                    len(item_ids)), user_ids, item_ids

    def stats(self):
        """Users, items, events and density, as a dict (see ``summary``)."""
        n_items = len(self.items)
        return part_stats(len(self.users), n_items, len(self), n_items)

    def summary(self):
        """The statistics as a printable one-line table."""
        return format_stats({self.name: self.stats()})


def _csr(rows, cols, n_rows, n_cols):
    """Binary CSR matrix from (row, col) pairs already sorted by row, then column."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    data = np.ones(len(cols), dtype=np.float32)
    return sp.csr_matrix((data, np.asarray(cols, dtype=np.int64), indptr),
                         shape=(n_rows, n_cols))


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise DataError(f"{name} must be a non-negative whole number, got {value!r}")


def binarize(ratings, min_rating=3.5, min_user_count=5, min_item_count=0):
    """Implicit feedback from ratings: keep high ratings, then active users.

    Parameters
    ----------
    ratings : Ratings
        Explicit ratings with original ids.
    min_rating : float
        A rating counts as a watch when it is strictly greater than this.
    min_user_count : int
        Users with fewer kept events are removed entirely.
    min_item_count : int
        Items with fewer kept events are removed first (0 keeps all items).

    Returns
    -------
    Interactions
        Sorted by user then item, de-duplicated, carrying the catalog.

    Raises
    ------
    DataError
        If a step leaves no events; the message names that step.
    """
    if not isinstance(ratings, Ratings):
        raise DataError(
            f"binarize expects Ratings (from load_ratings), got {type(ratings).__name__}")
    _check_count(min_user_count, "min_user_count")
    _check_count(min_item_count, "min_item_count")
    keep = ratings.rating > min_rating
    if not np.any(keep):
        span = (f"ratings range from {ratings.rating.min():g} to {ratings.rating.max():g}"
                if len(ratings) else "there are no ratings")
        raise DataError(f"no rating is above min_rating={min_rating} ({span}); lower min_rating")
    events = Interactions(ratings.user[keep], ratings.item[keep], ratings.catalog, ratings.name)
    user, item = events.user, events.item
    if min_item_count > 0:
        _, inverse, counts = np.unique(item, return_inverse=True, return_counts=True)
        kept = counts[inverse] >= min_item_count
        if not np.any(kept):
            raise DataError(f"no item has min_item_count={min_item_count} ratings above "
                            f"{min_rating} (the most is {counts.max()}); lower min_item_count")
        user, item = user[kept], item[kept]
    if min_user_count > 0:
        _, inverse, counts = np.unique(user, return_inverse=True, return_counts=True)
        kept = counts[inverse] >= min_user_count
        if not np.any(kept):
            raise DataError(f"no user has min_user_count={min_user_count} ratings above "
                            f"{min_rating} after the item filter (the most is {counts.max()}); "
                            f"lower min_user_count")
        user, item = user[kept], item[kept]
    # Filtering keeps the order, so the pairs stay sorted and unique.
    return Interactions(user, item, ratings.catalog, ratings.name)


@dataclass(frozen=True, eq=False)
class Split:
    """Strong-generalisation split: training users, and held-out users in two halves.

    Attributes
    ----------
    train : csr_matrix of float32, shape (U_train, I)
        Full histories of the training users.
    val_input, val_heldout : csr_matrix of float32, shape (U_val, I)
        Fold-in input and held-out targets of the validation users; row r of both
        is user ``val_users[r]``, and the two never share an event.
    test_input, test_heldout : csr_matrix of float32, shape (U_test, I)
        The same for the test users.
    item_ids : ndarray of int64, shape (I,)
        Original id of each column, sorted.
    train_users, val_users, test_users : ndarray of int64
        Original id of each row, sorted within each part.
    catalog : Catalog or None
        Titles and genres, by original item id.
    name : str
        Data set name, for summaries.
    """

    train: sp.csr_matrix
    val_input: sp.csr_matrix
    val_heldout: sp.csr_matrix
    test_input: sp.csr_matrix
    test_heldout: sp.csr_matrix
    item_ids: np.ndarray
    train_users: np.ndarray
    val_users: np.ndarray
    test_users: np.ndarray
    catalog: Catalog | None = None
    name: str = "split"

    @property
    def n_items(self):
        """Number of item columns I."""
        return len(self.item_ids)

    def __repr__(self):
        return (f"Split({self.name!r}: {len(self.train_users):,} train, {len(self.val_users):,} "
                f"validation, {len(self.test_users):,} test users; {self.n_items:,} items)")

    def stats(self):
        """Users, items, interactions and density of every part.

        Returns
        -------
        dict
            Part name -> ``{"users", "items", "active_items", "interactions",
            "density"}``, where ``items`` is I for every part, ``active_items``
            counts columns with at least one event and ``density`` is
            ``interactions / (users * items)``.
        """
        parts = {"train": self.train, "val_input": self.val_input,
                 "val_heldout": self.val_heldout, "test_input": self.test_input,
                 "test_heldout": self.test_heldout}
        return {name: part_stats(x.shape[0], x.shape[1], x.nnz, len(np.unique(x.indices)))
                for name, x in parts.items()}

    def summary(self):
        """The statistics of every part as a printable table."""
        return f"{self.name}\n{format_stats(self.stats())}"


def _heldout_count(n_heldout_users, n_users):
    """Number of users in each of the validation and test parts."""
    if isinstance(n_heldout_users, bool):
        raise DataError(f"n_heldout_users must be a number, got {n_heldout_users!r}")
    if isinstance(n_heldout_users, (int, np.integer)):
        count = int(n_heldout_users)
    elif isinstance(n_heldout_users, (float, np.floating)) and 0 < n_heldout_users < 0.5:
        count = int(round(n_heldout_users * n_users))
    else:
        raise DataError(f"n_heldout_users must be a whole number of users or a fraction in "
                        f"(0, 0.5), got {n_heldout_users!r}")
    if count < 1 or n_users - 2 * count < 1:
        raise DataError(f"n_heldout_users={n_heldout_users} gives {count} validation and {count} "
                        f"test users out of {n_users}; each part needs at least one user and "
                        f"training needs at least one")
    return count


def _random_streams(seed):
    """Three random sources: user permutation, validation and test hold-outs."""
    if isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed, seed, seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise DataError(f"seed must be an int or a np.random.Generator, got {seed!r}")
    # Fresh legacy streams, reseeded before each step as the authors' notebook does.
    return tuple(np.random.RandomState(int(seed)) for _ in range(3))


def _fold_in_split(user, item, users, item_ids, test_prop, min_items, rng):
    """Input and held-out matrices for one part of held-out users.

    ``user``, ``item`` are this part's events, sorted, already restricted to the
    vocabulary ``item_ids``; ``users`` are the part's user ids, sorted.
    """
    rows = np.searchsorted(users, user)
    cols = np.searchsorted(item_ids, item)
    starts = np.searchsorted(rows, np.arange(len(users) + 1))
    heldout = np.zeros(len(user), dtype=bool)
    for r in range(len(users)):
        n_u = starts[r + 1] - starts[r]
        if n_u >= min_items:
            picked = rng.choice(n_u, size=int(test_prop * n_u), replace=False)
            heldout[starts[r] + picked] = True
    n_rows, n_cols = len(users), len(item_ids)
    return (_csr(rows[~heldout], cols[~heldout], n_rows, n_cols),
            _csr(rows[heldout], cols[heldout], n_rows, n_cols))


def strong_generalization_split(events, n_heldout_users=0.1, test_prop=0.2, seed=98765,
                                min_items_for_holdout=5):
    """Split users into training, validation and test users (see module notes).

    Parameters
    ----------
    events : Interactions
        Binary events, e.g. from ``binarize``.
    n_heldout_users : int or float
        Users in each of the validation and test parts: a count (the paper
        uses 10,000 on ML-20M) or a fraction of all users in (0, 0.5),
        rounded to the nearest whole user. The default 0.1 holds out 10% for
        validation and 10% for test; on ml-latest-small (603 users after
        binarising) that is 60 users each.
    test_prop : float
        Share of each held-out user's events kept back as targets, in [0, 1);
        the count is ``int(test_prop * n_u)``.
    seed : int or np.random.Generator
        98765 reproduces the authors' split.
    min_items_for_holdout : int
        Held-out users with fewer events keep them all as input.

    Returns
    -------
    Split

    Raises
    ------
    DataError
        Too few users for the requested parts, or invalid arguments.
    """
    if not isinstance(events, Interactions):
        raise DataError(f"strong_generalization_split expects Interactions (from binarize), "
                        f"got {type(events).__name__}")
    if not 0 <= test_prop < 1:
        raise DataError(f"test_prop must be in [0, 1), got {test_prop!r}")
    _check_count(min_items_for_holdout, "min_items_for_holdout")
    permute_rng, val_rng, test_rng = _random_streams(seed)
    user_ids = events.users
    n_users = len(user_ids)
    if n_users == 0:
        raise DataError("there are no events to split")
    count = _heldout_count(n_heldout_users, n_users)
    shuffled = user_ids[permute_rng.permutation(n_users)]
    n_train = n_users - 2 * count
    train_users = np.sort(shuffled[:n_train])
    val_users = np.sort(shuffled[n_train:n_train + count])
    test_users = np.sort(shuffled[n_train + count:])

    in_train = np.isin(events.user, train_users)
    item_ids = np.unique(events.item[in_train])
    train = _csr(np.searchsorted(train_users, events.user[in_train]),
                 np.searchsorted(item_ids, events.item[in_train]),
                 len(train_users), len(item_ids))

    in_vocabulary = np.isin(events.item, item_ids)
    parts = []
    for users, rng in ((val_users, val_rng), (test_users, test_rng)):
        mask = np.isin(events.user, users) & in_vocabulary
        user, item = events.user[mask], events.item[mask]
        # A user whose every event lies outside the vocabulary has nothing to fold in.
        users = np.unique(user)
        parts.append((users, *_fold_in_split(user, item, users, item_ids, test_prop,
                                             min_items_for_holdout, rng)))
    (val_users, val_input, val_heldout), (test_users, test_input, test_heldout) = parts
    return Split(train, val_input, val_heldout, test_input, test_heldout, item_ids,
                 train_users, val_users, test_users, events.catalog, events.name)
