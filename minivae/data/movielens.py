"""MovieLens ratings: the registry, the file readers, and verified downloads.

Four GroupLens releases are known (see ``DATASETS``). ``ml-latest-small`` ships
inside the package as the original, unmodified archive; the others are
downloaded on first use from ``BASE_URL`` into a cache directory and checked
against the MD5 that GroupLens publishes.

Every file is read straight out of the zip archive with :mod:`zipfile`: nothing
is extracted, so nothing can be written outside the cache, and only the two
members a data set needs are ever opened. A user who already has the archive,
or the folder it unpacks to, passes ``path=`` and nothing is downloaded.

File formats, one event or one film per line:

=================  ===================================  ======================================
release            ratings                              films
=================  ===================================  ======================================
ml-100k            ``u.data``: user, item, rating,      ``u.item`` (latin-1): ``|``-separated
                   timestamp, tab-separated             id, title, release date, video
                                                        release date, IMDb URL, 19 genre flags
ml-1m              ``ratings.dat``:                     ``movies.dat`` (latin-1):
                   ``UserID::MovieID::Rating::Time``    ``MovieID::Title::Genres``
ml-20m,            ``ratings.csv`` with header          ``movies.csv`` (UTF-8, quoted titles):
ml-latest-small    ``userId,movieId,rating,timestamp``  ``movieId,title,genres``
=================  ===================================  ======================================

Genres are ``|``-separated; the CSV releases write ``(no genres listed)`` for a
film without any, which becomes an empty genre tuple here.
"""

import contextlib
import csv
import hashlib
import io
import os
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._common import DataError, format_stats, part_stats
from .catalog import Catalog

BASE_URL = "https://files.grouplens.org/datasets/movielens/"

EMBEDDED_ARCHIVE = Path(__file__).with_name("ml-latest-small.zip")

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)


@dataclass(frozen=True)
class Dataset:
    """What is known about one MovieLens release before opening it.

    Attributes
    ----------
    name : str
        Release name, also the archive's stem and its top folder.
    md5 : str
        Checksum of the archive published by GroupLens.
    layout : {"100k", "1m", "csv"}
        Which file formats the release uses.
    ratings_file, movies_file : str
        Member names inside the release folder.
    size_mb : float
        Approximate archive size, to warn before large downloads.
    description : str
        One line for listings.
    """

    name: str
    md5: str
    layout: str
    ratings_file: str
    movies_file: str
    size_mb: float
    description: str

    @property
    def filename(self):
        return f"{self.name}.zip"

    @property
    def embedded(self):
        return self.name == "ml-latest-small"


DATASETS = {
    spec.name: spec for spec in (
        Dataset("ml-latest-small", "31a303aabbc519bd33d025e44d6c2570", "csv",
                "ratings.csv", "movies.csv", 1.0,
                "100,836 ratings, 610 users, 9,742 films (2018 snapshot); embedded"),
        Dataset("ml-100k", "0e33842e24a9c977be4e0107933c0723", "100k",
                "u.data", "u.item", 4.9, "100,000 ratings, 943 users, 1,682 films"),
        Dataset("ml-1m", "c4d9eecfca2ab87c1945afe126590906", "1m",
                "ratings.dat", "movies.dat", 5.9, "1,000,209 ratings, 6,040 users, 3,706 films"),
        Dataset("ml-20m", "cd245b17a1ae2cc31bb14903e1204af3", "csv",
                "ratings.csv", "movies.csv", 198.7,
                "20,000,263 ratings, 138,493 users, 26,744 films (the paper's ML-20M)"),
    )
}

_SEPARATOR = {"100k": "\t", "1m": "::", "csv": ","}
_ENCODING = {"100k": "latin-1", "1m": "latin-1", "csv": "utf-8"}
_CSV_RATINGS_HEADER = "userId,movieId,rating,timestamp"
_CSV_MOVIES_HEADER = ["movieId", "title", "genres"]
_RATING_DTYPE = np.dtype([("user", np.int64), ("item", np.int64),
                          ("rating", np.float32), ("timestamp", np.int64)])


