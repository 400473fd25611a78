r"""How fast does Mult-VAE train, and how close is that to what the machine allows?

``python -m minivae.benchmark`` (or ``minivae benchmark``) trains the default
Mult-VAE (:math:`I \to 600 \to 200 \to 600 \to I`, batches of 500 users, Adam,
float32) on synthetic watch histories shaped like MovieLens, and prints one
table with, for each shape:

* seconds per epoch, extrapolated from a fixed number of timed batches after a
  few warm-up batches: :math:`t_\text{batch} \cdot U / B`, with
  :math:`t_\text{batch}` the median batch;
* the peak resident memory of the process (``ru_maxrss``); each shape runs in
  a fresh process, so each peak belongs to one shape;
* the evaluation time: the forward pass and NDCG@100, Recall@20, Recall@50 for
  up to 10,000 users;
* the fraction of the floor reached.

The floor
---------
Three dense products of the output layer cannot be avoided by any
implementation: the forward :math:`h W` (B x H times H x I), the weight gradient
:math:`h^\top G` and the input gradient :math:`G W^\top`. Each costs
:math:`2 B H I` floating-point operations, so an epoch costs at least

.. math::
    F = 3 \cdot 2\, U H I

operations. The benchmark times ``np.matmul`` on float32 arrays of exactly these
shapes and layouts, on this machine, right now (best of a few), which gives the
floor :math:`F / \text{throughput}`: the epoch time of an ideal implementation
that spends nothing on anything else. The fraction of the floor is the floor
divided by the measured epoch time.

The synthetic data
------------------
``ml-1m``: 6,040 users, 3,706 items, 580,000 nonzeros; ``ml-20m``: 116,677
users, 20,108 items, 8.5 million nonzeros (the paper's training users); items
follow a power-law popularity and users a log-normal activity, seeded. The
matrix is built once in the parent process and handed to each run as an
uncompressed ``.npz`` file, so the peak memory of a run is that of training,
not of building the data.

Timings depend on everything else the machine is doing: the table reports the
load average before and after, and ``--repeats`` runs each shape several times
and reports the median with the spread.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy
import scipy.sparse as sp

from .models import MultVAE
from .optim import Adam

#: name -> (users, items, nonzeros, users evaluated)
SHAPES = {
    "tiny": (600, 400, 12_000, 200),
    "ml-1m": (6_040, 3_706, 580_000, 6_040),
    "ml-20m": (116_677, 20_108, 8_500_000, 10_000),
}

#: Default number of timed batches per shape (after the warm-up).
DEFAULT_BATCHES = {"tiny": 2, "ml-1m": 12, "ml-20m": 20}

BATCH_SIZE = 500
HIDDEN = 600
LATENT = 200

STAGES = ("input stage", "encoder forward", "sampling and KL", "decoder forward",
          "softmax/likelihood", "decoder backward", "encoder backward", "Adam", "other")


def _power_law_csr(n_users, n_items, nnz, seed):
    """A binary CSR matrix with power-law item popularity, built from its
    (row, column) pairs in one pass.

    Used when ``minivae.data.synthetic_like`` is not available. Each user's
    items are drawn by inverse-CDF sampling from a Zipf popularity; repeated
    items in a row are merged, so the count comes out slightly below ``nnz``.
    """
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1)
    cumulative = np.cumsum(rng.permutation(popularity))
    cumulative /= cumulative[-1]
    activity = np.exp(rng.standard_normal(n_users))
    counts = np.minimum(1 + rng.multinomial(nnz - n_users, activity / activity.sum()), n_items)
    rows = np.repeat(np.arange(n_users, dtype=np.int32), counts)
    cols = np.searchsorted(cumulative, rng.random(rows.size), side="right").astype(np.int32)
    x = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(n_users, n_items))
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def make_data(shape, seed=0):
    """The synthetic training matrix of a named shape.

    Parameters
    ----------
    shape : {"tiny", "ml-1m", "ml-20m"}
    seed : int

    Returns
    -------
    csr_matrix of float32, shape (U, I)
    """
    n_users, n_items, nnz, _ = SHAPES[shape]
    try:
        from .data import synthetic_like
    except ImportError:
        return _power_law_csr(n_users, n_items, nnz, seed)
    return sp.csr_matrix(synthetic_like(n_users, n_items, nnz, seed=seed), dtype=np.float32)


def _split_for_evaluation(x, rng, heldout_fraction=0.2):
    """Fold-in and held-out parts of every history: each stored entry is held
    out with probability ``heldout_fraction``."""
    held = rng.random(x.nnz) < heldout_fraction
    # Each part gets its own index arrays: eliminate_zeros works in place.
    fold_in = sp.csr_matrix((np.where(held, 0, x.data), x.indices.copy(), x.indptr.copy()),
                            shape=x.shape)
    heldout = sp.csr_matrix((np.where(held, x.data, 0), x.indices.copy(), x.indptr.copy()),
                            shape=x.shape)
    fold_in.eliminate_zeros()
    heldout.eliminate_zeros()
    return fold_in, heldout


def _best_time(fn, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_floor(B, H, I, seed=0, repeats=5):
    """Time the three unavoidable products of the output layer, float32.

    Returns
    -------
    dict
        ``"seconds"`` per batch for each product (``forward``, ``weight_grad``,
        ``input_grad``), their sum ``"batch_floor"``, and ``"gflops"``, the
        throughput of the three together.
    """
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((B, H), dtype=np.float32)
    W = rng.standard_normal((H, I), dtype=np.float32)
    G = rng.standard_normal((B, I), dtype=np.float32)
    logits = np.empty((B, I), np.float32)
    dW = np.empty((H, I), np.float32)
    dh = np.empty((B, H), np.float32)
    # The layouts the model uses: h W, then h^T G and G W^T through transposed views.
    seconds = {
        "forward": _best_time(lambda: np.matmul(h, W, out=logits), repeats),
        "weight_grad": _best_time(lambda: np.matmul(h.T, G, out=dW), repeats),
        "input_grad": _best_time(lambda: np.matmul(G, W.T, out=dh), repeats),
    }
    batch_floor = sum(seconds.values())
    return {"seconds": seconds, "batch_floor": batch_floor,
            "gflops": 3 * 2 * B * H * I / batch_floor / 1e9}


def peak_rss_mb():
    """Peak resident memory of this process so far, in MB (ru_maxrss is in kB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / 1024 if sys.platform == "darwin" else peak / 1024


def _batches(n_users, batch_size, rng):
    """Row indices of the batches of one shuffled epoch, endlessly."""
    while True:
        order = rng.permutation(n_users)
        for start in range(0, n_users, batch_size):
            yield np.sort(order[start:start + batch_size])


def time_training(x, n_batches, warmup=3, batch_size=BATCH_SIZE, seed=0, beta=0.2):
    """Train a default float32 Mult-VAE for a few batches and time it.

    Parameters
    ----------
    x : csr_matrix, shape (U, I)
    n_batches : int
        Timed batches, after ``warmup`` untimed ones.

    Returns
    -------
    model : MultVAE
    seconds : list of float
        Wall time of each timed batch (slicing the batch, forward, backward,
        Adam).
    """
    rng = np.random.default_rng(seed)
    model = MultVAE(x.shape[1], hidden_dims=(HIDDEN,), latent_dim=LATENT, seed=seed)
    optimizer = Adam(model.params, lr=1e-3)
    rows = _batches(x.shape[0], batch_size, rng)
    seconds = []
    for n in range(warmup + n_batches):
        start = time.perf_counter()
        _, grads = model.loss_and_grads(x[next(rows)], beta=beta, rng=rng)
        optimizer.step(grads)
        if n >= warmup:
            seconds.append(time.perf_counter() - start)
    return model, seconds


def time_evaluation(model, x, n_users, seed=0, batch_size=1000):
    """Time the forward pass and the ranking metrics for ``n_users`` users.

    Returns
    -------
    dict
        ``"forward"``: seconds for the scores alone; ``"evaluate"``: seconds for
        the scores and NDCG@100, Recall@20, Recall@50 (None when
        ``minivae.metrics`` is unavailable); ``"ndcg@100"``, the mean, as a
        sanity check that real metrics were computed.
    """
    fold_in, heldout = _split_for_evaluation(x[:n_users], np.random.default_rng(seed))
    start = time.perf_counter()
    for lo in range(0, n_users, batch_size):
        model.predict(fold_in[lo:lo + batch_size])
    result = {"forward": time.perf_counter() - start, "evaluate": None, "ndcg@100": None}
    try:
        from .metrics import evaluate
    except ImportError:
        return result
    start = time.perf_counter()
    per_user = evaluate(model.predict, fold_in, heldout, batch_size=batch_size)
    result["evaluate"] = time.perf_counter() - start
    result["ndcg@100"] = float(np.nanmean(per_user["ndcg@100"]))
    return result


class _StageTimer:
    """Accumulates wall time per stage by wrapping the methods of one model."""

    def __init__(self):
        self.seconds = dict.fromkeys(STAGES, 0.0)
        self._undo = []

    def _timed(self, inner, stage):
        """``inner`` with its wall time added to ``stage``."""
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
        return timed

    def wrap(self, obj, method, stage):
        setattr(obj, method, self._timed(getattr(obj, method), stage))
        self._undo.append((obj, method))

    def wrap_dict(self, table, key, stage):
        self._undo.append((table, key, table[key]))
        table[key] = self._timed(table[key], stage)

    def restore(self):
        for item in reversed(self._undo):
            if len(item) == 3:
                item[0][item[1]] = item[2]
            else:
                delattr(*item)
        self._undo = []


def profile_stages(x, n_batches, warmup=2, batch_size=BATCH_SIZE, seed=0, beta=0.2):
    """Time per stage of a training batch, averaged over ``n_batches``.

    The model's own layers are timed (their methods are wrapped for the
    duration of the call), so the profile measures the code that trains.

    Returns
    -------
    dict of stage -> seconds per batch (see ``STAGES``), plus ``"total"``.
    """
    from . import models

    rng = np.random.default_rng(seed)
    model = MultVAE(x.shape[1], hidden_dims=(HIDDEN,), latent_dim=LATENT, seed=seed)
    optimizer = Adam(model.params, lr=1e-3)
    rows = _batches(x.shape[0], batch_size, rng)
    for _ in range(warmup):
        optimizer.step(model.loss_and_grads(x[next(rows)], beta=beta, rng=rng)[1])
    timer = _StageTimer()
    timer.wrap(model, "_as_batch", "input stage")
    timer.wrap(model, "_input_stage", "input stage")
    timer.wrap(model.sampler, "forward", "sampling and KL")
    timer.wrap(model.sampler, "backward", "sampling and KL")
    for stack, name in ((model.encoder, "encoder"), (model.decoder, "decoder")):
        for layer in stack:
            timer.wrap(layer, "forward", f"{name} forward")
            timer.wrap(layer, "backward", f"{name} backward")
    timer.wrap_dict(models.LIKELIHOODS, model.likelihood, "softmax/likelihood")
    timer.wrap(optimizer, "step", "Adam")
    try:
        start = time.perf_counter()
        for _ in range(n_batches):
            optimizer.step(model.loss_and_grads(x[next(rows)], beta=beta, rng=rng)[1])
        total = time.perf_counter() - start
    finally:
        timer.restore()
    profile = {k: v / n_batches for k, v in timer.seconds.items()}
    profile["other"] = total / n_batches - sum(profile.values())
    profile["total"] = total / n_batches
    return profile


def time_torch(x, n_batches, warmup=3, batch_size=BATCH_SIZE, seed=0, beta=0.2, threads=2):
    """Time a faithful PyTorch Mult-VAE on the same data: dense float32 input
    batches, ``torch.optim.Adam``, ``threads`` intra-op threads.

    Returns
    -------
    list of float or None
        Seconds per timed batch; None when PyTorch is not installed.
    """
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    n_items = x.shape[1]
    net = torch.nn.ModuleDict({
        "enc0": torch.nn.Linear(n_items, HIDDEN), "enc1": torch.nn.Linear(HIDDEN, 2 * LATENT),
        "dec0": torch.nn.Linear(LATENT, HIDDEN), "dec1": torch.nn.Linear(HIDDEN, n_items),
    })
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    rows = _batches(x.shape[0], batch_size, rng)
    seconds = []
    for n in range(warmup + n_batches):
        start = time.perf_counter()
        batch = torch.from_numpy(x[next(rows)].toarray())
        h = torch.nn.functional.normalize(batch, dim=1)
        h = torch.nn.functional.dropout(h, 0.5, training=True)
        h = torch.tanh(net["enc0"](h))
        out = net["enc1"](h)
        mu, logvar = out[:, :LATENT], out[:, LATENT:]
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        logits = net["dec1"](torch.tanh(net["dec0"](z)))
        nll = -torch.mean(torch.sum(torch.log_softmax(logits, dim=1) * batch, dim=1))
        kl = torch.mean(torch.sum(0.5 * (mu * mu + logvar.exp() - logvar - 1), dim=1))
        loss = nll + beta * kl
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if n >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def run_shape(shape, x, n_batches, torch=False, profile=False, seed=0):
    """Measure one shape once, in this process.

    Returns
    -------
    dict
        Everything the table shows for this run (see :func:`format_table`).
    """
    n_users, n_items = x.shape
    n_eval = SHAPES[shape][3] if shape in SHAPES else min(10_000, n_users)
    load = os.getloadavg()[0]
    model, seconds = time_training(x, n_batches, seed=seed)
    # The median batch: a batch slowed down by another program on the machine
    # does not move it.
    per_batch = float(np.median(seconds))
    floor = matmul_floor(BATCH_SIZE, HIDDEN, n_items, seed=seed)
    result = {
        "shape": shape, "users": n_users, "items": n_items, "nnz": int(x.nnz),
        "batches": n_batches, "batch_seconds": per_batch,
        "epoch_seconds": per_batch * n_users / BATCH_SIZE,
        "floor_epoch_seconds": floor["batch_floor"] * n_users / BATCH_SIZE,
        "matmul_gflops": floor["gflops"], "load_1min": load,
    }
    result["floor_fraction"] = result["floor_epoch_seconds"] / result["epoch_seconds"]
    evaluation = time_evaluation(model, x, min(n_eval, n_users), seed=seed)
    result.update({"eval_users": min(n_eval, n_users), "eval_forward_seconds": evaluation["forward"],
                   "eval_seconds": evaluation["evaluate"], "eval_ndcg@100": evaluation["ndcg@100"]})
    del model
    result["peak_mb"] = peak_rss_mb()
    if profile:
        result["profile"] = profile_stages(x, n_batches, seed=seed)
    if torch:
        torch_seconds = time_torch(x, n_batches, seed=seed)
        result["torch_epoch_seconds"] = (None if torch_seconds is None
                                         else float(np.median(torch_seconds)) * n_users / BATCH_SIZE)
    return result


def _thread_info():
    info = {"cpu_count": os.cpu_count()}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info.update({k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                "MKL_NUM_THREADS") if k in os.environ})
        return info
    info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads",
                                          "architecture")} for p in threadpool_info()]
    return info


