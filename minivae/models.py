r"""Mult-VAE and Mult-DAE (Liang, Krishnan, Hoffman and Jebara, WWW 2018).

Both read a batch of watch histories ``x`` (B users by I items, dense or
``scipy.sparse`` CSR) and produce logits over all items.

Mult-VAE, with the default sizes :math:`I \to 600 \to 200 \to 600 \to I`::

    x ─ L2Normalize ─ Dropout ─ Linear(I, 600) ─ Tanh ─ Linear(600, 2K) ─┬─ mu      (B, K)
                                                                          └─ logvar  (B, K)
    z = mu + exp(0.5 logvar) * eps                                             (B, K)
    z ─ Linear(K, 600) ─ Tanh ─ Linear(600, I) ─ logits                        (B, I)

The loss of a batch is the negative ELBO with the KL term weighted by
:math:`\beta` (annealed during training),

.. math::
    L = \underbrace{-\frac1B\sum_u \sum_i x_{ui}\log\operatorname{softmax}(f_u)_i}_{\text{nll}}
      + \beta\, \underbrace{\frac1B\sum_u \mathrm{KL}(q(z_u \mid x_u) \,\|\, N(0, I))}_{\text{kl}}
      + \underbrace{\lambda \sum_W \lVert W \rVert^2}_{\text{weight decay}} .

Mult-DAE replaces the Gaussian code by a deterministic one: :math:`I \to 200 \to I`
with a tanh on the code, no sampling and no KL, and the weight decay as its
regulariser.

At evaluation time dropout is off and the VAE decodes the mean, :math:`z = \mu`.

Backward mirrors forward stage by stage, naming each intermediate gradient
(``dlogits``, ``dz``, ``dmu``, ``dlogvar``, ``dh``), so that any stage can be
checked on its own.
"""

import numpy as np
import scipy.sparse as sp

from .gaussian import Reparameterize, kl_divergence
from .layers import Dropout, L2Normalize, Linear, Tanh, row_of_each_entry
from .likelihoods import LIKELIHOODS
from .optim import l2_penalty


class Loss(float):
    """The loss of a batch: a float, with its parts as attributes.

    Attributes
    ----------
    nll : float
        Negative log-likelihood, averaged over users.
    kl : float
        KL divergence to the prior, averaged over users (0 for Mult-DAE).
    beta : float
        Weight of the KL term in this loss.
    weight_decay : float
        The L2 penalty.
    """

    def __new__(cls, nll, kl, beta, weight_decay):
        self = super().__new__(cls, nll + beta * kl + weight_decay)
        self.nll, self.kl, self.beta, self.weight_decay = nll, kl, beta, weight_decay
        return self

    def parts(self):
        """The parts as a dict (for logs)."""
        return {"loss": float(self), "nll": self.nll, "kl": self.kl, "beta": self.beta,
                "weight_decay": self.weight_decay}


