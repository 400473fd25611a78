"""Whole-model gradients, the loss's definition, dtypes and training steps."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import log_softmax

from minivae import Adam, MultDAE, MultVAE, model_from_config
from minivae.gradcheck import MODEL_TOL, NORM_TOL, check_model

I, H, K, B = 30, 8, 4, 5


def histories(rng, n_users=B, n_items=I):
    x = (rng.random((n_users, n_items)) < 0.25).astype(np.float64)
    return x


def vae(dropout, **kw):
    return MultVAE(I, hidden_dims=(H,), latent_dim=K, dropout=dropout, dtype=np.float64,
                   seed=1, **kw)


def dae(dropout, **kw):
    return MultDAE(I, latent_dim=K, dropout=dropout, dtype=np.float64, seed=1,
                   weight_decay=0.01, **kw)


def assert_passes(report):
    assert report.max_error < MODEL_TOL, str(report)
    assert report.max_norm_error < NORM_TOL, str(report)


@pytest.mark.parametrize("build", [vae, dae], ids=["vae", "dae"])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_whole_model_gradients(build, dropout, sparse):
    rng = np.random.default_rng(0)
    x = histories(rng)
    x[3] = 0.0
    x[3, 7] = 1.0  # a user with one watched item
    x[4] = 0.0  # a user with none
    x = sp.csr_matrix(x) if sparse else x
    report = check_model(build(dropout), x, beta=0.3, rng=np.random.default_rng(1))
    assert_passes(report)
    assert {r.name for r in report.rows} == set(build(dropout).params)


@pytest.mark.parametrize("build", [vae, dae], ids=["vae", "dae"])
def test_batch_of_one_user(build):
    rng = np.random.default_rng(2)
    assert_passes(check_model(build(0.5), histories(rng, 1), rng=rng))


@pytest.mark.parametrize("likelihood", ["gaussian", "logistic"])
def test_other_likelihoods_through_the_model(likelihood):
    rng = np.random.default_rng(3)
    assert_passes(check_model(vae(0.5, likelihood=likelihood), histories(rng), rng=rng))


def test_vae_with_two_hidden_layers_and_weight_decay():
    rng = np.random.default_rng(4)
    model = MultVAE(I, hidden_dims=(10, 6), latent_dim=3, dtype=np.float64, seed=2,
                    weight_decay=0.05)
    assert_passes(check_model(model, histories(rng), rng=rng))


def test_loss_is_the_negative_elbo_written_out():
    """With dropout 0 and a given eps the loss is exactly the issue's formula."""
    rng = np.random.default_rng(5)
    x = histories(rng)
    model = vae(0.0)
    eps = rng.standard_normal((B, K))
    loss, _ = model.loss_and_grads(x, beta=0.2, eps=eps)
    mu, logvar = model.encode(x)
    z = mu + np.exp(0.5 * logvar) * eps
    nll = -np.mean(np.sum(x * log_softmax(model.decode(z), axis=1), axis=1))
    kl = np.mean(np.sum(0.5 * (mu ** 2 + np.exp(logvar) - logvar - 1), axis=1))
    assert float(loss) == pytest.approx(nll + 0.2 * kl, rel=1e-12)
    assert loss.nll == pytest.approx(nll, rel=1e-12) and loss.kl == pytest.approx(kl, rel=1e-12)
    assert loss.beta == 0.2 and loss.weight_decay == 0.0


def test_architecture_matches_the_paper():
    model = MultVAE(1000)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {
        "encoder.0.W": (1000, 600), "encoder.0.b": (600,),
        "encoder.1.W": (600, 400), "encoder.1.b": (400,),
        "decoder.0.W": (200, 600), "decoder.0.b": (600,),
        "decoder.1.W": (600, 1000), "decoder.1.b": (1000,),
    }
    dae_shapes = {k: v.shape for k, v in MultDAE(1000).params.items()}
    assert dae_shapes == {"encoder.0.W": (1000, 200), "encoder.0.b": (200,),
                          "decoder.0.W": (200, 1000), "decoder.0.b": (1000,)}
    assert model.dtype == np.float32 and model.dropout.p == 0.5


