"""The ``minivae`` command.

::

    minivae train [--model vae|dae] [--dataset NAME] [--epochs N] [--preset paper] ...
    minivae evaluate CHECKPOINT
    minivae recommend CHECKPOINT (--titles T ... | --items ID ... | --file FILE) [-k K]
    minivae data list | fetch NAME | info NAME
    minivae gradcheck [--mode all|sample|direction]

``minivae COMMAND --help`` describes every option. Errors in the input (a
missing file, a corrupt checkpoint, an unknown title, an invalid option value)
print one line, ``minivae: error: ...``, and exit with status 2; a diverged
training run exits with status 3.
"""

import argparse
import os
import sys
import time

import numpy as np

from .checkpoint import CheckpointError, check_vocabulary, load_checkpoint
from .data import DataError
from .train import (PRESETS, TrainConfig, TrainingDiverged, evaluate_baselines, evaluate_model,
                    format_table, load_data, model_label, run)

EXIT_ERROR = 2
EXIT_DIVERGED = 3

# Options of `minivae train` mapped to TrainConfig fields.
_TRAIN_FIELDS = {
    "dataset": "dataset", "data_path": "data_path", "model": "model", "epochs": "epochs",
    "seed": "seed", "batch_size": "batch_size", "lr": "lr", "anneal_cap": "anneal_cap",
    "likelihood": "likelihood", "hidden": "hidden_dims", "latent": "latent_dim",
    "dropout": "dropout", "weight_decay": "weight_decay", "heldout_users": "n_heldout_users",
    "split_seed": "split_seed", "eval_batch_size": "eval_batch_size",
    "checkpoint_every": "checkpoint_every", "dtype": "dtype",
}


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser():
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="minivae",
        description="Mult-VAE and Mult-DAE for recommendation, in pure NumPy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    train = sub.add_parser(
        "train", help="train a model and compare it with popularity and EASE",
        description="Train Mult-VAE (or Mult-DAE), keep the best validation epoch, and report "
                    "test Recall@20, Recall@50 and NDCG@100 next to the popularity and EASE "
                    "baselines on the same split. Writes best.npz, last.npz, config.json, "
                    "history.json/.csv, results.json and curves.png into the run directory.")
    train.add_argument("--preset", choices=sorted(PRESETS),
                       help="start from a named configuration: 'paper' is the paper's ML-20M "
                            "setup (options given explicitly still override it)")
    train.add_argument("--dataset", help=f"data set name or 'synthetic' "
                                         f"(default {defaults.dataset}; see `minivae data list`)")
    train.add_argument("--data-path", help="local copy of the data set (archive or folder)")
    train.add_argument("--model", choices=("vae", "dae"), help="Mult-VAE (default) or Mult-DAE")
    train.add_argument("--epochs", type=_positive_int,
                       help=f"number of epochs (default {defaults.epochs}); with --resume, "
                            "the total to reach")
    train.add_argument("--seed", type=int, help=f"training seed (default {defaults.seed})")
    train.add_argument("--split-seed", type=int,
                       help=f"seed of the held-out users and items (default {defaults.split_seed})")
    train.add_argument("--heldout-users", type=_positive_int,
                       help="validation users, and as many test users (default: 10%% each)")
    train.add_argument("--out", help="run directory (default runs/<model>-<dataset>-<time>)")
    train.add_argument("--batch-size", type=_positive_int,
                       help=f"users per update (default {defaults.batch_size})")
    train.add_argument("--lr", type=float, help=f"Adam step size (default {defaults.lr:g})")
    train.add_argument("--anneal-cap", type=float,
                       help=f"largest KL weight beta (default {defaults.anneal_cap:g})")
    anneal = train.add_mutually_exclusive_group()
    anneal.add_argument("--anneal-steps", type=int,
                        help="reach the cap after this many updates (absolute horizon, "
                             "as in the paper: 200000)")
    anneal.add_argument("--anneal-fraction", type=float,
                        help="reach the cap after this fraction of all the run's updates "
                             f"(default {defaults.anneal_fraction:g})")
    train.add_argument("--likelihood", choices=("multinomial", "gaussian", "logistic"),
                       help="default multinomial")
    train.add_argument("--hidden", type=_positive_int, nargs="*", metavar="H",
                       help="hidden widths between input and code (default 600 for vae, "
                            "none for dae); `--hidden` alone means none")
    train.add_argument("--latent", type=_positive_int,
                       help=f"code size K (default {defaults.latent_dim})")
    train.add_argument("--dropout", type=float,
                       help=f"input dropout probability (default {defaults.dropout:g})")
    train.add_argument("--weight-decay", type=float,
                       help="L2 penalty lambda (default 0 for vae, 0.01 / batch size for dae)")
    train.add_argument("--dtype", choices=("float32", "float64"), help="default float32")
    train.add_argument("--eval-batch-size", type=_positive_int,
                       help=f"users scored at once (default {defaults.eval_batch_size})")
    train.add_argument("--checkpoint-every", type=_positive_int,
                       help=f"write checkpoints every N epochs (default "
                            f"{defaults.checkpoint_every}; always after the last)")
    train.add_argument("--resume", metavar="RUN_OR_CHECKPOINT",
                       help="continue a run from its directory or its last.npz")
    train.add_argument("--no-baselines", action="store_true",
                       help="skip the popularity and EASE baselines")
    train.add_argument("--quiet", action="store_true", help="print only the final table")
    train.set_defaults(handler=cmd_train)

    evaluate = sub.add_parser(
        "evaluate", help="test metrics of a saved checkpoint",
        description="Reload the data set named in the checkpoint, split it again with the "
                    "saved split seed, and report test Recall@20, Recall@50 and NDCG@100.")
    evaluate.add_argument("checkpoint", help="a .npz checkpoint (e.g. RUN/best.npz) or a run "
                                             "directory")
    evaluate.add_argument("--data-path", help="local copy of the data set, if it moved")
    evaluate.add_argument("--baselines", action="store_true",
                          help="also evaluate popularity and EASE")
    evaluate.set_defaults(handler=cmd_evaluate)

    recommend = sub.add_parser(
        "recommend", help="top-k items for a watch history",
        description="Fold in a watch history and print the k best items the user has not "
                    "seen. An empty history falls back to the most popular items.",
        epilog="FILE holds one user per line: items separated by ';' (or by ',' when the "
               "line has no ';'), each an item id (digits only) or a title. Blank lines "
               "and lines starting with '#' are skipped; a line '-' is an empty history.")
    recommend.add_argument("checkpoint", help="a .npz checkpoint or a run directory")
    given = recommend.add_mutually_exclusive_group()
    given.add_argument("--titles", nargs="*", metavar="TITLE",
                       help="titles, any case, year and article optional")
    given.add_argument("--items", nargs="*", type=int, metavar="ID",
                       help="original MovieLens item ids")
    given.add_argument("--file", help="many users, one per line (see below)")
    recommend.add_argument("-k", type=_positive_int, default=10,
                           help="number of items (default 10)")
    recommend.set_defaults(handler=cmd_recommend)

    data = sub.add_parser("data", help="list, download or describe data sets",
                          description="List, download or describe data sets.")
    data_sub = data.add_subparsers(dest="data_command", metavar="ACTION")
    data_sub.required = True
    data_list = data_sub.add_parser("list", help="known data sets",
                                    description="List the known data sets.")
    data_list.set_defaults(handler=cmd_data_list)
    fetch = data_sub.add_parser("fetch", help="download a data set into the cache",
                                description="Download and verify a data set.")
    fetch.add_argument("name")
    fetch.set_defaults(handler=cmd_data_fetch)
    info = data_sub.add_parser("info", help="statistics of a data set and of its split",
                               description="Print the statistics of every part of the split "
                                           "that training would use.")
    info.add_argument("name")
    info.add_argument("--data-path", help="local copy of the data set")
    info.add_argument("--heldout-users", type=_positive_int,
                      help="validation users, and as many test users (default: 10%% each)")
    info.add_argument("--split-seed", type=int, help="seed of the split")
    info.set_defaults(handler=cmd_data_info)

    gradcheck = sub.add_parser(
        "gradcheck", help="check every hand-written gradient against finite differences",
        description="Run the gradient checks of every layer, the Gaussian code, each "
                    "likelihood, weight decay and the whole Mult-VAE and Mult-DAE, in "
                    "float64; exit status 1 if any fails.")
    gradcheck.add_argument("--mode", choices=("all", "sample", "direction"), default="all",
                           help="every entry, a sample of entries, or one random direction "
                                "per tensor (default all)")
    gradcheck.add_argument("--seed", type=int, default=0, help="seed of the test inputs")
    gradcheck.set_defaults(handler=cmd_gradcheck)

    bench = sub.add_parser(
        "benchmark", help="time training and evaluation on MovieLens-shaped synthetic data",
        description="Time a warm-up and a fixed number of training batches on synthetic data "
                    "of the ML-1M and ML-20M training shapes, extrapolate seconds per epoch, "
                    "and report peak memory, evaluation time and the fraction of the "
                    "matrix-multiply floor, measured on the spot.")
    from . import benchmark
    benchmark.add_arguments(bench)
    bench.set_defaults(handler=benchmark.run)

    exercises = sub.add_parser(
        "exercises", help="a student edition with blanked backward passes, and its grader",
        description="Write a student edition of minivae whose marked backward passes are "
                    "blanked, or grade the edition that is installed.")
    ex_sub = exercises.add_subparsers(dest="exercises_command", metavar="COMMAND", required=True)
    ex_list = ex_sub.add_parser("list", help="the exercises and where each is derived",
                                description="List the exercises and where each is derived.")
    ex_list.set_defaults(handler=cmd_exercises_list)
    ex_make = ex_sub.add_parser(
        "make", help="write a student edition into a new directory",
        description="Copy the package into DIR with every exercise body replaced by a "
                    "NotImplementedError; install it with 'pip install DIR'.")
    ex_make.add_argument("directory", help="a new or empty directory")
    ex_make.set_defaults(handler=cmd_exercises_make)
    ex_check = ex_sub.add_parser(
        "check", help="grade the exercises of the installed edition",
        description="Run the gradient and closed-form checks of each exercise against the "
                    "installed minivae; exit status 1 while any exercise is not correct.")
    ex_check.add_argument("names", nargs="*", metavar="NAME",
                          help="exercises to grade (default: all; see 'minivae exercises list')")
    ex_check.set_defaults(handler=cmd_exercises_check)
    return parser