def environment():
    """Versions, BLAS and threads, and the load average, for the report."""
    blas = None
    try:
        config = np.show_config(mode="dicts")
        blas_dep = config["Build Dependencies"]["blas"]
        blas = f"{blas_dep.get('name')} {blas_dep.get('version')}"
    except Exception:  # numpy's config layout is informational and may change
        pass
    return {"python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "blas": blas, "threads": _thread_info(),
            "load_average": list(os.getloadavg())}


def _summarise(runs):
    """Median and spread (min, max) of each numeric field over repeated runs."""
    summary = {k: runs[0][k] for k in ("shape", "users", "items", "nnz", "batches",
                                       "eval_users")}
    summary["repeats"] = len(runs)
    for key in runs[0]:
        if key in summary or key == "profile":
            continue
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if values:
            summary[key] = float(np.median(values))
            summary[key + "_spread"] = [float(min(values)), float(max(values))]
        else:
            summary[key] = None
    profiles = [r["profile"] for r in runs if "profile" in r]
    if profiles:
        summary["profile"] = {k: float(np.median([p[k] for p in profiles])) for k in profiles[0]}
    if summary.get("torch_epoch_seconds"):
        summary["torch_speedup"] = summary["torch_epoch_seconds"] / summary["epoch_seconds"]
    return summary


