"""Item catalog: original item id -> title, genres, year; and lookup by title.

MovieLens stores titles the way a library card does: the release year in
parentheses at the end and a leading article moved behind a comma,
``"Matrix, The (1999)"``. Foreign films often carry their other names in further
parentheses, ``"City of Lost Children, The (Cité des enfants perdus, La) (1995)"``
or ``"Seven (a.k.a. Se7en) (1995)"``.

To find a film by what a person types, every name of an item and the query pass
through the same normalisation:

1. the year ``(1999)`` (or a range ``(2006–2007)``) is split off;
2. each further trailing ``(...)`` group becomes an alternative name (without
   ``a.k.a.``);
3. a trailing article (``", The"``, ``", La"``, ``", L'"``, ...) is dropped;
4. the text is lower-cased, accents are removed, every run of characters other
   than letters and digits becomes one space;
5. a leading article (``the``, ``a``, ``an``, ``la``, ...) is dropped when words
   remain after it.

So ``"Matrix, The (1999)"``, ``"The Matrix"``, ``"the matrix"`` and ``"matrix"``
all map to the key ``"matrix"``. A query matching several items is settled by the
year when one is given (in the query or as an argument); otherwise the error lists
the candidates. A query matching nothing gets "did you mean" suggestions from
:mod:`difflib`.
"""

import difflib
import re
import unicodedata

import numpy as np

from ._common import DataError

_YEAR = re.compile(r"\s*\((\d{4})(?:\s*[-–]\s*\d{4})?\)\s*$")
_TRAILING_GROUP = re.compile(r"^(.*\S)\s*\(([^()]*)\)\s*$")
_TRAILING_ARTICLE = re.compile(
    r",\s*(the|a|an|le|la|les|l'|el|los|las|il|lo|gli|das|der|die|den|det)\s*$",
    re.IGNORECASE,
)
_LEADING_ARTICLES = frozenset(
    "the a an le la les l el los las il lo gli das der die den det".split())
_AKA = re.compile(r"^a\.?k\.?a\.?\s+", re.IGNORECASE)


def parse_year(title):
    """Release year from a title ending in ``(YYYY)``, or None.

    Examples
    --------
    >>> parse_year("Toy Story (1995)"), parse_year("Babylon 5")
    (1995, None)
    """
    match = _YEAR.search(title)
    return int(match.group(1)) if match else None


def _normalise(name):
    """Lookup key of one name without its year (steps 3-5 of the module notes)."""
    name = _TRAILING_ARTICLE.sub("", name.strip())
    name = name.lower()
    if not name.isascii():
        name = unicodedata.normalize("NFKD", name)
        name = "".join(c for c in name if not unicodedata.combining(c))
    words = re.sub(r"[\W_]+", " ", name).split()
    if len(words) > 1 and words[0] in _LEADING_ARTICLES:
        words = words[1:]
    return " ".join(words)


def title_keys(title):
    """All lookup keys of one catalog title (main name and alternative names).

    Examples
    --------
    >>> title_keys("Matrix, The (1999)")
    ['matrix']
    >>> title_keys("Seven (a.k.a. Se7en) (1995)")
    ['seven', 'se7en']
    """
    rest = _YEAR.sub("", title).strip()
    alternatives = []
    while (match := _TRAILING_GROUP.match(rest)) is not None:
        rest, inner = match.group(1), match.group(2)
        alternatives.append(_AKA.sub("", inner))
    keys = []
    for name in [rest, *reversed(alternatives)]:
        key = _normalise(name)
        if key and key not in keys:
            keys.append(key)
    if not keys:
        # A title made only of a parenthesised part still needs to be findable.
        keys.append(_normalise(_YEAR.sub("", title)))
    return keys


