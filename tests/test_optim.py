"""Adam against the published update rule; SGD; the L2 penalty."""

import numpy as np
import pytest

from minivae.gradcheck import LAYER_TOL, check_gradients
from minivae.optim import SGD, Adam, l2_penalty


def test_adam_reproduces_a_hand_unrolled_trace():
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-6
    params = {"w": theta0.copy()}
    opt = Adam(params, lr=lr, betas=(b1, b2), eps=eps)
    theta, m, v = theta0.copy(), np.zeros((3, 4)), np.zeros((3, 4))
    for t, g in enumerate(grads, start=1):
        # Kingma and Ba, Algorithm 1, written out
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        opt.step({"w": g})
        np.testing.assert_allclose(params["w"], theta, rtol=0, atol=1e-12)
    assert opt.t == 5


def test_adam_first_step_moves_each_entry_by_lr():
    """Bias correction makes the first step lr * g / (|g| + eps): about lr * sign(g)
    whatever the gradient's scale."""
    g = np.array([3.0, -0.001, 50.0, -2.0])
    params = {"w": np.zeros(4)}
    Adam(params, lr=0.1, eps=1e-12).step({"w": g})
    np.testing.assert_allclose(params["w"], -0.1 * g / (np.abs(g) + 1e-12), rtol=1e-12)
    np.testing.assert_allclose(params["w"], -0.1 * np.sign(g), rtol=1e-8)


def test_adam_minimises_a_convex_quadratic():
    """With a constant step Adam ends up hovering within about lr of the optimum
    (near it, g / sqrt(v) stays of order one), so the step is decreased in
    stages, as one would in practice, and the distance shrinks with it."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 6))
    A = A @ A.T + np.eye(6)
    target = rng.standard_normal(6)
    params = {"w": np.zeros(6)}
    opt = Adam(params, lr=0.05)
    for lr in (0.05, 0.005, 0.0005, 0.00005):
        opt.lr = lr
        for _ in range(3000):
            opt.step({"w": A @ (params["w"] - target)})
        assert np.abs(params["w"] - target).max() < 20 * lr
    np.testing.assert_allclose(params["w"], target, atol=1e-4)


def test_adam_updates_in_place_and_in_chunks(monkeypatch):
    import minivae.optim as optim
    monkeypatch.setattr(optim, "_CHUNK", 7)
    rng = np.random.default_rng(2)
    w = rng.standard_normal((5, 9))
    params = {"w": w}
    ref = {"w": w.copy()}
    g = rng.standard_normal((5, 9))
    Adam(params).step({"w": g})
    monkeypatch.setattr(optim, "_CHUNK", 1 << 16)
    Adam(ref).step({"w": g})
    assert params["w"] is w
    np.testing.assert_array_equal(w, ref["w"])


def test_adam_state_round_trip():
    rng = np.random.default_rng(3)
    params = {"a": rng.standard_normal(3), "b": rng.standard_normal((2, 2))}
    opt = Adam(params)
    for _ in range(3):
        opt.step({k: rng.standard_normal(p.shape) for k, p in params.items()})
    clone = Adam({k: p.copy() for k, p in params.items()})
    clone.load_state_dict(opt.state_dict())
    assert clone.t == 3
    g = {k: rng.standard_normal(p.shape) for k, p in params.items()}
    opt.step(g)
    clone.step(g)
    for k in params:
        np.testing.assert_array_equal(params[k], clone.params[k])


def test_adam_rejects_non_contiguous_parameters():
    with pytest.raises(ValueError, match="C-contiguous"):
        Adam({"w": np.zeros((4, 4)).T[:, :2]})


def test_sgd_step():
    params = {"w": np.array([1.0, 2.0])}
    SGD(params, lr=0.5).step({"w": np.array([2.0, -2.0])})
    np.testing.assert_allclose(params["w"], [0.0, 3.0])


def test_l2_penalty_value_and_gradient():
    rng = np.random.default_rng(4)
    params = {"W": rng.standard_normal((3, 4)), "b": rng.standard_normal(4)}
    value, grads = l2_penalty(params, 0.3, ["W"])
    assert value == pytest.approx(0.3 * np.sum(params["W"] ** 2))
    assert set(grads) == {"W"}
    report = check_gradients(lambda: l2_penalty(params, 0.3, ["W"])[0], params, grads)
    assert report.passed(LAYER_TOL), str(report)