class _Autoencoder:
    """What Mult-VAE and Mult-DAE share: input stages, parameters, the decoder."""

    kind = None

    def __init__(self, n_items, encoder_dims, decoder_dims, dropout, likelihood,
                 weight_decay, dtype, seed):
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; choose one of "
                             f"{', '.join(LIKELIHOODS)}")
        self.n_items = int(n_items)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.likelihood = likelihood
        self.weight_decay = float(weight_decay)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.normalize = L2Normalize()
        self.dropout = Dropout(dropout)
        self.encoder = self._stack(encoder_dims, rng, tanh_after_last=self.kind == "dae")
        self.decoder = self._stack(decoder_dims, rng, tanh_after_last=False)
        self.params = {}
        for part, stack in (("encoder", self.encoder), ("decoder", self.decoder)):
            linears = [layer for layer in stack if isinstance(layer, Linear)]
            for n, layer in enumerate(linears):
                for key, array in layer.params.items():
                    # The model's dict holds the layers' own arrays, not copies:
                    # an optimiser updating model.params updates the layers.
                    self.params[f"{part}.{n}.{key}"] = array
        self._logits_buffer = None

    def _stack(self, dims, rng, tanh_after_last):
        layers = []
        for n, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(Linear(n_in, n_out, rng, self.dtype))
            if tanh_after_last or n < len(dims) - 2:
                layers.append(Tanh())
        return layers

    @property
    def weight_names(self):
        """Names of the weight matrices (the parameters weight decay applies to)."""
        return [k for k in self.params if k.endswith(".W")]

    def n_parameters(self):
        """Total number of trainable numbers."""
        return sum(p.size for p in self.params.values())

    def _as_batch(self, x):
        """``x`` as a canonical CSR matrix of the model's dtype, checked."""
        if x.ndim != 2 or x.shape[1] != self.n_items:
            raise ValueError(f"a batch of watch histories must have shape (B, {self.n_items}), "
                             f"got {x.shape}")
        x = sp.csr_matrix(x, dtype=self.dtype)
        x.sum_duplicates()
        if not np.all(np.isfinite(x.data)) or np.any(x.data < 0):
            raise ValueError("watch histories must be finite and non-negative")
        return x

    def _input_stage(self, x, train, rng=None, mask=None):
        """L2 normalisation, then dropout, on the stored entries of ``x``."""
        h = self.normalize.forward(x)
        if mask is not None and mask.shape == x.shape:
            # A dense (B, I) mask: only its entries at the stored values matter.
            mask = np.asarray(mask)[row_of_each_entry(x), x.indices]
        return self.dropout.forward(h, train=train, rng=rng, mask=mask)

    @staticmethod
    def _forward(stack, h, out=None):
        for n, layer in enumerate(stack):
            last = n == len(stack) - 1
            if isinstance(layer, Linear) and last:
                h = layer.forward(h, out=out)
            else:
                h = layer.forward(h)
        return h

    @staticmethod
    def _backward(stack, dh, need_dx=True):
        for n, layer in reversed(list(enumerate(stack))):
            if isinstance(layer, Linear):
                dh = layer.backward(dh, need_dx=need_dx or n > 0)
            else:
                dh = layer.backward(dh)
        return dh

    def _collect_grads(self):
        grads = {}
        for part, stack in (("encoder", self.encoder), ("decoder", self.decoder)):
            linears = [layer for layer in stack if isinstance(layer, Linear)]
            for n, layer in enumerate(linears):
                for key, g in layer.grads.items():
                    grads[f"{part}.{n}.{key}"] = g
        return grads

    def _logits_out(self, B):
        """A reusable (B, I) buffer for the training logits."""
        buf = self._logits_buffer
        if buf is None or buf.shape[0] < B:
            buf = self._logits_buffer = np.empty((B, self.n_items), dtype=self.dtype)
        return buf[:B]

    def decode(self, z):
        """Logits for every item.

        Parameters
        ----------
        z : ndarray, shape (B, K)

        Returns
        -------
        logits : ndarray, shape (B, I), unnormalised
        """
        return self._forward(self.decoder, np.asarray(z, dtype=self.dtype))

    def predict(self, x):
        """Scores for ranking: the logits of the decoded code, in evaluation mode.

        Parameters
        ----------
        x : ndarray or CSR matrix, shape (B, I)
            Fold-in histories.

        Returns
        -------
        ndarray, shape (B, I)
        """
        code = self.encode(x)
        return self.decode(code[0] if isinstance(code, tuple) else code)

    def _finish(self, x, logits, dcode_fn, kl_value, beta):
        """The likelihood, the backward pass and the weight decay, shared by both models."""
        nll, dlogits = LIKELIHOODS[self.likelihood](logits, x, overwrite=True)
        dz = self._backward(self.decoder, dlogits)
        dh = dcode_fn(dz)
        self._backward(self.encoder, dh, need_dx=False)
        grads = self._collect_grads()
        decay = 0.0
        if self.weight_decay:
            decay, decay_grads = l2_penalty(self.params, self.weight_decay, self.weight_names)
            for name, g in decay_grads.items():
                # The weight feeds both the network and the penalty: add the two.
                grads[name] = grads[name] + g
        return Loss(nll, kl_value, beta, decay), grads

    def config(self):
        """The constructor's arguments, as plain JSON-able values."""
        raise NotImplementedError

    def load_params(self, params):
        """Copy ``params`` (name -> array) into the model's own arrays."""
        for name, target in self.params.items():
            if name not in params:
                raise ValueError(f"parameter {name!r} is missing")
            source = np.asarray(params[name])
            if source.shape != target.shape:
                raise ValueError(f"parameter {name!r} has shape {source.shape}, "
                                 f"expected {target.shape}")
            np.copyto(target, source, casting="same_kind")