def _run_in_subprocess(shape, data_path, n_batches, torch, profile, seed):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        command = [sys.executable, "-m", "minivae.benchmark", "--child", data_path,
                   "--shape", shape, "--batches", str(n_batches), "--seed", str(seed),
                   "--json", out]
        command += ["--torch"] if torch else []
        command += ["--profile"] if profile else []
        subprocess.run(command, check=True)
        with open(out) as f:
            return json.load(f)


def benchmark(shapes, n_batches=None, repeats=1, torch=False, profile=False, seed=0,
              in_process=False):
    """Run the benchmark on each shape ``repeats`` times.

    Parameters
    ----------
    shapes : list of str
        Keys of ``SHAPES``.
    n_batches : int, optional
        Timed batches per run (default ``DEFAULT_BATCHES[shape]``).
    repeats : int
        Runs per shape; the table shows their median and spread.
    torch : bool
        Also time the PyTorch reference.
    profile : bool
        Also time each stage of a batch.
    in_process : bool
        Run in this process instead of a fresh one per run (peak memory is
        then that of the whole process).

    Returns
    -------
    dict
        ``"environment"`` and ``"results"`` (one summary per shape).
    """
    env = environment()
    results = []
    for shape in shapes:
        batches = n_batches or DEFAULT_BATCHES[shape]
        x = make_data(shape, seed)
        if in_process:
            runs = [run_shape(shape, x, batches, torch, profile, seed) for _ in range(repeats)]
        else:
            with tempfile.TemporaryDirectory() as tmp:
                data_path = os.path.join(tmp, f"{shape}.npz")
                sp.save_npz(data_path, x, compressed=False)
                del x
                runs = [_run_in_subprocess(shape, data_path, batches, torch, profile, seed)
                        for _ in range(repeats)]
        results.append(_summarise(runs))
    env["load_average_after"] = list(os.getloadavg())
    return {"environment": env, "results": results}


