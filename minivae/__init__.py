"""minivae: variational autoencoders for recommendation, in pure NumPy.

Mult-VAE and Mult-DAE (Liang et al., WWW 2018) built from layers whose every
backward pass is written by hand and checked against finite differences.

>>> import numpy as np
>>> from minivae import MultVAE, Adam
>>> model = MultVAE(n_items=50, hidden_dims=(16,), latent_dim=4, seed=0)
>>> x = (np.random.default_rng(0).random((8, 50)) < 0.1).astype(np.float32)
>>> loss, grads = model.loss_and_grads(x, beta=0.2, rng=np.random.default_rng(1))
>>> Adam(model.params, lr=1e-3).step(grads)
"""

from .gaussian import Reparameterize, kl_divergence
from .gradcheck import check_gradients, numerical_gradient, rel_error
from .layers import Dropout, L2Normalize, Linear, Tanh
from .likelihoods import LIKELIHOODS, gaussian_nll, log_softmax, logistic_nll, multinomial_nll
from .models import Loss, MultDAE, MultVAE, model_from_config
from .optim import SGD, Adam, l2_penalty

__version__ = "0.1.0"

__all__ = [
    "Adam", "Dropout", "L2Normalize", "LIKELIHOODS", "Linear", "Loss", "MultDAE", "MultVAE",
    "Reparameterize", "SGD", "Tanh", "check_gradients", "gaussian_nll", "kl_divergence",
    "l2_penalty", "log_softmax", "logistic_nll", "model_from_config", "multinomial_nll",
    "numerical_gradient", "rel_error",
]
