r"""Training: minibatches, KL annealing, model selection, checkpoints.

One epoch visits every training user once, in minibatches of ``batch_size``
users, in an order reshuffled at each epoch by the run's generator. Each
minibatch takes one Adam step on the loss of :mod:`minivae.models`,

.. math::
    L = \text{nll} + \beta\, \text{kl} + \text{weight decay}.

KL annealing
------------
Starting with a large KL weight pulls every code onto the prior before the
decoder has learned anything. The reference implementation instead raises
:math:`\beta` linearly with the number of updates :math:`n` done so far and caps
it:

.. math::
    \beta_n = \min\!\left(\beta_{cap},\ \frac{n}{T}\right), \qquad n = 0, 1, 2, \dots

so the first update uses :math:`\beta_0 = 0`. The count :math:`n` runs over the
whole run, never reset at an epoch. The paper uses :math:`\beta_{cap} = 0.2` and
:math:`T = 200{,}000` updates; :math:`T = 0` means :math:`\beta = \beta_{cap}`
from the start.

On ML-20M (116,677 training users: 234 updates per epoch at batch 500, 46,800
in 200 epochs) that schedule reaches the cap of 0.2 after 40,000 updates, 85% of
the way through the run. On a small data set 200,000 updates are never reached
(ml-latest-small's 483 training users make one update per epoch at batch 500) and :math:`\beta`
would stay near 0. The horizon can therefore be set relative to the run
instead: with ``anneal_fraction = f`` and :math:`N` the run's total number of
updates (epochs times batches per epoch), :math:`\beta` reaches the cap after
the fraction :math:`f` of them,

.. math::
    \beta_{cap} = \frac{f N}{T} \quad\Longleftrightarrow\quad
    T = \frac{f N}{\beta_{cap}},

which keeps the shape of the paper's schedule (a linear ramp to the cap, then
flat) on any data set. Note that :math:`T` keeps the reference's meaning, the
update at which an uncapped :math:`\beta` would reach 1, so ``f = 0.8`` with a
cap of 0.2 gives :math:`T = 4N`, not :math:`0.8 N`.

Model selection
---------------
After every epoch the model ranks the held-out items of the validation users
(NDCG@100, fold-in items never ranked). The parameters of the best validation
epoch are kept, as the paper does, and only they are evaluated on the test
users: Recall@20, Recall@50 and NDCG@100 with standard errors, next to the
popularity and EASE baselines on the very same split.

Reproducibility
---------------
One ``np.random.Generator``, seeded from the configuration, draws the epoch
orders, the dropout masks and the Gaussian noise; the model's initial weights
come from the same seed. Its state is saved in every checkpoint, so a resumed run
draws exactly what an uninterrupted one would have.
"""

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .checkpoint import (CheckpointError, atomic_write, check_vocabulary, load_checkpoint,
                         save_checkpoint, write_json)
from .data.catalog import Catalog
from .likelihoods import LIKELIHOODS
from .metrics import evaluate, summarize
from .models import MultDAE, MultVAE
from .optim import Adam

