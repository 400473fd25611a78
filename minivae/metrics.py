r"""Ranking metrics: Recall@R and NDCG@R, as in the Mult-VAE paper.

Every user u of an evaluation batch has a set of fold-in items (the part of the
history the model sees) and a set :math:`\mathcal{I}_u` of held-out items (the
part it must predict). The model scores all I items; fold-in items are never
ranked, the rest are sorted by decreasing score, and :math:`\omega(p)` denotes
the item at position :math:`p = 1, 2, \dots`.

Recall@R counts the held-out items among the first R, divided by the most that
could possibly be there:

.. math::

    \mathrm{Recall@}R(u) = \frac{\sum_{p=1}^{R} [\omega(p) \in \mathcal{I}_u]}
                                {\min(R, |\mathcal{I}_u|)}.

The denominator is :math:`\min(R, |\mathcal{I}_u|)` rather than
:math:`|\mathcal{I}_u|`, so a perfect ranking scores 1 even when the user has
more than R held-out items.

NDCG@R rewards a hit more the higher it is ranked. With binary gains and a
:math:`\log_2` discount,

.. math::

    \mathrm{DCG@}R(u) = \sum_{p=1}^{R} \frac{[\omega(p) \in \mathcal{I}_u]}{\log_2(p + 1)},
    \qquad
    \mathrm{IDCG@}R(u) = \sum_{p=1}^{\min(R, |\mathcal{I}_u|)} \frac{1}{\log_2(p + 1)},

and :math:`\mathrm{NDCG@}R(u) = \mathrm{DCG@}R(u) / \mathrm{IDCG@}R(u)`, the DCG
of the ranking divided by the DCG of a ranking that puts held-out items first.
For example, with held-out items {0, 2} and the ranking (2, 1, 0, ...), the
hits sit at positions 1 and 3, so DCG = 1 + 1/log2(4) = 1.5, IDCG = 1 +
1/log2(3), and NDCG is about 0.920.

Both definitions, the :math:`\min(R, |\mathcal{I}_u|)` normalisation included,
follow the authors' reference notebook (dawenl/vae_cf), which reports the mean
over test users and the standard error :math:`\mathrm{std}/\sqrt{n}` with the
population standard deviation; :func:`summarize` does the same.

How the ranking is computed
---------------------------
All cutoffs of a batch share one ranking. With :math:`R_{max}` the largest
requested cutoff, one ``np.argpartition`` per row finds the :math:`R_{max}`
best items in O(I) time, and only those :math:`R_{max}` columns are sorted.
Conventions:

* Excluded (fold-in) items get the score :math:`-\infty`. Any item whose score
  is :math:`-\infty` is never ranked: if a user has fewer than R rankable
  items, the remaining positions of the ranking are empty (index -1) and count
  as misses.
* Ties are broken by item index, the smaller index first, so the ranking is a
  deterministic function of the scores (``np.argpartition`` alone would order
  tied items arbitrarily).
* An entry of ``heldout`` counts as relevant when it is > 0 (binary gains).
* A user without held-out items has no defined Recall or NDCG; the per-user
  value is NaN and :func:`summarize` leaves such users out.
* NaN scores are an error.
"""

import numpy as np
import scipy.sparse as sp

# Rows of scores handled at once. About 2 million entries keep the argpartition
# indices (int64) of a chunk near 16 MB and in cache, which measured faster than
# partitioning thousands of rows in one call.
_CHUNK_ENTRIES = 2_000_000