def _fmt(value, spec, spread=None):
    if value is None:
        return "n/a"
    text = format(value, spec)
    if spread and spread[0] != spread[1]:
        text += f" [{format(spread[0], spec)}, {format(spread[1], spec)}]"
    return text


def format_table(report):
    """The report as a plain-text table (medians, [min, max] over repeats)."""
    rows = [("shape", "s/epoch", "floor s/epoch", "of floor", "peak MB", "eval s",
             "torch s/epoch", "torch / ours")]
    for r in report["results"]:
        rows.append((
            f"{r['shape']} ({r['users']}x{r['items']}, {r['nnz']} nnz)",
            _fmt(r["epoch_seconds"], ".3g", r.get("epoch_seconds_spread")),
            _fmt(r["floor_epoch_seconds"], ".3g", r.get("floor_epoch_seconds_spread")),
            _fmt(r["floor_fraction"], ".0%", r.get("floor_fraction_spread")),
            _fmt(r["peak_mb"], ".0f", r.get("peak_mb_spread")),
            _fmt(r["eval_seconds"] if r["eval_seconds"] is not None
                 else r["eval_forward_seconds"], ".2f", r.get("eval_seconds_spread")),
            _fmt(r.get("torch_epoch_seconds"), ".3g"),
            _fmt(r.get("torch_speedup"), ".2f"),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    env = report["environment"]
    lines.append("")
    lines.append(f"runs per shape: {report['results'][0]['repeats'] if report['results'] else 0}"
                 f" (median [min, max]); batch {BATCH_SIZE}, MultVAE [{HIDDEN}, {LATENT}], "
                 f"Adam, float32")
    for r in report["results"]:
        lines.append(f"{r['shape']}: {r['batches']} timed batches, matmul "
                     f"{_fmt(r['matmul_gflops'], '.0f', r.get('matmul_gflops_spread'))} GFLOP/s, "
                     f"eval {r['eval_users']} users (forward alone "
                     f"{_fmt(r['eval_forward_seconds'], '.2f')} s), load average at start "
                     f"{_fmt(r['load_1min'], '.2f', r.get('load_1min_spread'))}")
        if "profile" in r:
            total = r["profile"]["total"]
            parts = ", ".join(f"{k} {1e3 * v:.0f} ms" for k, v in r["profile"].items()
                              if k != "total")
            lines.append(f"  per batch {1e3 * total:.0f} ms: {parts}")
    lines.append(f"numpy {env['numpy']}, scipy {env['scipy']}, BLAS {env['blas']}, "
                 f"python {env['python']}; threads {env['threads']}")
    lines.append("load average before " + ", ".join(f"{v:.2f}" for v in env["load_average"])
                 + "; after " + ", ".join(f"{v:.2f}" for v in env["load_average_after"]))
    return "\n".join(lines)


def add_arguments(parser):
    """Add the benchmark's options to an ``argparse`` parser."""
    parser.add_argument("--shape", choices=("ml-1m", "ml-20m", "both", "tiny"), default="both",
                        help="data shape to train on (default: both MovieLens shapes)")
    parser.add_argument("--batches", type=int, default=None,
                        help="timed batches per run (default: 12 for ml-1m, 20 for ml-20m)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per shape, each in a fresh process (default: 3)")
    parser.add_argument("--torch", action="store_true",
                        help="also time a PyTorch Mult-VAE (skipped if torch is missing)")
    parser.add_argument("--profile", action="store_true",
                        help="also time each stage of a training batch")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--in-process", action="store_true",
                        help="run in this process instead of one fresh process per run")
    parser.add_argument("--child", metavar="NPZ", default=None, help=argparse.SUPPRESS)
    return parser


def run(args):
    """Run the benchmark from parsed arguments; returns the exit status."""
    if args.batches is not None and args.batches < 1:
        print("--batches must be at least 1", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print("--repeats must be at least 1", file=sys.stderr)
        return 2
    if args.child:
        result = run_shape(args.shape, sp.load_npz(args.child).tocsr(),
                           args.batches or DEFAULT_BATCHES[args.shape],
                           args.torch, args.profile, args.seed)
        with open(args.json, "w") as f:
            json.dump(result, f)
        return 0
    shapes = ["ml-1m", "ml-20m"] if args.shape == "both" else [args.shape]
    report = benchmark(shapes, args.batches, args.repeats, args.torch, args.profile,
                       args.seed, args.in_process)
    if args.torch and any(r.get("torch_epoch_seconds") is None for r in report["results"]):
        print("note: PyTorch is not installed; the PyTorch reference was skipped")
    print(format_table(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(run(add_arguments(argparse.ArgumentParser(
        prog="python -m minivae.benchmark", description=__doc__.splitlines()[0])).parse_args()))