#: The metrics reported on the test users, in table order.
TEST_METRICS = ("recall@20", "recall@50", "ndcg@100")
#: The validation metric that selects the best epoch.
VALIDATION_METRIC = "ndcg@100"


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite.

    Attributes
    ----------
    epoch, update : int
        Where it happened (both counted from 1).
    best_path : str or None
        The best checkpoint saved before, if any.
    """

    def __init__(self, message, epoch, update, best_path=None):
        super().__init__(message)
        self.epoch, self.update, self.best_path = epoch, update, best_path


@dataclass
class TrainConfig:
    """Everything that defines a training run; JSON round-trippable.

    Attributes
    ----------
    model : {"vae", "dae"}
    dataset : str
        A MovieLens release name (``minivae data list``) or ``"synthetic"``.
    data_path : str or None
        A local copy of the release (archive or folder); nothing is downloaded.
    hidden_dims : list of int or None
        Hidden widths between input and code; None means the model's own
        default: [600] for Mult-VAE, [] for Mult-DAE (``I -> 200 -> I``).
    latent_dim : int
        K.
    dropout : float
        Input dropout probability.
    likelihood : {"multinomial", "gaussian", "logistic"}
    weight_decay : float or None
        :math:`\\lambda`; None means 0 for Mult-VAE and ``0.01 / batch_size``
        for Mult-DAE, as in the reference.
    lr : float
        Adam's step size.
    batch_size : int
        Training users per update.
    epochs : int
    anneal_cap : float
        :math:`\\beta_{cap}`.
    total_anneal_steps : int
        :math:`T` in updates; used when ``anneal_fraction`` is None.
    anneal_fraction : float or None
        If set, :math:`\\beta` reaches the cap after this fraction of all the
        run's updates (:math:`T = f N / \\beta_{cap}`, see the module
        docstring); overrides ``total_anneal_steps``.
    seed : int
        Initial weights, epoch orders, dropout and noise.
    dtype : {"float32", "float64"}
    min_rating : float
        Ratings strictly above this count as watched (the paper: 3.5).
    min_user_count : int
        Users with fewer watched items are dropped (the paper: 5).
    n_heldout_users : int or None
        Validation users, and as many test users; None holds out 10% of the
        users for each (the paper: 10,000 on ML-20M).
    heldout_fraction : float
        Share of each validation or test user's items held out to be predicted.
    split_seed : int
        Seeds the choice of held-out users and items (kept apart from ``seed``
        so every model sees the same split).
    eval_batch_size : int
        Users scored at once during evaluation.
    baselines : bool
        Also evaluate popularity and EASE on the same split.
    ease_lambdas : list of float or None
        Candidate EASE regularisers, chosen on validation; None uses the
        baseline module's default grid.
    checkpoint_every : int
        Write ``last.npz``, and ``best.npz`` if the best epoch changed, every
        this many epochs, after the last epoch and (``best.npz``) when
        training diverges. Writing costs a fraction of a second, comparable to
        an epoch on a small data set.
    n_synthetic_users, n_synthetic_items : int
        Size of the ``"synthetic"`` data set (its items get placeholder titles).
        It is generated from ``split_seed``, with at least ``min_user_count``
        items per user; ``load_data`` keeps its ground truth in ``Data.truth``.
    """

    model: str = "vae"
    dataset: str = "ml-latest-small"
    data_path: str | None = None
    hidden_dims: list | None = None
    latent_dim: int = 200
    dropout: float = 0.5
    likelihood: str = "multinomial"
    weight_decay: float | None = None
    # Defaults for a small data set, chosen by measurement on ml-latest-small
    # (test NDCG@100 over five split seeds; see the README): on 483 training
    # users, full batches and a larger step beat small batches (batch 100 at
    # lr 1e-3 for 100 epochs: 0.310) in fewer seconds. The paper preset keeps
    # the reference's values.
    lr: float = 3e-3
    batch_size: int = 500
    epochs: int = 200
    anneal_cap: float = 0.2
    total_anneal_steps: int = 200_000
    anneal_fraction: float | None = 0.8
    seed: int = 98765
    dtype: str = "float32"
    min_rating: float = 3.5
    min_user_count: int = 5
    n_heldout_users: int | None = None
    heldout_fraction: float = 0.2
    split_seed: int = 98765
    eval_batch_size: int = 1000
    baselines: bool = True
    ease_lambdas: list | None = None
    checkpoint_every: int = 10
    n_synthetic_users: int = 600
    n_synthetic_items: int = 300

    def __post_init__(self):
        self.validate()

    def validate(self):
        """Raise ValueError naming the first invalid field."""
        if self.model not in ("vae", "dae"):
            raise ValueError(f"model must be 'vae' or 'dae', got {self.model!r}")
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, "
                             f"got {self.likelihood!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.hidden_dims is not None:
            self.hidden_dims = [int(h) for h in self.hidden_dims]
            if any(h < 1 for h in self.hidden_dims):
                raise ValueError(f"hidden widths must be >= 1, got {self.hidden_dims}")
        if self.ease_lambdas is not None:
            self.ease_lambdas = [float(v) for v in self.ease_lambdas]
        for name in ("latent_dim", "batch_size", "epochs", "eval_batch_size",
                     "checkpoint_every", "min_user_count"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.anneal_cap < 0:
            raise ValueError(f"anneal_cap must be >= 0, got {self.anneal_cap}")
        if self.total_anneal_steps < 0:
            raise ValueError(f"total_anneal_steps must be >= 0, got {self.total_anneal_steps}")
        if self.anneal_fraction is not None and not 0 < self.anneal_fraction <= 1:
            raise ValueError(f"anneal_fraction must be in (0, 1], got {self.anneal_fraction}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        if self.n_heldout_users is not None and self.n_heldout_users < 1:
            raise ValueError(f"n_heldout_users must be >= 1, got {self.n_heldout_users}")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        """Build from :meth:`to_dict`'s output; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown configuration fields: {', '.join(unknown)}")
        return cls(**d)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    def replace(self, **changes):
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def resolved_hidden_dims(self):
        if self.hidden_dims is not None:
            return list(self.hidden_dims)
        return [600] if self.model == "vae" else []

    def resolved_weight_decay(self):
        if self.weight_decay is not None:
            return float(self.weight_decay)
        return 0.0 if self.model == "vae" else 0.01 / self.batch_size

    def anneal_horizon(self, batches_per_epoch):
        """:math:`T` of :math:`\\beta = \\min(\\beta_{cap}, n / T)` for this run.

        ``total_anneal_steps`` when ``anneal_fraction`` is None; otherwise
        :math:`T = f N / \\beta_{cap}`, so that :math:`\\beta` reaches the cap
        after the fraction :math:`f` of the run's :math:`N` updates (see the
        module docstring). Rounded to whole updates, at least 1.
        """
        if self.anneal_fraction is None:
            return int(self.total_anneal_steps)
        reach = self.anneal_fraction * self.epochs * batches_per_epoch
        if self.anneal_cap > 0:
            reach /= self.anneal_cap
        return max(1, int(round(reach)))


