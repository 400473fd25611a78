"""Checkpoints: a trained model, its optimiser and its run, in one ``.npz`` file.

A checkpoint is an ordinary NumPy ``.npz`` archive (a zip of ``.npy`` arrays):

=====================  ==========================================================
key                    holds
=====================  ==========================================================
``param.<name>``       every entry of the model's ``params`` dict
``optim.<key>``        the optimiser's ``state_dict()`` (Adam: ``t``, ``m.*``,
                       ``v.*``); absent when no optimiser was saved
``item_ids``           int64, shape (I,): the original item id of every column
``item_counts``        int64, shape (I,): training users per item (popularity)
``catalog.titles``     str, shape (I,): titles of the items (optional)
``catalog.genres``     str, shape (I,): their genres joined by ``|`` (optional)
``meta``               a 0-d str array holding JSON: format name, format version,
                       the run's configuration, the model's constructor arguments,
                       epoch, update count, best validation score, the training
                       generator's state and the per-epoch history
=====================  ==========================================================

Only numbers and strings are stored, and the file is read with
``np.load(..., allow_pickle=False)``: opening a checkpoint can never run code.

Writing is atomic: the archive goes to a temporary file in the same directory,
is flushed and ``fsync``-ed, then renamed over the target with ``os.replace``
(atomic on POSIX and Windows). A crash mid-write leaves the previous checkpoint
intact.

Reading checks everything before trusting it: that the file is a zip archive of
arrays, that it carries the format name ``"minivae-checkpoint"`` and a version
this code understands, that every parameter exists with the right shape, and,
when the caller knows the data, that the item vocabulary is the same. Every
failure raises :class:`CheckpointError` naming the file and the problem.
"""

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .data.catalog import Catalog
from .models import model_from_config

FORMAT_NAME = "minivae-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, foreign, too new, or does not fit the data."""


def atomic_write(path, write):
    """Write a file so that readers see either the old or the new content, never a mix.

    Parameters
    ----------
    path : str or os.PathLike
        The target file.
    write : callable
        ``write(f)`` writes the content to the binary file object ``f``.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        # mkstemp creates the file readable by its owner only; give it the
        # permissions an ordinary open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json(path, obj):
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, allow_nan=True) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes
    ----------
    path : str
    model : MultVAE or MultDAE
        Built from the saved constructor arguments, holding the saved parameters.
    optim_state : dict of str -> ndarray, or None
        For ``Adam.load_state_dict``.
    item_ids : ndarray of int64, shape (I,)
        Original item id of each column.
    item_counts : ndarray of int64, shape (I,)
        Training users per item.
    catalog : Catalog or None
        Titles and genres of the I items, when they were saved.
    meta : dict
        Everything else (see the module docstring); ``meta["config"]`` is the
        run's configuration as a dict.
    """

    path: str
    model: object
    optim_state: dict
    item_ids: np.ndarray
    item_counts: np.ndarray
    catalog: Catalog = None
    meta: dict = field(default_factory=dict)

    @property
    def config(self):
        return self.meta.get("config", {})

    @property
    def epoch(self):
        return self.meta.get("epoch")

    @property
    def updates(self):
        return self.meta.get("updates")


def save_checkpoint(path, model, item_ids, item_counts, meta, optimizer=None, catalog=None,
                    params=None):
    """Save a model (and optionally its optimiser) as an ``.npz`` checkpoint, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    model : MultVAE or MultDAE
    item_ids : array_like of int, shape (I,)
        Original item id of each column of the model.
    item_counts : array_like of int, shape (I,)
        Number of training users of each item.
    meta : dict
        JSON-able facts about the run (configuration, epoch, update count, best
        score, generator state, history). The format name, version and the
        model's constructor arguments are added here.
    optimizer : Adam or SGD, optional
    catalog : Catalog, optional
        Titles and genres; those of the I items are stored, so recommending
        needs no data set.
    params : dict of str -> ndarray, optional
        Parameters to save instead of the model's current ones (same keys and
        shapes), e.g. copies kept from the best epoch.
    """
    item_ids = np.asarray(item_ids, dtype=np.int64)
    item_counts = np.asarray(item_counts, dtype=np.int64)
    I = model.n_items
    if item_ids.shape != (I,) or item_counts.shape != (I,):
        raise ValueError(f"item_ids and item_counts must have shape ({I},), got "
                         f"{item_ids.shape} and {item_counts.shape}")
    params = model.params if params is None else params
    for name, p in model.params.items():
        if name not in params or params[name].shape != p.shape:
            raise ValueError(f"parameter {name!r} is missing or has the wrong shape")
    arrays = {f"param.{name}": params[name] for name in model.params}
    if optimizer is not None:
        arrays.update({f"optim.{k}": np.asarray(a) for k, a in optimizer.state_dict().items()})
    arrays["item_ids"] = item_ids
    arrays["item_counts"] = item_counts
    if catalog is not None:
        known = [i for i in item_ids if i in catalog]
        if len(known) == I:
            arrays["catalog.titles"] = np.array([catalog.title(i) for i in item_ids], dtype=str)
            arrays["catalog.genres"] = np.array(
                ["|".join(catalog.genres(i)) for i in item_ids], dtype=str)
    full_meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "model": model.config()}
    full_meta.update(meta)
    arrays["meta"] = np.array(json.dumps(full_meta, allow_nan=True))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _fail(path, problem):
    raise CheckpointError(f"{path}: {problem}")