def test_mu_and_logvar_come_from_different_columns():
    model = vae(0.0)
    x = histories(np.random.default_rng(6))
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (B, K)
    assert not np.allclose(mu, logvar)
    W = model.params["encoder.1.W"]
    h = np.tanh(model.normalize.forward(x) @ model.params["encoder.0.W"]
                + model.params["encoder.0.b"])
    np.testing.assert_allclose(mu, h @ W[:, :K] + model.params["encoder.1.b"][:K])
    np.testing.assert_allclose(logvar, h @ W[:, K:] + model.params["encoder.1.b"][K:])


def test_evaluation_is_deterministic_and_decodes_the_mean():
    model = vae(0.5)
    x = histories(np.random.default_rng(7))
    mu, _ = model.encode(x)
    np.testing.assert_array_equal(model.predict(x), model.decode(mu))
    np.testing.assert_array_equal(model.predict(x), model.predict(sp.csr_matrix(x)))


def test_backward_uses_the_noise_and_mask_forward_drew():
    """Drawing inside loss_and_grads gives the same gradients as passing the
    same draws explicitly: backward differentiates the sample it used."""
    x = histories(np.random.default_rng(8))
    model = vae(0.5)
    loss_a, grads_a = model.loss_and_grads(x, rng=np.random.default_rng(9))
    grads_a = {k: g.copy() for k, g in grads_a.items()}
    rng = np.random.default_rng(9)
    xs = sp.csr_matrix(x)
    mask = rng.random(xs.nnz) >= 0.5
    eps = rng.standard_normal((B, K))
    loss_b, grads_b = model.loss_and_grads(x, eps=eps, mask=mask)
    assert float(loss_a) == float(loss_b)
    for k in grads_a:
        np.testing.assert_array_equal(grads_a[k], grads_b[k])


def test_float32_matches_float64_to_float32_precision():
    rng = np.random.default_rng(10)
    x = histories(rng)
    eps = rng.standard_normal((B, K))
    mask = rng.random((B, I)) >= 0.5
    m64 = vae(0.5)
    m32 = MultVAE(I, hidden_dims=(H,), latent_dim=K, dtype=np.float32, seed=1)
    m32.load_params(m64.params)
    l64, g64 = m64.loss_and_grads(x, eps=eps, mask=mask)
    l32, g32 = m32.loss_and_grads(x.astype(np.float32), eps=eps.astype(np.float32), mask=mask)
    assert float(l32) == pytest.approx(float(l64), rel=1e-5)
    for k in g64:
        assert g32[k].dtype == np.float32, k
        scale = np.abs(g64[k]).max()
        np.testing.assert_allclose(g32[k], g64[k], rtol=0, atol=1e-5 * scale, err_msg=k)


@pytest.mark.parametrize("cls", [MultVAE, MultDAE])
def test_a_few_adam_steps_lower_the_loss(cls):
    rng = np.random.default_rng(11)
    x = sp.csr_matrix((rng.random((64, 50)) < 0.15).astype(np.float32))
    model = cls(50, latent_dim=8, seed=0, **({"hidden_dims": (20,)} if cls is MultVAE else {}))
    opt = Adam(model.params, lr=1e-2)

    def eval_loss():
        return float(model.loss_and_grads(x, beta=0.0, mask=np.ones(x.nnz, bool),
                                          eps=np.zeros((64, 8), np.float32))[0])

    before = eval_loss()
    for _ in range(30):
        _, grads = model.loss_and_grads(x, beta=0.0, rng=rng)
        opt.step(grads)
    assert eval_loss() < 0.95 * before


def test_bad_batches_are_refused_with_a_clear_message():
    model = vae(0.5)
    with pytest.raises(ValueError, match=r"shape \(B, 30\)"):
        model.encode(np.zeros((2, 29)))
    bad = np.zeros((2, I))
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="finite and non-negative"):
        model.loss_and_grads(bad, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown likelihood"):
        MultVAE(I, likelihood="poisson")


def test_config_round_trip_builds_the_same_model():
    model = vae(0.3, likelihood="logistic")
    clone = model_from_config(model.config())
    assert clone.config() == model.config()
    for k in model.params:
        np.testing.assert_array_equal(clone.params[k], model.params[k])
