"""Checkpoints: round trip, atomic writes, refusal of bad files, resuming."""

import json
import os

import numpy as np
import pytest

from minivae import Adam, MultVAE
from minivae.checkpoint import (FORMAT_VERSION, CheckpointError, atomic_write, load_checkpoint,
                                save_checkpoint)
from minivae.data.catalog import Catalog
from minivae.train import TrainConfig, Trainer, load_data


def tiny_config(**changes):
    base = dict(dataset="synthetic", n_synthetic_users=150, n_synthetic_items=150,
                n_heldout_users=15, hidden_dims=[16], latent_dim=4, batch_size=25, epochs=4,
                baselines=False, eval_batch_size=50, checkpoint_every=1)
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def data():
    return load_data(tiny_config())


@pytest.fixture
def saved(tmp_path):
    """A small model after one Adam step, saved with a catalog."""
    rng = np.random.default_rng(0)
    model = MultVAE(20, hidden_dims=(8,), latent_dim=3, seed=1)
    optimizer = Adam(model.params)
    x = (rng.random((6, 20)) < 0.3).astype(np.float32)
    _, grads = model.loss_and_grads(x, beta=0.1, rng=rng)
    optimizer.step(grads)
    item_ids = np.arange(100, 120)
    catalog = Catalog(item_ids, [f"Film {i} (2001)" for i in item_ids],
                      [("Drama",) if i % 2 else ("Comedy", "Romance") for i in item_ids])
    path = tmp_path / "model.npz"
    save_checkpoint(path, model, item_ids, np.arange(20), {"config": {"seed": 1}, "epoch": 3},
                    optimizer=optimizer, catalog=catalog)
    return path, model, optimizer, item_ids


def test_round_trip_restores_everything(saved):
    path, model, optimizer, item_ids = saved
    ckpt = load_checkpoint(path, item_ids=item_ids)
    assert ckpt.model.config() == model.config()
    for name, p in model.params.items():
        np.testing.assert_array_equal(ckpt.model.params[name], p)
        assert ckpt.model.params[name].dtype == p.dtype
    for key, a in optimizer.state_dict().items():
        np.testing.assert_array_equal(ckpt.optim_state[key], a)
    np.testing.assert_array_equal(ckpt.item_ids, item_ids)
    np.testing.assert_array_equal(ckpt.item_counts, np.arange(20))
    assert ckpt.epoch == 3 and ckpt.config == {"seed": 1}
    assert ckpt.meta["format"] == "minivae-checkpoint" and ckpt.meta["version"] == FORMAT_VERSION
    assert ckpt.catalog.title(105) == "Film 105 (2001)"
    assert ckpt.catalog.genres(104) == ("Comedy", "Romance")
    x = np.zeros((2, 20), dtype=np.float32)
    x[0, 3] = x[1, 7] = 1
    np.testing.assert_array_equal(ckpt.model.predict(x), model.predict(x))


def test_the_file_holds_only_plain_arrays(saved):
    path = saved[0]
    with np.load(path, allow_pickle=False) as archive:
        assert all(archive[k].dtype != object for k in archive.files)
        meta = json.loads(str(archive["meta"][()]))
        assert archive["meta"].shape == () and meta["epoch"] == 3
        assert archive["item_ids"].dtype == np.int64
        assert any(k.startswith("param.") for k in archive.files)
        assert any(k.startswith("optim.") for k in archive.files)


def test_a_failed_write_keeps_the_previous_file(saved):
    path = saved[0]
    before = path.read_bytes()

    def crash(f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["model.npz"]


def refused(path, *phrases, **kw):
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, **kw)
    message = str(caught.value)
    assert str(path) in message
    for phrase in phrases:
        assert phrase in message
    return message


def test_refuses_a_truncated_file(saved, tmp_path):
    data = saved[0].read_bytes()
    for n in (len(data) // 2, len(data) - 10, 100):
        short = tmp_path / f"short{n}.npz"
        short.write_bytes(data[:n])
        refused(short, "minivae checkpoint")


def test_refuses_random_bytes_and_missing_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    refused(junk, "not an .npz archive")
    refused(tmp_path / "absent.npz", "no such file")


def test_refuses_a_foreign_npz(tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    refused(foreign, "'meta' entry is missing")
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array(json.dumps({"format": "keras", "version": 1})))
    refused(other, "format 'keras'")


def test_refuses_pickled_objects(tmp_path):
    evil = tmp_path / "evil.npz"
    np.savez(evil, meta=np.array([{"format": "minivae-checkpoint"}], dtype=object))
    refused(evil, "corrupt")


def rewrite(path, target, change):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    change(arrays)
    np.savez(target, **arrays)
    return target


def test_refuses_a_newer_version_and_a_missing_parameter(saved, tmp_path):
    path = saved[0]

    def newer(arrays):
        meta = json.loads(str(arrays["meta"][()]))
        meta["version"] = FORMAT_VERSION + 1
        arrays["meta"] = np.array(json.dumps(meta))

    refused(rewrite(path, tmp_path / "newer.npz", newer), "newer minivae")
    refused(rewrite(path, tmp_path / "missing.npz",
                    lambda a: a.pop("param.decoder.1.W")), "decoder.1.W")


def test_refuses_a_shape_mismatch(saved, tmp_path):
    def shrink(arrays):
        arrays["param.encoder.0.W"] = arrays["param.encoder.0.W"][:, :5]

    refused(rewrite(saved[0], tmp_path / "shape.npz", shrink), "shape mismatch", "encoder.0.W")


def test_refuses_a_different_item_vocabulary(saved):
    path, _, _, item_ids = saved
    other = item_ids.copy()
    other[4] = 999
    refused(path, "vocabulary mismatch", "item 104", item_ids=other)
    refused(path, "vocabulary mismatch", "the data has 21", item_ids=np.arange(21))


def same_params(a, b):
    return all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


def test_resume_continues_exactly_where_it_stopped(data, tmp_path):
    # Relative annealing: the horizon must come from the checkpoint, not be
    # recomputed, or beta would change after the resume.
    config = tiny_config(anneal_fraction=0.5, anneal_cap=0.3)
    straight = Trainer(config, data, log=None)
    straight.fit()

    first = Trainer(config, data, out_dir=tmp_path / "run", log=None)
    first.fit(until_epoch=2)
    resumed = Trainer.resume(str(tmp_path / "run"), data=data, log=None)
    assert (resumed.epoch, resumed.updates) == (2, first.updates)
    assert resumed.optimizer.t == first.optimizer.t
    resumed.fit()

    assert same_params(straight.model, resumed.model)
    for key in ("m", "v"):
        for name in straight.optimizer.m:
            np.testing.assert_array_equal(getattr(straight.optimizer, key)[name],
                                          getattr(resumed.optimizer, key)[name])
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    assert resumed.best_epoch == straight.best_epoch
    straight.use_best()
    resumed.use_best()
    assert same_params(straight.model, resumed.model)
    assert straight.test() == resumed.test()


def test_resume_refuses_other_data(data, tmp_path):
    trainer = Trainer(tiny_config(epochs=1), data, out_dir=tmp_path, log=None)
    trainer.fit()
    other = load_data(tiny_config(n_synthetic_items=160))
    with pytest.raises(CheckpointError, match="vocabulary mismatch"):
        Trainer.resume(str(tmp_path / "last.npz"), data=other, log=None)
