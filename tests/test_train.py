"""The training loop: annealing, model selection, determinism, divergence, configuration."""

import json
import math

import numpy as np
import pytest

from minivae import MultDAE, MultVAE
from minivae.checkpoint import load_checkpoint
from minivae.train import (TrainConfig, Trainer, TrainingDiverged, anneal_beta, format_table,
                           load_data, paper_preset, run)


def tiny_config(**changes):
    base = dict(dataset="synthetic", n_synthetic_users=150, n_synthetic_items=150,
                n_heldout_users=15, hidden_dims=[16], latent_dim=4, batch_size=25, epochs=2,
                baselines=False, eval_batch_size=50)
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def data():
    return load_data(tiny_config())


def record_betas(trainer):
    """Wrap the model's loss so every update's beta is recorded."""
    betas = []
    original = trainer.model.loss_and_grads

    def spy(x, beta, rng):
        betas.append(beta)
        return original(x, beta=beta, rng=rng)

    trainer.model.loss_and_grads = spy
    return betas


def test_anneal_beta_is_the_reference_formula():
    assert anneal_beta(0, 0.2, 200_000) == 0.0
    assert anneal_beta(20_000, 0.2, 200_000) == pytest.approx(0.1)
    assert anneal_beta(40_000, 0.2, 200_000) == pytest.approx(0.2)
    assert anneal_beta(10**6, 0.2, 200_000) == 0.2
    assert anneal_beta(0, 0.3, 0) == 0.3


def test_absolute_schedule_counts_updates_across_epochs(data):
    config = tiny_config(epochs=3, anneal_fraction=None, total_anneal_steps=7, anneal_cap=0.5)
    trainer = Trainer(config, data, log=None)
    betas = record_betas(trainer)
    trainer.fit()
    n = trainer.batches_per_epoch * 3
    assert len(betas) == n == trainer.updates
    # beta of update k uses the k updates done before it, never reset at an epoch.
    assert betas == [min(0.5, k / 7) for k in range(n)]


def test_relative_schedule_reaches_the_cap_at_the_fraction(data):
    config = tiny_config(epochs=4, anneal_fraction=0.5, anneal_cap=0.2)
    trainer = Trainer(config, data, log=None)
    N = trainer.batches_per_epoch * 4
    assert trainer.anneal_steps == round(0.5 * N / 0.2)
    betas = record_betas(trainer)
    trainer.fit()
    assert betas[0] == 0.0
    first_at_cap = betas.index(0.2)
    assert first_at_cap == math.ceil(0.5 * N)
    assert all(b == 0.2 for b in betas[first_at_cap:])
    assert np.all(np.diff(betas) >= 0)


def test_config_round_trips_through_json():
    config = tiny_config(likelihood="logistic", weight_decay=1e-4, anneal_fraction=None)
    again = TrainConfig.from_json(config.to_json())
    assert again == config
    assert json.loads(config.to_json())["hidden_dims"] == [16]


@pytest.mark.parametrize("change, word", [({"model": "gan"}, "model"),
                                          ({"likelihood": "poisson"}, "likelihood"),
                                          ({"batch_size": 0}, "batch_size"),
                                          ({"anneal_fraction": 1.5}, "anneal_fraction"),
                                          ({"dropout": 1.0}, "dropout")])
def test_config_rejects_bad_values(change, word):
    with pytest.raises(ValueError, match=word):
        tiny_config(**change)


def test_config_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown configuration fields: colour"):
        TrainConfig.from_dict({"colour": "red"})


def test_paper_preset_is_the_papers_configuration():
    vae = paper_preset()
    assert (vae.dataset, vae.batch_size, vae.epochs, vae.lr) == ("ml-20m", 500, 200, 1e-3)
    assert (vae.anneal_cap, vae.total_anneal_steps, vae.anneal_fraction) == (0.2, 200_000, None)
    assert (vae.min_rating, vae.min_user_count, vae.n_heldout_users) == (3.5, 5, 10_000)
    assert vae.resolved_hidden_dims() == [600] and vae.latent_dim == 200
    assert vae.dropout == 0.5 and vae.resolved_weight_decay() == 0.0
    assert vae.anneal_horizon(234) == 200_000
    dae = paper_preset("dae")
    assert dae.resolved_hidden_dims() == [] and dae.latent_dim == 200
    assert dae.resolved_weight_decay() == pytest.approx(0.01 / 500)


def test_training_is_float32_and_builds_the_configured_models(data):
    vae = Trainer(tiny_config(), data, log=None).model
    assert isinstance(vae, MultVAE) and vae.dtype == np.float32
    assert vae.hidden_dims == (16,) and vae.latent_dim == 4
    dae = Trainer(tiny_config(model="dae", hidden_dims=None), data, log=None).model
    assert isinstance(dae, MultDAE) and dae.hidden_dims == ()
    assert dae.weight_decay == pytest.approx(0.01 / 25)


