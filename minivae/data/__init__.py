"""Data for minivae: MovieLens ratings, the paper's split, and synthetic histories.

From a ratings file to the matrices a model trains on::

    from minivae.data import load_ratings, binarize, strong_generalization_split

    ratings = load_ratings("ml-latest-small")   # embedded, no network, ~0.1 s
    events = binarize(ratings, min_rating=3.5, min_user_count=5)
    split = strong_generalization_split(events, n_heldout_users=0.1, test_prop=0.2,
                                        seed=98765)
    print(split.summary())
    split.catalog.find("the matrix")           # -> 2571, the original movieId

Public API
----------
``DATASETS``
    Name -> ``Dataset`` (MD5, file names, size) for ``"ml-latest-small"``
    (embedded), ``"ml-100k"``, ``"ml-1m"`` and ``"ml-20m"``.
``load_ratings(name="ml-latest-small", *, path=None, cache_dir=None, base_url=None, download=True, progress=True) -> Ratings``
    Read a release. ``path=`` takes an archive or the folder it unpacks to
    and never downloads; otherwise ``fetch`` provides the archive.
``fetch(name, *, cache_dir=None, base_url=None, download=True, progress=True) -> Path``
    Download into the cache (``default_cache_dir()``, or ``$MINIVAE_DATA``)
    through a temporary file, check the MD5, return the archive's path.
``default_cache_dir() -> Path``
``Ratings``
    ``user``, ``item``, ``rating``, ``timestamp`` arrays (original ids),
    ``catalog``, ``stats()``, ``summary()``.
``Catalog``
    ``title(id)``, ``genres(id)``, ``year(id)``, ``find(query, year=None)``.
``binarize(ratings, min_rating=3.5, min_user_count=5, min_item_count=0) -> Interactions``
    Events with rating > ``min_rating``, then items and users with enough events.
``Interactions``
    Sorted, unique ``user``, ``item`` pairs; ``to_csr()``, ``stats()``, ``summary()``.
``strong_generalization_split(events, n_heldout_users=0.1, test_prop=0.2, seed=98765, min_items_for_holdout=5) -> Split``
    Training users, and validation / test users with fold-in input and
    held-out targets, all ``csr_matrix`` of float32 ones over the training
    users' items (columns sorted by original id, ``split.item_ids``).
``Split``
    ``train``, ``val_input``, ``val_heldout``, ``test_input``, ``test_heldout``,
    ``item_ids``, ``train_users``, ``val_users``, ``test_users``, ``catalog``,
    ``stats()``, ``summary()``.
``make_synthetic(n_users=1000, n_items=300, n_tastes=5, ..., seed=0) -> Synthetic``
    Histories from a taste model with the true probabilities ``probs`` (U, I),
    ``weights`` (U, T), ``taste`` (U,), ``tastes`` (T, I) and ``x`` (U, I).
``synthetic_like(n_users, n_items, nnz, ..., seed=0) -> csr_matrix``
    A large matrix of a given shape and fill, for benchmarks.
``DataError``
    Subclass of ``ValueError`` for missing, corrupt, malformed or empty data;
    the message says what to do.

Modules: ``movielens`` (registry, readers, downloads), ``catalog`` (titles),
``split`` (binarisation and the split), ``synthetic`` (generated data).
"""

from ._common import DataError
from .catalog import Catalog
from .movielens import DATASETS, Dataset, Ratings, default_cache_dir, fetch, load_ratings
from .split import Interactions, Split, binarize, strong_generalization_split
from .synthetic import Synthetic, make_synthetic, synthetic_like

__all__ = [
    "DATASETS", "Catalog", "DataError", "Dataset", "Interactions", "Ratings", "Split",
    "Synthetic", "binarize", "default_cache_dir", "fetch", "load_ratings", "make_synthetic",
    "strong_generalization_split", "synthetic_like",
]
