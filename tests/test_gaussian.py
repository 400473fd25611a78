"""The reparameterization trick and the analytic KL term."""

import numpy as np
import pytest

from minivae.gaussian import Reparameterize, kl_divergence
from minivae.gradcheck import LAYER_TOL, check_gradients


def test_reparameterization_gradients():
    rng = np.random.default_rng(0)
    mu, logvar = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    eps = rng.standard_normal((5, 3))
    projection = rng.standard_normal((5, 3))
    sampler = Reparameterize()

    def loss():
        return float(np.sum(projection * sampler.forward(mu, logvar, eps=eps)))

    loss()
    dmu, dlogvar = sampler.backward(projection)
    report = check_gradients(loss, {"mu": mu, "logvar": logvar},
                             {"mu": dmu, "logvar": dlogvar})
    assert report.passed(LAYER_TOL), str(report)


def test_std_is_exp_half_logvar():
    """The classic bug: using exp(logvar), the variance, as the standard deviation."""
    sampler = Reparameterize()
    logvar = np.full((1, 2), np.log(4.0))  # variance 4, standard deviation 2
    z = sampler.forward(np.zeros((1, 2)), logvar, eps=np.ones((1, 2)))
    np.testing.assert_allclose(z, 2.0)
    draws = Reparameterize().forward(np.zeros((200_000, 1)), np.full((200_000, 1), np.log(4.0)),
                                     rng=np.random.default_rng(1))
    assert draws.var() == pytest.approx(4.0, rel=0.02)


def test_backward_uses_the_noise_forward_drew():
    rng = np.random.default_rng(2)
    mu, logvar = np.zeros((4, 3)), rng.standard_normal((4, 3))
    sampler = Reparameterize()
    z = sampler.forward(mu, logvar, rng=rng)
    _, dlogvar = sampler.backward(np.ones_like(z))
    # dL/dlogvar = 0.5 * dz * (z - mu) holds only for the noise that made z
    np.testing.assert_allclose(dlogvar, 0.5 * (z - mu), rtol=1e-12)


def test_reparameterize_needs_noise_or_generator():
    with pytest.raises(ValueError, match="eps= or rng="):
        Reparameterize().forward(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="eps has shape"):
        Reparameterize().forward(np.zeros((1, 2)), np.zeros((1, 2)), eps=np.zeros((2, 2)))


def test_kl_gradients():
    rng = np.random.default_rng(3)
    mu, logvar = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    _, (dmu, dlogvar) = kl_divergence(mu, logvar)
    report = check_gradients(lambda: kl_divergence(mu, logvar)[0],
                             {"mu": mu, "logvar": logvar}, {"mu": dmu, "logvar": dlogvar})
    assert report.passed(LAYER_TOL), str(report)


def test_kl_is_zero_at_the_prior():
    kl, (dmu, dlogvar) = kl_divergence(np.zeros((3, 5)), np.zeros((3, 5)))
    assert kl == 0.0 and not dmu.any() and not dlogvar.any()


def test_kl_agrees_with_monte_carlo_within_its_standard_error():
    rng = np.random.default_rng(4)
    mu, logvar = rng.normal(0, 0.8, (1, 3)), rng.normal(0, 0.6, (1, 3))
    analytic, _ = kl_divergence(mu, logvar)
    std = np.exp(0.5 * logvar)
    z = mu + std * rng.standard_normal((400_000, 3))
    # log q(z) - log p(z), summed over dimensions; the 2*pi terms cancel
    log_ratio = np.sum(-0.5 * logvar - 0.5 * ((z - mu) / std) ** 2 + 0.5 * z ** 2, axis=1)
    estimate = log_ratio.mean()
    stderr = log_ratio.std(ddof=1) / np.sqrt(log_ratio.size)
    assert abs(estimate - analytic) < 3 * stderr
    assert analytic > 0


def test_kl_is_averaged_over_users_and_summed_over_dimensions():
    mu = np.array([[1.0, 0.0], [0.0, 0.0]])
    kl, _ = kl_divergence(mu, np.zeros((2, 2)))
    assert kl == pytest.approx(0.5 * 1.0 / 2)
