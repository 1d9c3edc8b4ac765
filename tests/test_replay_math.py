"""Replay-buffer formulas against numpy: `sampling_probs` and `priority_weights` with their priority
exponent α (including α = 0 and α > 1) on a partly filled buffer, `importance_weights`, the
probabilities and weights reported by uniform and prioritised draws, and the dispatch of `sample`.
(Ring order, masked adds and χ² sampling frequencies: tests/test_replay.py.)"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import replay

PRIO = np.array([0.2, 1.0, 3.0, 0.7, 5.0])
CAPACITY = 8  # 3 empty slots


def _buffer():
    buf = replay.init({"x": jnp.zeros(())}, CAPACITY)
    return replay.add(buf, {"x": jnp.arange(5.0)}, priorities=jnp.asarray(PRIO))


def _np_weights(alpha):
    w = np.zeros(CAPACITY)
    w[:5] = (PRIO + replay.PRIORITY_EPS) ** alpha
    return w


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_sampling_probs_and_priority_weights_use_the_exponent(alpha):
    buf = _buffer()
    w = _np_weights(alpha)
    np.testing.assert_allclose(
        np.asarray(replay.priority_weights(buf, alpha)),
        w,
        rtol=1e-5,
        err_msg=f"p_i^α (α = {alpha}) on filled slots, 0 on empty ones",
    )
    probs = np.asarray(replay.sampling_probs(buf, alpha))
    np.testing.assert_allclose(
        probs, w / w.sum(), rtol=1e-5, err_msg=f"P(i) = p_i^α / Σ_(j<size) p_j^α, α = {alpha}"
    )
    assert np.all(probs[5:] == 0), "empty slots are never drawn"


def test_importance_weights_formula():
    probs = jnp.asarray([0.1, 0.4, 0.05, 0.2])
    for beta in (0.0, 0.5, 1.0):
        got = replay.importance_weights(probs, jnp.float32(0.05), beta)
        want = (np.asarray(probs, np.float64) / 0.05) ** (-beta)
        np.testing.assert_allclose(
            np.asarray(got), want, rtol=1e-5, err_msg="w = (P(i)/min_j P(j))^−β"
        )


def test_prioritised_and_uniform_draws_report_their_probabilities_and_weights():
    buf = _buffer()
    alpha, beta = 0.6, 0.4
    p = _np_weights(alpha)
    p /= p.sum()
    sample = jax.jit(replay.sample, static_argnums=(2, 3))
    s = sample(buf, jax.random.PRNGKey(0), 64, True, alpha, beta)
    idx = np.asarray(s.indices)
    assert idx.max() < 5
    np.testing.assert_allclose(np.asarray(s.probs), p[idx], rtol=1e-5, err_msg="P(i) of each draw")
    w = (p[idx] / p[:5].min()) ** (-beta)
    np.testing.assert_allclose(np.asarray(s.weights), w, rtol=1e-5, err_msg="(P(i)/min P)^−β")
    np.testing.assert_array_equal(np.asarray(s.items["x"]), idx.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(replay.take(buf, s.indices)["x"]), idx)
    u = sample(buf, jax.random.PRNGKey(1), 64, False, alpha, beta)
    assert np.asarray(u.indices).max() < 5
    np.testing.assert_allclose(np.asarray(u.probs), 1 / 5, rtol=1e-6, err_msg="uniform: 1/size")
    np.testing.assert_array_equal(np.asarray(u.weights), 1.0)


def test_add_stores_priority_plus_eps_and_tracks_the_maximum():
    buf = _buffer()
    np.testing.assert_allclose(
        np.asarray(buf.priorities[:5]), PRIO + replay.PRIORITY_EPS, rtol=1e-6
    )
    assert float(buf.max_priority) == pytest.approx(5.0 + replay.PRIORITY_EPS)
    buf = replay.add(buf, {"x": jnp.asarray([9.0])})  # default: the running maximum
    assert float(buf.priorities[5]) == pytest.approx(5.0 + replay.PRIORITY_EPS)
    assert int(buf.size) == 6 and int(buf.position) == 6
