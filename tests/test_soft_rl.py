"""Soft-RL value methods (docs/methods.md §2): tabular fixed points of the SoftDQN and
Munchausen targets against true edge flows computed independently, loss functions against numpy,
transition extraction, and SoftDQN / M-DQN training to a small exact TV through the one training
loop."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gfnjax
from gfnjax import algos, envs
from gfnjax.algos.soft_dqn import MDQNConfig, SoftDQNConfig, trajectory_transitions
from gfnjax.losses import munchausen_targets, soft_dqn_targets, soft_q_loss
from gfnjax.metrics import ExactDistribution, build_dag, policy_terminal_distribution
from gfnjax.rollout import sample_forward

DIM, SIDE = 2, 4
R0, R1, R2 = 1e-3, 0.5, 2.0


# --- independent oracle: plain-Python hypergrid flows with uniform P_B ------------------------
def _reward(coords):
    a = [abs(c / (SIDE - 1) - 0.5) for c in coords]
    return R0 + R1 * all(x > 0.25 for x in a) + R2 * all(0.3 < x < 0.4 for x in a)


def _oracle_flows():
    """State flows F(s) by backward DP: F(s) = R(s) + Σ_children F(c)/#parents(c); edge flows
    F(s→c) = F(c)/#parents(c), F(s→stop) = R(s)."""
    n_parents = lambda c: sum(1 for x in c if x > 0)
    flow = {}
    for total in range(DIM * (SIDE - 1), -1, -1):  # reverse topological order
        for s in itertools.product(range(SIDE), repeat=DIM):
            if sum(s) != total:
                continue
            f = _reward(s)
            for i in range(DIM):
                if s[i] < SIDE - 1:
                    c = tuple(x + (j == i) for j, x in enumerate(s))
                    f += flow[c] / n_parents(c)
            flow[s] = f
    edge = {}
    for s in flow:
        for i in range(DIM):
            if s[i] < SIDE - 1:
                c = tuple(x + (j == i) for j, x in enumerate(s))
                edge[s, i] = flow[c] / n_parents(c)
        edge[s, DIM] = _reward(s)
    return flow, edge


@pytest.fixture(scope="module")
def tabular():
    """The enumerated DAG as tables over (state, action): child index, done, log P_B, log R."""
    env = envs.make("hypergrid", dim=DIM, side=SIDE)
    dag = build_dag(env)
    S, A = dag.forward_mask.shape
    states = env.enumerate_states()
    n_parents = env.backward_mask(states).sum(-1)  # parents of each non-terminal state
    child = np.asarray(dag.child)
    done = np.asarray(dag.child_terminal)
    log_pb = np.where(done, 0.0, -np.log(np.maximum(np.asarray(n_parents)[child], 1)))
    log_r_x = np.asarray(env.log_reward(env.enumerate_terminals()))
    log_reward = np.where(done, log_r_x[child], 0.0)
    coords = np.asarray(dag.obs).reshape(S, DIM, SIDE).argmax(-1)  # decode the one-hot states
    flow, edge = _oracle_flows()
    fmask = np.asarray(dag.forward_mask)
    log_edge = np.zeros((S, A))
    log_v = np.zeros(S)
    for s in range(S):
        c = tuple(int(x) for x in coords[s])
        log_v[s] = math.log(flow[c])
        for a in range(A):
            if fmask[s, a]:
                log_edge[s, a] = math.log(edge[c, a])
    return dict(
        env=env,
        dag=dag,
        child=jnp.asarray(child),
        done=jnp.asarray(done),
        fmask=dag.forward_mask,
        log_pb=jnp.asarray(log_pb, jnp.float32),
        log_reward=jnp.asarray(log_reward, jnp.float32),
        log_edge=log_edge,
        log_v=log_v,
        log_z=math.log(sum(_reward(c) for c in flow)),
    )


