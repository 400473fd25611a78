r"""Gradient checking: compare a hand-written gradient with finite differences.

For a scalar function :math:`f` of an array :math:`\theta`, the centered
difference

.. math::
    \hat g_j = \frac{f(\theta + h e_j) - f(\theta - h e_j)}{2h}

approximates :math:`\partial f / \partial \theta_j` with an error of order
:math:`h^2` (the :math:`h^1` terms of the two Taylor expansions cancel), against
:math:`h` for a one-sided difference. Rounding adds an error of order
:math:`\varepsilon |f| / h`, with :math:`\varepsilon` the machine epsilon, so
:math:`h` must be neither too large nor too small: in float64
(:math:`\varepsilon \approx 2\times10^{-16}`) a step near :math:`10^{-5}` keeps
both below :math:`10^{-10}`. In float32 (:math:`\varepsilon \approx 10^{-7}`)
no step is good enough, which is why checks run in float64.

Analytic gradient :math:`a` and numerical gradient :math:`n` are compared by
the symmetric relative error

.. math::
    \text{rel}(a, n) = \frac{|a - n|}{\max(10^{-8}, |a| + |n|)},

which is scale-free and stays defined when both are zero. Where many entries
are tiny (so their differences are mostly rounding), the per-tensor error
:math:`\lVert a - n \rVert / (\lVert a \rVert + \lVert n \rVert)` is reported too.

Three modes
-----------
``"all"``
    every entry of every tensor: exact, costs two evaluations per entry.
``"sample"``
    ``k`` random entries per tensor: for realistic sizes.
``"direction"``
    one random unit direction :math:`d` per tensor: compares the directional
    derivative :math:`(f(\theta + h d) - f(\theta - h d)) / 2h` with
    :math:`a \cdot d`. Two evaluations per tensor, and every entry of the
    gradient takes part.
"""

from dataclasses import dataclass, field

import numpy as np

#: Pass bar for a single layer, loss term or kernel (max elementwise error).
LAYER_TOL = 1e-6
#: Pass bar for a whole model (max elementwise error).
MODEL_TOL = 1e-5
#: Pass bar for the per-tensor error of a whole model.
NORM_TOL = 1e-7
#: Default finite-difference step (float64).
STEP = 1e-5


class ShapeMismatch(ValueError):
    """A gradient whose shape differs from its tensor's."""

    def __init__(self, name, got, expected):
        self.name, self.got, self.expected = name, tuple(got), tuple(expected)
        super().__init__(f"gradient {name!r} has shape {self.got}, its tensor has {self.expected}")


def rel_error(a, n):
    """Symmetric relative error ``|a - n| / max(1e-8, |a| + |n|)``, elementwise."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    return np.abs(a - n) / np.maximum(1e-8, np.abs(a) + np.abs(n))


def norm_rel_error(a, n):
    """Per-tensor error ``||a - n|| / (||a|| + ||n||)`` (0 when both are 0)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    n = np.asarray(n, dtype=np.float64).ravel()
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return float(np.linalg.norm(a - n) / denom) if denom > 0 else 0.0


def numerical_gradient(f, x, h=STEP, indices=None):
    """Centered-difference gradient of ``f()`` with respect to entries of ``x``.

    Parameters
    ----------
    f : callable
        Takes no argument and returns a float; it must read ``x`` (which this
        function perturbs in place, restoring every entry afterwards).
    x : ndarray
        The array to differentiate with respect to.
    h : float
        The step.
    indices : array of int, optional
        Flat indices of the entries to check; all entries when omitted.

    Returns
    -------
    ndarray of float64
        Shaped like ``x`` when ``indices`` is None, else shaped like ``indices``.
    """
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array to perturb")
    chosen = np.arange(flat.size) if indices is None else np.asarray(indices)
    grad = np.empty(chosen.shape, dtype=np.float64)
    for out_pos, j in enumerate(chosen):
        old = flat[j]
        flat[j] = old + h
        f_plus = f()
        flat[j] = old - h
        f_minus = f()
        flat[j] = old
        grad[out_pos] = (f_plus - f_minus) / (2.0 * h)
    return grad.reshape(x.shape) if indices is None else grad


