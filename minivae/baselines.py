r"""Two baselines to compare Mult-VAE against: popularity and EASE.

Both follow the same protocol as the models: ``fit(train)`` on the watch
matrix of the training users, then ``scores(x)`` for a batch x of fold-in
histories, ranked by :mod:`minivae.metrics` with the fold-in items excluded.
An entry > 0 of a watch matrix counts as watched.

Popularity
----------
Every user gets the same scores: the number of training users who watched each
item. Any personalised model has to beat it.

EASE
----
EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019)
is a linear item-item model: the scores of a user with history x are
:math:`x W` with :math:`W \in \mathbb{R}^{I \times I}` (called B in the paper),
learned from the training matrix X (users by items) by ridge regression with
a zero diagonal, so that no item predicts itself:

.. math::

    \min_W \; \|X - X W\|_F^2 + \lambda \|W\|_F^2
    \quad \text{subject to} \quad \operatorname{diag}(W) = 0.

With :math:`G = X^\top X + \lambda I` and :math:`P = G^{-1}`, setting the
gradient of the Lagrangian to zero gives :math:`W = I - P \operatorname{diag}(\gamma)`
with :math:`\gamma_j = 1 / P_{jj}`, the value that makes the diagonal vanish:

.. math::

    W_{ij} = -\frac{P_{ij}}{P_{jj}} \quad (i \ne j), \qquad W_{jj} = 0.

Column j of W is the ridge regression of item j on all the other items.

Computing P
-----------
G is symmetric positive definite, so P comes from a Cholesky factorisation
(LAPACK ``potrf``, then ``potri`` for the inverse), about :math:`I^3`
floating-point operations per :math:`\lambda`. When there are far fewer
training users U than items, a cheaper route uses the thin singular value
decomposition :math:`X = U_X \operatorname{diag}(s) V^\top` (V has
:math:`r \le U` orthonormal columns). :math:`X^\top X` has eigenvalues
:math:`s^2` on the columns of V and 0 on their complement, so

.. math::

    P = \frac{1}{\lambda} I - V \operatorname{diag}\!\left(
        \frac{s^2}{\lambda (s^2 + \lambda)}\right) V^\top,

about :math:`2 I^2 r` operations per :math:`\lambda` once the SVD is known.
The SVD route is used when :math:`U \le I / 2`, as for ml-latest-small (about
500 training users, 8,000 items: one fit takes a few seconds on two cores).
A full eigendecomposition of :math:`X^\top X` is never used: on 4,000 items
it took about 7 s, followed by a 2 s product for each :math:`\lambda`,
against about 1.6 s for one Cholesky inverse.

Everything is computed in float64; W is stored in float32.
"""

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from minivae.metrics import evaluate, summarize

DEFAULT_LAMBDAS = (10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)

# Default cap on the memory of the I x I matrices of EASE: 8 GiB. fit holds
# 12 I^2 bytes (P in float64 and W in float32); select holds 24 I^2 bytes
# (also the Gram matrix and the best W so far). So fit accepts up to about
# 26,700 items and select up to about 18,900.
DEFAULT_MEMORY_LIMIT = 8 * 2**30