def _q_iteration(tab, n_iter, alpha=None, tau=None):
    """Tabular (soft or Munchausen) Q-iteration with the library targets, Q_targ = current table."""
    child, fmask = tab["child"], tab["fmask"]
    S, A = fmask.shape
    actions = jnp.broadcast_to(jnp.arange(A), (S, A))

    def step(_, q):
        q_next, next_mask = q[child], fmask[child]  # [S, A, A]
        if alpha is None:
            y = soft_dqn_targets(
                q_next,
                next_mask,
                tab["log_pb"],
                tab["log_reward"],
                tab["done"],
                1.0 if tau is None else tau,
            )
        else:
            q_here = jnp.broadcast_to(q[:, None, :], (S, A, A))
            mask_here = jnp.broadcast_to(fmask[:, None, :], (S, A, A))
            y = munchausen_targets(
                q_next,
                next_mask,
                q_here,
                mask_here,
                actions,
                tab["log_pb"],
                tab["log_reward"],
                tab["done"],
                alpha,
                -100.0,
                tau,
            )
        return jnp.where(fmask, y, 0.0)

    return jax.jit(lambda q: jax.lax.fori_loop(0, n_iter, step, q))(jnp.zeros((S, A), jnp.float32))


def test_soft_q_iteration_converges_to_log_edge_flows(tabular):
    """Q(s, s') = log F(s→s') after depth+1 sweeps (the DAG is finite), V(s0) = log Z, and the
    policy softmax(Q) samples R/Z exactly."""
    tab = tabular
    q = np.asarray(_q_iteration(tab, tab["dag"].depth + 1))
    fmask = np.asarray(tab["fmask"])
    np.testing.assert_allclose(q[fmask], tab["log_edge"][fmask], atol=2e-5)
    v = np.asarray(jax.nn.logsumexp(jnp.where(tab["fmask"], q, -jnp.inf), axis=-1))
    np.testing.assert_allclose(v, tab["log_v"], atol=2e-5)
    assert v[int(tab["dag"].s0)] == pytest.approx(tab["log_z"], abs=2e-5)
    p = policy_terminal_distribution(tab["dag"], jnp.asarray(q))
    assert 0.5 * float(jnp.abs(p - jnp.exp(tab["dag"].true_log_probs)).sum()) < 1e-5
    # too few sweeps: values have not propagated from the far corner back to s0
    q_short = np.asarray(_q_iteration(tab, 3))
    assert np.abs(q_short[fmask] - tab["log_edge"][fmask]).max() > 0.1


@pytest.mark.parametrize("alpha", [0.15, 0.5])
def test_munchausen_iteration_with_tau_one_over_one_minus_alpha_samples_r_over_z(tabular, alpha):
    """With τ = 1/(1−α) the Munchausen fixed point is Q_M = τ·(Q* − α·V*(s)), whose policy
    softmax(Q_M/τ) = softmax(Q*) has DP terminal distribution R/Z; with τ = 1 it does not."""
    tab = tabular
    tau = 1.0 / (1.0 - alpha)
    n_iter = tab["dag"].depth + int(math.log(1e-9) / math.log(alpha)) + 10  # error shrinks like α^k
    q = np.asarray(_q_iteration(tab, n_iter, alpha=alpha))
    fmask = np.asarray(tab["fmask"])
    expected = tau * (tab["log_edge"] - alpha * tab["log_v"][:, None])
    np.testing.assert_allclose(q[fmask], expected[fmask], atol=1e-4)
    true_p = jnp.exp(tab["dag"].true_log_probs)
    p = policy_terminal_distribution(tab["dag"], jnp.asarray(q) / tau)
    assert 0.5 * float(jnp.abs(p - true_p).sum()) < 1e-4
    s0 = int(tab["dag"].s0)
    v0 = tau * jax.nn.logsumexp(jnp.where(tab["fmask"][s0], q[s0] / tau, -jnp.inf))
    assert float(v0) == pytest.approx(tab["log_z"], abs=1e-4)  # what MDQN.log_z reports
    # the wrong temperature (entropy weight (1−α) instead of 1) gives a different distribution
    q_bad = _q_iteration(tab, n_iter, alpha=alpha, tau=1.0)
    p_bad = policy_terminal_distribution(tab["dag"], q_bad)
    assert 0.5 * float(jnp.abs(p_bad - true_p).sum()) > 0.02


