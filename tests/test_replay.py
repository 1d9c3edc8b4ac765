"""The functional replay buffer: ring order and wrap-around, masked adds, prioritised sampling
frequencies (chi-square), importance weights, and identical behaviour under vmap over seeds."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gfnjax import replay
from gfnjax.utils import linear_schedule


def _items(values):
    v = jnp.asarray(values, jnp.float32)
    return {"x": v, "pair": jnp.stack([v, -v], -1), "i": v.astype(jnp.int32)}


def _example():
    return {"x": jnp.zeros(()), "pair": jnp.zeros((2,)), "i": jnp.zeros((), jnp.int32)}


def test_ring_buffer_wraps_around_and_keeps_the_newest_items():
    buf = replay.init(_example(), 5)
    buf = replay.add(buf, _items([1, 2, 3]))
    assert int(buf.size) == 3 and int(buf.position) == 3
    buf = replay.add(buf, _items([4, 5, 6, 7]))  # 6, 7 overwrite slots 0, 1
    assert int(buf.size) == 5 and int(buf.position) == 2
    np.testing.assert_array_equal(np.asarray(buf.items["x"]), [6, 7, 3, 4, 5])
    np.testing.assert_array_equal(np.asarray(buf.items["pair"][:, 1]), [-6, -7, -3, -4, -5])
    np.testing.assert_array_equal(np.asarray(buf.items["i"]), [6, 7, 3, 4, 5])
    # more valid items than the capacity in one add: only the last C survive, in ring order
    buf = replay.add(buf, _items(np.arange(10, 22)))
    assert int(buf.size) == 5 and int(buf.position) == (2 + 12) % 5
    got = sorted(np.asarray(buf.items["x"]).tolist())
    assert got == [17, 18, 19, 20, 21]
    assert float(buf.items["x"][(int(buf.position) - 1) % 5]) == 21  # newest just before position


def test_masked_add_stores_only_valid_rows_in_order():
    buf = replay.init(_example(), 8)
    mask = jnp.array([True, False, True, False, False, True])
    buf = replay.add(
        buf, _items([1, 2, 3, 4, 5, 6]), mask, priorities=jnp.array([1.0, 9.0, 2.0, 9.0, 9.0, 3.0])
    )
    assert int(buf.size) == 3 and int(buf.position) == 3
    np.testing.assert_array_equal(np.asarray(buf.items["x"][:3]), [1, 3, 6])
    np.testing.assert_allclose(np.asarray(buf.priorities[:3]), [1, 2, 3], atol=1e-5)
    assert float(buf.max_priority) == pytest.approx(3.0, abs=1e-5)  # masked 9s are ignored
    np.testing.assert_array_equal(np.asarray(buf.priorities[3:]), 0.0)


def _chi_square_p(counts, probs):
    expected = counts.sum() * probs
    return stats.chisquare(counts, expected).pvalue


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_prioritised_sampling_frequencies_are_proportional_to_priority_power_alpha(alpha):
    """Draws are multinomial with P(i) = p_i^α / Σ p_j^α (chi-square), over the filled slots
    only."""
    prio = np.array([0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 0.3])
    buf = replay.init(_example(), 10)  # 3 empty slots that must never be drawn
    buf = replay.add(buf, _items(np.arange(7)), priorities=jnp.asarray(prio))
    n = 40_000
    smp = jax.jit(replay.sample_prioritised, static_argnums=2)(
        buf, jax.random.PRNGKey(0), n, alpha, 0.0
    )
    idx = np.asarray(smp.indices)
    assert idx.max() < 7
    np.testing.assert_array_equal(np.asarray(smp.items["i"]), idx)  # items match their slots
    counts = np.bincount(idx, minlength=7).astype(float)
    p = (prio + replay.PRIORITY_EPS) ** alpha
    p /= p.sum()
    assert _chi_square_p(counts, p) > 1e-3
    np.testing.assert_allclose(np.asarray(smp.probs), p[idx], rtol=1e-5)
    # the test has power: the other exponent's distribution is rejected
    p_wrong = prio ** (1.5 - alpha)
    assert _chi_square_p(counts, p_wrong / p_wrong.sum()) < 1e-10


def test_uniform_sampling_frequencies_and_unit_weights():
    buf = replay.add(
        replay.init(_example(), 16), _items(np.arange(6)), priorities=jnp.arange(6.0) + 1
    )
    smp = replay.sample_uniform(buf, jax.random.PRNGKey(1), 30_000)
    counts = np.bincount(np.asarray(smp.indices), minlength=16).astype(float)
    assert counts[6:].sum() == 0
    assert _chi_square_p(counts[:6], np.full(6, 1 / 6)) > 1e-3
    np.testing.assert_array_equal(np.asarray(smp.weights), 1.0)


@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0])
def test_importance_weights(beta):
    """w_i = (N·P(i))^−β / max_j (N·P(j))^−β, with N the number of stored items."""
    prio = np.array([0.2, 1.0, 3.0, 0.7, 5.0])
    alpha = 0.6
    buf = replay.add(replay.init(_example(), 9), _items(np.arange(5)), priorities=jnp.asarray(prio))
    smp = replay.sample_prioritised(buf, jax.random.PRNGKey(2), 500, alpha, beta)
    p = (prio + replay.PRIORITY_EPS) ** alpha
    P = p / p.sum()
    w = (5 * P) ** (-beta)
    w /= w.max()
    idx = np.asarray(smp.indices)
    np.testing.assert_allclose(np.asarray(smp.weights), w[idx], rtol=1e-5)
    assert np.all(np.asarray(smp.weights) <= 1 + 1e-6)
    # the lowest-priority item gets weight exactly 1
    assert 0 in idx and np.isclose(np.asarray(smp.weights)[idx == 0], 1.0).all()


def test_priority_update_changes_sampling_and_ignores_out_of_range_slots():
    buf = replay.add(replay.init(_example(), 4), _items([0, 1, 2, 3]), priorities=jnp.ones(4))
    buf = replay.update_priorities(buf, jnp.array([2, 4, 7]), jnp.array([100.0, 50.0, 50.0]))
    np.testing.assert_allclose(np.asarray(buf.priorities), [1, 1, 100, 1], rtol=1e-5)
    assert float(buf.max_priority) == pytest.approx(100.0)
    smp = replay.sample_prioritised(buf, jax.random.PRNGKey(3), 20_000, 1.0, 0.0)
    freq = np.bincount(np.asarray(smp.indices), minlength=4) / 20_000
    assert freq[2] == pytest.approx(100 / 103, abs=0.01)
    # new items default to the running maximum priority (Schaul et al.)
    buf = replay.add(buf, _items([9]))
    assert float(buf.priorities[0]) == pytest.approx(100.0)


def test_linear_schedule():
    np.testing.assert_allclose(
        [float(linear_schedule(0.0, 1.0, t, 10)) for t in (0, 5, 10, 20)], [0, 0.5, 1, 1]
    )
    assert float(linear_schedule(0.3, 1.0, 50, 0)) == pytest.approx(0.3)  # 0 = constant


def _episode(key, n_add=3, capacity=64):
    """init -> several masked prioritised adds -> sample -> priority update -> sample."""
    buf = replay.init(_example(), capacity)
    for _ in range(n_add):
        key, k_val, k_mask, k_p = jax.random.split(key, 4)
        vals = jax.random.normal(k_val, (30,))
        mask = jax.random.bernoulli(k_mask, 0.6, (30,))
        buf = replay.add(buf, _items(vals), mask, jax.random.uniform(k_p, (30,)) * 3)
    key, k1, k2 = jax.random.split(key, 3)
    s1 = replay.sample_prioritised(buf, k1, 32, 0.5, 0.4)
    buf = replay.update_priorities(buf, s1.indices, jnp.abs(s1.items["x"]))
    s2 = replay.sample_prioritised(buf, k2, 32, 0.5, 0.4)
    return buf, s1, s2


def test_identical_behaviour_under_vmap_over_seeds():
    keys = jax.random.split(jax.random.PRNGKey(7), 3)
    batched = jax.jit(jax.vmap(_episode))(keys)
    episode = jax.jit(_episode)
    for i in range(3):
        single = episode(keys[i])
        chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x[i], batched), single, rtol=1e-6)
    assert not np.array_equal(np.asarray(batched[1].indices[0]), np.asarray(batched[1].indices[1]))


def test_sampling_traces_once():
    fn = jax.jit(chex.assert_max_traces(replay.sample_prioritised, n=1), static_argnums=2)
    buf = replay.add(replay.init(_example(), 8), _items([1, 2, 3]))
    for s in range(3):  # new keys and new α/β values reuse the compiled program
        fn(buf, jax.random.PRNGKey(s), 4, jnp.float32(0.5 + s), jnp.float32(0.1 * s))
