"""The benchmark command (a tiny smoke run, no timing asserted) and the fast-path
kernels it measures: chunks, buffers reused in place, float32 throughout."""

import argparse
import json

import numpy as np
import pytest
import scipy.sparse as sp

import minivae.likelihoods as lk
import minivae.optim as optim
from minivae import MultVAE, benchmark
from minivae.gradcheck import LAYER_TOL, check_gradients, check_layers
from minivae.layers import Dropout, L2Normalize, Linear

POSITIVE_FIELDS = ("batch_seconds", "epoch_seconds", "floor_epoch_seconds", "floor_fraction",
                   "matmul_gflops", "peak_mb", "eval_forward_seconds", "eval_seconds")


def parse(*argv):
    return benchmark.add_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_tiny_run_prints_the_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    status = benchmark.run(parse("--shape", "tiny", "--batches", "2", "--repeats", "1",
                                 "--in-process", "--profile", "--json", str(path)))
    assert status == 0
    printed = capsys.readouterr().out
    for header in ("s/epoch", "floor s/epoch", "of floor", "peak MB", "eval s"):
        assert header in printed
    assert "load average" in printed and "numpy" in printed
    report = json.loads(path.read_text())
    (result,) = report["results"]
    assert result["shape"] == "tiny" and result["batches"] == 2
    assert (result["users"], result["items"]) == benchmark.SHAPES["tiny"][:2]
    for key in POSITIVE_FIELDS:
        assert result[key] > 0, key
    assert 0 <= result["eval_ndcg@100"] <= 1
    assert set(result["profile"]) == set(benchmark.STAGES) | {"total"}
    assert result["profile"]["total"] > 0 and result["profile"]["Adam"] > 0
    env = report["environment"]
    assert env["numpy"] and env["scipy"] and env["threads"]["cpu_count"] >= 1
    assert len(env["load_average"]) == 3


def test_profile_leaves_the_model_code_unwrapped():
    from minivae import models
    before = dict(models.LIKELIHOODS)
    benchmark.profile_stages(benchmark.make_data("tiny"), 1, warmup=1)
    assert models.LIKELIHOODS == before


def test_bad_options_are_refused(capsys):
    assert benchmark.run(parse("--shape", "tiny", "--batches", "0")) == 2
    assert "--batches" in capsys.readouterr().err


def test_torch_reference_runs_when_available():
    pytest.importorskip("torch")
    seconds = benchmark.time_torch(benchmark.make_data("tiny"), 1, warmup=1)
    assert len(seconds) == 1 and seconds[0] > 0


def test_synthetic_data_has_the_requested_shape():
    x = benchmark.make_data("tiny", seed=3)
    users, items, nnz, _ = benchmark.SHAPES["tiny"]
    assert x.shape == (users, items) and x.dtype == np.float32
    assert 0.9 * nnz <= x.nnz <= nnz and np.all(x.data == 1)
    fallback = benchmark._power_law_csr(users, items, nnz, seed=3)
    assert fallback.shape == (users, items) and 0.5 * nnz <= fallback.nnz <= nnz
    assert x.has_canonical_format and fallback.has_canonical_format