def test_targets_and_loss_match_numpy_under_jit_and_vmap():
    rng = np.random.default_rng(0)
    n, A = 7, 5
    q_next = rng.normal(size=(n, A)).astype(np.float32) * 3
    q_s = rng.normal(size=(n, A)).astype(np.float32) * 3
    next_mask = rng.random((n, A)) < 0.6
    next_mask[:, 0] = True
    mask = rng.random((n, A)) < 0.6
    action = rng.integers(0, A, n)
    mask[np.arange(n), action] = True
    log_pb = -rng.random(n).astype(np.float32)
    log_r = rng.normal(size=n).astype(np.float32)
    done = np.array([0, 1, 0, 0, 1, 0, 0], bool)
    alpha, l0 = 0.3, -1.0
    tau = 1 / (1 - alpha)

    def lse(x, m, t):
        x = np.where(m, x / t, -np.inf)
        return t * (np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1)) + x.max(-1))

    y_soft = log_pb + np.where(done, log_r, lse(q_next, next_mask, 1.0))
    log_pi = q_s[np.arange(n), action] / tau - lse(q_s, mask, tau) / tau
    y_m = (
        log_pb
        + np.where(done, log_r, lse(q_next, next_mask, tau))
        + alpha * np.clip(tau * log_pi, l0, 0)
    )
    assert (tau * log_pi < l0).any() and (tau * log_pi > l0).any()  # both sides of the clip

    f_soft = jax.jit(jax.vmap(soft_dqn_targets))
    np.testing.assert_allclose(
        f_soft(q_next, next_mask, log_pb, log_r, done), y_soft, rtol=1e-5, atol=1e-5
    )
    f_m = jax.jit(jax.vmap(lambda *a: munchausen_targets(*a, alpha=alpha, l0=l0)))
    np.testing.assert_allclose(
        f_m(q_next, next_mask, q_s, mask, action, log_pb, log_r, done), y_m, rtol=1e-5, atol=1e-5
    )
    # Huber (δ = 1) with importance weights, and its gradient
    q_sa = y_soft + np.array([0.1, -2.0, 0.5, 3.0, -0.2, 0.0, 1.5], np.float32)
    w = rng.random(n).astype(np.float32)
    err = q_sa - y_soft
    hub = np.where(np.abs(err) <= 1, 0.5 * err**2, np.abs(err) - 0.5)
    loss, per = soft_q_loss(jnp.asarray(q_sa), jnp.asarray(y_soft), jnp.asarray(w))
    assert float(loss) == pytest.approx(float(np.mean(w * hub)), rel=1e-5)
    np.testing.assert_allclose(per, hub, rtol=1e-5, atol=1e-6)
    g = jax.grad(lambda q: soft_q_loss(q, jnp.asarray(y_soft), jnp.asarray(w))[0])(
        jnp.asarray(q_sa)
    )
    np.testing.assert_allclose(g, w * np.clip(err, -1, 1) / n, rtol=1e-5, atol=1e-7)


