r"""Layers: the building blocks of the encoder and the decoder.

Every layer is a small class with the same two methods.

``forward(x) -> out``
    computes the layer's output and keeps, in ``self.cache``, exactly what the
    backward pass will need.
``backward(dout) -> dx``
    receives :math:`\partial L / \partial \text{out}` and returns
    :math:`\partial L / \partial x`. A layer with parameters also writes
    :math:`\partial L / \partial \theta` into ``self.grads``, under the same keys
    as ``self.params``. Backward overwrites the gradients, it never accumulates.

Notation (shared with the models, the docstrings and the tutorials): ``B`` users
in a batch, ``I`` items, ``H`` hidden units, ``K`` latent dimensions; ``x`` is a
batch of watch histories, shape ``(B, I)``.

Sparse input
------------
A watch history is mostly zeros (a user has seen a few dozen of thousands of
films), so the first stages of the encoder (:class:`L2Normalize`,
:class:`Dropout` and the first :class:`Linear`) also accept a
``scipy.sparse`` CSR matrix and then touch only its stored entries. This is not
a second implementation: a CSR matrix stores its nonzero values in a flat array
``x.data``, and these layers apply the very same formulas to that array. The
gradient of a sparse input is returned for its stored entries only (an array
shaped like ``x.data``), because the zeros of a watch history are data, not
variables.
"""

import numpy as np
import scipy.sparse as sp

# exercise markers: a line "# exercise: NAME" opens a block a student may be
# asked to write and "# end exercise" closes it (see minivae.exercises).


def row_of_each_entry(x):
    """Row index of every stored entry of a CSR matrix, shape ``(nnz,)``."""
    return np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))


def _with_data(x, data):
    """A CSR matrix with the sparsity pattern of ``x`` and new values ``data``."""
    return sp.csr_matrix((data, x.indices, x.indptr), shape=x.shape)