class MultVAE(_Autoencoder):
    """Variational autoencoder with a multinomial likelihood.

    Parameters
    ----------
    n_items : int
        I, the number of items.
    hidden_dims : tuple of int, default (600,)
        Widths of the hidden layers between the input and the code; the decoder
        mirrors them.
    latent_dim : int, default 200
        K, the size of the code.
    dropout : float, default 0.5
        Probability of dropping an entry of the normalised input during training.
    likelihood : {"multinomial", "gaussian", "logistic"}
    weight_decay : float, default 0
        :math:`\\lambda` of the L2 penalty on the weights (the reference VAE uses 0).
    dtype : numpy float dtype, default float32
        float64 for gradient checks.
    seed : int
        Seeds the initial weights.
    """

    kind = "vae"

    def __init__(self, n_items, hidden_dims=(600,), latent_dim=200, dropout=0.5,
                 likelihood="multinomial", weight_decay=0.0, dtype=np.float32, seed=0):
        self.hidden_dims = tuple(int(h) for h in hidden_dims)
        self.latent_dim = int(latent_dim)
        dims = (n_items, *self.hidden_dims)
        super().__init__(n_items, (*dims, 2 * self.latent_dim),
                         (self.latent_dim, *self.hidden_dims[::-1], n_items),
                         dropout, likelihood, weight_decay, dtype, seed)
        self.sampler = Reparameterize()

    def config(self):
        return {"model": "vae", "n_items": self.n_items, "hidden_dims": list(self.hidden_dims),
                "latent_dim": self.latent_dim, "dropout": self.dropout.p,
                "likelihood": self.likelihood, "weight_decay": self.weight_decay,
                "dtype": self.dtype.name, "seed": self.seed}

    def _split(self, h):
        # The encoder's last layer has 2K outputs: the first K are the mean,
        # the last K the log-variance.
        K = self.latent_dim
        return h[:, :K], h[:, K:]

    def encode(self, x):
        """The Gaussian code of each history, in evaluation mode (no dropout).

        Parameters
        ----------
        x : ndarray or CSR matrix, shape (B, I)

        Returns
        -------
        mu, logvar : ndarray, each of shape (B, K)
        """
        x = self._as_batch(x)
        h = self._input_stage(x, train=False)
        mu, logvar = self._split(self._forward(self.encoder, h))
        # Copies, not views of one (B, 2K) array: callers may modify or
        # perturb them (a gradient check does) without touching the other.
        return np.ascontiguousarray(mu), np.ascontiguousarray(logvar)

    def loss_and_grads(self, x, beta=0.2, rng=None, eps=None, mask=None):
        """One training step's forward and backward pass.

        Parameters
        ----------
        x : ndarray or CSR matrix, shape (B, I)
        beta : float
            Weight of the KL term.
        rng : np.random.Generator, optional
            Draws the dropout mask, then the noise, when they are not given.
        eps : ndarray, shape (B, K), optional
            The reparameterization noise.
        mask : ndarray of bool, optional
            The dropout keep-mask: shape (B, I), or one entry per stored value of
            a CSR ``x``.

        Returns
        -------
        loss : Loss
            A float, with ``.nll``, ``.kl``, ``.beta`` and ``.weight_decay``.
        grads : dict
            Same keys and shapes as ``params``. The arrays are the layers'
            gradient buffers, overwritten by the next call: copy them to keep
            them.
        """
        x = self._as_batch(x)
        # A NumPy float64 beta or eps would silently turn the float32 code, and
        # from it every array after it, float64; a Python float does not.
        beta = float(beta)
        eps = None if eps is None else np.asarray(eps, dtype=self.dtype)
        h = self._input_stage(x, train=True, rng=rng, mask=mask)
        mu, logvar = self._split(self._forward(self.encoder, h))
        z = self.sampler.forward(mu, logvar, eps=eps, rng=rng)
        logits = self._forward(self.decoder, z, out=self._logits_out(x.shape[0]))
        kl, (dmu_kl, dlogvar_kl) = kl_divergence(mu, logvar)

        def dcode(dz):
            # exercise: vae_code_backward
            dmu, dlogvar = self.sampler.backward(dz)
            # mu and logvar feed both the sampler and the KL term: the two
            # gradients add.
            dmu = dmu + beta * dmu_kl
            dlogvar = dlogvar + beta * dlogvar_kl
            dh = np.concatenate([dmu, dlogvar], axis=1)
            # end exercise
            return dh

        return self._finish(x, logits, dcode, kl, beta)


