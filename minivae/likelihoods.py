r"""Likelihoods: how well do the decoder's logits explain a watch history?

The decoder turns a code into one real number per item, the logits
:math:`f_u \in \mathbb{R}^I`. A likelihood scores them against the user's
history :math:`x_u`. Each function here returns the negative log-likelihood,
summed over items and averaged over the B users of the batch, together with its
gradient with respect to the logits:

``nll, dlogits = multinomial_nll(logits, x)``

Multinomial (the paper's choice, the default)
---------------------------------------------
The user spreads a budget of :math:`N_u = \sum_i x_{ui}` clicks over the items
with probabilities :math:`\pi_u = \operatorname{softmax}(f_u)`, so items compete
for probability mass. Up to a constant that does not depend on the model,

.. math::
    -\log p(x_u \mid f_u) = -\sum_i x_{ui} \log \pi_{ui}, \qquad
    \log \pi_{ui} = f_{ui} - \log \sum_j e^{f_{uj}} .

Computing :math:`\log\sum_j e^{f_{uj}}` as written overflows as soon as a logit
exceeds about 710 (88 in float32). Since
:math:`\log \sum_j e^{f_j} = m + \log \sum_j e^{f_j - m}` for any :math:`m`,
choosing :math:`m = \max_j f_j` makes every exponent at most 0.

Gradient. Differentiating :math:`-\sum_i x_i (f_i - \log\sum_j e^{f_j})` with
respect to :math:`f_k` gives :math:`-x_k + (\sum_i x_i)\, e^{f_k} / \sum_j e^{f_j}`:

.. math::
    \frac{\partial (-\log p)}{\partial f_{uk}} = N_u \pi_{uk} - x_{uk},

the fused form: no Jacobian of the softmax is ever formed.

Gaussian and logistic (the paper's comparisons)
-----------------------------------------------
Gaussian with unit variance: :math:`-\log p = \tfrac12 \sum_i (x_{ui} - f_{ui})^2`
(constants dropped), gradient :math:`f_{ui} - x_{ui}`.
Logistic (independent Bernoulli per item, :math:`\sigma` the sigmoid):
:math:`-\log p = \sum_i [\log(1 + e^{f_{ui}}) - x_{ui} f_{ui}]`, gradient
:math:`\sigma(f_{ui}) - x_{ui}`. Both use unit weights for every item; the paper
also tunes a larger weight on the watched items.

Sparse histories
----------------
``x`` may be a dense array or a ``scipy.sparse`` CSR matrix. Either way the
functions read only its stored entries: :math:`x_{ui}` enters the loss and the
gradient only where it is nonzero, so a dense copy of the history is never
needed. A dense ``x`` is simply converted to CSR first, so dense and sparse
inputs run the same code.
"""

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from .layers import row_of_each_entry

# Rows of logits processed together by the multinomial kernel: about this many
# bytes at a time, so that the max, exp, sum and scale passes over a chunk find
# it still in the processor's cache instead of streaming B x I from memory four
# times.
_CHUNK_BYTES = 1 << 20


def log_softmax(logits):
    r"""Row-wise :math:`\log\operatorname{softmax}`, with the max shift.

    Parameters
    ----------
    logits : ndarray, shape (B, I)

    Returns
    -------
    ndarray, shape (B, I)
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def _as_csr(x, dtype):
    """``x`` as a canonical CSR matrix (sorted indices, no duplicates) of ``dtype``."""
    x = sp.csr_matrix(x, dtype=dtype)
    x.sum_duplicates()
    return x


def multinomial_nll(logits, x, overwrite=False):
    r"""Multinomial negative log-likelihood and its gradient.

    Parameters
    ----------
    logits : ndarray, shape (B, I)
    x : ndarray or scipy.sparse CSR matrix, shape (B, I)
        Watch histories (counts, usually 0/1).
    overwrite : bool, default False
        Turn ``logits`` itself into the gradient instead of working on a copy.
        Training sets it: the logits are not needed after this call, and reusing
        their memory saves the largest array of the step. The same code runs
        either way.

    Returns
    -------
    nll : float
        :math:`-\frac{1}{B}\sum_u \sum_i x_{ui} \log\operatorname{softmax}(f_u)_i`.
    dlogits : ndarray, shape (B, I)
        :math:`(N_u \pi_{ui} - x_{ui}) / B`.
    """
    B, n_items = logits.shape
    x = _as_csr(x, logits.dtype)
    dlogits = logits if overwrite else logits.copy()
    rows = row_of_each_entry(x)
    clicks = np.bincount(rows, weights=x.data, minlength=B)
    log_likelihood = 0.0
    chunk = max(1, _CHUNK_BYTES // (n_items * logits.itemsize))
    for start in range(0, B, chunk):
        stop = min(start + chunk, B)
        f = dlogits[start:stop]  # a view: the work happens in place
        lo, hi = x.indptr[start], x.indptr[stop]
        r, c, v = rows[lo:hi] - start, x.indices[lo:hi], x.data[lo:hi]
        # exercise: multinomial_nll
        f -= f.max(axis=1, keepdims=True)
        shifted_at_x = f[r, c]
        np.exp(f, out=f)
        total = f.sum(axis=1, dtype=np.float64)
        log_pi_at_x = shifted_at_x - np.log(total)[r]
        log_likelihood += float(np.dot(v.astype(np.float64), log_pi_at_x))
        # f holds exp(shifted logits); scale each row to N_u * softmax / B
        f *= (clicks[start:stop] / (total * B)).astype(f.dtype)[:, None]
        f[r, c] -= v / B
        # end exercise
    return -log_likelihood / B, dlogits


def gaussian_nll(logits, x, overwrite=False):
    r"""Unit-variance Gaussian negative log-likelihood and its gradient.

    Parameters and returns as :func:`multinomial_nll`; the loss is
    :math:`\frac{1}{2B}\sum_u\sum_i (x_{ui} - f_{ui})^2` and the gradient
    :math:`(f_{ui} - x_{ui}) / B`.
    """
    B = logits.shape[0]
    x = _as_csr(x, logits.dtype)
    rows = row_of_each_entry(x)
    residual = logits if overwrite else logits.copy()
    residual[rows, x.indices] -= x.data
    nll = 0.5 * float(np.einsum("bi,bi->", residual, residual, dtype=np.float64)) / B
    residual /= residual.dtype.type(B)
    return nll, residual


def logistic_nll(logits, x, overwrite=False):
    r"""Bernoulli (logistic) negative log-likelihood and its gradient.

    Parameters and returns as :func:`multinomial_nll`; the loss is
    :math:`\frac{1}{B}\sum_u\sum_i [\log(1 + e^{f_{ui}}) - x_{ui} f_{ui}]`, with
    :math:`\log(1 + e^f)` evaluated stably as ``logaddexp(0, f)``, and the gradient
    is :math:`(\sigma(f_{ui}) - x_{ui}) / B`.
    """
    B = logits.shape[0]
    x = _as_csr(x, logits.dtype)
    rows = row_of_each_entry(x)
    f_at_x = logits[rows, x.indices]
    nll = float(np.sum(np.logaddexp(0.0, logits), dtype=np.float64))
    nll -= float(np.dot(x.data.astype(np.float64), f_at_x))
    grad = logits if overwrite else logits.copy()
    expit(grad, out=grad)
    grad[rows, x.indices] -= x.data
    grad /= grad.dtype.type(B)
    return nll / B, grad


LIKELIHOODS = {
    "multinomial": multinomial_nll,
    "gaussian": gaussian_nll,
    "logistic": logistic_nll,
}