def test_trajectory_transitions_and_buffer_push():
    env = envs.make("hypergrid", dim=2, side=5)
    algo = algos.make("mdqn", env, hidden=(16,), buffer_capacity=1000, learning_starts=1)

    @jax.jit
    def run(key):
        k_init, k_traj, k_update = jax.random.split(key, 3)
        state = algo.init(k_init)
        traj = sample_forward(env, k_traj, algo.policy_fn(state), 8)
        tr, valid = trajectory_transitions(traj)
        stepped = env.step(tr.state, tr.action)
        state1, info = algo.update(state, k_update)
        # one pass over the trajectory's states gives the same TD as separate passes over s and s'
        leaves, tree = jax.tree_util.tree_flatten(state.params["net"])
        ks = jax.random.split(k_update, len(leaves))
        net = jax.tree_util.tree_unflatten(
            tree, [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, ks)]
        )
        target = jax.tree.map(lambda x: 0.5 * x, net)
        td_pairs = algo.td(net, target, tr, state.hparams)
        td_traj = algo.trajectory_td(net, target, traj, tr, state.hparams)
        out = (traj.length, tr, valid, stepped, env.is_terminal(tr.next_state), state, state1, info)
        return out, td_pairs, td_traj

    out, td_pairs, td_traj = run(jax.random.PRNGKey(0))
    length, tr, valid, stepped, next_terminal, state, state1, info = out
    v = np.asarray(valid)
    assert v.sum() == int(length.sum())
    assert (np.asarray(tr.done) & v).sum() == 8  # one terminating transition per trajectory
    # each valid transition is a real edge: next = step(state, action), log R only where done
    np.testing.assert_array_equal(
        np.asarray(stepped.coords)[v], np.asarray(tr.next_state.coords)[v]
    )
    np.testing.assert_array_equal(np.asarray(next_terminal)[v], np.asarray(tr.done)[v])
    assert np.all(np.asarray(tr.log_reward)[v & ~np.asarray(tr.done)] == 0)
    for a, b in zip(td_pairs, td_traj):
        np.testing.assert_allclose(np.asarray(a)[v], np.asarray(b)[v], rtol=1e-5, atol=1e-5)
    assert np.std(np.asarray(td_pairs[0])[v]) > 0.01  # non-trivial Q-values
    # one update pushes exactly the sampled transitions; warm-up leaves the parameters unchanged
    assert int(state1.extra["buffer"].size) == int(info.num_transitions)
    assert float(info.scalars["learning"]) == 0.0
    same = jax.tree.map(jnp.array_equal, state1.params, state.params)
    assert all(jax.tree.leaves(same))


def test_config_validation_and_presets():
    with pytest.raises(ValueError, match="munchausen_alpha"):
        MDQNConfig(munchausen_alpha=1.0)
    with pytest.raises(ValueError, match="polyak"):
        SoftDQNConfig(polyak=0.0)
    with pytest.raises(ValueError, match="pb"):
        SoftDQNConfig(pb="learned")
    with pytest.raises(ValueError, match="munchausen_l0"):
        MDQNConfig(munchausen_l0=1.0)
    bit = algos.make("mdqn", envs.make("bitseq", n=16, k=4, num_modes=4)).config
    assert (bit.polyak, bit.target_every, bit.munchausen_l0, bit.leaf_coeff) == (1.0, 5, -25.0, 2.0)
    assert (bit.per_alpha, bit.importance_weights, bit.per_beta, bit.new_priority) == (
        0.9,
        True,
        0.1,
        "max",
    )
    hg = algos.make("mdqn", envs.make("hypergrid", dim=2, side=4)).config
    assert (hg.polyak, hg.munchausen_alpha, hg.munchausen_l0, hg.per_alpha) == (
        0.25,
        0.15,
        -100.0,
        0.5,
    )
    assert (hg.buffer_capacity, hg.replay_batch_size, hg.batch_size) == (100_000, 256, 16)
    assert (hg.importance_weights, hg.leaf_coeff) == (False, 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["soft_dqn", "mdqn"])
