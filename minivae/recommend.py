r"""Recommending for a new user: fold in a watch history, rank the unseen items.

Mult-VAE and Mult-DAE recommend for users they never saw in training, with no
retraining: the encoder reads the user's history :math:`x` (a binary vector
over the I items), the decoder turns the code into a score per item, and the
items are ranked by score,

.. math::
    \text{Mult-VAE: } f = g(\mu(x)), \qquad \text{Mult-DAE: } f = g(h(x)),

with dropout off and the mean :math:`\mu` in place of a sample, as at
evaluation. Items already in the history are never recommended.

A history can name films by their original MovieLens ids or by title (any
case, with or without the year and the article: ``"matrix"`` finds
``"Matrix, The (1999)"``); see :class:`minivae.data.catalog.Catalog`. An unknown
title gets "did you mean" suggestions, an id outside the model's items an error
naming it.

With an empty history there is nothing to fold in, so the items are ranked by
popularity among the training users instead, and the result says so. The
counts come from the checkpoint itself, as do the titles: recommending never
needs the data set again.

Many users at once
------------------
:func:`read_histories` reads a text file with one user per line:

* items are separated by semicolons, or by commas when the line has no
  semicolon (titles such as ``"Matrix, The"`` contain commas, so write them
  with semicolons: ``Matrix, The; Heat; Toy Story``);
* an item made of digits only is an item id (``1; 6; 2571``); write a title
  that is a number with its year, ``1984 (1984)``;
* blank lines and lines starting with ``#`` are skipped; a line holding only
  ``-`` is a user with an empty history.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .checkpoint import load_checkpoint
from .data import DataError
from .metrics import top_k


@dataclass
class Recommendation:
    """The top-k list of one user.

    Attributes
    ----------
    history : list of int
        The user's items as original ids (titles resolved).
    items : list of dict
        Best first: ``{"item_id", "title", "genres", "score"}``. The score is the
        model's logit (or, for the popularity fallback, the training count).
    from_popularity : bool
        True when the history was empty and the ranking is by popularity.
    """

    history: list
    items: list = field(default_factory=list)
    from_popularity: bool = False

    def format(self):
        """A printable table: rank, item id, score, title, genres."""
        lines = []
        if self.from_popularity:
            lines.append("(empty history: the most popular items are shown instead)")
        for rank, it in enumerate(self.items, 1):
            genres = "|".join(it["genres"])
            lines.append(f"{rank:3d}. {it['item_id']:>7}  {it['score']:9.3f}  {it['title']}"
                         + (f"  [{genres}]" if genres else ""))
        return "\n".join(lines)


class Recommender:
    """Top-k recommendations from a trained model.

    Parameters
    ----------
    model : MultVAE or MultDAE
    item_ids : array_like of int, shape (I,)
        Original id of each of the model's columns.
    item_counts : array_like of int, shape (I,)
        Training users per item, for the popularity fallback.
    catalog : Catalog, optional
        Titles and genres; needed for histories given by title.
    """

    def __init__(self, model, item_ids, item_counts, catalog=None):
        self.model = model
        self.item_ids = np.asarray(item_ids, dtype=np.int64)
        self.item_counts = np.asarray(item_counts, dtype=np.int64)
        self.catalog = catalog
        self._column = {int(i): c for c, i in enumerate(self.item_ids)}

    @classmethod
    def from_checkpoint(cls, path):
        """Everything needed is in the checkpoint (see :mod:`minivae.checkpoint`)."""
        ckpt = load_checkpoint(path)
        return cls(ckpt.model, ckpt.item_ids, ckpt.item_counts, ckpt.catalog)

    def resolve(self, entries):
        """Original item ids of a history given as ids and/or titles.

        Parameters
        ----------
        entries : iterable of int or str
            Ints (or digit-only strings) are item ids, other strings titles.

        Returns
        -------
        list of int
            In the order given, repeats removed.

        Raises
        ------
        DataError
            For an unknown title (with suggestions) or ids the model does not
            know (all of them named).
        """
        ids, unknown = [], []
        for entry in entries:
            if isinstance(entry, str) and not entry.strip().isdigit():
                if self.catalog is None:
                    raise DataError("this checkpoint has no titles; give item ids instead")
                item_id = self.catalog.find(entry.strip())
            else:
                item_id = int(entry)
            if item_id not in self._column:
                unknown.append(item_id)
            elif item_id not in ids:
                ids.append(item_id)
        if unknown:
            raise DataError(f"unknown item id{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(str, unknown))}: not among the model's "
                            f"{len(self.item_ids)} items")
        return ids

    def _describe(self, column, score):
        item_id = int(self.item_ids[column])
        known = self.catalog is not None and item_id in self.catalog
        return {"item_id": item_id,
                "title": self.catalog.title(item_id) if known else f"item {item_id}",
                "genres": list(self.catalog.genres(item_id)) if known else [],
                "score": float(score)}

    def recommend_many(self, histories, k=10):
        """Top-k lists of several users, folded in together.

        Parameters
        ----------
        histories : list of list of (int or str)
            One history per user, as for :meth:`resolve`.
        k : int

        Returns
        -------
        list of Recommendation
        """
        I = len(self.item_ids)
        if not 1 <= k <= I:
            raise ValueError(f"k must be between 1 and the number of items {I}, got {k}")
        resolved = [self.resolve(h) for h in histories]
        rows = np.repeat(np.arange(len(resolved)), [len(h) for h in resolved])
        cols = np.array([self._column[i] for h in resolved for i in h], dtype=np.int64)
        x = sp.csr_matrix((np.ones(len(cols), dtype=self.model.dtype), (rows, cols)),
                          shape=(len(resolved), I))
        results = []
        empty = np.array([len(h) == 0 for h in resolved])
        scores = np.empty((len(resolved), I), dtype=np.float64)
        if (~empty).any():
            scores[~empty] = self.model.predict(x[~empty])
        scores[empty] = self.item_counts
        top = top_k(scores, k, exclude=x)
        for u, history in enumerate(resolved):
            items = [self._describe(c, scores[u, c]) for c in top[u] if c >= 0]
            results.append(Recommendation(history, items, bool(empty[u])))
        return results

    def recommend(self, history=(), k=10):
        """Top-k list of one user; see :meth:`recommend_many`.

        Examples
        --------
        >>> rec = Recommender.from_checkpoint("runs/vae/best.npz")    # doctest: +SKIP
        >>> print(rec.recommend(["Toy Story", "Heat"], k=5).format())  # doctest: +SKIP
        """
        return self.recommend_many([list(history)], k)[0]


def parse_history_line(line):
    """The items of one line of a histories file (see the module docstring)."""
    text = line.strip()
    if text == "-":
        return []
    separator = ";" if ";" in text else ","
    entries = [part.strip() for part in text.split(separator)]
    return [int(e) if e.isdigit() else e for e in entries if e]


def read_histories(path):
    """One history per line of a text file (format in the module docstring).

    Returns
    -------
    histories : list of list of (int or str)
    line_numbers : list of int
        The line each history came from, for messages.
    """
    histories, line_numbers = [], []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                histories.append(parse_history_line(line))
                line_numbers.append(number)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None
    return histories, line_numbers


def recommend_file(recommender, path, k=10):
    """Recommendations for every user of a histories file.

    Raises
    ------
    DataError
        Naming the file and the line of an unknown title or item id.
    """
    histories, line_numbers = read_histories(path)
    for history, number in zip(histories, line_numbers):
        try:
            recommender.resolve(history)
        except DataError as exc:
            raise DataError(f"{path}, line {number}: {exc}") from None
    return recommender.recommend_many(histories, k), line_numbers
