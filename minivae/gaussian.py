r"""The Gaussian code: the reparameterization trick and the analytic KL term.

The encoder describes each user by a diagonal Gaussian
:math:`q(z \mid x) = N(\mu, \operatorname{diag}(\sigma^2))`, returned as the mean
``mu`` and the log-variance ``logvar`` :math:`= \log \sigma^2` (a log-variance can
be any real number, a variance could not). Its standard deviation is therefore
``std = exp(0.5 * logvar)``: the factor 0.5 turns a log-variance into a log
standard deviation, and forgetting it is a classic bug.

Reparameterization
------------------
Drawing :math:`z \sim q` directly is not a differentiable operation of
:math:`\mu` and :math:`\sigma`. Drawing the noise first and moving it is:

.. math::
    \epsilon \sim N(0, I), \qquad z = \mu + \sigma \odot \epsilon,
    \qquad \sigma = e^{\frac{1}{2}\,\text{logvar}} .

With :math:`G = \partial L / \partial z` the chain rule gives

.. math::
    \frac{\partial L}{\partial \mu} = G, \qquad
    \frac{\partial L}{\partial\, \text{logvar}} = G \odot \epsilon \odot \tfrac{1}{2}\sigma
    = \tfrac{1}{2}\, G \odot (z - \mu).

KL divergence to the prior
--------------------------
For one user, summing over the K latent dimensions,

.. math::
    \mathrm{KL}\big(N(\mu, \sigma^2) \,\|\, N(0, I)\big)
    = \tfrac{1}{2} \sum_k \big(\mu_k^2 + e^{\text{logvar}_k} - \text{logvar}_k - 1\big),

which is zero exactly when :math:`\mu = 0` and :math:`\text{logvar} = 0`. The
library averages it over the B users of a batch, so its gradients carry a
factor :math:`1/B`:

.. math::
    \frac{\partial\, \overline{\mathrm{KL}}}{\partial \mu} = \frac{\mu}{B}, \qquad
    \frac{\partial\, \overline{\mathrm{KL}}}{\partial\, \text{logvar}}
    = \frac{e^{\text{logvar}} - 1}{2B}.
"""

import numpy as np


class Reparameterize:
    r"""Sample :math:`z = \mu + e^{\frac{1}{2}\text{logvar}} \odot \epsilon` and
    send gradients back to ``mu`` and ``logvar``.

    The noise drawn in :meth:`forward` is kept in ``self.cache`` and reused by
    :meth:`backward`: the backward pass must differentiate the very sample that
    was used, not a fresh one.
    """

    params = {}
    grads = {}

    def __init__(self):
        self.cache = None

    def forward(self, mu, logvar, eps=None, rng=None):
        """Draw a code for every user.

        Parameters
        ----------
        mu, logvar : ndarray, shape (B, K)
        eps : ndarray, shape (B, K), optional
            The standard normal noise. Give it for a deterministic pass.
        rng : np.random.Generator, optional
            Draws ``eps`` when it is not given.

        Returns
        -------
        z : ndarray, shape (B, K)
        """
        if eps is None:
            if rng is None:
                raise ValueError("Reparameterize needs eps= or rng=")
            eps = rng.standard_normal(mu.shape, dtype=mu.dtype)
        elif eps.shape != mu.shape:
            raise ValueError(f"eps has shape {eps.shape}, expected {mu.shape}")
        std = np.exp(0.5 * logvar)
        self.cache = (std, eps)
        return mu + std * eps

    def backward(self, dz):
        """Return ``(dmu, dlogvar)``, each of shape (B, K), for ``dz`` of shape (B, K)."""
        std, eps = self.cache
        # exercise: reparameterize_backward
        dmu = dz
        dlogvar = 0.5 * dz * eps * std
        # end exercise
        return dmu, dlogvar


def kl_divergence(mu, logvar):
    r"""KL from :math:`N(\mu, \operatorname{diag}(e^{\text{logvar}}))` to :math:`N(0, I)`.

    Summed over the latent dimensions, averaged over the users.

    Parameters
    ----------
    mu, logvar : ndarray, shape (B, K)

    Returns
    -------
    kl : float
    (dmu, dlogvar) : tuple of ndarray, each of shape (B, K)
        Gradients of ``kl`` (see the module docstring for the derivation).
    """
    B = mu.shape[0]
    var = np.exp(logvar)
    # exercise: kl_divergence
    kl = 0.5 * float(np.sum(mu * mu + var - logvar - 1.0)) / B
    dmu = mu / B
    dlogvar = 0.5 * (var - 1.0) / B
    # end exercise
    return kl, (dmu, dlogvar)