def paper_preset(model="vae", **overrides):
    """The configuration of the paper's ML-20M experiments (Liang et al., 2018).

    ML-20M with ratings > 3.5 and users with >= 5 such ratings, 10,000
    validation and 10,000 test users with 20% of their items held out, batch
    500, 200 epochs, Adam at 1e-3, :math:`\\beta` capped at 0.2 over an absolute
    200,000 updates, dropout 0.5, Mult-VAE ``[600, 200]`` and Mult-DAE
    ``I -> 200 -> I`` with weight decay 0.01 / 500.
    """
    config = TrainConfig(
        model=model, dataset="ml-20m", hidden_dims=[600] if model == "vae" else [],
        latent_dim=200, dropout=0.5, likelihood="multinomial",
        weight_decay=0.0 if model == "vae" else 0.01 / 500, lr=1e-3, batch_size=500,
        epochs=200, anneal_cap=0.2, total_anneal_steps=200_000, anneal_fraction=None,
        min_rating=3.5, min_user_count=5, n_heldout_users=10_000, heldout_fraction=0.2,
        eval_batch_size=2000, checkpoint_every=1)
    return config.replace(**overrides)


PRESETS = {"paper": paper_preset}


def anneal_beta(update, cap, total_steps):
    """:math:`\\beta = \\min(\\text{cap}, \\text{update} / T)`; the cap itself when T = 0.

    Parameters
    ----------
    update : int
        Updates done before this one (0 for the first).
    cap : float
    total_steps : int
        T.
    """
    if total_steps <= 0:
        return float(cap)
    return min(float(cap), update / total_steps)


def build_model(config, n_items):
    """An untrained model for ``config`` and I = ``n_items``."""
    common = dict(hidden_dims=config.resolved_hidden_dims(), latent_dim=config.latent_dim,
                  dropout=config.dropout, likelihood=config.likelihood,
                  weight_decay=config.resolved_weight_decay(), dtype=np.dtype(config.dtype),
                  seed=config.seed)
    cls = MultVAE if config.model == "vae" else MultDAE
    return cls(n_items, **common)


