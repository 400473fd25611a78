"""Figures of a training run, drawn with matplotlib's object interface.

The figures are built from ``matplotlib.figure.Figure`` directly, without
``pyplot``: no global figure state, no GUI backend, so they render the same on a
laptop, a server or in a test.
"""

import numpy as np
from matplotlib.figure import Figure


def training_curves(history, title=None):
    """Loss parts, the KL weight and validation NDCG@100, per epoch.

    Parameters
    ----------
    history : list of dict
        One record per epoch with ``epoch``, ``nll``, ``kl``, ``beta`` and
        ``val_ndcg@100`` (as :class:`minivae.train.Trainer` keeps them).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    epoch = np.array([r["epoch"] for r in history])
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    ax_nll, ax_kl, ax_beta, ax_val = fig.subplots(1, 4)

    ax_nll.plot(epoch, [r["nll"] for r in history], color="C0")
    ax_nll.set_title("negative log-likelihood")
    ax_kl.plot(epoch, [r["kl"] for r in history], color="C1")
    ax_kl.set_title("KL to the prior")
    ax_beta.plot(epoch, [r["beta"] for r in history], color="C2")
    ax_beta.set_title(r"mean $\beta$ of the epoch")
    val = np.array([r["val_ndcg@100"] for r in history])
    ax_val.plot(epoch, val, color="C3")
    best = int(np.argmax(val))
    ax_val.plot(epoch[best], val[best], "o", color="C3")
    ax_val.annotate(f"best: epoch {epoch[best]}", (epoch[best], val[best]),
                    textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
    ax_val.set_title("validation NDCG@100")
    for ax in (ax_nll, ax_kl, ax_beta, ax_val):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def save_training_curves(history, path, title=None):
    """Draw :func:`training_curves` into a PNG file."""
    training_curves(history, title).savefig(path, dpi=100)
    return path