def _say(args, text):
    if not getattr(args, "quiet", False):
        print(text, flush=True)


def _train_config(args):
    """The TrainConfig the options describe (preset first, then explicit options)."""
    model = args.model or "vae"
    config = PRESETS[args.preset](model=model) if args.preset else TrainConfig(model=model)
    changes = {}
    for option, name in _TRAIN_FIELDS.items():
        value = getattr(args, option)
        if value is not None:
            changes[name] = value
    if args.anneal_steps is not None:
        changes.update(total_anneal_steps=args.anneal_steps, anneal_fraction=None)
    if args.anneal_fraction is not None:
        changes["anneal_fraction"] = args.anneal_fraction
    if args.no_baselines:
        changes["baselines"] = False
    return config.replace(**changes)


def _default_run_dir(config):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = os.path.join("runs", f"{config.model}-{config.dataset}-{stamp}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def cmd_train(args):
    log = None if args.quiet else (lambda line: print(line, flush=True))
    if args.resume:
        fixed = [f"--{option.replace('_', '-')}" for option in (*_TRAIN_FIELDS, "preset",
                                                                "anneal_steps",
                                                                "anneal_fraction")
                 if option != "epochs" and getattr(args, option) is not None]
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot be changed when resuming; the saved "
                             "configuration is used (only --epochs, --out, --no-baselines "
                             "and --quiet apply)")
        baselines = False if args.no_baselines else None
        result = run(resume=args.resume, out_dir=args.out, epochs=args.epochs, log=log,
                     baselines=baselines)
    else:
        config = _train_config(args)
        out = args.out or _default_run_dir(config)
        data = load_data(config)
        split = data.split
        _say(args, f"training {model_label(config)} on {config.dataset}: "
                   f"{split.train.shape[0]} training, {split.val_input.shape[0]} validation, "
                   f"{split.test_input.shape[0]} test users; {data.n_items} items; "
                   f"run directory {out}")
        result = run(config, out_dir=out, data=data, log=log)
    t = result.trainer
    _say(args, f"trained {t.epoch} epochs ({t.updates} updates) in {result.seconds:.1f} s; "
               f"best validation NDCG@100 {t.best_score:.4f} at epoch {t.best_epoch}")
    print(format_table(result.table))
    _say(args, f"run directory: {result.out_dir} (best.npz, last.npz, config.json, "
               f"history.json, results.json, curves.png)")
    return 0