def test_same_seed_same_numbers_other_seed_other_numbers(data):
    def once(seed):
        trainer = Trainer(tiny_config(seed=seed), data, log=None)
        trainer.fit()
        trainer.use_best()
        return trainer.history, trainer.test()

    (h1, t1), (h2, t2), (h3, _) = once(5), once(5), once(6)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in h1]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in h2]
    assert t1 == t2
    assert h1[0]["loss"] != h3[0]["loss"]


def test_keeps_the_parameters_of_the_best_validation_epoch(data):
    snapshots = {}

    def keep(trainer, record):
        snapshots[record["epoch"]] = {k: p.copy() for k, p in trainer.model.params.items()}

    trainer = Trainer(tiny_config(epochs=3), data, log=None)
    trainer.fit(on_epoch_end=keep)
    scores = [r["val_ndcg@100"] for r in trainer.history]
    assert trainer.best_epoch == 1 + int(np.argmax(scores))
    assert trainer.best_score == max(scores)
    trainer.use_best()
    for name, p in trainer.model.params.items():
        np.testing.assert_array_equal(p, snapshots[trainer.best_epoch][name])
    assert trainer.validate() == trainer.best_score


@pytest.mark.parametrize("likelihood", ["multinomial", "gaussian", "logistic"])
@pytest.mark.parametrize("model", ["vae", "dae"])
def test_every_model_and_likelihood_trains_through_the_same_loop(data, model, likelihood):
    trainer = Trainer(tiny_config(model=model, likelihood=likelihood, epochs=1), data,
                      log=None)
    trainer.fit()
    record = trainer.history[0]
    assert all(math.isfinite(record[k]) for k in ("loss", "nll", "kl", "val_ndcg@100"))
    assert (record["kl"] == 0.0) == (model == "dae")


def test_epoch_record_holds_the_loss_parts(data):
    lines = []
    trainer = Trainer(tiny_config(epochs=1), data, log=lines.append)
    trainer.fit()
    record = trainer.history[0]
    assert set(record) == {"epoch", "seconds", "loss", "nll", "kl", "beta", "val_ndcg@100"}
    assert record["loss"] == pytest.approx(record["nll"] + record["beta"] * record["kl"],
                                           rel=0.05)
    assert len(lines) == 1 and "val ndcg@100" in lines[0] and "beta" in lines[0]


def test_divergence_names_the_epoch_and_keeps_the_best_checkpoint(data, tmp_path):
    def blow_up(trainer, record):
        if record["epoch"] == 2:
            trainer.optimizer.lr = 1e30

    trainer = Trainer(tiny_config(epochs=5, checkpoint_every=10), data, out_dir=tmp_path,
                      log=None)
    with pytest.raises(TrainingDiverged, match="epoch 3") as caught:
        trainer.fit(on_epoch_end=blow_up)
    assert caught.value.epoch == 3
    assert caught.value.best_path == str(tmp_path / "best.npz")
    best = load_checkpoint(tmp_path / "best.npz", item_ids=data.item_ids)
    assert best.epoch == trainer.best_epoch in (1, 2)
    assert all(np.isfinite(p).all() for p in best.model.params.values())
    for name, p in best.model.params.items():
        np.testing.assert_array_equal(p, trainer.best_params[name])


def test_run_reports_the_model_next_to_both_baselines(data, tmp_path):
    result = run(tiny_config(epochs=1, baselines=True, ease_lambdas=[50.0, 500.0]),
                 out_dir=tmp_path, data=data, log=None)
    names = list(result.table)
    assert names[0].startswith("Mult-VAE") and names[1] == "Popularity"
    assert names[2].startswith("EASE (lambda=")
    for summary in result.table.values():
        for metric in ("recall@20", "recall@50", "ndcg@100"):
            mean, stderr, n = summary[metric]
            assert 0 <= mean <= 1 and stderr > 0 and n > 0
    text = format_table(result.table)
    assert "Popularity" in text and "±" in text
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["test"][names[1]]["ndcg@100"]["mean"] == result.table[names[1]]["ndcg@100"][0]
    for name in ("best.npz", "last.npz", "config.json", "history.json", "history.csv",
                 "results.json", "curves.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_default_run_on_the_embedded_data_beats_popularity(tmp_path):
    result = run(TrainConfig(), out_dir=tmp_path, log=None)
    model, popularity = list(result.table.values())[:2]
    assert model["ndcg@100"][0] > popularity["ndcg@100"][0] + 2 * popularity["ndcg@100"][1]