class Linear:
    r"""Affine layer :math:`\text{out} = x W + b`.

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    rng : np.random.Generator
        Source of the initial values.
    dtype : numpy dtype, default float64

    Attributes
    ----------
    params : dict
        ``"W"``: ndarray, shape (n_in, n_out); ``"b"``: ndarray, shape (n_out,).
    grads : dict
        Same keys and shapes, filled by :meth:`backward`.

    Notes
    -----
    Initialisation follows the authors' reference: Xavier (Glorot) uniform
    weights, :math:`W_{jk} \sim U(-a, a)` with
    :math:`a = \sqrt{6 / (n_\text{in} + n_\text{out})}`, which keeps the variance
    of activations roughly constant from layer to layer, and small random biases
    :math:`b_k \sim N(0, 0.001^2)`.

    The backward pass applies, for an upstream gradient
    :math:`G = \partial L / \partial \text{out}` of shape (B, n_out),

    .. math::
        \frac{\partial L}{\partial W} = x^\top G, \qquad
        \frac{\partial L}{\partial b} = \sum_{\text{rows}} G, \qquad
        \frac{\partial L}{\partial x} = G W^\top .
    """

    def __init__(self, n_in, n_out, rng, dtype=np.float64):
        limit = np.sqrt(6.0 / (n_in + n_out))
        self.params = {
            "W": rng.uniform(-limit, limit, size=(n_in, n_out)).astype(dtype),
            "b": (0.001 * rng.standard_normal(n_out)).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.cache = None

    def forward(self, x, out=None):
        """Compute ``x @ W + b``.

        Parameters
        ----------
        x : ndarray, shape (B, n_in), or scipy.sparse CSR matrix
        out : ndarray, shape (B, n_out), optional
            A buffer to write the result into. The model passes the same buffer
            batch after batch, so the largest array of a training step (the
            logits, B x I) is allocated once rather than at every step.

        Returns
        -------
        out : ndarray, shape (B, n_out)
        """
        W, b = self.params["W"], self.params["b"]
        self.cache = x
        if sp.issparse(x):
            # Only the stored entries of x take part: cost O(nnz * n_out).
            result = np.asarray(x @ W)
            if out is None:
                out = result
            else:
                out[...] = result
        else:
            out = np.matmul(x, W, out=out)
        out += b
        return out

    def backward(self, dout, need_dx=True):
        """Gradients of the loss with respect to W, b and the input.

        Parameters
        ----------
        dout : ndarray, shape (B, n_out)
        need_dx : bool, default True
            The first layer of the encoder sets this to False: nothing upstream
            needs the gradient with respect to the data, and skipping it saves a
            product as large as the forward one.

        Returns
        -------
        dx : ndarray shaped like x, an array of shape (nnz,) for sparse x, or None
        """
        x = self.cache
        W = self.params["W"]
        # exercise: linear_backward
        if sp.issparse(x):
            # Row j of x^T G is zero unless someone in the batch watched item j:
            # compute the rows of the watched items only (x with its columns
            # renumbered 0, 1, ... over those items) and write them into the
            # zeroed buffer of the previous batch, rather than allocating a
            # fresh I x n_out array at every step.
            items, column = np.unique(x.indices, return_inverse=True)
            x_watched = sp.csr_matrix((x.data, column, x.indptr), shape=(x.shape[0], items.size))
            self.grads["W"].fill(0)
            self.grads["W"][items] = x_watched.T @ dout
        else:
            # Written into the arrays of the previous batch: the output layer's
            # gradient is as large as its weights, and reusing its memory saves
            # allocating (and page-faulting) that much at every step.
            np.matmul(x.T, dout, out=self.grads["W"])
        np.sum(dout, axis=0, out=self.grads["b"])
        if not need_dx:
            return None
        if sp.issparse(x):
            # (dout @ W.T) evaluated at the stored entries only: row r, column c
            # of the full product is dout[r] . W[c].
            rows = row_of_each_entry(x)
            return np.einsum("nk,nk->n", dout[rows], W[x.indices])
        dx = dout @ W.T
        # end exercise
        return dx


class Tanh:
    r"""Elementwise hyperbolic tangent.

    Notes
    -----
    With :math:`y = \tanh(x)`, :math:`dy/dx = 1 - y^2`, so backward needs only the
    output it already computed:
    :math:`\partial L / \partial x = G \odot (1 - y^2)`.
    """

    params = {}
    grads = {}

    def __init__(self):
        self.cache = None

    def forward(self, x):
        """Apply tanh. ``x``: ndarray, any shape. Returns ndarray, same shape."""
        y = np.tanh(x)
        self.cache = y
        return y

    def backward(self, dout):
        """``dout``: ndarray shaped like the output. Returns dx, same shape."""
        y = self.cache
        # exercise: tanh_backward
        dx = dout * (1.0 - y * y)
        # end exercise
        return dx


class Dropout:
    r"""Inverted dropout.

    In training mode each entry is kept with probability :math:`1 - p` and the kept
    entries are scaled by :math:`1 / (1 - p)`, so the expected output equals the
    input and evaluation mode needs no rescaling: it is the identity.

    Parameters
    ----------
    p : float in [0, 1)
        Probability of dropping an entry.

    Notes
    -----
    With the scaled mask :math:`m = \text{keep} / (1 - p)`, the layer is
    :math:`y = m \odot x`, hence :math:`\partial L / \partial x = m \odot G`.
    Backward uses the very mask that forward drew; it is kept in ``self.cache``.

    For a sparse x, the mask covers the stored entries only (an array shaped like
    ``x.data``): dropping a zero changes nothing. A dropped entry is removed from
    the output's stored entries, so the layer after dropout works on the kept
    half only; backward returns zeros at the dropped entries.
    """

    params = {}
    grads = {}

    def __init__(self, p=0.5):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self.cache = None

    def forward(self, x, train=True, rng=None, mask=None):
        """Apply dropout.

        Parameters
        ----------
        x : ndarray, shape (B, I), or scipy.sparse CSR matrix
        train : bool
            In evaluation mode (False) the layer is the identity.
        rng : np.random.Generator, optional
            Draws the mask when ``mask`` is not given.
        mask : ndarray of bool, optional
            True where an entry is kept: shape (B, I) for dense x, (nnz,) for
            sparse x. Giving it makes the layer deterministic (gradient checks).

        Returns
        -------
        out : same type and shape as x
        """
        values = x.data if sp.issparse(x) else x
        if not train or (self.p == 0.0 and mask is None):
            self.cache = None
            return x
        if mask is None:
            if rng is None:
                raise ValueError("Dropout in training mode needs rng= or mask=")
            mask = rng.random(values.shape) >= self.p
        elif mask.shape != values.shape:
            raise ValueError(f"dropout mask has shape {mask.shape}, expected {values.shape}")
        scaled_mask = mask.astype(values.dtype) / values.dtype.type(1.0 - self.p)
        if not sp.issparse(x):
            self.cache = (scaled_mask, None)
            return values * scaled_mask
        # Keep only the kept entries: the first Linear layer's product and
        # weight gradient cost O(stored entries), so this halves them at p = 0.5.
        # Row r of the output starts after the entries kept before row r of x.
        mask = mask.astype(bool)
        kept_before = np.concatenate(([0], np.cumsum(mask)))
        self.cache = (scaled_mask, mask)
        return sp.csr_matrix((values[mask] * scaled_mask[mask], x.indices[mask],
                              kept_before[x.indptr]), shape=x.shape)

    def backward(self, dout):
        """``dout``: ndarray shaped like the output (``(n_kept,)`` for sparse input).

        Returns dx shaped like the input (``(nnz,)`` for sparse input).
        """
        if self.cache is None:
            return dout
        scaled_mask, kept = self.cache
        # exercise: dropout_backward
        if kept is None:
            dx = dout * scaled_mask
        else:
            # The output stored the kept entries only; a dropped one gets zero.
            dx = np.zeros_like(scaled_mask)
            dx[kept] = dout * scaled_mask[kept]
        # end exercise
        return dx


class L2Normalize:
    r"""Scale each row to unit Euclidean length: :math:`y_u = x_u / n_u`.

    A heavy watcher and a light watcher then enter the encoder on the same scale;
    the reference model normalises its input this way.

    Parameters
    ----------
    eps : float, default 1e-12
        Lower bound on the norm, :math:`n_u = \max(\lVert x_u \rVert_2, \epsilon)`,
        so an empty history (a row of zeros) gives zeros, not 0 / 0 = NaN.

    Notes
    -----
    For a row with :math:`n_u > \epsilon`, differentiating :math:`y = x / \lVert x \rVert`
    gives the Jacobian :math:`(I - y y^\top) / n`, which is symmetric, so

    .. math::
        \frac{\partial L}{\partial x_u} =
        \frac{G_u - y_u \, (y_u \cdot G_u)}{n_u} :

    the upstream gradient with its component along :math:`y_u` removed (moving
    along :math:`x_u` does not change the direction), scaled by :math:`1/n_u`.
    For a row with :math:`n_u = \epsilon` the norm is a constant and the gradient
    is :math:`G_u / \epsilon`.
    """

    params = {}
    grads = {}

    def __init__(self, eps=1e-12):
        self.eps = eps
        self.cache = None

    def forward(self, x):
        """Normalise rows.

        Parameters
        ----------
        x : ndarray, shape (B, I), or scipy.sparse CSR matrix

        Returns
        -------
        y : same type and shape as x
        """
        if sp.issparse(x):
            rows = row_of_each_entry(x)
            sumsq = np.bincount(rows, weights=x.data * x.data, minlength=x.shape[0])
            norm = np.maximum(np.sqrt(sumsq), self.eps).astype(x.dtype)
            y_values = x.data / norm[rows]
            self.cache = (y_values, norm, rows)
            return _with_data(x, y_values)
        norm = np.maximum(np.sqrt(np.einsum("bi,bi->b", x, x)), self.eps).astype(x.dtype)
        y = x / norm[:, None]
        self.cache = (y, norm, None)
        return y

    def backward(self, dout):
        """``dout``: ndarray shaped like the output (``(nnz,)`` for sparse input)."""
        y, norm, rows = self.cache
        # exercise: l2_normalize_backward
        # Rows at the floor eps have a constant norm: no projection there.
        clipped = norm <= self.eps
        if rows is None:
            along = np.einsum("bi,bi->b", y, dout)
            along[clipped] = 0.0
            dx = (dout - y * along[:, None]) / norm[:, None]
        else:
            along = np.bincount(rows, weights=y * dout, minlength=norm.shape[0])
            along[clipped] = 0.0
            dx = (dout - y * along[rows].astype(y.dtype)) / norm[rows]
        # end exercise
        return dx