def test_soft_rl_reaches_small_exact_tv(name):
    """8×8 hypergrid, 16 trajectories/iteration, 800 iterations: exact TV < 0.12 (4 seeds measured
    at 0.05–0.08) and |log Z − log Z*| < 0.3, starting from TV ≈ 0.82 (uniform policy)."""
    env = envs.make("hypergrid", dim=2, side=8)
    algo = algos.make(name, env, hidden=(64, 64), buffer_capacity=10_000)
    _, curves = gfnjax.train(
        algo, jax.random.PRNGKey(0), 800, 400, metrics=[ExactDistribution(env)]
    )
    tv = np.asarray(curves["tv"])
    assert tv[0] > 0.5
    assert tv[-1] < 0.12, tv
    assert float(curves["log_z_error"][-1]) < 0.3
    assert float(curves["train_buffer_size"][-1]) > 5000


def test_seed_vmapped_training_equals_lone_seed_and_schedules():
    """A seed of a vmapped run equals the lone run; ε and β follow their linear schedules."""
    env = envs.make("hypergrid", dim=2, side=4)
    algo = algos.make(
        "mdqn",
        env,
        hidden=(16,),
        buffer_capacity=300,
        replay_batch_size=16,
        learning_starts=2,
        epsilon=0.5,
        epsilon_final=0.1,
        epsilon_decay_iterations=4,
        per_beta_iterations=4,
    )
    keys = jnp.stack([jax.random.PRNGKey(s) for s in (0, 1)])
    many_carry, many = gfnjax.train_seeds(algo, keys, 8, 1, metrics=[])
    one_carry, one = gfnjax.train(algo, jax.random.PRNGKey(1), 8, 1, metrics=[])
    for k in ("train_loss", "train_mean_q", "train_buffer_size"):
        np.testing.assert_allclose(
            np.asarray(many[k][1]), np.asarray(one[k]), rtol=1e-4, atol=1e-6, err_msg=k
        )
    pick = jax.tree.map(lambda x: x[1], many_carry.state.params)
    for a, b in zip(jax.tree.leaves(pick), jax.tree.leaves(one_carry.state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not np.allclose(many["train_loss"][0][3:], many["train_loss"][1][3:])
    np.testing.assert_allclose(
        np.asarray(one["train_epsilon"][1:]), [0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1], atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(one["train_per_beta"][1:]), [0, 0.25, 0.5, 0.75, 1, 1, 1, 1], atol=1e-6
    )


def test_dueling_head_is_a_q_function_whose_softmax_is_the_policy():
    """Dueling Q = V + log_softmax_valid A: logsumexp_valid Q = V, and policy_fn gives
    softmax(Q/τ)."""
    env = envs.make("hypergrid", dim=2, side=4)
    algo = algos.make("mdqn", env, hidden=(8,), buffer_capacity=10, dueling=True)
    state = algo.init(jax.random.PRNGKey(0))
    # random output heads (they are zero-initialised)
    leaves, tree = jax.tree_util.tree_flatten(state.params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    params = jax.tree_util.tree_unflatten(
        tree, [x + jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
    )
    state = state.replace(params=params)
    states = env.enumerate_states()
    obs, mask = env.observe(states), env.forward_mask(states)
    q = algo.q_values(params["net"], obs, mask)
    v = algo.apply_net(params["net"], obs).log_flow
    np.testing.assert_allclose(
        jax.nn.logsumexp(jnp.where(mask, q, -jnp.inf), -1), v, rtol=1e-5, atol=1e-5
    )
    tau = 1 / (1 - 0.15)
    logits, _ = algo.policy_fn(state)(obs)
    lp_policy = jax.nn.log_softmax(jnp.where(mask, logits, -jnp.inf), -1)
    lp_q = jax.nn.log_softmax(jnp.where(mask, q / tau, -jnp.inf), -1)
    np.testing.assert_allclose(
        np.asarray(lp_policy)[np.asarray(mask)], np.asarray(lp_q)[np.asarray(mask)], atol=1e-5
    )
    s0 = int(env.state_index(env.reset(1))[0])
    expected = tau * jax.nn.logsumexp(jnp.where(mask[s0], q[s0] / tau, -jnp.inf))
    assert float(algo.log_z(state)) == pytest.approx(float(expected), abs=1e-5)