def _read_arrays(path):
    """Every array of the archive, read eagerly (a truncated member fails here)."""
    if not os.path.exists(path):
        _fail(path, "no such file")
    if not zipfile.is_zipfile(path):
        _fail(path, "not a minivae checkpoint (not an .npz archive; corrupt or truncated?)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        _fail(path, f"cannot be read, the file is corrupt or truncated ({exc})")


def load_checkpoint(path, item_ids=None):
    """Read and check a checkpoint.

    Parameters
    ----------
    path : str or os.PathLike
    item_ids : array_like of int, shape (I,), optional
        The item vocabulary of the data the caller is about to use; the
        checkpoint is refused unless it was trained on exactly these items in
        this order.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError
        Not a zip archive, truncated, missing entries, a foreign format, a newer
        version, a parameter of the wrong shape, or a different item vocabulary.
    """
    path = os.fspath(path)
    arrays = _read_arrays(path)
    if "meta" not in arrays:
        _fail(path, "not a minivae checkpoint (the 'meta' entry is missing)")
    try:
        meta = json.loads(str(arrays["meta"][()]))
    except (ValueError, TypeError) as exc:
        _fail(path, f"the 'meta' entry is not valid JSON ({exc})")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else None
        _fail(path, f"not a minivae checkpoint (format {found!r}, expected {FORMAT_NAME!r})")
    version = meta.get("version")
    if not isinstance(version, int) or version < 1:
        _fail(path, f"invalid format version {version!r}")
    if version > FORMAT_VERSION:
        _fail(path, f"written by a newer minivae (format version {version}; this version "
                    f"reads up to {FORMAT_VERSION}); upgrade minivae to read it")
    for key in ("model", "config"):
        if not isinstance(meta.get(key), dict):
            _fail(path, f"the metadata has no {key!r} section")
    for key in ("item_ids", "item_counts"):
        if key not in arrays:
            _fail(path, f"the {key!r} entry is missing")

    try:
        model = model_from_config(meta["model"])
    except (TypeError, ValueError, KeyError) as exc:
        _fail(path, f"the saved model description is invalid ({exc})")
    params = {k[len("param."):]: a for k, a in arrays.items() if k.startswith("param.")}
    missing = [name for name in model.params if name not in params]
    if missing:
        _fail(path, f"parameters missing: {', '.join(missing)}")
    unexpected = [name for name in params if name not in model.params]
    if unexpected:
        _fail(path, f"unexpected parameters: {', '.join(unexpected)}")
    try:
        model.load_params(params)
    except (ValueError, TypeError) as exc:
        _fail(path, f"shape mismatch: {exc}")

    saved_ids = arrays["item_ids"]
    I = model.n_items
    if saved_ids.shape != (I,) or not np.issubdtype(saved_ids.dtype, np.integer):
        _fail(path, f"'item_ids' must be {I} integers, found shape {saved_ids.shape} "
                    f"of {saved_ids.dtype}")
    counts = arrays["item_counts"]
    if counts.shape != (I,):
        _fail(path, f"'item_counts' must have shape ({I},), found {counts.shape}")
    if item_ids is not None:
        check_vocabulary(path, saved_ids, item_ids)

    optim_state = {k[len("optim."):]: a for k, a in arrays.items() if k.startswith("optim.")}
    catalog = None
    if "catalog.titles" in arrays and "catalog.genres" in arrays:
        titles, genres = arrays["catalog.titles"], arrays["catalog.genres"]
        if titles.shape != (I,) or genres.shape != (I,):
            _fail(path, "the saved titles do not match the item vocabulary")
        catalog = Catalog(saved_ids, [str(t) for t in titles],
                          [tuple(g for g in str(s).split("|") if g) for s in genres])
    return Checkpoint(path, model, optim_state or None, saved_ids.astype(np.int64),
                      counts.astype(np.int64), catalog, meta)


def check_vocabulary(path, saved_ids, item_ids):
    """Raise :class:`CheckpointError` unless two item vocabularies are identical."""
    item_ids = np.asarray(item_ids)
    if saved_ids.shape != item_ids.shape:
        _fail(path, f"item vocabulary mismatch: the checkpoint has {saved_ids.size} items, "
                    f"the data has {item_ids.size} (different data set or preprocessing?)")
    differ = np.flatnonzero(saved_ids != item_ids)
    if differ.size:
        j = differ[0]
        _fail(path, f"item vocabulary mismatch: {differ.size} of {saved_ids.size} columns "
                    f"differ (column {j}: item {saved_ids[j]} in the checkpoint, "
                    f"{item_ids[j]} in the data)")
