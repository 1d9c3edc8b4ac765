"""Rollouts and the exact DP distribution against brute-force enumeration of all trajectories."""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import envs
from gfnjax.metrics.exact import build_dag, distribution_metrics, terminal_distribution
from gfnjax.rollout import sample_backward, sample_forward
from gfnjax.utils import masked_log_softmax

DIM, SIDE = 2, 4


@pytest.fixture(scope="module")
def env():
    return envs.make("hypergrid", dim=DIM, side=SIDE)


@pytest.fixture(scope="module")
def table(env):
    """A random logit table indexed by state index: the policy used throughout."""
    return jax.random.normal(jax.random.PRNGKey(3), (env.num_states, env.num_actions)) * 1.5


def table_policy(env, table):
    def fn(obs):
        coords = jnp.argmax(obs.reshape(obs.shape[0], DIM, SIDE), axis=-1)
        idx = coords[:, 0] * SIDE + coords[:, 1]
        return table[idx], None

    return fn


def brute_force(table):
    """Enumerate every trajectory with plain Python (own masks): P_T(x), E[G], and all G values."""
    table = np.asarray(table, np.float64)
    p_t = np.zeros(SIDE**DIM)
    trajs = []  # (prob, log_pb, x)

    def visit(c, logp, logpb):
        idx = c[0] * SIDE + c[1]
        valid = [c[j] < SIDE - 1 for j in range(DIM)] + [True]
        logits = np.where(valid, table[idx], -np.inf)
        lp = logits - np.logaddexp.reduce(logits[np.isfinite(logits)])
        # stop
        p_t[idx] += math.exp(logp + lp[DIM])
        trajs.append((logp + lp[DIM], logpb, idx))
        for j in range(DIM):
            if valid[j]:
                nc = list(c)
                nc[j] += 1
                n_parents = sum(v > 0 for v in nc)
                visit(nc, logp + lp[j], logpb - math.log(n_parents))

    visit([0] * DIM, 0.0, 0.0)
    return p_t, trajs


def test_dp_uniform_policy_equals_brute_force(env):
    dag = build_dag(env)
    p_dp = np.asarray(
        terminal_distribution(
            dag, masked_log_softmax(jnp.zeros((env.num_states, env.num_actions)), dag.forward_mask)
        )
    )
    p_bf, _ = brute_force(np.zeros((env.num_states, env.num_actions)))
    np.testing.assert_allclose(p_dp, p_bf, atol=1e-6)
    np.testing.assert_allclose(p_dp.sum(), 1.0, atol=1e-5)


def test_dp_random_policy_equals_brute_force(env, table):
    dag = build_dag(env)
    logits, _ = table_policy(env, table)(dag.obs)
    p_dp = np.asarray(terminal_distribution(dag, masked_log_softmax(logits, dag.forward_mask)))
    p_bf, _ = brute_force(table)
    np.testing.assert_allclose(p_dp, p_bf, atol=1e-6)


def test_distribution_metrics_known_values():
    p = jnp.array([0.5, 0.5, 0.0])
    q = jnp.log(jnp.array([0.25, 0.25, 0.5]))
    m = distribution_metrics(p, q)
    np.testing.assert_allclose(m["tv"], 0.5, atol=1e-6)
    np.testing.assert_allclose(m["kl_reverse"], math.log(2), atol=1e-6)
    np.testing.assert_allclose(distribution_metrics(jnp.exp(q), q)["jsd"], 0.0, atol=1e-6)


def test_forward_samples_follow_the_dp_distribution(env, table):
    """Chi-square goodness of fit of 20k sampled terminals to the exact P_T."""
    n = 20000
    traj = jax.jit(
        functools.partial(sample_forward, env, policy_fn=table_policy(env, table), batch_size=n)
    )(jax.random.PRNGKey(0))
    counts = np.bincount(
        np.asarray(env.terminal_index(traj.final_state)), minlength=env.num_terminals
    )
    p_bf, _ = brute_force(table)
    expected = n * p_bf
    keep = expected > 5
    chi2 = (((counts - expected) ** 2) / expected)[keep].sum()
    dof = keep.sum() - 1
    # 99.9% quantile of chi2(dof) is below dof + 4.5 sqrt(2 dof) for these sizes
    assert chi2 < dof + 4.5 * math.sqrt(2 * dof), (chi2, dof)


