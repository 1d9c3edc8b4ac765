"""Packed network passes (gfnjax.rollout.apply_packed) compute exactly what the padded pass over
all B·(T+1) rows computes, on every capacity branch, in values and in gradients."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fast_compile import compiled

from gfnjax import algos, envs
from gfnjax.rollout import _valid_first, apply_packed, evaluate, pack_capacities, state_validity
from gfnjax.trainer import make_trainer


def test_capacities_halve_down_to_the_minimum():
    caps = pack_capacities(1248, 32)
    assert caps[-1] == 1248 and caps[0] >= 32 and all(c % 8 == 0 or c == 1248 for c in caps)
    assert all(b <= 2 * a + 8 for a, b in zip(caps, caps[1:]))  # consecutive sizes about halve
    assert pack_capacities(16, 16) == (16,)  # nothing to gain: one branch, the padded pass


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_valid_first_is_the_stable_partition(p):
    """The packing permutation lists the valid rows in order, then the others in order."""
    for seed in range(5):
        valid = np.asarray(jax.random.bernoulli(jax.random.PRNGKey(seed), p, (97,)))
        order = np.asarray(_valid_first(jnp.asarray(valid)))
        expected = np.concatenate([np.flatnonzero(valid), np.flatnonzero(~valid)])
        np.testing.assert_array_equal(order, expected)


@pytest.mark.parametrize("count", [1, 9, 40, 81, 150, 200])
def test_apply_packed_equals_the_padded_pass_on_every_branch(count):
    """Every bucket (counts chosen to land in each capacity) gives fn(x) on the valid rows."""
    n, d = 200, 5
    x = jax.random.normal(jax.random.PRNGKey(0), (n, d))
    valid = (
        jnp.zeros(n, bool).at[jax.random.permutation(jax.random.PRNGKey(1), n)[:count]].set(True)
    )
    w = jax.random.normal(jax.random.PRNGKey(2), (d, 3))
    fn = lambda a: (jnp.tanh(a @ w), None, a.sum(-1))
    packed = jax.jit(lambda x, v: apply_packed(fn, x, v))(x, valid)
    full = fn(x)
    v = np.asarray(valid)
    for p, f in zip((packed[0], packed[2]), (full[0], full[2])):
        np.testing.assert_allclose(np.asarray(p)[v], np.asarray(f)[v], rtol=1e-5, atol=1e-6)
        assert np.all(np.isfinite(np.asarray(p)))
    assert packed[1] is None


@pytest.mark.parametrize("pb", ["uniform", "learned"])
def test_evaluate_packed_equals_padded_in_values_and_gradients(pb):
    env = envs.make("hypergrid", dim=3, side=6)
    algo = algos.make("db", env, hidden=(32, 32), pb=pb, output_init="default")
    state = algo.init(jax.random.PRNGKey(0))
    traj = algo.sample(state, jax.random.PRNGKey(1))
    assert int(traj.length.sum()) + traj.batch_size < traj.obs.shape[0] * traj.obs.shape[1] // 2

    def ev(params, pack):
        return evaluate(lambda o: algo.apply_net(params, o), traj, pack)

    a, b = jax.jit(ev, static_argnums=1)(state.params["net"], True), ev(state.params["net"], False)
    real = np.asarray(state_validity(traj))
    np.testing.assert_allclose(a.log_pf, b.log_pf, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a.log_pb, b.log_pb, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(a.log_flow)[real], np.asarray(b.log_flow)[real], rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(a.log_probs)[real], np.asarray(b.log_probs)[real], atol=1e-5
    )

    def loss(params, pack):
        e = ev(params, pack)
        return (e.log_pf.sum() - e.log_pb.sum()) + (jnp.where(real, e.log_flow, 0.0) ** 2).sum()

    ga = jax.grad(loss)(state.params["net"], True)
    gb = jax.grad(loss)(state.params["net"], False)
    for x, y in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["ppo", "mdqn", "fm"])
def test_training_with_and_without_packing_gives_the_same_curves(name):
    env = envs.make("hypergrid", dim=2, side=6)
    algo = algos.make(name, env, hidden=(16, 16))
    padded = dataclasses.replace(algo, pack=False)
    key = jax.random.PRNGKey(0)
    train = lambda a: compiled(make_trainer(a, 30, 15).train, key)(key)[1]
    a, b = train(algo), train(padded)
    for k in ("tv", "trajectories", "train_loss"):
        np.testing.assert_allclose(
            np.asarray(a[k]), np.asarray(b[k]), rtol=2e-3, atol=2e-4, err_msg=k
        )