def _watched(matrix, name):
    """The 0/1 float64 watch matrix (entries > 0), sparse CSR or dense."""
    if sp.issparse(matrix):
        matrix = sp.csr_array(matrix > 0, dtype=np.float64)
    else:
        matrix = (np.asarray(matrix) > 0).astype(np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (users, items) matrix, got shape {matrix.shape}")
    return matrix


def _check_columns(x, n_items, model):
    if x.ndim != 2 or x.shape[1] != n_items:
        raise ValueError(
            f"x has shape {x.shape}, but {model} was fitted on {n_items} items")


class Popularity:
    """Score every item by the number of training users who watched it.

    Attributes
    ----------
    counts : ndarray of int64, shape (I,)
        Training users who watched each item. Ties between equally popular
        items are broken by item index when ranking (see :mod:`minivae.metrics`).
    """

    def __init__(self):
        self.counts = None

    def fit(self, train):
        """Count the watchers of every item.

        Parameters
        ----------
        train : scipy.sparse CSR or ndarray, shape (U, I)
            Training watch matrix.

        Returns
        -------
        self : Popularity
        """
        watched = _watched(train, "train")
        self.counts = np.asarray(watched.sum(axis=0)).ravel().astype(np.int64)
        return self

    def scores(self, x):
        """The same popularity scores for every user of the batch.

        Parameters
        ----------
        x : scipy.sparse CSR or ndarray, shape (B, I)
            Fold-in histories; only their number of rows is used.

        Returns
        -------
        scores : ndarray of float32, shape (B, I)
        """
        if self.counts is None:
            raise RuntimeError("Popularity is not fitted; call fit(train) first")
        _check_columns(x, self.counts.size, "Popularity")
        # A real array rather than a broadcast view, so callers may write into it.
        return np.tile(self.counts.astype(np.float32), (x.shape[0], 1))


def _check_memory(n_items, n_bytes_per_entry, limit, what):
    needed = n_bytes_per_entry * n_items**2
    if needed > limit:
        raise MemoryError(
            f"EASE.{what} on {n_items} items needs about {needed / 2**30:.1f} GiB for its "
            f"I x I matrices, over the memory_limit of {limit / 2**30:.1f} GiB; "
            "reduce the number of items or pass a larger memory_limit")


def _fill_lower_from_upper(P, block=1024):
    """Copy the upper triangle of a square matrix onto its lower triangle, in place.

    Working in blocks of rows avoids the I x I temporaries of ``np.triu``.
    """
    n = P.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        P[start:stop, :start] = P[:start, start:stop].T
        diagonal_block = P[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        diagonal_block[lower] = diagonal_block.T[lower]


def _inverse_grams(X, lambdas):
    r"""Yield :math:`P = (X^\top X + \lambda I)^{-1}` in float64 for every lambda.

    Each P is a fresh (I, I) array that the caller may overwrite. The route
    (thin SVD or Cholesky) is chosen as in the module docstring.
    """
    n_users, n_items = X.shape
    if n_users <= n_items // 2:
        dense = X.toarray() if sp.issparse(X) else X
        # The SVD of the tall X^T (I, U) gives V directly as its left factor and
        # measured several times faster than the SVD of the wide X (U, I).
        V, s, _ = scipy.linalg.svd(dense.T, full_matrices=False)
        for lam in lambdas:
            shrink = s**2 / (lam * (s**2 + lam))
            P = -(V * shrink) @ V.T
            P[np.diag_indices(n_items)] += 1.0 / lam
            yield P
            # Release this P before the next one is allocated.
            del P
    else:
        gram = X.T @ X
        gram = gram.toarray() if sp.issparse(gram) else np.asarray(gram)
        for lam in lambdas:
            # G is symmetric, so its transpose is the same matrix in the Fortran
            # order LAPACK works in, which lets potrf and potri overwrite it.
            G = gram.copy().T
            G[np.diag_indices(n_items)] += lam
            cholesky, info = scipy.linalg.lapack.dpotrf(G, lower=False, overwrite_a=True)
            if info != 0:
                raise np.linalg.LinAlgError(
                    f"X^T X + lambda I is not positive definite (lambda={lam}, potrf info {info})")
            P, info = scipy.linalg.lapack.dpotri(cholesky, lower=False, overwrite_c=True)
            if info != 0:
                raise np.linalg.LinAlgError(f"Cholesky inverse failed (lambda={lam}, info {info})")
            # potri writes only the upper triangle of the symmetric inverse.
            _fill_lower_from_upper(P)
            yield P
            del P


def _weights_from_inverse(P):
    r"""W = -P / diag(P) column by column, zero diagonal, as float32; overwrites P."""
    diagonal = np.diag(P).copy()
    P /= -diagonal
    np.fill_diagonal(P, 0.0)
    return P.astype(np.float32)


class EASE:
    r"""Embarrassingly Shallow Autoencoder: item-item ridge regression, zero diagonal.

    Parameters
    ----------
    lam : float, default 500.0
        L2 regularisation :math:`\lambda > 0`. Choose it on validation users
        with :meth:`select`.
    memory_limit : int, default 8 GiB
        Refuse to fit when the I x I matrices would need more bytes than this
        (12 I^2 bytes for fit, see the module constants).

    Attributes
    ----------
    weights : ndarray of float32, shape (I, I)
        The item-item matrix W (the paper's B), zero on the diagonal.
    """

    def __init__(self, lam=500.0, memory_limit=DEFAULT_MEMORY_LIMIT):
        if not lam > 0:
            raise ValueError(f"lam must be > 0, got {lam}")
        self.lam = float(lam)
        self.memory_limit = memory_limit
        self.weights = None

    def fit(self, train):
        """Solve the closed form on the training watch matrix.

        Parameters
        ----------
        train : scipy.sparse CSR or ndarray, shape (U, I)
            Training watch matrix.

        Returns
        -------
        self : EASE
        """
        X = _watched(train, "train")
        _check_memory(X.shape[1], 12, self.memory_limit, "fit")
        P = next(_inverse_grams(X, [self.lam]))
        self.weights = _weights_from_inverse(P)
        return self

    def scores(self, x):
        """Scores x W of a batch of fold-in histories.

        Parameters
        ----------
        x : scipy.sparse CSR or ndarray, shape (B, I)
            Fold-in histories (entries > 0 count as watched).

        Returns
        -------
        scores : ndarray of float32, shape (B, I)
        """
        if self.weights is None:
            raise RuntimeError("EASE is not fitted; call fit(train) first")
        _check_columns(x, self.weights.shape[0], "EASE")
        watched = (x > 0) if sp.issparse(x) else (np.asarray(x) > 0)
        return np.asarray(watched.astype(np.float32) @ self.weights)

    @classmethod
    def select(cls, train, val_input, val_heldout, lambdas=DEFAULT_LAMBDAS, metric="ndcg@100",
               batch_size=1000, memory_limit=DEFAULT_MEMORY_LIMIT):
        """Fit one model per lambda and keep the best on validation users.

        Parameters
        ----------
        train : scipy.sparse CSR or ndarray, shape (U, I)
            Training watch matrix.
        val_input : scipy.sparse CSR or ndarray, shape (V, I)
            Fold-in histories of the validation users.
        val_heldout : scipy.sparse CSR or ndarray, shape (V, I)
            Their held-out items.
        lambdas : sequence of float, default DEFAULT_LAMBDAS
            Candidate values of lambda.
        metric : str, default "ndcg@100"
            ``"ndcg@R"`` or ``"recall@R"``, averaged over validation users with
            held-out items (fold-in items excluded, as for every model).
        batch_size : int, default 1000
            Validation users scored at once.
        memory_limit : int, default 8 GiB
            As in :class:`EASE`; select needs 24 I^2 bytes.

        Returns
        -------
        best : EASE
            The fitted model with the best mean validation metric (the smallest
            lambda among equal scores).
        table : list of (float, float)
            ``(lambda, mean validation metric)`` for every candidate, by
            increasing lambda.
        """
        kind, _, cutoff = metric.partition("@")
        if kind not in ("ndcg", "recall") or not cutoff.isdigit():
            raise ValueError(f"metric must look like 'ndcg@100' or 'recall@20', got {metric!r}")
        cutoffs = {"recall_at": (), "ndcg_at": ()}
        cutoffs[f"{kind}_at"] = (int(cutoff),)
        lambdas = sorted(float(lam) for lam in lambdas)
        if not lambdas or lambdas[0] <= 0:
            raise ValueError(f"lambdas must be a non-empty sequence of values > 0, got {lambdas}")

        X = _watched(train, "train")
        _check_memory(X.shape[1], 24, memory_limit, "select")
        best, best_value, table = None, -np.inf, []
        for lam, P in zip(lambdas, _inverse_grams(X, lambdas)):
            model = cls(lam, memory_limit)
            model.weights = _weights_from_inverse(P)
            per_user = evaluate(model.scores, val_input, val_heldout, batch_size=batch_size,
                                **cutoffs)
            value = summarize(per_user)[metric][0]
            table.append((lam, value))
            if value > best_value:
                best, best_value = model, value
            # Only the best W so far outlives its iteration (see DEFAULT_MEMORY_LIMIT).
            del model, P
        if best is None:
            raise ValueError("no validation user has held-out items; cannot select lambda")
        return best, table
