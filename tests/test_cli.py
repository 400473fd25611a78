"""The `minivae` command, end to end through cli.main."""

import json

import numpy as np
import pytest

from minivae.checkpoint import load_checkpoint
from minivae.cli import build_parser, main

TINY = ["--dataset", "synthetic", "--heldout-users", "15", "--hidden", "16", "--latent", "4",
        "--batch-size", "25"]


def train(tmp_path, *extra, name="run"):
    out = tmp_path / name
    status = main(["train", *TINY, "--out", str(out), *extra])
    return status, out


def error_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("minivae: error: ") and "Traceback" not in err
    assert err.count("\n") == 1
    return err


def test_train_prints_epochs_and_the_table_and_fills_the_run_directory(tmp_path, capsys):
    status, out = train(tmp_path, "--epochs", "2")
    assert status == 0
    text = capsys.readouterr().out
    assert text.count("val ndcg@100") == 2
    for row in ("Mult-VAE (epoch", "Popularity", "EASE (lambda=", "Recall@20", "NDCG@100"):
        assert row in text
    for name in ("best.npz", "last.npz", "config.json", "history.json", "history.csv",
                 "results.json", "curves.png"):
        assert (out / name).is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "synthetic" and config["epochs"] == 2
    history = (out / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,seconds,loss,nll,kl,beta,val_ndcg@100" and len(history) == 3


def test_train_on_the_embedded_data(tmp_path, capsys):
    status = main(["train", "--epochs", "1", "--hidden", "8", "--latent", "4",
                   "--no-baselines", "--out", str(tmp_path / "small")])
    assert status == 0
    text = capsys.readouterr().out
    assert "ml-latest-small" in text and "Popularity" not in text
    ckpt = load_checkpoint(tmp_path / "small" / "best.npz")
    assert ckpt.config["dataset"] == "ml-latest-small"
    assert ckpt.catalog.find("toy story") == 1


@pytest.mark.parametrize("model", ["vae", "dae"])
def test_paper_preset_end_to_end_on_a_synthetic_stand_in(tmp_path, capsys, model):
    status, out = train(tmp_path, "--preset", "paper", "--model", model, "--epochs", "2",
                        "--no-baselines", "--quiet")
    assert status == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["lr"], config["anneal_cap"], config["total_anneal_steps"]) == \
        (1e-3, 0.2, 200_000)
    assert config["anneal_fraction"] is None and config["min_rating"] == 3.5
    assert config["dropout"] == 0.5 and config["latent_dim"] == 4
    # --batch-size 25 overrides the preset's 500; the DAE's decay follows 0.01 / 500.
    assert config["weight_decay"] == (0.0 if model == "vae" else 0.01 / 500)
    results = json.loads((out / "results.json").read_text())
    assert results["epochs"] == 2 and results["anneal_steps"] == 200_000
    label = "Mult-VAE" if model == "vae" else "Mult-DAE"
    assert list(results["test"])[0].startswith(label)
    text = capsys.readouterr().out
    assert "val ndcg@100" not in text and f"{label} (epoch" in text


def test_resume_matches_an_uninterrupted_run(tmp_path):
    absolute = ["--anneal-steps", "10", "--no-baselines", "--quiet"]
    assert train(tmp_path, "--epochs", "4", *absolute, name="straight")[0] == 0
    assert train(tmp_path, "--epochs", "2", *absolute, name="split")[0] == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "--epochs", "4", "--quiet"]) == 0
    a = load_checkpoint(tmp_path / "straight" / "last.npz")
    b = load_checkpoint(tmp_path / "split" / "last.npz")
    assert (a.epoch, a.updates) == (b.epoch, b.updates) == (4, a.updates)
    for name, p in a.model.params.items():
        np.testing.assert_array_equal(p, b.model.params[name])
    assert a.meta["history"][3]["loss"] == b.meta["history"][3]["loss"]


def test_resume_refuses_changed_options(tmp_path, capsys):
    train(tmp_path, "--epochs", "1", "--no-baselines", "--quiet")
    assert main(["train", "--resume", str(tmp_path / "run"), "--lr", "0.1"]) == 2
    assert "--lr cannot be changed when resuming" in error_line(capsys)


def test_diverging_run_exits_with_a_message(tmp_path, capsys):
    status, out = train(tmp_path, "--epochs", "2", "--lr", "1e30", "--no-baselines")
    assert status == 3
    assert "training diverged in epoch 1" in error_line(capsys)


