r"""Synthetic watch histories with a known ground truth, and large look-alike matrices.

``make_synthetic`` draws users from a small topic model, so the probability of
every (user, item) pair is known and the best possible ranking (the oracle) can be
compared with what a model learns:

* **Popularity.** Item :math:`i` has a Zipf weight
  :math:`w_i = \rho_i^{-a}`, where :math:`\rho` is a random permutation of the
  ranks :math:`1, \dots, I` and :math:`a` is ``popularity_exponent``: a few items
  are popular, most are rare (a long tail).
* **Tastes.** Each item has a home taste :math:`g_i \in \{1, \dots, T\}`, drawn
  uniformly. Taste :math:`t` is a distribution over items that favours its home
  items by the factor :math:`s` (``taste_strength``) on top of popularity,

  .. math:: \beta_{ti} = \frac{w_i\, s^{[g_i = t]}}{\sum_j w_j\, s^{[g_j = t]}}.

* **Users.** User :math:`u` mixes the tastes with weights
  :math:`\theta_u \sim \mathrm{Dirichlet}(\alpha \mathbf{1}_T)`; a small
  :math:`\alpha` (``taste_concentration``) gives most users one dominant taste.
  Their item distribution is :math:`\pi_u = \theta_u^\top \beta`, shape (I,).
* **Histories.** User :math:`u` watches :math:`n_u = n_{min} + \mathrm{Poisson}(\lambda_u)`
  distinct items with :math:`\lambda_u \sim \mathrm{Gamma}(1, \bar n - n_{min})`,
  so :math:`\mathbb{E}[n_u] = \bar n` (``mean_items``) with a long tail of
  heavy users. The items are drawn one after another without replacement, each
  with probability proportional to :math:`\pi_{ui}` among those not yet drawn.
  This is done at once with the Gumbel-top-k trick: the :math:`n_u` largest of
  :math:`\log \pi_{ui} + G_{ui}`, :math:`G_{ui} \sim \mathrm{Gumbel}(0, 1)`,
  follow exactly that sequential law.

Ranking a user's unseen items by :math:`\pi_u` is the oracle a recommender can
at best approach.

``synthetic_like`` makes a large sparse matrix of a given shape and number of
non-zeros, with Zipf item popularity and long-tailed user activity, for timing
code on data the size of ML-20M without downloading it. It has no ground truth.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ._common import DataError
from .split import Interactions, _csr


def zipf_popularity(n_items, exponent, rng):
    """Item popularity :math:`w_i \\propto \\rho_i^{-a}` with ranks in random order.

    Parameters
    ----------
    n_items : int
    exponent : float
        Zipf exponent :math:`a \\ge 0`; 0 gives uniform popularity.
    rng : np.random.Generator

    Returns
    -------
    ndarray of float64, shape (I,)
        Sums to 1.
    """
    if exponent < 0:
        raise DataError(f"popularity_exponent must be >= 0, got {exponent}")
    ranks = rng.permutation(n_items) + 1.0
    weights = ranks ** -float(exponent)
    return weights / weights.sum()


@dataclass(frozen=True, eq=False)
class Synthetic:
    """Synthetic watch histories and the model that generated them.

    Attributes
    ----------
    x : csr_matrix of float32, shape (U, I)
        Binary watch histories.
    probs : ndarray of float64, shape (U, I)
        :math:`\\pi_u`, each user's true item distribution (rows sum to 1).
    weights : ndarray of float64, shape (U, T)
        :math:`\\theta_u`, each user's taste mixture (rows sum to 1).
    taste : ndarray of int64, shape (U,)
        Dominant taste of each user, ``argmax(weights, axis=1)``.
    tastes : ndarray of float64, shape (T, I)
        :math:`\\beta`, each taste's item distribution (rows sum to 1).
    item_taste : ndarray of int64, shape (I,)
        :math:`g_i`, the home taste of each item.
    popularity : ndarray of float64, shape (I,)
        :math:`w`, normalised Zipf popularity.
    """

    x: sp.csr_matrix
    probs: np.ndarray
    weights: np.ndarray
    taste: np.ndarray
    tastes: np.ndarray
    item_taste: np.ndarray
    popularity: np.ndarray

    def interactions(self):
        """The histories as ``Interactions`` (user id = row, item id = column),
        ready for ``strong_generalization_split``."""
        rows = np.repeat(np.arange(self.x.shape[0]), np.diff(self.x.indptr))
        return Interactions(rows, self.x.indices.astype(np.int64), None, "synthetic")


def _positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def make_synthetic(n_users=1000, n_items=300, n_tastes=5, mean_items=20, min_items=5,
                   popularity_exponent=1.0, taste_strength=20.0, taste_concentration=0.2,
                   seed=0):
    """Watch histories drawn from a taste model with known probabilities.

    Parameters
    ----------
    n_users, n_items, n_tastes : int
        U, I and T.
    mean_items : float
        Expected history length :math:`\\bar n`.
    min_items : int
        Shortest history :math:`n_{min}`.
    popularity_exponent : float
        Zipf exponent :math:`a` of item popularity.
    taste_strength : float
        Factor :math:`s \\ge 1` by which a taste favours its home items.
    taste_concentration : float
        Dirichlet parameter :math:`\\alpha > 0` of the users' taste mixtures.
    seed : int or np.random.Generator

    Returns
    -------
    Synthetic

    Examples
    --------
    >>> syn = make_synthetic(n_users=100, n_items=50, seed=0)
    >>> syn.x.shape, syn.probs.shape
    ((100, 50), (100, 50))
    """
    n_users = _positive_int(n_users, "n_users")
    n_items = _positive_int(n_items, "n_items")
    n_tastes = _positive_int(n_tastes, "n_tastes")
    min_items = _positive_int(min_items, "min_items")
    if min_items > n_items:
        raise DataError(f"min_items={min_items} exceeds n_items={n_items}")
    if not mean_items >= min_items:
        raise DataError(f"mean_items={mean_items} must be at least min_items={min_items}")
    if not taste_strength >= 1:
        raise DataError(f"taste_strength must be >= 1, got {taste_strength}")
    if not taste_concentration > 0:
        raise DataError(f"taste_concentration must be > 0, got {taste_concentration}")
    rng = np.random.default_rng(seed)

    popularity = zipf_popularity(n_items, popularity_exponent, rng)
    item_taste = rng.integers(n_tastes, size=n_items)
    boost = np.where(item_taste[None, :] == np.arange(n_tastes)[:, None], taste_strength, 1.0)
    tastes = popularity[None, :] * boost
    tastes /= tastes.sum(axis=1, keepdims=True)

    weights = rng.dirichlet(np.full(n_tastes, float(taste_concentration)), size=n_users)
    probs = weights @ tastes
    # Products of small weights can underflow a row's sum away from 1 by rounding.
    probs /= probs.sum(axis=1, keepdims=True)

    rate = rng.gamma(1.0, mean_items - min_items, size=n_users) if mean_items > min_items \
        else np.zeros(n_users)
    lengths = np.minimum(min_items + rng.poisson(rate), n_items)

    with np.errstate(divide="ignore"):
        keys = np.log(probs) + rng.gumbel(size=(n_users, n_items))
    order = np.argsort(-keys, axis=1)
    rows = np.repeat(np.arange(n_users), lengths)
    cols = np.concatenate([order[u, :lengths[u]] for u in range(n_users)])
    # _csr needs columns sorted within each row.
    sort = np.lexsort((cols, rows))
    x = _csr(rows[sort], cols[sort], n_users, n_items)
    return Synthetic(x, probs, weights, np.argmax(weights, axis=1), tastes,
                     item_taste.astype(np.int64), popularity)


def synthetic_like(n_users, n_items, nnz, popularity_exponent=1.0, min_items=5,
                   activity_sigma=1.0, seed=0):
    """A large binary matrix shaped like a ratings data set, built directly as CSR.

    Parameters
    ----------
    n_users, n_items : int
        Shape (U, I), e.g. 116,677 x 20,108 for the ML-20M training users.
    nnz : int
        Target number of non-zeros, e.g. 8.5 million.
    popularity_exponent : float
        Zipf exponent of item popularity.
    min_items : int
        Fewest items per user.
    activity_sigma : float
        Spread of the log-normal user activity; larger gives heavier users.
    seed : int or np.random.Generator

    Returns
    -------
    csr_matrix of float32, shape (U, I)
        Canonical (sorted indices, no duplicates). The number of non-zeros is
        ``nnz``, or fewer when a user's share exceeds ``n_items`` (it is capped
        there) or 30 rounds of draws could not supply it distinct items.

    Notes
    -----
    User :math:`u` gets :math:`n_u = n_{min} + m_u` items, where
    :math:`m \\sim \\mathrm{Multinomial}(\\mathrm{nnz} - U n_{min},\\, \\nu)` and
    :math:`\\nu \\propto \\exp(\\sigma z)`, :math:`z \\sim N(0, 1)`, so the total is
    exact. Items are drawn independently from the popularity distribution; a
    repeated (user, item) pair is dropped and drawn again, for at most 30
    rounds. Memory stays a small multiple of ``nnz`` integers: no (U, I) array is
    ever formed.
    """
    n_users = _positive_int(n_users, "n_users")
    n_items = _positive_int(n_items, "n_items")
    nnz = _positive_int(nnz, "nnz", minimum=0)
    min_items = _positive_int(min_items, "min_items", minimum=0)
    if n_users * min_items > nnz:
        raise DataError(f"nnz={nnz} is less than n_users * min_items = {n_users * min_items}")
    if nnz > n_users * n_items:
        raise DataError(f"nnz={nnz} exceeds the {n_users} x {n_items} = {n_users * n_items} cells")
    rng = np.random.default_rng(seed)
    popularity = zipf_popularity(n_items, popularity_exponent, rng)
    activity = np.exp(activity_sigma * rng.standard_normal(n_users))
    wanted = min_items + rng.multinomial(nnz - n_users * min_items, activity / activity.sum())
    wanted = np.minimum(wanted, n_items)

    cumulative = np.cumsum(popularity)
    cumulative[-1] = 1.0

    def draw(counts):
        """Sorted unique keys ``row * I + col`` of ``counts[row]`` draws per row."""
        rows = np.repeat(np.arange(n_users, dtype=np.int64), counts)
        keys = rows * n_items + np.searchsorted(cumulative, rng.random(len(rows)), side="right")
        keys.sort()
        return keys[np.concatenate(([True], keys[1:] != keys[:-1]))]

    keys = draw(wanted)
    have = np.bincount(keys // n_items, minlength=n_users)
    for attempt in range(30):
        missing = wanted - have
        if not np.any(missing):
            break
        # Rows short of items are mostly heavy users whose popular items are all
        # taken, so each attempt draws more spare candidates than the last.
        new = draw(np.minimum(missing * 2 ** (attempt + 1), 4 * n_items))
        at = np.searchsorted(keys, new)
        present = keys[np.minimum(at, len(keys) - 1)] == new
        new = new[~present]
        # Keep a random `missing[row]` of each row's new items: rank them within
        # their row in random order.
        new_rows = new // n_items
        order = np.lexsort((rng.random(len(new)), new_rows))
        rank = np.arange(len(new)) - np.searchsorted(new_rows, new_rows[order])
        new = np.sort(new[order][rank < missing[new_rows[order]]])
        keys = np.insert(keys, np.searchsorted(keys, new), new)
        have += np.bincount(new // n_items, minlength=n_users)
    rows, cols = np.divmod(keys, n_items)
    return _csr(rows, cols, n_users, n_items)