@dataclass
class Data:
    """A split ready for training, with what a checkpoint needs to know about it.

    Attributes
    ----------
    split
        Has CSR matrices ``train``, ``val_input``, ``val_heldout``,
        ``test_input``, ``test_heldout`` (all with I columns) and ``item_ids``.
    catalog : Catalog or None
        Titles and genres, stored into checkpoints for recommending.
    truth : Synthetic or None
        For the synthetic data set, the generator's ground truth (true item
        probabilities, tastes); row ``u`` of ``truth.probs`` belongs to the user
        with id ``u`` in ``split.train_users``, ``val_users`` and ``test_users``.
    """

    split: object
    catalog: object = None
    truth: object = None

    @property
    def item_ids(self):
        return np.asarray(self.split.item_ids, dtype=np.int64)

    @property
    def n_items(self):
        return self.split.train.shape[1]

    def item_counts(self):
        """Training users of each item, shape (I,)."""
        train = sp.csr_matrix(self.split.train)
        return np.bincount(train.indices, minlength=train.shape[1]).astype(np.int64)


def load_data(config):
    """Load the data set named in ``config`` and split it as configured.

    Returns
    -------
    Data
    """
    from .data.movielens import load_ratings
    from .data.split import binarize, strong_generalization_split
    from .data.synthetic import make_synthetic

    truth = None
    if config.dataset == "synthetic":
        # The generated world is part of the split: it is drawn from the split's
        # seed, and every user gets at least min_user_count items.
        truth = make_synthetic(n_users=config.n_synthetic_users,
                               n_items=config.n_synthetic_items,
                               min_items=config.min_user_count,
                               seed=config.split_seed)
        events = truth.interactions()
    else:
        ratings = load_ratings(config.dataset, path=config.data_path)
        events = binarize(ratings, min_rating=config.min_rating,
                          min_user_count=config.min_user_count)
    n_heldout = 0.1 if config.n_heldout_users is None else config.n_heldout_users
    split = strong_generalization_split(events, n_heldout_users=n_heldout,
                                        test_prop=config.heldout_fraction,
                                        seed=config.split_seed)
    catalog = split.catalog
    if catalog is None:
        catalog = Catalog(split.item_ids, [f"Synthetic item {i}" for i in split.item_ids],
                          [()] * len(split.item_ids))
    return Data(split, catalog, truth)


def _epoch_batches(n_users, batch_size):
    return max(1, math.ceil(n_users / batch_size))


def _finite(x):
    return x if x is None or math.isfinite(x) else None


