"""The whole model against PyTorch autograd, when PyTorch happens to be installed."""

import numpy as np
import pytest

from minivae import MultDAE, MultVAE

torch = pytest.importorskip("torch")


def torch_loss(model, x, beta, eps, mask):
    """The same forward pass written in PyTorch, from the model's own parameters."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in model.params.items()}
    x_t = torch.tensor(x)
    h = x_t / torch.clamp(x_t.norm(dim=1, keepdim=True), min=1e-12)
    h = h * torch.tensor(mask, dtype=torch.float64) / (1 - model.dropout.p)
    h = torch.tanh(h @ p["encoder.0.W"] + p["encoder.0.b"])
    if isinstance(model, MultVAE):
        out = h @ p["encoder.1.W"] + p["encoder.1.b"]
        K = model.latent_dim
        mu, logvar = out[:, :K], out[:, K:]
        z = mu + torch.exp(0.5 * logvar) * torch.tensor(eps)
        kl = torch.mean(torch.sum(0.5 * (mu ** 2 + logvar.exp() - logvar - 1), dim=1))
        h = torch.tanh(z @ p["decoder.0.W"] + p["decoder.0.b"])
        logits = h @ p["decoder.1.W"] + p["decoder.1.b"]
    else:
        kl = torch.tensor(0.0, dtype=torch.float64)
        logits = h @ p["decoder.0.W"] + p["decoder.0.b"]
    nll = -torch.mean(torch.sum(torch.log_softmax(logits, dim=1) * x_t, dim=1))
    decay = sum(torch.sum(p[k] ** 2) for k in p if k.endswith(".W")) * model.weight_decay
    loss = nll + beta * kl + decay
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in p.items()}


@pytest.mark.parametrize("cls", [MultVAE, MultDAE])
def test_model_matches_torch_autograd(cls):
    rng = np.random.default_rng(0)
    x = (rng.random((6, 40)) < 0.3).astype(np.float64)
    x[5] = 0.0
    model = cls(40, latent_dim=5, dtype=np.float64, seed=3, weight_decay=0.01,
                **({"hidden_dims": (12,)} if cls is MultVAE else {}))
    eps = rng.standard_normal((6, 5))
    mask = rng.random(x.shape) >= 0.5
    loss, grads = model.loss_and_grads(x, beta=0.25, eps=eps, mask=mask)
    expected_loss, expected_grads = torch_loss(model, x, 0.25, eps, mask)
    assert float(loss) == pytest.approx(expected_loss, rel=1e-12)
    for k, g in expected_grads.items():
        np.testing.assert_allclose(grads[k], g, rtol=1e-9, atol=1e-13, err_msg=k)