def test_trajectory_fields_are_consistent(env, table):
    traj = sample_forward(env, jax.random.PRNGKey(1), table_policy(env, table), 256)
    T = env.max_steps
    chex.assert_shape(traj.actions, (256, T))
    chex.assert_shape(traj.obs, (256, T + 1, env.obs_dim))
    chex.assert_tree_all_finite((traj.log_pf, traj.log_pb, traj.log_reward))
    length = np.asarray(traj.length)
    # every trajectory ends with stop; its length = number of increments + 1
    x = np.asarray(traj.final_state.coords)
    np.testing.assert_array_equal(length, x.sum(-1) + 1)
    np.testing.assert_array_equal(np.asarray(traj.mask).sum(-1), length)
    np.testing.assert_array_equal(np.asarray(traj.done).sum(-1), 1)
    acts = np.asarray(traj.actions)
    assert (acts[np.arange(256), length - 1] == env.stop_action).all()
    # uniform P_B: log P_B(s_t|s_{t+1}) = −log #parents(s_{t+1}) (1 parent after stop)
    coords = np.asarray(traj.states.coords)
    parents = (coords[:, 1:] > 0).sum(-1)
    want_pb = np.where(np.asarray(traj.done), 0.0, -np.log(np.maximum(parents, 1)))
    np.testing.assert_allclose(
        np.asarray(traj.log_pb), np.where(np.asarray(traj.mask), want_pb, 0.0), atol=1e-5
    )
    # log P_F equals the table policy's masked log-softmax at the visited states
    logp = masked_log_softmax(
        table[coords[:, :-1, 0] * SIDE + coords[:, :-1, 1]], traj.forward_mask[:, :-1]
    )
    want_pf = np.take_along_axis(np.asarray(logp), acts[..., None], -1)[..., 0]
    np.testing.assert_allclose(
        np.asarray(traj.log_pf), np.where(np.asarray(traj.mask), want_pf, 0.0), atol=1e-5
    )
    # padding repeats the terminal state
    np.testing.assert_array_equal(coords[:, -1], x)


def test_backward_trajectories_replay_forward(env, table):
    x = env.enumerate_terminals()
    traj = sample_backward(env, jax.random.PRNGKey(2), x, table_policy(env, table))
    state = env.reset(env.num_terminals)
    for t in range(env.max_steps):
        state = env.step(state, traj.actions[:, t])  # terminal rows stay put
    np.testing.assert_array_equal(np.asarray(state.coords), np.asarray(x.coords))
    assert bool(state.done.all())
    np.testing.assert_array_equal(np.asarray(traj.length), np.asarray(x.coords).sum(-1) + 1)
    coords = np.asarray(traj.states.coords)
    logp = masked_log_softmax(
        table[coords[:, :-1, 0] * SIDE + coords[:, :-1, 1]], traj.forward_mask[:, :-1]
    )
    want = np.take_along_axis(np.asarray(logp), np.asarray(traj.actions)[..., None], -1)[..., 0]
    np.testing.assert_allclose(
        np.asarray(traj.log_pf), np.where(np.asarray(traj.mask), want, 0.0), atol=1e-5
    )


def test_elbo_estimate_matches_exact_elbo(env, table):
    """mean G over samples ≈ Σ_τ P_F(τ) G(τ) (enumerated), and ELBO ≤ log Z."""
    _, trajs = brute_force(table)
    log_r = np.asarray(env.log_reward(env.enumerate_terminals()))
    exact = sum(math.exp(lp) * (log_r[x] + lpb - lp) for lp, lpb, x in trajs)
    assert exact <= float(env.log_partition())
    traj = sample_forward(env, jax.random.PRNGKey(5), table_policy(env, table), 8192)
    g = np.asarray(traj.log_reward + (traj.log_pb - traj.log_pf).sum(-1))
    se = g.std() / math.sqrt(g.size)
    assert abs(g.mean() - exact) < 4 * se


def test_sampling_traces_once(env, table):
    policy = table_policy(env, table)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(key):
        return sample_forward(env, key, policy, 8)

    for i in range(3):
        traj = run(jax.random.PRNGKey(i))
    assert traj.obs.shape[1] == env.max_steps + 1


def test_sampling_stops_when_every_trajectory_is_done():
    """A policy that always stops costs 1 network call (one step), not T."""
    env = envs.make("hypergrid", dim=2, side=20)
    calls = []

    def stop_policy(obs):
        jax.debug.callback(lambda: calls.append(1))
        logits = jnp.full((obs.shape[0], env.num_actions), -50.0).at[:, env.stop_action].set(50.0)
        return logits, None

    traj = jax.jit(lambda k: sample_forward(env, k, stop_policy, 4))(jax.random.PRNGKey(0))
    jax.effects_barrier()
    assert int(traj.length.max()) == 1
    assert len(calls) == 1, len(calls)
