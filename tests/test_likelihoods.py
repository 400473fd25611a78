"""Multinomial, Gaussian and logistic likelihoods: values and gradients."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import log_softmax as scipy_log_softmax

from minivae.gradcheck import LAYER_TOL, check_gradients
from minivae.likelihoods import LIKELIHOODS, log_softmax, multinomial_nll


def histories(rng, B=6, I=11):
    x = (rng.random((B, I)) < 0.3).astype(np.float64)
    x[0] = 0.0  # an empty history
    x[1] = 0.0
    x[1, 4] = 1.0  # a single watched item
    return x


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
@pytest.mark.parametrize("sparse", [False, True])
def test_gradient(name, sparse):
    rng = np.random.default_rng(0)
    x = histories(rng)
    x = sp.csr_matrix(x) if sparse else x
    logits = rng.standard_normal((6, 11)) * 2
    nll = LIKELIHOODS[name]
    _, dlogits = nll(logits, x)
    report = check_gradients(lambda: nll(logits, x)[0], {"logits": logits}, {"logits": dlogits})
    assert report.passed(LAYER_TOL), str(report)


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_values_match_their_definitions(name):
    rng = np.random.default_rng(1)
    x = histories(rng)
    f = rng.standard_normal((6, 11))
    expected = {
        "multinomial": -np.sum(x * scipy_log_softmax(f, axis=1)) / 6,
        "gaussian": 0.5 * np.sum((x - f) ** 2) / 6,
        "logistic": -np.sum(x * np.log(1 / (1 + np.exp(-f)))
                            + (1 - x) * np.log(1 - 1 / (1 + np.exp(-f)))) / 6,
    }[name]
    value, _ = LIKELIHOODS[name](f, x)
    assert value == pytest.approx(expected, rel=1e-12)
    value_sparse, _ = LIKELIHOODS[name](f, sp.csr_matrix(x))
    assert value_sparse == pytest.approx(expected, rel=1e-12)


def test_log_softmax_matches_scipy_and_survives_huge_logits():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((4, 9)) * 3
    np.testing.assert_allclose(log_softmax(f), scipy_log_softmax(f, axis=1), rtol=1e-12)
    huge = f * 1e3
    out = log_softmax(huge)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, scipy_log_softmax(huge, axis=1), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multinomial_is_finite_for_huge_logits(dtype):
    rng = np.random.default_rng(3)
    f = (rng.standard_normal((4, 9)) * 1e3).astype(dtype)
    x = histories(rng, 4, 9)
    value, grad = multinomial_nll(f, x)
    expected = -np.sum(x * scipy_log_softmax(f.astype(np.float64), axis=1)) / 4
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx(expected, rel=1e-6)


def test_fused_gradient_equals_the_step_by_step_one():
    """N_u softmax - x equals the chain rule through log-softmax."""
    rng = np.random.default_rng(4)
    x = histories(rng)
    f = rng.standard_normal((6, 11))
    _, fused = multinomial_nll(f, x)
    p = np.exp(scipy_log_softmax(f, axis=1))
    dlogp = -x / 6  # d(nll)/d(log_softmax)
    # Jacobian of log-softmax: d log p_i / d f_k = [i == k] - p_k
    step_by_step = dlogp - dlogp.sum(axis=1, keepdims=True) * p
    np.testing.assert_allclose(fused, step_by_step, rtol=1e-12, atol=1e-15)


def test_overwrite_reuses_the_logits_memory_and_gives_the_same_result():
    rng = np.random.default_rng(5)
    x = sp.csr_matrix(histories(rng, 40, 300))
    f = rng.standard_normal((40, 300))
    value, grad = multinomial_nll(f, x)
    f_copy = f.copy()
    value2, grad2 = multinomial_nll(f_copy, x, overwrite=True)
    assert grad2 is f_copy and value2 == value
    np.testing.assert_array_equal(grad, grad2)


def test_multinomial_works_in_row_chunks(monkeypatch):
    """The cache-sized chunking changes nothing in the result."""
    import minivae.likelihoods as lk
    rng = np.random.default_rng(6)
    x = sp.csr_matrix(histories(rng, 50, 40))
    f = rng.standard_normal((50, 40))
    whole = lk.multinomial_nll(f, x)
    monkeypatch.setattr(lk, "_CHUNK_BYTES", 3 * 40 * 8)  # three rows at a time
    chunked = lk.multinomial_nll(f, x)
    assert chunked[0] == pytest.approx(whole[0], rel=1e-13)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-13)


def test_float32_stays_float32():
    rng = np.random.default_rng(7)
    x = sp.csr_matrix(histories(rng), dtype=np.float32)
    f = rng.standard_normal((6, 11)).astype(np.float32)
    for nll in LIKELIHOODS.values():
        _, grad = nll(f, x)
        assert grad.dtype == np.float32