def _checkpoint_path(path, name="best.npz"):
    return os.path.join(path, name) if os.path.isdir(path) else path


def cmd_evaluate(args):
    path = _checkpoint_path(args.checkpoint)
    ckpt = load_checkpoint(path)
    config = TrainConfig.from_dict(ckpt.config)
    if args.data_path:
        config = config.replace(data_path=args.data_path)
    data = load_data(config)
    check_vocabulary(path, ckpt.item_ids, data.item_ids)
    table = {f"{model_label(config)} (epoch {ckpt.epoch})":
             evaluate_model(ckpt.model.predict, data.split, config.eval_batch_size)}
    if args.baselines:
        table.update(evaluate_baselines(data, config))
    print(f"{path}: {config.dataset}, split seed {config.split_seed}")
    print(format_table(table))
    return 0


def cmd_recommend(args):
    from .recommend import Recommender, recommend_file

    path = _checkpoint_path(args.checkpoint)
    recommender = Recommender.from_checkpoint(path)
    if args.file:
        results, line_numbers = recommend_file(recommender, args.file, args.k)
        for rec, number in zip(results, line_numbers):
            print(f"user on line {number} ({len(rec.history)} items):")
            print(rec.format())
        return 0
    history = args.titles if args.titles is not None else (args.items or [])
    rec = recommender.recommend(history, args.k)
    if rec.from_popularity:
        print("note: the history is empty, so these are the most popular items "
              "(not personalised)", file=sys.stderr)
    print(rec.format())
    return 0