def dataset(name):
    """The ``Dataset`` entry for ``name``; an unknown name lists the known ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        known = ", ".join(DATASETS)
        raise DataError(f"unknown data set {name!r}; known data sets: {known}") from None


@dataclass(frozen=True, eq=False)
class Ratings:
    """Explicit ratings, one entry per (user, item) event, with original ids.

    Attributes
    ----------
    user, item : ndarray of int64, shape (N,)
        Original user and item ids (MovieLens ``userId`` and ``movieId``).
    rating : ndarray of float32, shape (N,)
        Star ratings (half stars in the CSV releases).
    timestamp : ndarray of int64, shape (N,)
        Seconds since 1970-01-01 UTC.
    catalog : Catalog or None
        Titles and genres of the items.
    name : str
        Where the ratings came from, for summaries.
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    catalog: Catalog | None = None
    name: str = "ratings"

    def __post_init__(self):
        n = len(self.user)
        for field in ("item", "rating", "timestamp"):
            if len(getattr(self, field)) != n:
                raise DataError(
                    f"Ratings arrays differ in length: user has {n} entries, "
                    f"{field} has {len(getattr(self, field))}")

    def __len__(self):
        return len(self.user)

    def __repr__(self):
        return f"Ratings({self.name!r}, {len(self):,} ratings)"

    @property
    def n_users(self):
        return len(np.unique(self.user))

    @property
    def n_items(self):
        return len(np.unique(self.item))

    def stats(self):
        """Users, items, ratings and density, as a dict (see ``summary``)."""
        n_items = self.n_items
        return part_stats(self.n_users, n_items, len(self), n_items)

    def summary(self):
        """The statistics as a printable one-line table."""
        return format_stats({self.name: self.stats()})