class Catalog:
    """Titles, genres and years of items, indexed by original item id.

    Parameters
    ----------
    item_ids : array_like of int, shape (N,)
        Original item ids (MovieLens ``movieId``), unique.
    titles : sequence of str, length N
        Titles as the data set spells them, e.g. ``"Matrix, The (1999)"``.
    genres : sequence of sequence of str, length N
        Genre names of each item; may be empty.

    Attributes
    ----------
    item_ids : ndarray of int64, shape (N,)
        Sorted original ids.
    """

    def __init__(self, item_ids, titles, genres):
        item_ids = np.asarray(item_ids, dtype=np.int64).ravel()
        titles = [str(t) for t in titles]
        genres = [tuple(g) for g in genres]
        if not len(item_ids) == len(titles) == len(genres):
            raise DataError(
                f"catalog needs one title and one genre list per item id; got "
                f"{len(item_ids)} ids, {len(titles)} titles, {len(genres)} genre lists")
        order = np.argsort(item_ids, kind="stable")
        item_ids = item_ids[order]
        if len(item_ids) > 1 and np.any(item_ids[1:] == item_ids[:-1]):
            repeated = item_ids[1:][item_ids[1:] == item_ids[:-1]][0]
            raise DataError(f"catalog lists item id {repeated} more than once")
        self.item_ids = item_ids
        self._titles = [titles[k] for k in order]
        self._genres = [genres[k] for k in order]
        self._years = [parse_year(t) for t in self._titles]
        self._row = {int(i): r for r, i in enumerate(item_ids)}
        self._lookup_index = None

    @property
    def _index(self):
        """Lookup key -> catalog rows, built on the first title lookup."""
        if self._lookup_index is None:
            index = {}
            for r, title in enumerate(self._titles):
                for key in title_keys(title):
                    index.setdefault(key, []).append(r)
            self._lookup_index = index
        return self._lookup_index

    def __len__(self):
        return len(self.item_ids)

    def __contains__(self, item_id):
        return int(item_id) in self._row

    def __repr__(self):
        return f"Catalog({len(self)} items)"

    def _lookup(self, item_id):
        try:
            return self._row[int(item_id)]
        except KeyError:
            raise DataError(
                f"item id {item_id} is not in the catalog ({len(self)} items)") from None

    def title(self, item_id):
        """Title of an item, e.g. ``"Matrix, The (1999)"``."""
        return self._titles[self._lookup(item_id)]

    def genres(self, item_id):
        """Genres of an item as a tuple of names (empty if none are listed)."""
        return self._genres[self._lookup(item_id)]

    def year(self, item_id):
        """Release year parsed from the title, or None if the title has none."""
        return self._years[self._lookup(item_id)]

    @property
    def genre_names(self):
        """Sorted list of every genre that occurs in the catalog."""
        return sorted({g for gs in self._genres for g in gs})

    def find(self, query, year=None):
        """Original item id of the film called ``query``.

        Parameters
        ----------
        query : str
            A title as a person would type it: any case, with or without the
            year in parentheses and the article (``"the matrix"``,
            ``"Matrix, The (1999)"``, ``"matrix"``).
        year : int, optional
            Release year, to choose between films sharing a title. A year in
            ``query`` itself counts the same way.

        Returns
        -------
        int
            The original item id.

        Raises
        ------
        DataError
            No title matches (the message suggests close titles), or several
            match and the year does not settle it (the message lists them).
        """
        query_year = parse_year(query)
        if year is None:
            year = query_year
        elif query_year is not None and query_year != year:
            raise DataError(f"{query!r} names the year {query_year} but year={year} was given")
        key = _normalise(_YEAR.sub("", query))
        rows = self._index.get(key, [])
        if not rows:
            raise DataError(f"no title matches {query!r}{self._suggestions(key)}")
        if year is not None:
            with_year = [r for r in rows if self._years[r] == year]
            if not with_year:
                raise DataError(
                    f"no title matches {query!r} in {year}; films with that title: "
                    f"{self._describe(rows)}")
            rows = with_year
        if len(rows) > 1:
            advice = ("pass the year, e.g. find(title, year=...)" if year is None
                      else "these share title and year; use the item id instead")
            raise DataError(
                f"{query!r} matches {len(rows)} films: {self._describe(rows)}; {advice}")
        return int(self.item_ids[rows[0]])

    def _describe(self, rows):
        return ", ".join(f"{self._titles[r]!r} (id {self.item_ids[r]})" for r in rows)

    def _suggestions(self, key):
        # Titles that contain the query as whole words come first ("star wars"
        # finds every episode), then titles that are spelled alike ("matrx").
        padded = f" {key} "
        containing = [k for k in self._index if padded in f" {k} "] if key else []
        close = difflib.get_close_matches(key, list(self._index), n=5, cutoff=0.6)
        titles = []
        for k in containing[:5] + close:
            for r in self._index[k]:
                if self._titles[r] not in titles:
                    titles.append(self._titles[r])
        if not titles:
            return ""
        return "; did you mean: " + ", ".join(repr(t) for t in titles[:5]) + "?"