def cmd_data_list(args):
    from .data.movielens import DATASETS

    width = max(len(name) for name in DATASETS)
    for name, spec in DATASETS.items():
        print(f"{name.ljust(width)}  {spec.description}")
    print(f"{'synthetic'.ljust(width)}  generated taste-model histories (no download)")
    return 0


def cmd_data_fetch(args):
    from .data.movielens import fetch

    if args.name == "synthetic":
        raise ValueError("the synthetic data set is generated, there is nothing to fetch")
    print(fetch(args.name))
    return 0


def cmd_data_info(args):
    changes = {"dataset": args.name}
    if args.data_path:
        changes["data_path"] = args.data_path
    if args.heldout_users is not None:
        changes["n_heldout_users"] = args.heldout_users
    if args.split_seed is not None:
        changes["split_seed"] = args.split_seed
    config = TrainConfig(**changes)
    if args.name != "synthetic":
        from .data.movielens import load_ratings
        print(load_ratings(args.name, path=config.data_path).summary())
        print()
    print(load_data(config).split.summary())
    return 0


def gradient_checks(mode="all", seed=0):
    """Every gradient check of the package, as ``(name, report, tolerance)``.

    Layers alone and between two linear layers, the reparameterization and the
    KL term, each likelihood, the weight penalty, and whole float64 models.
    """
    from . import gradcheck as gc
    from .gaussian import Reparameterize, kl_divergence
    from .layers import Dropout, L2Normalize, Linear, Tanh
    from .likelihoods import LIKELIHOODS
    from .models import MultDAE, MultVAE
    from .optim import l2_penalty

    rng = np.random.default_rng(seed)
    B, I, H, K = 5, 12, 6, 3
    layer_makers = {
        "Linear": lambda: (Linear(7, 7, rng), {}),
        "Tanh": lambda: (Tanh(), {}),
        "Dropout": lambda: (Dropout(0.4), {"mask": rng.random((B, 7)) >= 0.4}),
        "L2Normalize": lambda: (L2Normalize(), {}),
    }
    for name, make in layer_makers.items():
        layer, kw = make()
        yield (f"layer {name}", gc.check_layers([layer], rng.standard_normal((B, 7)), [kw],
                                                mode=mode, rng=rng), gc.LAYER_TOL)
        layer, kw = make()
        stack = [Linear(4, 7, rng), layer, Linear(7, 3, rng)]
        yield (f"layer {name} between two Linear", gc.check_layers(
            stack, rng.standard_normal((B, 4)), [{}, kw, {}], mode=mode, rng=rng), gc.LAYER_TOL)

    mu, logvar = rng.standard_normal((B, K)), 0.5 * rng.standard_normal((B, K))
    eps = rng.standard_normal((B, K))
    sampler = Reparameterize()
    projection = rng.standard_normal((B, K))

    def sampled():
        return float(np.sum(sampler.forward(mu, logvar, eps=eps) * projection))

    sampled()
    dmu, dlogvar = sampler.backward(projection)
    yield ("reparameterization", gc.check_gradients(
        sampled, {"mu": mu, "logvar": logvar}, {"mu": dmu, "logvar": dlogvar}, mode=mode,
        rng=rng), gc.LAYER_TOL)
    _, (dmu, dlogvar) = kl_divergence(mu, logvar)
    yield ("KL divergence", gc.check_gradients(
        lambda: kl_divergence(mu, logvar)[0], {"mu": mu, "logvar": logvar},
        {"mu": dmu, "logvar": dlogvar}, mode=mode, rng=rng), gc.LAYER_TOL)

    x = (rng.random((B, I)) < 0.3).astype(np.float64)
    x[:, 0] = 1.0
    for name, nll in LIKELIHOODS.items():
        logits = rng.standard_normal((B, I))
        _, dlogits = nll(logits, x)
        yield (f"{name} likelihood", gc.check_gradients(
            lambda: nll(logits, x)[0], {"logits": logits}, {"logits": dlogits}, mode=mode,
            rng=rng), gc.LAYER_TOL)

    weights = {"W1": rng.standard_normal((4, 3)), "W2": rng.standard_normal((3, 2))}
    _, dweights = l2_penalty(weights, 0.3, list(weights))
    yield ("weight decay", gc.check_gradients(
        lambda: l2_penalty(weights, 0.3, list(weights))[0], weights, dweights, mode=mode,
        rng=rng), gc.LAYER_TOL)

    vae = MultVAE(I, hidden_dims=(H,), latent_dim=K, dropout=0.5, dtype=np.float64,
                  seed=seed)
    yield ("MultVAE", gc.check_model(vae, x, beta=0.2, mode=mode, rng=rng), gc.MODEL_TOL)
    dae = MultDAE(I, hidden_dims=(H,), latent_dim=K, dropout=0.5, weight_decay=0.01,
                  dtype=np.float64, seed=seed)
    yield ("MultDAE (with weight decay)", gc.check_model(dae, x, mode=mode, rng=rng),
           gc.MODEL_TOL)