def test_evaluate_reproduces_the_reported_metrics(tmp_path, capsys):
    train(tmp_path, "--epochs", "2", "--no-baselines", "--quiet")
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run" / "best.npz")]) == 0
    text = capsys.readouterr().out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    ndcg = list(results["test"].values())[0]["ndcg@100"]
    assert f"{ndcg['mean']:.4f} ± {ndcg['stderr']:.4f}" in text


def test_recommend_by_items_by_file_and_empty(tmp_path, capsys):
    train(tmp_path, "--epochs", "1", "--no-baselines", "--quiet")
    capsys.readouterr()
    run = str(tmp_path / "run")
    assert main(["recommend", run, "--items", "1", "2", "3", "-k", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert all(int(line.split()[1]) not in (1, 2, 3) for line in lines)
    assert main(["recommend", run, "--titles", "Synthetic item 5", "-k", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert main(["recommend", run, "-k", "3"]) == 0
    captured = capsys.readouterr()
    assert "most popular" in captured.err and "most popular" in captured.out
    users = tmp_path / "users.txt"
    users.write_text("1; 2\n# a comment\n4, 5, 6\n")
    assert main(["recommend", run, "--file", str(users), "-k", "2"]) == 0
    text = capsys.readouterr().out
    assert "user on line 1" in text and "user on line 3" in text


@pytest.mark.parametrize("argv, phrase", [
    (["evaluate", "{tmp}/absent.npz"], "no such file"),
    (["evaluate", "{tmp}/junk.npz"], "not an .npz archive"),
    (["recommend", "{tmp}/run", "--items", "99999"], "unknown item id 99999"),
    (["recommend", "{tmp}/run", "--titles", "Synthetic itme 5"], "did you mean"),
    (["recommend", "{tmp}/run", "--file", "{tmp}/nothing.txt"], "cannot read it"),
    (["train", "--dataset", "ml-5m", "--out", "{tmp}/x"], "unknown data set 'ml-5m'"),
    (["train", "--dropout", "1.5", "--out", "{tmp}/x"], "dropout must be in [0, 1)"),
    (["data", "info", "nonsense"], "unknown data set"),
])
def test_errors_are_one_line_without_traceback(tmp_path, capsys, argv, phrase):
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all" * 50)
    if "{tmp}/run" in argv:
        train(tmp_path, "--epochs", "1", "--no-baselines", "--quiet")
        capsys.readouterr()
    status = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert status == 2
    assert phrase in error_line(capsys)


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["recommend"], ["data"],
                                     ["data", "info"], ["gradcheck"]])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as caught:
        main([*command, "--help"])
    assert caught.value.code == 0
    assert "usage: minivae" in capsys.readouterr().out


def test_parser_documents_every_train_option():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for option in ("--dataset", "--data-path", "--model", "--epochs", "--seed", "--out",
                   "--batch-size", "--lr", "--anneal-cap", "--anneal-steps",
                   "--anneal-fraction", "--likelihood", "--hidden", "--latent", "--dropout",
                   "--weight-decay", "--preset", "--resume", "--no-baselines", "--quiet"):
        assert option in text


def test_gradcheck_passes_and_prints_every_table(capsys):
    assert main(["gradcheck", "--mode", "direction"]) == 0
    text = capsys.readouterr().out
    for name in ("layer Linear", "layer Dropout between two Linear", "reparameterization",
                 "KL divergence", "multinomial likelihood", "gaussian likelihood",
                 "logistic likelihood", "weight decay", "MultVAE", "MultDAE"):
        assert f"== {name}" in text
    assert "all gradient checks passed" in text and "FAILED" not in text


def test_gradcheck_fails_loudly_on_a_broken_gradient(monkeypatch, capsys):
    import minivae.gaussian as gaussian

    original = gaussian.kl_divergence

    def wrong(mu, logvar):
        kl, (dmu, dlogvar) = original(mu, logvar)
        return kl, (2 * dmu, dlogvar)

    monkeypatch.setattr(gaussian, "kl_divergence", wrong)
    assert main(["gradcheck", "--mode", "all"]) == 1
    assert "== KL divergence: FAILED" in capsys.readouterr().out


def test_data_list_and_info(capsys):
    assert main(["data", "list"]) == 0
    text = capsys.readouterr().out
    assert "ml-latest-small" in text and "ml-20m" in text and "synthetic" in text
    assert main(["data", "info", "synthetic", "--heldout-users", "50"]) == 0
    text = capsys.readouterr().out
    for part in ("train", "val_input", "val_heldout", "test_input", "test_heldout"):
        assert part in text
