"""Quality of the default settings: Mult-VAE, Mult-DAE, EASE and popularity over split seeds.

Trains ``minivae train``'s defaults (``TrainConfig()``) for each split seed and
reports the mean and standard error over seeds of each method's test NDCG@100,
Recall@20 and Recall@50, with the seconds per training run. With
``--synthetic`` it also trains on the synthetic generator and compares every
method with the oracle that ranks by the true item probabilities.

    python benchmarks/quality.py                  # ml-latest-small, seeds 0-4
    python benchmarks/quality.py --seeds 0 1 --synthetic
"""

import argparse
import time

import numpy as np

from minivae.metrics import ranking_metrics, summarize
from minivae.train import TrainConfig, evaluate_baselines, load_data, model_label, run

METRICS = ("ndcg@100", "recall@20", "recall@50")


def one_seed(config, log):
    """Test metrics (means over test users) of every method on one split."""
    data = load_data(config)
    rows, seconds = {}, {}
    for model in ("vae", "dae"):
        c = config.replace(model=model)
        result = run(c, out_dir=None, data=data, log=None, baselines=False, plot=False)
        rows[model_label(c)] = {m: v[0] for m, v in result.trainer.test().items()}
        seconds[model_label(c)] = result.seconds
        log(f"  {model_label(c)}: best epoch {result.trainer.best_epoch}, "
            f"test NDCG@100 {rows[model_label(c)]['ndcg@100']:.4f}, {result.seconds:.0f} s")
    for name, table in evaluate_baselines(data, config, log=None).items():
        rows[name.split(" (")[0]] = {m: v[0] for m, v in table.items()}
    if data.truth is not None:
        # The ceiling: rank each test user's unseen items by the probabilities
        # that generated them.
        split = data.split
        probs = np.array(data.truth.probs[split.test_users], dtype=np.float64)
        oracle = summarize(ranking_metrics(probs, split.test_heldout, exclude=split.test_input))
        rows["Oracle (true probabilities)"] = {m: v[0] for m, v in oracle.items()}
    return rows, seconds


def report(per_seed, seconds, title):
    print(f"\n{title}")
    names = list(per_seed[0])
    print(f"{'method':30s}" + "".join(f"{m:>20s}" for m in METRICS) + "   s/run")
    for name in names:
        cells = []
        for m in METRICS:
            values = np.array([rows[name][m] for rows in per_seed])
            se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
            cells.append(f"{values.mean():.3f} +- {se:.3f}".rjust(20))
        t = [s[name] for s in seconds if name in s]
        print(f"{name:30s}" + "".join(cells) + (f"   {np.mean(t):5.0f}" if t else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--synthetic", action="store_true",
                        help="also run on the synthetic generator, with the oracle")
    args = parser.parse_args()
    datasets = [("ml-latest-small", {})]
    if args.synthetic:
        datasets.append(("synthetic", {"n_synthetic_users": 2000, "n_synthetic_items": 500}))
    for dataset, extra in datasets:
        per_seed, seconds = [], []
        for seed in args.seeds:
            print(f"{dataset}, seed {seed}", flush=True)
            start = time.time()
            config = TrainConfig(dataset=dataset, seed=seed, split_seed=seed, **extra)
            rows, secs = one_seed(config, print)
            per_seed.append(rows)
            seconds.append(secs)
            print(f"  ({time.time() - start:.0f} s for this seed)", flush=True)
        report(per_seed, seconds, f"{dataset}: mean +- standard error over split seeds "
                                  f"{', '.join(map(str, args.seeds))} (test users)")


if __name__ == "__main__":
    main()