def _check_scores(scores):
    """Return `scores` as a 2-D floating array (a copy only if it was not float)."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D array (B, I), got shape {scores.shape}")
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    return scores


def _check_cutoff(R, n_items, name):
    if isinstance(R, (bool, np.bool_)) or not isinstance(R, (int, np.integer)):
        raise TypeError(f"{name} cutoffs must be integers, got {R!r}")
    if not 1 <= R <= n_items:
        raise ValueError(f"{name} cutoff {R} is outside 1..I = 1..{n_items}")
    return int(R)


def _as_matrix(a, shape, name, like="scores"):
    """Return `a` as a CSR matrix or a dense 2-D array, checking its shape."""
    a = a.tocsr() if sp.issparse(a) else np.asarray(a)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape} like {like}")
    return a


def _rows_and_cols(csr):
    """Row and column indices of the entries > 0 of a CSR matrix."""
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    positive = csr.data > 0
    return rows[positive], csr.indices[positive]


def _exclude(scores, exclude):
    """Set the entries of `scores` marked > 0 in `exclude` to -inf, in place."""
    if sp.issparse(exclude):
        rows, cols = _rows_and_cols(exclude)
        scores[rows, cols] = -np.inf
    else:
        scores[exclude > 0] = -np.inf


def _top_k_chunk(scores, k, first_row=0):
    """Sorted top-k item indices of each row of a chunk of scores.

    Parameters
    ----------
    scores : ndarray, shape (b, I)
        Floating scores; excluded items already set to -inf.
    k : int
        Length of the ranking, 1 <= k <= I.
    first_row : int, default 0
        Row of the chunk's first user in the whole matrix, for error messages.

    Returns
    -------
    top : ndarray of int64, shape (b, k)
        ``top[u, p]`` is the item at position p + 1 of user u's ranking, or -1
        where fewer than k items have a score above -inf.
    """
    b, n_items = scores.shape
    # Partitioning around position I - k leaves the k largest scores in the last
    # k columns without any minus sign (negating would cost a full copy). NumPy
    # orders NaN after every number, so a row holding NaN holds one in its block.
    block = np.argpartition(scores, n_items - k, axis=1)[:, n_items - k:]
    block_scores = np.take_along_axis(scores, block, axis=1)
    nan_rows = np.flatnonzero(np.isnan(block_scores).any(axis=1))
    if nan_rows.size:
        raise ValueError(f"scores contain NaN (user {first_row + nan_rows[0]})")

    # The partition picks arbitrarily among items tied with the k-th best score.
    # Where such a tie crosses the cut, keep all items strictly above the
    # threshold, then the tied items with the smallest indices. Rows whose
    # threshold is -inf need no care: their unrankable items become -1 below.
    threshold = block_scores.min(axis=1)
    n_at_least = np.count_nonzero(scores >= threshold[:, None], axis=1)
    tied = np.flatnonzero((n_at_least > k) & (threshold > -np.inf))
    if tied.size:
        sub = scores[tied]
        cut = threshold[tied, None]
        above = sub > cut
        at = sub == cut
        n_missing = k - np.count_nonzero(above, axis=1)
        keep = above | (at & (np.cumsum(at, axis=1) <= n_missing[:, None]))
        block[tied] = np.nonzero(keep)[1].reshape(tied.size, k)
        block_scores[tied] = np.take_along_axis(sub, block[tied], axis=1)

    # Sort the block by decreasing score, then by increasing item index.
    order = np.lexsort((block, -block_scores), axis=1)
    top = np.take_along_axis(block, order, axis=1).astype(np.int64, copy=False)
    top[np.take_along_axis(block_scores, order, axis=1) == -np.inf] = -1
    return top


def top_k(scores, k, exclude=None, inplace=False):
    """The k best items of every user, best first.

    Parameters
    ----------
    scores : ndarray, shape (B, I)
        Scores of every item for every user, higher is better.
    k : int
        Length of the ranking, 1 <= k <= I.
    exclude : scipy.sparse CSR or ndarray, shape (B, I), optional
        Items never to rank (entries > 0), usually the fold-in histories.
    inplace : bool, default False
        If True, the excluded entries of `scores` are overwritten with -inf,
        which saves a copy of each chunk of rows. If False, `scores` is left
        unchanged.

    Returns
    -------
    top : ndarray of int64, shape (B, k)
        Item indices by decreasing score, ties by increasing index. A user with
        fewer than k items scored above -inf gets -1 in the remaining places.
    """
    scores = _check_scores(scores)
    k = _check_cutoff(k, scores.shape[1], "top_k")
    if exclude is not None:
        exclude = _as_matrix(exclude, scores.shape, "exclude")
    n_users, n_items = scores.shape
    chunk_rows = max(1, _CHUNK_ENTRIES // n_items)
    top = np.empty((n_users, k), dtype=np.int64)
    for start in range(0, n_users, chunk_rows):
        stop = min(start + chunk_rows, n_users)
        chunk = scores[start:stop]
        if exclude is not None:
            if not inplace:
                chunk = chunk.copy()
            _exclude(chunk, exclude[start:stop])
        top[start:stop] = _top_k_chunk(chunk, k, start)
    return top


def _relevant(heldout):
    """Dense boolean (b, I) matrix of the relevant (> 0) held-out entries."""
    if sp.issparse(heldout):
        dense = np.zeros(heldout.shape, dtype=bool)
        rows, cols = _rows_and_cols(heldout)
        dense[rows, cols] = True
        return dense
    return heldout > 0


def ranking_metrics(scores, heldout, exclude=None, recall_at=(20, 50), ndcg_at=(100,),
                    inplace=False):
    r"""Per-user Recall@R and NDCG@R of one batch, from one shared ranking.

    Parameters
    ----------
    scores : ndarray, shape (B, I)
        Predicted scores (float32 or float64; integers are converted to
        float64). Higher is better. NaN is an error.
    heldout : scipy.sparse CSR or ndarray, shape (B, I)
        Held-out items; an entry > 0 marks an item as relevant.
    exclude : scipy.sparse CSR or ndarray, shape (B, I), optional
        Fold-in items (entries > 0), never ranked. They must not also be
        held out: an overlap means the split leaks, and raises ValueError.
    recall_at : sequence of int, default (20, 50)
        Cutoffs R for Recall@R.
    ndcg_at : sequence of int, default (100,)
        Cutoffs R for NDCG@R.
    inplace : bool, default False
        If True, the excluded entries of `scores` are overwritten with -inf
        instead of working on a copy; use it when the caller no longer needs
        the scores.

    Returns
    -------
    metrics : dict of str to ndarray of float64, shape (B,)
        Keys ``"recall@R"`` and ``"ndcg@R"`` for every requested cutoff. Users
        without held-out items get NaN.

    Notes
    -----
    The ranking follows the conventions of the module docstring: excluded and
    :math:`-\infty` items are never ranked, ties go to the smaller item index.
    One ``np.argpartition`` for :math:`R_{max} = \max` of all cutoffs serves
    every metric.
    """
    scores = _check_scores(scores)
    n_users, n_items = scores.shape
    recall_at = [_check_cutoff(R, n_items, "recall_at") for R in recall_at]
    ndcg_at = [_check_cutoff(R, n_items, "ndcg_at") for R in ndcg_at]
    if not recall_at and not ndcg_at:
        raise ValueError("ask for at least one cutoff in recall_at or ndcg_at")
    heldout = _as_matrix(heldout, scores.shape, "heldout")
    if exclude is not None:
        exclude = _as_matrix(exclude, scores.shape, "exclude")
    R_max = max(recall_at + ndcg_at)

    # discount[p - 1] = 1 / log2(p + 1); ideal_dcg[n] is the DCG of n hits on top.
    discount = 1.0 / np.log2(np.arange(2, R_max + 2))
    ideal_dcg = np.concatenate(([0.0], np.cumsum(discount)))

    metrics = {f"recall@{R}": np.empty(n_users) for R in recall_at}
    metrics.update({f"ndcg@{R}": np.empty(n_users) for R in ndcg_at})
    chunk_rows = max(1, _CHUNK_ENTRIES // n_items)
    for start in range(0, n_users, chunk_rows):
        stop = min(start + chunk_rows, n_users)
        relevant = _relevant(heldout[start:stop])
        chunk = scores[start:stop]
        if exclude is not None:
            chunk_exclude = exclude[start:stop]
            _check_disjoint(chunk_exclude, relevant, start)
            if not inplace:
                chunk = chunk.copy()
            _exclude(chunk, chunk_exclude)
        top = _top_k_chunk(chunk, R_max, start)

        # hits[u, p]: is the item at position p + 1 held out? Empty places miss.
        hits = np.take_along_axis(relevant, np.maximum(top, 0), axis=1) & (top >= 0)
        n_heldout = np.count_nonzero(relevant, axis=1)
        # A user without held-out items divides 0 by 0 and gets NaN, as documented.
        with np.errstate(invalid="ignore", divide="ignore"):
            for R in recall_at:
                n_hits = np.count_nonzero(hits[:, :R], axis=1)
                metrics[f"recall@{R}"][start:stop] = n_hits / np.minimum(R, n_heldout)
            for R in ndcg_at:
                dcg = hits[:, :R] @ discount[:R]
                metrics[f"ndcg@{R}"][start:stop] = dcg / ideal_dcg[np.minimum(R, n_heldout)]
    return metrics


def _check_disjoint(exclude, relevant, first_row):
    """Raise if an item is both excluded (fold-in) and held out."""
    if sp.issparse(exclude):
        rows, cols = _rows_and_cols(exclude)
    else:
        rows, cols = np.nonzero(exclude > 0)
    both = np.flatnonzero(relevant[rows, cols])
    if both.size:
        u, i = first_row + rows[both[0]], cols[both[0]]
        raise ValueError(
            f"user {u}, item {i} is both excluded (fold-in) and held out; "
            "fold-in and held-out items must be disjoint")


def recall_at_k(scores, heldout, k, exclude=None):
    """Per-user Recall@k; see :func:`ranking_metrics`.

    Returns
    -------
    recall : ndarray of float64, shape (B,)
        NaN for users without held-out items.
    """
    return ranking_metrics(scores, heldout, exclude, recall_at=(k,), ndcg_at=())[f"recall@{k}"]


def ndcg_at_k(scores, heldout, k, exclude=None):
    """Per-user NDCG@k; see :func:`ranking_metrics`.

    Returns
    -------
    ndcg : ndarray of float64, shape (B,)
        NaN for users without held-out items.
    """
    return ranking_metrics(scores, heldout, exclude, recall_at=(), ndcg_at=(k,))[f"ndcg@{k}"]


def summarize(per_user, ddof=0):
    r"""Mean, standard error and user count of every per-user metric.

    Parameters
    ----------
    per_user : dict of str to ndarray, shape (B,)
        As returned by :func:`ranking_metrics` or :func:`evaluate`.
    ddof : int, default 0
        Delta degrees of freedom of the standard deviation. The default 0 (the
        population standard deviation) is what the reference notebook reports;
        ``ddof=1`` gives the sample version, larger by
        :math:`\sqrt{n / (n - 1)}`.

    Returns
    -------
    summary : dict of str to (float, float, int)
        ``name -> (mean, stderr, n)`` over the n users whose value is not NaN
        (users with held-out items), with stderr
        :math:`\mathrm{std}/\sqrt{n}`. Both are NaN when n is too small.
    """
    summary = {}
    for name, values in per_user.items():
        values = np.asarray(values, dtype=np.float64)
        values = values[~np.isnan(values)]
        n = values.size
        mean = float(values.mean()) if n > 0 else float("nan")
        stderr = float(values.std(ddof=ddof) / np.sqrt(n)) if n > ddof else float("nan")
        summary[name] = (mean, stderr, n)
    return summary


def evaluate(score_fn, inputs, heldout, batch_size=1000, recall_at=(20, 50), ndcg_at=(100,),
             exclude_inputs=True):
    """Score users batch by batch and collect their per-user metrics.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x) -> scores`` maps a batch of fold-in histories x (a slice
        of `inputs`, same type) of shape (b, I) to scores of shape (b, I).
        The returned array is consumed: fold-in items are masked in it in
        place, so it must be a fresh array, not one the caller keeps (a
        read-only array is copied first).
    inputs : scipy.sparse CSR or ndarray, shape (U, I)
        Fold-in histories of all U evaluation users.
    heldout : scipy.sparse CSR or ndarray, shape (U, I)
        Their held-out items (entries > 0).
    batch_size : int, default 1000
        Users scored at once. The scores of a batch take batch_size * I
        floats, 80 MB in float32 for 1000 users and 20,000 items.
    recall_at, ndcg_at : sequence of int
        Cutoffs, as in :func:`ranking_metrics`.
    exclude_inputs : bool, default True
        Never rank the fold-in items, as the paper does.

    Returns
    -------
    metrics : dict of str to ndarray of float64, shape (U,)
        Per-user values in the order of `inputs`; pass to :func:`summarize`.
    """
    inputs = inputs.tocsr() if sp.issparse(inputs) else np.asarray(inputs)
    heldout = _as_matrix(heldout, inputs.shape, "heldout", like="inputs")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_users = inputs.shape[0]
    batches = []
    for start in range(0, n_users, batch_size):
        x = inputs[start:start + batch_size]
        scores = np.asarray(score_fn(x))
        if not scores.flags.writeable:
            scores = scores.copy()
        if scores.shape != x.shape:
            raise ValueError(
                f"score_fn returned shape {scores.shape} for a batch of shape {x.shape}")
        # The scores are this function's own: fold-in items are masked in
        # place rather than in a copy of a (batch, I) array.
        batches.append(ranking_metrics(
            scores, heldout[start:start + batch_size],
            exclude=x if exclude_inputs else None,
            recall_at=recall_at, ndcg_at=ndcg_at, inplace=True))
    if not batches:
        raise ValueError("inputs has no users")
    return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}