def cmd_gradcheck(args):
    failed = []
    for name, report, tol in gradient_checks(args.mode, args.seed):
        ok = report.passed(tol)
        print(f"== {name}: {'ok' if ok else 'FAILED'} (max rel err {report.max_error:.2e}, "
              f"pass bar {tol:g})")
        print(report)
        print()
        if not ok:
            failed.append(name)
    if failed:
        print(f"{len(failed)} gradient check(s) failed: {', '.join(failed)}")
        return 1
    print("all gradient checks passed")
    return 0


def cmd_exercises_list(args):
    from .exercises import EXERCISES
    width = max(map(len, EXERCISES))
    for name, (what, where) in EXERCISES.items():
        print(f"{name.ljust(width)}  {what}\n{' ' * width}  derived in {where}")
    return 0


def cmd_exercises_make(args):
    from .exercises import make_student_edition
    try:
        blanked = make_student_edition(args.directory)
    except FileExistsError as exc:
        raise ValueError(str(exc)) from None
    print(f"wrote a student edition to {args.directory} with {len(blanked)} exercises blanked:")
    print("  " + ", ".join(blanked))
    print(f"install it with: pip install -e {args.directory}")
    print("then grade it with: minivae exercises check")
    return 0


def cmd_exercises_check(args):
    from .exercises import check_exercises, format_verdicts
    verdicts = check_exercises(args.names)
    print(f"grading the minivae installed at {os.path.dirname(os.path.abspath(__file__))}")
    print(format_verdicts(verdicts))
    return 0 if all(v.status == "correct" for v in verdicts) else 1


def main(argv=None):
    """Run the command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except TrainingDiverged as exc:
        print(f"minivae: error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except (DataError, CheckpointError, ValueError, MemoryError) as exc:
        print(f"minivae: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"minivae: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("minivae: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
