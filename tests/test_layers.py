"""Every layer's backward against centered finite differences (float64)."""

import numpy as np
import pytest
import scipy.sparse as sp

from minivae.gradcheck import LAYER_TOL, check_layers
from minivae.layers import Dropout, L2Normalize, Linear, Tanh


def sparse_histories(rng, B=5, I=9, density=0.4):
    x = sp.random(B, I, density=density, random_state=rng, format="csr")
    x.data[:] = rng.integers(1, 3, size=x.nnz)
    return x


def make(name, rng, width):
    if name == "linear":
        return Linear(width, width, rng), {}
    if name == "tanh":
        return Tanh(), {}
    if name == "dropout":
        return Dropout(0.4), {"mask": rng.random((5, width)) >= 0.4}
    return L2Normalize(), {}


LAYERS = ["linear", "tanh", "dropout", "l2normalize"]


@pytest.mark.parametrize("name", LAYERS)
def test_layer_alone(name):
    rng = np.random.default_rng(1)
    layer, kw = make(name, rng, 7)
    report = check_layers([layer], rng.standard_normal((5, 7)), [kw])
    assert report.passed(LAYER_TOL), str(report)


@pytest.mark.parametrize("name", LAYERS)
def test_layer_between_two_others(name):
    rng = np.random.default_rng(2)
    layer, kw = make(name, rng, 6)
    stack = [Linear(4, 6, rng), layer, Linear(6, 3, rng)]
    report = check_layers(stack, rng.standard_normal((5, 4)), [{}, kw, {}])
    assert report.passed(LAYER_TOL), str(report)
    assert {"x", "0.W", "0.b", "2.W", "2.b"} <= {r.name for r in report.rows}


def test_linear_biases_are_not_zero_and_weights_are_xavier_uniform():
    rng = np.random.default_rng(0)
    layer = Linear(300, 200, rng)
    limit = np.sqrt(6 / 500)
    W, b = layer.params["W"], layer.params["b"]
    assert np.abs(W).max() <= limit and np.abs(W).max() > 0.95 * limit
    assert np.std(W) == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert np.all(b != 0) and np.std(b) == pytest.approx(1e-3, rel=0.2)


def test_sparse_input_stage_matches_dense_and_checks():
    """The sparse path (the one training uses) is the one checked here."""
    rng = np.random.default_rng(3)
    x = sparse_histories(rng)
    x = sp.csr_matrix(x.toarray())  # canonical, with an empty row possible
    mask = rng.random(x.nnz) >= 0.5
    stack = lambda: [L2Normalize(), Dropout(0.5), Linear(9, 4, np.random.default_rng(4))]
    sparse_report = check_layers(stack(), x, [{}, {"mask": mask}, {}])
    assert sparse_report.passed(LAYER_TOL), str(sparse_report)

    dense_mask = np.zeros(x.shape, dtype=bool)
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    dense_mask[rows, x.indices] = mask
    s, d = stack(), stack()
    out_sparse, out_dense = x, x.toarray()
    for ls, ld, kw_s, kw_d in zip(s, d, [{}, {"mask": mask}, {}], [{}, {"mask": dense_mask}, {}]):
        out_sparse, out_dense = ls.forward(out_sparse, **kw_s), ld.forward(out_dense, **kw_d)
    np.testing.assert_allclose(out_sparse, out_dense, rtol=1e-12)
    g = rng.standard_normal(out_dense.shape)
    g_s = g
    for ls, ld in zip(reversed(s), reversed(d)):
        g_s, g = ls.backward(g_s), ld.backward(g)
    np.testing.assert_allclose(s[-1].grads["W"], d[-1].grads["W"], rtol=1e-12)
    np.testing.assert_allclose(g_s, g[rows, x.indices], rtol=1e-10)


def test_l2_normalize_empty_history_gives_zeros_not_nan():
    x = np.zeros((2, 5))
    x[1, [0, 3]] = 1.0
    layer = L2Normalize()
    y = layer.forward(x)
    assert np.all(np.isfinite(y)) and np.all(y[0] == 0)
    np.testing.assert_allclose(np.linalg.norm(y[1]), 1.0)
    dx = layer.backward(np.ones_like(x))
    assert np.all(np.isfinite(dx))
    ys = L2Normalize().forward(sp.csr_matrix(x))
    np.testing.assert_allclose(ys.toarray(), y)


def test_l2_normalize_gradient_with_an_empty_row():
    """An empty history sits on the norm's floor, where x / max(|x|, eps) has a
    kink no finite step can resolve; every other gradient must still be exact."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4))
    x[1] = 0.0
    report = check_layers([L2Normalize(), Linear(4, 2, rng)], x)
    assert report["1.W"].max_error < LAYER_TOL and report["1.b"].max_error < LAYER_TOL
    row_of_entry = report["x"].indices // 4
    errors = np.abs(report["x"].analytic - report["x"].numerical)
    scale = np.abs(report["x"].analytic) + np.abs(report["x"].numerical)
    assert np.all(errors[row_of_entry != 1] < LAYER_TOL * scale[row_of_entry != 1])


def test_dropout_is_inverted_and_identity_in_eval_mode():
    rng = np.random.default_rng(6)
    layer = Dropout(0.5)
    x = np.ones((400, 500))
    y = layer.forward(x, rng=rng)
    assert set(np.unique(y)) == {0.0, 2.0}
    assert y.mean() == pytest.approx(1.0, abs=0.01)
    assert layer.forward(x, train=False) is x


def test_dropout_backward_uses_the_mask_forward_drew():
    rng = np.random.default_rng(7)
    layer = Dropout(0.3)
    x = rng.standard_normal((6, 8))
    y = layer.forward(x, rng=rng)
    dx = layer.backward(np.ones_like(x))
    kept = y != 0
    np.testing.assert_array_equal(dx != 0, kept)
    np.testing.assert_allclose(dx[kept], 1 / 0.7)


def test_dropout_rejects_bad_arguments():
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)
    with pytest.raises(ValueError, match="needs rng"):
        Dropout(0.5).forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="mask has shape"):
        Dropout(0.5).forward(np.ones((2, 2)), mask=np.ones(3, dtype=bool))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_keep_their_dtype(dtype):
    rng = np.random.default_rng(8)
    x = sp.csr_matrix(sparse_histories(rng), dtype=dtype)
    h = L2Normalize().forward(x)
    h = Dropout(0.5).forward(h, rng=rng)
    lin = Linear(9, 4, rng, dtype=dtype)
    out = Tanh().forward(lin.forward(h))
    assert h.dtype == dtype and out.dtype == dtype
    lin.backward(np.ones_like(out), need_dx=False)
    assert lin.grads["W"].dtype == dtype and lin.grads["b"].dtype == dtype