class Trainer:
    """A training run: model, optimiser, generator, counters and history.

    Parameters
    ----------
    config : TrainConfig
    data : Data
    out_dir : str or None
        The run directory (best.npz, last.npz, config.json, history.json and
        .csv); nothing is written when None.
    log : callable or None
        Receives one line of text per epoch.

    Attributes
    ----------
    model : MultVAE or MultDAE
    optimizer : Adam
    rng : np.random.Generator
    epoch : int
        Epochs completed.
    updates : int
        Updates completed, never reset (it drives the annealing).
    anneal_steps : int
        The horizon T, fixed when the run starts.
    history : list of dict
        One dict per epoch: epoch, seconds, loss, nll, kl, beta, val_ndcg@100.
    best_score, best_epoch, best_params
        The best validation epoch and copies of its parameters.
    """

    def __init__(self, config, data, out_dir=None, log=print):
        self.config = config
        self.data = data
        self.out_dir = out_dir
        self.log = log or (lambda line: None)
        self.n_train = data.split.train.shape[0]
        if self.n_train == 0:
            raise ValueError("the training part of the split has no users")
        self.batches_per_epoch = _epoch_batches(self.n_train, config.batch_size)
        self.model = build_model(config, data.n_items)
        self.optimizer = Adam(self.model.params, lr=config.lr)
        self.rng = np.random.default_rng(config.seed)
        self.epoch = 0
        self.updates = 0
        self.anneal_steps = config.anneal_horizon(self.batches_per_epoch)
        self.history = []
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_params = None
        self._best_written = None
        self._train = sp.csr_matrix(data.split.train, dtype=self.model.dtype)
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
            write_json(os.path.join(out_dir, "config.json"), config.to_dict())

    @classmethod
    def resume(cls, path, data=None, epochs=None, out_dir=None, log=print):
        """Continue a run from its ``last.npz`` (or its run directory).

        The parameters, Adam's moments, the update count (hence :math:`\\beta`),
        the generator and the history continue exactly where they stopped; the
        best epoch's parameters are read from ``best.npz`` beside it.

        Parameters
        ----------
        path : str
            A run directory or a checkpoint written during training.
        data : Data, optional
            Loaded from the saved configuration when omitted.
        epochs : int, optional
            Train until this many epochs in total (default: the saved number).
        out_dir : str, optional
            Where to keep writing (default: the checkpoint's directory).
        """
        ckpt_path = os.path.join(path, "last.npz") if os.path.isdir(path) else path
        ckpt = load_checkpoint(ckpt_path)
        meta = ckpt.meta
        for key in ("epoch", "updates", "rng_state", "anneal_steps", "history"):
            if key not in meta:
                raise CheckpointError(f"{ckpt_path}: cannot resume from it, the metadata has "
                                      f"no {key!r} (is it a training checkpoint?)")
        if ckpt.optim_state is None:
            raise CheckpointError(f"{ckpt_path}: cannot resume from it, it holds no "
                                  "optimizer state")
        config = TrainConfig.from_dict(meta["config"])
        if epochs is not None:
            config = config.replace(epochs=int(epochs))
        if data is None:
            data = load_data(config)
        check_vocabulary(ckpt_path, ckpt.item_ids, data.item_ids)
        out_dir = out_dir if out_dir is not None else os.path.dirname(os.path.abspath(ckpt_path))
        trainer = cls(config, data, out_dir=out_dir, log=log)
        trainer.model.load_params(ckpt.model.params)
        try:
            trainer.optimizer.load_state_dict(ckpt.optim_state)
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{ckpt_path}: the optimizer state does not fit "
                                  f"the model ({exc})") from None
        trainer.rng.bit_generator.state = meta["rng_state"]
        trainer.epoch = int(meta["epoch"])
        trainer.updates = int(meta["updates"])
        trainer.anneal_steps = int(meta["anneal_steps"])
        trainer.history = list(meta["history"])
        trainer.best_epoch = int(meta.get("best_epoch", 0))
        best = meta.get("best_score")
        trainer.best_score = -math.inf if best is None else float(best)
        if trainer.best_epoch == trainer.epoch:
            trainer.best_params = {k: p.copy() for k, p in trainer.model.params.items()}
        elif trainer.best_epoch > 0:
            best_path = os.path.join(os.path.dirname(os.path.abspath(ckpt_path)), "best.npz")
            best_ckpt = load_checkpoint(best_path, item_ids=data.item_ids)
            if best_ckpt.epoch != trainer.best_epoch:
                raise CheckpointError(
                    f"{best_path}: holds epoch {best_ckpt.epoch}, but {ckpt_path} names epoch "
                    f"{trainer.best_epoch} as the best")
            trainer.best_params = {k: p.copy() for k, p in best_ckpt.model.params.items()}
        if os.path.abspath(out_dir) == os.path.dirname(os.path.abspath(ckpt_path)):
            # best.npz beside last.npz already holds the best epoch.
            trainer._best_written = trainer.best_epoch
        return trainer

    def beta(self):
        """:math:`\\beta` of the next update."""
        return anneal_beta(self.updates, self.config.anneal_cap, self.anneal_steps)

    def train_epoch(self):
        """One pass over the training users in a fresh random order.

        Returns
        -------
        dict
            Means over the epoch's users of loss, nll, kl and beta.

        Raises
        ------
        TrainingDiverged
            When a minibatch loss is NaN or infinite (before that update is
            applied).
        """
        config = self.config
        order = self.rng.permutation(self.n_train)
        totals = {"loss": 0.0, "nll": 0.0, "kl": 0.0, "beta": 0.0}
        for start in range(0, self.n_train, config.batch_size):
            rows = order[start:start + config.batch_size]
            x = self._train[rows]
            beta = self.beta()
            # A diverging run overflows on its way to NaN; the check below
            # reports it once, in place of a screenful of floating-point warnings.
            with np.errstate(over="ignore", invalid="ignore"):
                loss, grads = self.model.loss_and_grads(x, beta=beta, rng=self.rng)
            if not math.isfinite(loss):
                raise self._diverged(f"the training loss is {float(loss)}")
            with np.errstate(over="ignore", invalid="ignore"):
                self.optimizer.step(grads)
            self.updates += 1
            B = len(rows)
            totals["loss"] += B * float(loss)
            totals["nll"] += B * loss.nll
            totals["kl"] += B * loss.kl
            totals["beta"] += B * loss.beta  # 0 for Mult-DAE, which has no KL term
        return {k: v / self.n_train for k, v in totals.items()}

    def _diverged(self, what, update=None):
        best_path = None
        where = "no checkpoint was saved"
        if self.out_dir is not None and self.best_epoch > 0:
            best_path = os.path.join(self.out_dir, "best.npz")
            where = (f"the best checkpoint (epoch {self.best_epoch}, validation "
                     f"NDCG@100 {self.best_score:.4f}) is kept in {best_path}")
        elif self.best_epoch > 0:
            where = f"the best parameters (epoch {self.best_epoch}) are kept in memory"
        update = self.updates + 1 if update is None else update
        return TrainingDiverged(
            f"training diverged in epoch {self.epoch + 1} (update {update}): {what}; "
            f"{where}; try a smaller learning rate", self.epoch + 1, update, best_path)

    def validate(self):
        """Mean validation NDCG@100 of the current parameters."""
        split = self.data.split
        per_user = evaluate(self.model.predict, split.val_input, split.val_heldout,
                            batch_size=self.config.eval_batch_size, recall_at=(),
                            ndcg_at=(100,))
        return summarize(per_user)[VALIDATION_METRIC][0]

    def fit(self, until_epoch=None, on_epoch_end=None):
        """Train until ``config.epochs`` (or ``until_epoch``) epochs are done.

        Parameters
        ----------
        until_epoch : int, optional
            Stop earlier, after this many epochs in total (``last.npz`` lets a
            later :meth:`resume` continue).
        on_epoch_end : callable, optional
            ``on_epoch_end(trainer, record)`` after each epoch's record is made.

        Returns
        -------
        list of dict
            The history.
        """
        stop = self.config.epochs if until_epoch is None else min(until_epoch, self.config.epochs)
        while self.epoch < stop:
            started = time.perf_counter()
            try:
                parts = self.train_epoch()
                bad = [name for name, p in self.model.params.items() if not np.isfinite(p).all()]
                if bad:
                    raise self._diverged(f"parameter {bad[0]} is no longer finite", self.updates)
                score = self.validate()
                if not math.isfinite(score):
                    raise self._diverged(f"the validation NDCG@100 is {score}", self.updates)
            except TrainingDiverged:
                # The best epoch so far is worth keeping; last.npz keeps the
                # state before the failing epoch, from which a resume with a
                # smaller learning rate can start.
                if self.out_dir is not None:
                    self._save_best()
                raise
            self.epoch += 1
            record = {"epoch": self.epoch, "seconds": time.perf_counter() - started, **parts,
                      "val_ndcg@100": score}
            self.history.append(record)
            improved = score > self.best_score
            if improved:
                self.best_score, self.best_epoch = score, self.epoch
                self.best_params = {k: p.copy() for k, p in self.model.params.items()}
            self.log(format_epoch(record, improved))
            if self.out_dir is not None:
                self.write_history()
                if self.epoch % self.config.checkpoint_every == 0 or self.epoch == stop:
                    self._save_best()
                    self.save(os.path.join(self.out_dir, "last.npz"))
            if on_epoch_end is not None:
                on_epoch_end(self, record)
        return self.history

    def _save_best(self):
        """Write best.npz, unless it already holds the best epoch."""
        if self.best_params is None or self._best_written == self.best_epoch:
            return
        meta = {"config": self.config.to_dict(), "epoch": self.best_epoch,
                "updates": None, "best_score": _finite(self.best_score),
                "best_epoch": self.best_epoch, "history": self.history[:self.best_epoch]}
        save_checkpoint(os.path.join(self.out_dir, "best.npz"), self.model,
                        self.data.item_ids, self.data.item_counts(), meta,
                        catalog=self.data.catalog, params=self.best_params)
        self._best_written = self.best_epoch

    def meta(self):
        """The checkpoint metadata of the current state."""
        return {"config": self.config.to_dict(), "epoch": self.epoch, "updates": self.updates,
                "anneal_steps": self.anneal_steps,
                "best_score": _finite(self.best_score), "best_epoch": self.best_epoch,
                "rng_state": self.rng.bit_generator.state, "history": self.history}

    def save(self, path):
        """Write the current state as a checkpoint (atomically)."""
        save_checkpoint(path, self.model, self.data.item_ids, self.data.item_counts(),
                        self.meta(), optimizer=self.optimizer, catalog=self.data.catalog)

    def write_history(self):
        """history.json and history.csv in the run directory."""
        write_json(os.path.join(self.out_dir, "history.json"), self.history)
        write_history_csv(os.path.join(self.out_dir, "history.csv"), self.history)

    def use_best(self):
        """Load the best validation epoch's parameters into the model."""
        if self.best_params is not None:
            self.model.load_params(self.best_params)
        return self.model

    def test(self):
        """Test Recall@20, Recall@50 and NDCG@100 of the model's current parameters.

        Returns
        -------
        dict of str -> (mean, stderr, n)
        """
        return evaluate_model(self.model.predict, self.data.split, self.config.eval_batch_size)