def directional_derivative(f, x, direction, h=STEP):
    """Centered difference of ``f()`` along ``direction`` (``x`` restored after)."""
    old = x.copy()
    x += h * direction
    f_plus = f()
    np.copyto(x, old)
    x -= h * direction
    f_minus = f()
    np.copyto(x, old)
    return (f_plus - f_minus) / (2.0 * h)


@dataclass
class CheckRow:
    """The comparison for one tensor."""

    name: str
    shape: tuple
    checked: int
    max_error: float
    worst_index: tuple
    norm_error: float
    analytic: np.ndarray = field(repr=False)
    numerical: np.ndarray = field(repr=False)
    indices: np.ndarray = field(repr=False)


@dataclass
class GradCheckReport:
    """Result of :func:`check_gradients`: one :class:`CheckRow` per tensor."""

    mode: str
    rows: list

    @property
    def max_error(self):
        """The largest elementwise relative error over all tensors."""
        return max((r.max_error for r in self.rows), default=0.0)

    @property
    def max_norm_error(self):
        """The largest per-tensor error over all tensors."""
        return max((r.norm_error for r in self.rows), default=0.0)

    def passed(self, tol=LAYER_TOL):
        """True when every tensor's max elementwise error is below ``tol``."""
        return self.max_error < tol

    def __getitem__(self, name):
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def __str__(self):
        header = ("tensor", "shape", "checked", "max rel err", "at", "norm rel err")
        lines = [header]
        for r in self.rows:
            lines.append((r.name, "x".join(map(str, r.shape)) or "scalar", str(r.checked),
                          f"{r.max_error:.2e}", str(r.worst_index), f"{r.norm_error:.2e}"))
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        text = [f"gradient check ({self.mode})"]
        for i, row in enumerate(lines):
            text.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if i == 0:
                text.append("  ".join("-" * w for w in widths))
        return "\n".join(text)


def check_gradients(f, params, grads, mode="all", k=10, h=STEP, rng=None):
    """Compare analytic gradients with centered differences, tensor by tensor.

    Parameters
    ----------
    f : callable
        Takes no argument and returns the scalar loss, reading the arrays in
        ``params`` (perturbed in place and restored).
    params : dict of name -> ndarray
        Tensors to check (parameters, and inputs if their gradient is wanted).
    grads : dict of name -> ndarray
        Analytic gradients, same keys (a subset of ``params`` may be checked by
        giving only those keys) and shapes.
    mode : {"all", "sample", "direction"}
        See the module docstring.
    k : int
        Entries per tensor in ``"sample"`` mode.
    h : float
        Finite-difference step.
    rng : np.random.Generator, optional
        Chooses entries or directions (default: seed 0).

    Returns
    -------
    GradCheckReport
        ``print(report)`` shows one row per tensor.
    """
    if mode not in ("all", "sample", "direction"):
        raise ValueError(f"mode must be 'all', 'sample' or 'direction', got {mode!r}")
    rng = np.random.default_rng(0) if rng is None else rng
    rows = []
    for name, analytic_full in grads.items():
        x = params[name]
        if analytic_full.shape != x.shape:
            raise ShapeMismatch(name, analytic_full.shape, x.shape)
        analytic_full = np.asarray(analytic_full, dtype=np.float64)
        if mode == "direction":
            d = rng.standard_normal(x.shape)
            d /= np.linalg.norm(d) or 1.0
            analytic = np.array([np.sum(analytic_full * d)])
            numerical = np.array([directional_derivative(f, x, d.astype(x.dtype), h)])
            indices = np.array([-1])
        else:
            if mode == "all" or x.size <= k:
                indices = np.arange(x.size)
            else:
                indices = np.sort(rng.choice(x.size, size=k, replace=False))
            analytic = analytic_full.reshape(-1)[indices]
            numerical = numerical_gradient(f, x, h, indices)
        err = rel_error(analytic, numerical)
        worst = int(np.argmax(err)) if err.size else 0
        worst_index = (("direction",) if mode == "direction"
                       else tuple(int(i) for i in np.unravel_index(indices[worst], x.shape)))
        rows.append(CheckRow(name, tuple(x.shape), int(indices.size),
                             float(err.max()) if err.size else 0.0, worst_index,
                             norm_rel_error(analytic, numerical), analytic, numerical, indices))
    return GradCheckReport(mode, rows)