def test_training_never_makes_a_dense_history(monkeypatch):
    """The batch stays CSR through the whole step: densifying it would raise."""
    def refuse(*args, **kwargs):
        raise AssertionError("a watch-history batch was made dense")

    rng = np.random.default_rng(0)
    x = sp.random(20, 60, density=0.1, random_state=rng, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    model = MultVAE(60, hidden_dims=(12,), latent_dim=4)
    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        monkeypatch.setattr(cls, "toarray", refuse)
        monkeypatch.setattr(cls, "todense", refuse)
    model.loss_and_grads(x, rng=rng)


def test_float32_training_keeps_every_array_float32():
    rng = np.random.default_rng(1)
    x = sp.random(30, 80, density=0.1, random_state=rng, format="csr", dtype=np.float32)
    x.data[:] = 1.0
    model = MultVAE(80, hidden_dims=(16,), latent_dim=5)
    # A NumPy float64 beta (what an annealing schedule may compute) and a
    # float64 noise array must not turn the step float64.
    eps = rng.standard_normal((30, 5))
    loss, grads = model.loss_and_grads(x, beta=np.float64(0.2), eps=eps, rng=rng)
    assert np.isfinite(float(loss))
    for name, g in grads.items():
        assert g.dtype == np.float32, name
    y_values, norm, _ = model.normalize.cache
    assert y_values.dtype == norm.dtype == model.dropout.cache[0].dtype == np.float32
    for layer in model.encoder + model.decoder:
        cached = layer.cache.data if sp.issparse(layer.cache) else layer.cache
        assert cached.dtype == np.float32, type(layer).__name__
    assert all(a.dtype == np.float32 for a in model.sampler.cache)
    assert model._logits_buffer.dtype == np.float32
    opt = optim.Adam(model.params)
    opt.step(grads)
    for name in model.params:
        assert model.params[name].dtype == opt.m[name].dtype == opt.v[name].dtype == np.float32


def test_linear_backward_overwrites_its_gradient_buffers():
    """Dense backward writes into the same arrays every step, and what it
    writes does not depend on the previous step."""
    rng = np.random.default_rng(2)
    layer = Linear(6, 4, rng)
    W_grad, b_grad = layer.grads["W"], layer.grads["b"]
    x1, x2 = rng.standard_normal((5, 6)), rng.standard_normal((5, 6))
    layer.forward(x1)
    layer.backward(rng.standard_normal((5, 4)))
    layer.forward(x2)
    dout = rng.standard_normal((5, 4))
    layer.backward(dout)
    assert layer.grads["W"] is W_grad and layer.grads["b"] is b_grad
    np.testing.assert_allclose(W_grad, x2.T @ dout, rtol=1e-13)
    np.testing.assert_allclose(b_grad, dout.sum(axis=0), rtol=1e-13)
    report = check_layers([Linear(4, 6, rng), layer], rng.standard_normal((5, 4)))
    assert report.passed(LAYER_TOL), str(report)


def test_sparse_linear_backward_overwrites_rows_of_unwatched_items():
    """The sparse weight gradient fills only the watched items' rows: rows the
    previous batch filled must come back as zeros."""
    rng = np.random.default_rng(7)
    layer = Linear(10, 3, rng)
    W_grad = layer.grads["W"]
    first = np.where(rng.random((4, 10)) < 0.5, 1.0, 0.0)
    first[:, 0] = 1.0
    first = sp.csr_matrix(first)
    layer.forward(first)
    layer.backward(rng.standard_normal((4, 3)), need_dx=False)
    second = np.zeros((4, 10))
    second[[0, 2, 3], [5, 7, 5]] = [1.0, 2.0, 1.0]
    layer.forward(sp.csr_matrix(second))
    dout = rng.standard_normal((4, 3))
    layer.backward(dout, need_dx=False)
    assert layer.grads["W"] is W_grad
    np.testing.assert_allclose(W_grad, second.T @ dout, rtol=1e-14, atol=0)
    assert np.count_nonzero(np.any(W_grad != 0, axis=1)) == 2


def test_sparse_dropout_stores_only_the_kept_entries():
    """The kept entries form the output; the gradient is exact and zero at the
    dropped ones (including a row with everything dropped and an empty row)."""
    rng = np.random.default_rng(6)
    dense = (rng.random((6, 8)) < 0.5) * rng.integers(1, 4, (6, 8))
    dense[4] = 0
    x = sp.csr_matrix(dense, dtype=np.float64)
    mask = rng.random(x.nnz) >= 0.4
    rows = np.repeat(np.arange(6), np.diff(x.indptr))
    mask[rows == 1] = False
    layer = Dropout(0.4)
    y = layer.forward(x, mask=mask)
    assert y.nnz == mask.sum() and y.has_sorted_indices
    dense_mask = np.zeros(x.shape, bool)
    dense_mask[rows, x.indices] = mask
    np.testing.assert_allclose(y.toarray(), x.toarray() * dense_mask / 0.6, rtol=1e-15)
    dx = layer.backward(np.ones(y.nnz))
    assert dx.shape == (x.nnz,) and np.all(dx[~mask] == 0)
    np.testing.assert_allclose(dx[mask], 1 / 0.6)
    report = check_layers([L2Normalize(), Dropout(0.4), Linear(8, 3, rng)], x,
                          [{}, {"mask": mask}, {}])
    assert report.passed(LAYER_TOL), str(report)


def test_multinomial_kernel_checks_across_chunks(monkeypatch):
    """Rows split into many cache-sized chunks: exact gradients, and the same
    numbers as a single pass."""
    rng = np.random.default_rng(3)
    x = sp.csr_matrix((rng.random((9, 7)) < 0.4).astype(np.float64))
    logits = rng.standard_normal((9, 7)) * 2
    whole = lk.multinomial_nll(logits, x)
    monkeypatch.setattr(lk, "_CHUNK_BYTES", 2 * 7 * 8)  # two rows per chunk
    value, dlogits = lk.multinomial_nll(logits, x)
    assert value == pytest.approx(whole[0], rel=1e-14)
    np.testing.assert_allclose(dlogits, whole[1], rtol=1e-14)
    report = check_gradients(lambda: lk.multinomial_nll(logits, x)[0], {"logits": logits},
                             {"logits": dlogits})
    assert report.passed(LAYER_TOL), str(report)


@pytest.mark.parametrize("chunk", [5, 1 << 16])
def test_chunked_adam_reproduces_the_hand_unrolled_trace(monkeypatch, chunk):
    """Several parameters, cut into chunks that share one scratch array (a
    chunk of 5 leaves a short last chunk in every parameter)."""
    monkeypatch.setattr(optim, "_CHUNK", chunk)
    rng = np.random.default_rng(4)
    shapes = {"W": (4, 6), "b": (6,), "c": (3,)}
    theta = {k: rng.standard_normal(s) for k, s in shapes.items()}
    params = {k: v.copy() for k, v in theta.items()}
    lr, b1, b2, eps = 0.02, 0.85, 0.97, 1e-7
    opt = optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    m = {k: np.zeros(s) for k, s in shapes.items()}
    v = {k: np.zeros(s) for k, s in shapes.items()}
    for t in range(1, 5):
        grads = {k: rng.standard_normal(s) for k, s in shapes.items()}
        for k, g in grads.items():
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g ** 2
            theta[k] = theta[k] - lr * (m[k] / (1 - b1 ** t)) / (
                np.sqrt(v[k] / (1 - b2 ** t)) + eps)
        opt.step(grads)
        for k in shapes:
            np.testing.assert_allclose(params[k], theta[k], rtol=0, atol=1e-12, err_msg=k)
            np.testing.assert_allclose(opt.m[k], m[k], rtol=0, atol=1e-12, err_msg=k)
            np.testing.assert_allclose(opt.v[k], v[k], rtol=0, atol=1e-12, err_msg=k)


def test_float32_adam_stays_float32_and_tracks_float64():
    rng = np.random.default_rng(5)
    w64 = rng.standard_normal(1000)
    p64, p32 = {"w": w64.copy()}, {"w": w64.astype(np.float32)}
    o64, o32 = optim.Adam(p64, lr=0.01), optim.Adam(p32, lr=0.01)
    for _ in range(5):
        g = rng.standard_normal(1000)
        o64.step({"w": g})
        o32.step({"w": g.astype(np.float32)})
    assert p32["w"].dtype == o32.m["w"].dtype == o32.v["w"].dtype == np.float32
    np.testing.assert_allclose(p32["w"], p64["w"], rtol=0, atol=1e-5)