HISTORY_FIELDS = ("epoch", "seconds", "loss", "nll", "kl", "beta", "val_ndcg@100")


def format_epoch(record, improved=False):
    """The per-epoch line: epoch, seconds, loss, nll, kl, beta, validation NDCG@100."""
    return (f"epoch {record['epoch']:4d}  {record['seconds']:6.2f}s  "
            f"loss {record['loss']:9.3f}  nll {record['nll']:9.3f}  kl {record['kl']:8.3f}  "
            f"beta {record['beta']:.3f}  val ndcg@100 {record['val_ndcg@100']:.4f}"
            + ("  *" if improved else ""))


def write_history_csv(path, history):
    def write(f):
        text = [",".join(HISTORY_FIELDS)]
        for r in history:
            text.append(",".join(repr(r[k]) if isinstance(r[k], float) else str(r[k])
                                 for k in HISTORY_FIELDS))
        f.write(("\n".join(text) + "\n").encode("utf-8"))
    atomic_write(path, write)


def evaluate_model(score_fn, split, batch_size=1000, which="test"):
    """Recall@20, Recall@50 and NDCG@100 on the test (or validation) users.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x) -> scores``, shape (b, I) for a fold-in batch of shape (b, I).
    split
        The data split.
    which : {"test", "val"}

    Returns
    -------
    dict of str -> (mean, stderr, n)
    """
    inputs = getattr(split, f"{which}_input")
    heldout = getattr(split, f"{which}_heldout")
    per_user = evaluate(score_fn, inputs, heldout, batch_size=batch_size,
                        recall_at=(20, 50), ndcg_at=(100,))
    return summarize(per_user)