def default_cache_dir():
    """Folder where downloaded archives are kept.

    ``$MINIVAE_DATA`` if set; otherwise ``$XDG_CACHE_HOME/minivae``,
    ``%LOCALAPPDATA%\\minivae`` on Windows, or ``~/.cache/minivae``.
    """
    if os.environ.get("MINIVAE_DATA"):
        return Path(os.environ["MINIVAE_DATA"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "minivae"
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "minivae"
    return Path.home() / ".cache" / "minivae"


def _md5(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _manual_advice(spec, url):
    return (f"or download {url} yourself and point minivae at it: "
            f"--data-path .../{spec.filename} on the command line, "
            f"load_ratings({spec.name!r}, path='.../{spec.filename}') in Python")


def fetch(name, *, cache_dir=None, base_url=None, download=True, progress=True):
    """Path of a verified archive, downloading it into the cache if needed.

    Parameters
    ----------
    name : str
        A key of ``DATASETS``. ``"ml-latest-small"`` returns the embedded
        archive and never downloads.
    cache_dir : str or Path, optional
        Where archives are kept; default ``default_cache_dir()``.
    base_url : str, optional
        Where to download from; default ``BASE_URL``. The archive's URL is
        ``base_url + name + ".zip"``.
    download : bool
        If False, a missing archive is an error instead of a download.
    progress : bool
        Print a percentage line to stderr while downloading.

    Returns
    -------
    Path
        The archive, whose MD5 matches ``DATASETS[name].md5``.

    Notes
    -----
    The download goes to a hidden temporary file next to the target and is
    renamed only once its checksum matches, so an interrupted or corrupt
    download never leaves a file that looks complete.
    """
    spec = dataset(name)
    if spec.embedded:
        return EMBEDDED_ARCHIVE
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = folder / spec.filename
    url = (base_url or BASE_URL).rstrip("/") + "/" + spec.filename
    if target.exists():
        actual = _md5(target)
        if actual != spec.md5:
            raise DataError(
                f"{target} has MD5 {actual}, expected {spec.md5}: the file is damaged or "
                f"is not the {spec.name} release. Delete it and run again to download it "
                f"anew, {_manual_advice(spec, url)}")
        return target
    if not download:
        raise DataError(
            f"{spec.name} is not in the cache ({target}) and download=False; allow the "
            f"download, {_manual_advice(spec, url)}")
    folder.mkdir(parents=True, exist_ok=True)
    _download(url, target, spec, progress)
    return target


def _download(url, target, spec, progress):
    """Stream ``url`` to ``target`` through a temporary file, checking the MD5."""
    partial = tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        with partial, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0)
            shown = None
            while chunk := response.read(1 << 20):
                partial.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress:
                    shown = _show_progress(spec.filename, received, total, shown)
        if progress:
            print(file=sys.stderr, flush=True)
        if digest.hexdigest() != spec.md5:
            raise DataError(
                f"download of {url} has MD5 {digest.hexdigest()}, expected {spec.md5} "
                f"({received:,} bytes received); it was discarded. Run again to retry, "
                f"{_manual_advice(spec, url)}")
        os.replace(partial.name, target)
    except (urllib.error.URLError, OSError) as error:
        raise DataError(
            f"could not download {url}: {error}. Check the network and run again, "
            f"{_manual_advice(spec, url)}") from error
    finally:
        # Removes the partial file on every failure, Ctrl-C included; after a
        # successful rename the name no longer exists.
        if os.path.exists(partial.name):
            os.unlink(partial.name)


def _show_progress(filename, received, total, shown):
    if total:
        percent = min(100, 100 * received // total)
        if percent != shown:
            print(f"\rdownloading {filename}: {percent:3d}% of {total / 1e6:.1f} MB",
                  end="", file=sys.stderr, flush=True)
        return percent
    print(f"\rdownloading {filename}: {received / 1e6:.1f} MB", end="", file=sys.stderr,
          flush=True)
    return None


class _Files:
    """The two files of a release, read from a zip archive or from a folder."""

    def __init__(self, path, spec, downloaded=False):
        self.path = Path(path).expanduser()
        self.spec = spec
        self.downloaded = downloaded
        if not self.path.exists():
            raise DataError(f"{self.path} does not exist; pass the {spec.filename} archive "
                            f"or the folder it unpacks to")
        self.zip = None
        if self.path.is_file():
            try:
                self.zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as error:
                raise DataError(self._corrupt(error)) from error

    def close(self):
        if self.zip is not None:
            self.zip.close()

    def _advice(self):
        url = BASE_URL + self.spec.filename
        if self.downloaded:
            return f"Delete it and run again to download it anew, or download {url} and pass path="
        return f"Download {url} again and pass its path"

    def _corrupt(self, error):
        return (f"{self.path} is not a readable zip archive ({error}); it is truncated "
                f"or damaged. {self._advice()}")

    def _member(self, filename):
        """Member name of ``filename``: ``<name>/<filename>`` or a unique match."""
        preferred = f"{self.spec.name}/{filename}"
        names = self.zip.namelist()
        if preferred in names:
            return preferred
        matches = [n for n in names if n == filename or n.endswith("/" + filename)]
        if len(matches) == 1:
            return matches[0]
        raise DataError(
            f"{self.path} has no member {preferred!r}"
            + (f" (several candidates: {matches})" if matches else "")
            + f"; it is not the {self.spec.name} archive. {self._advice()}")

    def _file(self, filename):
        for candidate in (self.path / filename, self.path / self.spec.name / filename):
            if candidate.is_file():
                return candidate
        raise DataError(
            f"{self.path} has no file {filename!r} (nor {self.spec.name}/{filename}); "
            f"pass the folder the {self.spec.filename} archive unpacks to, or the archive")

    def label(self, filename):
        """How error messages name the file."""
        if self.zip is not None:
            return f"{self._member(filename)} in {self.path}"
        return str(self._file(filename))

    def open(self, filename):
        """Binary file object of one member."""
        if self.zip is not None:
            return self.zip.open(self._member(filename))
        return open(self._file(filename), "rb")

    def read_text(self, filename):
        encoding = _ENCODING[self.spec.layout]
        with self.reading(), self.open(filename) as f:
            data = f.read()
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as error:
            line = data[:error.start].count(b"\n") + 1
            raise DataError(f"{self.label(filename)}, line {line}: not valid {encoding} "
                            f"({error.reason})") from None

    @contextlib.contextmanager
    def reading(self):
        """Turn errors of a damaged archive, raised while reading, into DataError."""
        try:
            yield
        except (zipfile.BadZipFile, zlib.error, EOFError) as error:
            raise DataError(self._corrupt(error)) from error


def _bad_ratings_line(files, filename, sep, header_lines):
    """Find the first line the ratings reader cannot parse, by reading it slowly.

    Returns ``(line number, line, reason)`` or None. Used only after the fast
    reader has failed, to say exactly where and why.
    """
    encoding = _ENCODING[files.spec.layout]
    with files.reading(), files.open(filename) as raw:
        # Decoding line by line keeps the line number exact for a bad byte too.
        for number, raw_line in enumerate(raw, start=1):
            try:
                line = raw_line.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError as error:
                return number, raw_line, f"not valid {encoding} ({error.reason})"
            if number <= header_lines or not line.strip():
                continue
            fields = line.split(sep)
            if len(fields) != 4:
                return number, line, f"expected 4 fields separated by {sep!r}, found {len(fields)}"
            for field, convert, what in zip(fields, (int, int, float, int),
                                            ("user id", "item id", "rating", "timestamp")):
                try:
                    value = convert(field)
                except ValueError:
                    kind = "whole number" if convert is int else "number"
                    return number, line, f"{what} {field.strip()!r} is not a {kind}"
                if not np.isfinite(value):
                    return number, line, f"{what} {field.strip()!r} is not finite"
    return None


def _read_ratings(files):
    """Ratings arrays of one release, parsed with ``np.loadtxt`` in C."""
    spec = files.spec
    filename = spec.ratings_file
    sep = _SEPARATOR[spec.layout]
    header_lines = 1 if spec.layout == "csv" else 0
    header = None
    table, fast_error = None, None
    with files.reading(), files.open(filename) as raw:
        text = io.TextIOWrapper(raw, encoding=_ENCODING[spec.layout], newline=None)
        # Any ValueError below, a bad byte included, sends us to the slow reader
        # that finds the line; only a wrong header is reported here.
        try:
            if header_lines:
                header = text.readline().strip().lstrip("\ufeff")
            if header is None or header == _CSV_RATINGS_HEADER:
                # loadtxt takes a one-character delimiter; ML-1M's "::" becomes a tab.
                lines = text if len(sep) == 1 else (line.replace(sep, "\t") for line in text)
                with warnings.catch_warnings():
                    # An empty file is reported below with its name, not as a warning.
                    warnings.simplefilter("ignore", UserWarning)
                    table = np.loadtxt(lines, delimiter=sep if len(sep) == 1 else "\t",
                                       dtype=_RATING_DTYPE, comments=None, ndmin=1)
                if not np.all(np.isfinite(table["rating"])):
                    table, fast_error = None, "a rating is not finite"
        except ValueError as error:
            table, fast_error = None, error
    if header is not None and header != _CSV_RATINGS_HEADER:
        raise DataError(f"{files.label(filename)}, line 1: expected the header "
                        f"{_CSV_RATINGS_HEADER!r}, found {header!r}")
    if table is None:
        found = _bad_ratings_line(files, filename, sep, header_lines)
        if found is None:
            raise DataError(f"{files.label(filename)}: cannot parse ratings ({fast_error})")
        number, line, reason = found
        raise DataError(f"{files.label(filename)}, line {number}: {reason}: {line!r}")
    if len(table) == 0:
        raise DataError(f"{files.label(filename)} holds no ratings")
    return table["user"], table["item"], table["rating"], table["timestamp"]


def _read_catalog(files):
    """Catalog of one release (item id, title, genres)."""
    spec = files.spec
    filename = spec.movies_file
    text = files.read_text(filename)
    label = files.label(filename)
    ids, titles, genres = [], [], []

    def bad(number, line, reason):
        return DataError(f"{label}, line {number}: {reason}: {line!r}")

    if spec.layout == "csv":
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None or [h.lstrip("\ufeff") for h in header] != _CSV_MOVIES_HEADER:
            raise bad(1, ",".join(header or []),
                      f"expected the header {','.join(_CSV_MOVIES_HEADER)!r}")
        for row in reader:
            if not row:
                continue
            if len(row) != 3:
                raise bad(reader.line_num, ",".join(row), f"expected 3 fields, found {len(row)}")
            if not row[0].strip().isdigit():
                raise bad(reader.line_num, ",".join(row),
                          f"item id {row[0]!r} is not a whole number")
            ids.append(row[0])
            titles.append(row[1].strip())
            genres.append(() if row[2] == "(no genres listed)" else tuple(row[2].split("|")))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if spec.layout == "1m":
                parts = line.split("::", 1)
                rest = parts[1].rsplit("::", 1) if len(parts) == 2 else []
                if len(rest) != 2:
                    raise bad(number, line, "expected MovieID::Title::Genres")
                item, (title, genre_field) = parts[0], rest
                item_genres = tuple(genre_field.split("|")) if genre_field else ()
            else:
                fields = line.split("|")
                if len(fields) != 5 + len(GENRES_100K):
                    raise bad(number, line, f"expected {5 + len(GENRES_100K)} fields separated "
                                            f"by '|', found {len(fields)}")
                flags = fields[5:]
                if any(flag not in ("0", "1") for flag in flags):
                    raise bad(number, line, "genre flags must be 0 or 1")
                item, title = fields[0], fields[1]
                item_genres = tuple(g for g, flag in zip(GENRES_100K, flags) if flag == "1")
            if not item.strip().isdigit():
                raise bad(number, line, f"item id {item!r} is not a whole number")
            ids.append(item)
            titles.append(title.strip())
            genres.append(item_genres)
    try:
        return Catalog([int(i) for i in ids], titles, genres)
    except DataError as error:
        raise DataError(f"{label}: {error}") from None


def load_ratings(name="ml-latest-small", *, path=None, cache_dir=None, base_url=None,
                 download=True, progress=True):
    """Ratings and catalog of a MovieLens release.

    Parameters
    ----------
    name : str
        A key of ``DATASETS``; it decides the file formats.
    path : str or Path, optional
        The release's zip archive, or the folder it unpacks to (or that
        folder's parent). Nothing is downloaded, and the archive's MD5 is not
        checked, so a re-packed archive works too.
    cache_dir, base_url, download, progress
        Passed to ``fetch`` when ``path`` is not given.

    Returns
    -------
    Ratings
        In file order, with ``catalog`` set.

    Raises
    ------
    DataError
        Unknown name, failed or corrupt download, missing member, or a
        malformed line (the message names the file and the line number).

    Examples
    --------
    >>> ratings = load_ratings()          # embedded ml-latest-small, no network
    >>> len(ratings), ratings.n_users
    (100836, 610)
    """
    spec = dataset(name)
    downloaded = path is None and not spec.embedded
    if path is None:
        path = fetch(name, cache_dir=cache_dir, base_url=base_url, download=download,
                     progress=progress)
    files = _Files(path, spec, downloaded)
    try:
        user, item, rating, timestamp = _read_ratings(files)
        catalog = _read_catalog(files)
    finally:
        files.close()
    return Ratings(user, item, rating, timestamp, catalog, name)