class MultDAE(_Autoencoder):
    """Denoising autoencoder with a multinomial likelihood.

    Parameters
    ----------
    n_items : int
    hidden_dims : tuple of int, default ()
        Hidden widths between the input and the code (none in the paper).
    latent_dim : int, default 200
    dropout : float, default 0.5
    likelihood : {"multinomial", "gaussian", "logistic"}
    weight_decay : float, default 2e-5
        The reference's ``lam = 0.01 / batch_size`` at batch size 500.
    dtype : numpy float dtype, default float32
    seed : int
    """

    kind = "dae"

    def __init__(self, n_items, hidden_dims=(), latent_dim=200, dropout=0.5,
                 likelihood="multinomial", weight_decay=2e-5, dtype=np.float32, seed=0):
        self.hidden_dims = tuple(int(h) for h in hidden_dims)
        self.latent_dim = int(latent_dim)
        super().__init__(n_items, (n_items, *self.hidden_dims, self.latent_dim),
                         (self.latent_dim, *self.hidden_dims[::-1], n_items),
                         dropout, likelihood, weight_decay, dtype, seed)

    def config(self):
        return {"model": "dae", "n_items": self.n_items, "hidden_dims": list(self.hidden_dims),
                "latent_dim": self.latent_dim, "dropout": self.dropout.p,
                "likelihood": self.likelihood, "weight_decay": self.weight_decay,
                "dtype": self.dtype.name, "seed": self.seed}

    def encode(self, x):
        """The code of each history (after the tanh), in evaluation mode.

        Parameters
        ----------
        x : ndarray or CSR matrix, shape (B, I)

        Returns
        -------
        z : ndarray, shape (B, K)
        """
        x = self._as_batch(x)
        return self._forward(self.encoder, self._input_stage(x, train=False))

    def loss_and_grads(self, x, beta=0.0, rng=None, eps=None, mask=None):
        """One training step's forward and backward pass.

        Same arguments and returns as :meth:`MultVAE.loss_and_grads`; ``beta``
        and ``eps`` are accepted for a uniform interface and ignored (there is
        no KL term and no sampling).
        """
        x = self._as_batch(x)
        h = self._input_stage(x, train=True, rng=rng, mask=mask)
        z = self._forward(self.encoder, h)
        logits = self._forward(self.decoder, z, out=self._logits_out(x.shape[0]))
        return self._finish(x, logits, lambda dz: dz, 0.0, 0.0)


def model_from_config(config):
    """Build an untrained model from :meth:`config`'s dict."""
    config = dict(config)
    kind = config.pop("model", None)
    classes = {"vae": MultVAE, "dae": MultDAE}
    if kind not in classes:
        raise ValueError(f"unknown model kind {kind!r}; expected 'vae' or 'dae'")
    config["dtype"] = np.dtype(config["dtype"])
    return classes[kind](**config)