def evaluate_baselines(data, config, log=print):
    """Popularity and EASE (lambda chosen on validation NDCG@100) on the test users.

    EASE needs a few I x I matrices in memory; when they do not fit (the
    baseline module refuses beyond its memory limit, e.g. ML-20M on a laptop),
    EASE is skipped with a note and popularity is still reported.

    Returns
    -------
    dict of str -> dict of str -> (mean, stderr, n)
        ``{"Popularity": ..., "EASE (lambda=...)": ...}``
    """
    from .baselines import EASE, Popularity

    log = log or (lambda line: None)
    split = data.split
    results = {}
    popularity = Popularity().fit(split.train)
    results["Popularity"] = evaluate_model(popularity.scores, split, config.eval_batch_size)
    select_args = {} if config.ease_lambdas is None else {"lambdas": config.ease_lambdas}
    try:
        ease, table = EASE.select(split.train, split.val_input, split.val_heldout,
                                  batch_size=config.eval_batch_size, **select_args)
    except MemoryError as exc:
        log(f"EASE skipped: {exc}")
        return results
    log("EASE validation NDCG@100: " + ", ".join(f"lambda={lam:g}: {v:.4f}"
                                                  for lam, v in table))
    results[f"EASE (lambda={ease.lam:g})"] = evaluate_model(ease.scores, split,
                                                            config.eval_batch_size)
    return results


@dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes
    ----------
    trainer : Trainer
        Its model holds the best validation epoch's parameters.
    table : dict of str -> dict of str -> (mean, stderr, n)
        Test metrics of the model and the baselines, model first.
    out_dir : str or None
    seconds : float
        Wall time of the training loop.
    plot_path : str or None
        The training curves' PNG, when one was written.
    """

    trainer: Trainer
    table: dict
    out_dir: str | None
    seconds: float
    plot_path: str | None = None


def model_label(config):
    return {"vae": "Mult-VAE", "dae": "Mult-DAE"}[config.model]


def run(config=None, out_dir=None, data=None, resume=None, log=print, baselines=None,
        epochs=None, plot=True, on_epoch_end=None):
    """Train, select the best epoch, test it next to the baselines, write the run directory.

    Parameters
    ----------
    config : TrainConfig, optional
        Ignored when resuming (the saved configuration is used).
    out_dir : str or None
        The run directory; nothing is written when None.
    data : Data, optional
        Loaded from the configuration when omitted.
    resume : str, optional
        A run directory or checkpoint to continue.
    log : callable or None
    baselines : bool, optional
        Overrides ``config.baselines``.
    epochs : int, optional
        With ``resume``: train until this many epochs in total.
    plot : bool
        Write curves.png.
    on_epoch_end : callable, optional
        Passed to :meth:`Trainer.fit`.

    Returns
    -------
    RunResult

    Raises
    ------
    TrainingDiverged
        The loss became NaN or infinite; best.npz (if any) is kept.
    """
    log = log or (lambda line: None)
    if resume is not None:
        trainer = Trainer.resume(resume, data=data, epochs=epochs, out_dir=out_dir, log=log)
        log(f"resuming {resume} at epoch {trainer.epoch} (update {trainer.updates}) "
            f"until epoch {trainer.config.epochs}")
    else:
        config = config or TrainConfig()
        if data is None:
            data = load_data(config)
        trainer = Trainer(config, data, out_dir=out_dir, log=log)
    config = trainer.config
    out_dir = trainer.out_dir
    started = time.perf_counter()
    try:
        trainer.fit(on_epoch_end=on_epoch_end)
    finally:
        if out_dir is not None and plot and trainer.history:
            from .plots import save_training_curves
            save_training_curves(trainer.history, os.path.join(out_dir, "curves.png"),
                                 title=f"{model_label(config)} on {config.dataset}")
    seconds = time.perf_counter() - started
    trainer.use_best()
    table = {f"{model_label(config)} (epoch {trainer.best_epoch})": trainer.test()}
    use_baselines = config.baselines if baselines is None else baselines
    if use_baselines:
        table.update(evaluate_baselines(trainer.data, config, log))
    result = RunResult(trainer, table, out_dir, seconds,
                       os.path.join(out_dir, "curves.png") if out_dir and plot else None)
    if out_dir is not None:
        write_json(os.path.join(out_dir, "results.json"), results_dict(result))
    return result


def results_dict(result):
    """The final table as JSON-able data."""
    t = result.trainer
    return {
        "config": t.config.to_dict(),
        "best_epoch": t.best_epoch,
        "best_val_ndcg@100": _finite(t.best_score),
        "epochs": t.epoch,
        "updates": t.updates,
        "anneal_steps": t.anneal_steps,
        "train_seconds": result.seconds,
        "test": {name: {metric: {"mean": m, "stderr": se, "n": n}
                        for metric, (m, se, n) in summary.items()}
                 for name, summary in result.table.items()},
    }


def format_table(table, metrics=TEST_METRICS):
    """The results as a fixed-width text table, ``mean ± stderr`` per metric."""
    header = ("model", *(m.replace("recall", "Recall").replace("ndcg", "NDCG") for m in metrics))
    rows = [header]
    for name, summary in table.items():
        rows.append((name, *(f"{summary[m][0]:.4f} ± {summary[m][1]:.4f}" for m in metrics)))
    widths = [max(len(r[j]) for r in rows) for j in range(len(header))]
    lines = ["  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                       for j, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    n = next(iter(table.values()))[metrics[0]][2] if table else 0
    lines.append(f"(test users: {n}; mean ± standard error)")
    return "\n".join(lines)