def _values(a):
    """The array of numbers a layer works on: ``a.data`` for a sparse matrix."""
    return a.data if hasattr(a, "tocsr") else a


def check_layers(layers, x, forward_kwargs=None, mode="all", k=10, h=STEP, rng=None):
    """Check a stack of layers end to end, inputs and parameters included.

    The stack is turned into a scalar by a fixed random projection,
    :math:`L = \\sum G \\odot \\text{out}`, whose gradient with respect to the
    output is :math:`G` itself; backward then runs through every layer. Placing
    a layer between two others this way also checks that it passes gradients on
    correctly, not just that it computes its own.

    Parameters
    ----------
    layers : list
        Objects with ``forward``/``backward``, ``params`` and ``grads``
        (a single layer may be given without the list).
    x : ndarray or scipy.sparse CSR matrix
        The input; for a sparse matrix its stored values are checked.
    forward_kwargs : list of dict, optional
        Extra keyword arguments of each layer's ``forward`` (a dropout
        ``mask``, say), so every evaluation is deterministic.
    mode, k, h, rng
        As :func:`check_gradients`.

    Returns
    -------
    GradCheckReport
        Tensors are named ``"x"`` and ``"<layer index>.<param>"``.
    """
    layers = layers if isinstance(layers, (list, tuple)) else [layers]
    kwargs = forward_kwargs or [{} for _ in layers]
    if isinstance(kwargs, dict):
        kwargs = [kwargs]
    rng = np.random.default_rng(0) if rng is None else rng

    def forward():
        out = x
        for layer, kw in zip(layers, kwargs):
            out = layer.forward(out, **kw)
        return out

    projection = rng.standard_normal(_values(forward()).shape)

    def loss():
        return float(np.sum(_values(forward()) * projection))

    loss()
    dout = projection.astype(_values(x).dtype)
    for layer in reversed(layers):
        dout = layer.backward(dout)
    params = {"x": _values(x)}
    grads = {"x": dout}
    for n, layer in enumerate(layers):
        for key, p in layer.params.items():
            params[f"{n}.{key}"] = p
            grads[f"{n}.{key}"] = layer.grads[key].copy()
    return check_gradients(loss, params, grads, mode=mode, k=k, h=h, rng=rng)


def check_model(model, x, beta=0.2, eps=None, mask=None, mode="all", k=10, h=STEP, rng=None):
    """Check every parameter gradient of a whole model's loss.

    Parameters
    ----------
    model : MultVAE or MultDAE
        Should be float64.
    x : ndarray or CSR matrix, shape (B, I)
    beta : float
    eps : ndarray, shape (B, K), optional
        The noise; drawn once (seeded) when omitted, then held fixed.
    mask : ndarray of bool, optional
        The dropout keep-mask; drawn once when omitted and dropout is on.
    mode, k, h, rng
        As :func:`check_gradients`.

    Returns
    -------
    GradCheckReport
    """
    rng = np.random.default_rng(0) if rng is None else rng
    B = x.shape[0]
    if eps is None:
        eps = rng.standard_normal((B, model.latent_dim))
    if mask is None and model.dropout.p > 0:
        mask = rng.random(x.shape) >= model.dropout.p

    def loss():
        return float(model.loss_and_grads(x, beta=beta, eps=eps, mask=mask)[0])

    _, grads = model.loss_and_grads(x, beta=beta, eps=eps, mask=mask)
    grads = {name: g.copy() for name, g in grads.items()}
    return check_gradients(loss, model.params, grads, mode=mode, k=k, h=h, rng=rng)
