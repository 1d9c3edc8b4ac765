"""Flow objectives: zero at the analytic optimum (true flows of a small grid), positive elsewhere,
and equal to direct loop implementations of their formulas on random inputs."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import algos, envs, losses
from gfnjax.rollout import evaluate, sample_forward

DIM, SIDE = 2, 4


@pytest.fixture(scope="module")
def env():
    return envs.make("hypergrid", dim=DIM, side=SIDE, r0=0.1)


@pytest.fixture(scope="module")
def flows(env):
    """True flows with uniform P_B, computed in numpy from the reward formula."""
    coords = np.asarray(env.enumerate_states().coords)
    reward = np.exp(np.asarray(env.log_reward(env.enumerate_terminals()), np.float64))
    idx = lambda c: int(c[0] * SIDE + c[1])
    n_par = lambda c: max(sum(v > 0 for v in c), 1)
    F = np.zeros(len(coords))
    edge = np.zeros((len(coords), DIM + 1))
    for c in sorted(coords.tolist(), key=lambda c: -sum(c)):
        i = idx(c)
        edge[i, DIM] = reward[i]
        for j in range(DIM):
            if c[j] < SIDE - 1:
                nc = list(c)
                nc[j] += 1
                edge[i, j] = F[idx(nc)] / n_par(nc)
        F[i] = edge[i].sum()
    log_edge = np.where(edge > 0, np.log(np.maximum(edge, 1e-300)), -1e9)
    return dict(log_F=np.log(F), log_edge=log_edge, log_z=np.log(F[0]))


def table_apply(table_logits, table_flow):
    def fn(obs):
        c = jnp.argmax(obs.reshape(obs.shape[0], DIM, SIDE), axis=-1)
        i = c[:, 0] * SIDE + c[:, 1]
        return table_logits[i], None, table_flow[i]

    return fn


@pytest.fixture(scope="module")
def batch(env, flows):
    apply = table_apply(
        jnp.asarray(flows["log_edge"], jnp.float32), jnp.asarray(flows["log_F"], jnp.float32)
    )
    traj = sample_forward(env, jax.random.PRNGKey(0), lambda o: apply(o)[:2], 64)
    return traj, evaluate(apply, traj), apply


def test_log_z_of_true_flows_is_exact(env, flows):
    np.testing.assert_allclose(flows["log_z"], float(env.log_partition()), rtol=1e-6)


def test_tb_zero_at_optimum_positive_elsewhere(batch, flows):
    traj, ev, _ = batch
    tb = lambda lz, lpf: losses.trajectory_balance(lpf, ev.log_pb, traj.log_reward, lz, traj.mask)
    assert float(tb(flows["log_z"], ev.log_pf)) < 1e-8
    np.testing.assert_allclose(float(tb(flows["log_z"] + 0.5, ev.log_pf)), 0.25, rtol=1e-4)
    assert float(tb(flows["log_z"], ev.log_pf * 1.1)) > 1e-4


def test_db_and_subtb_zero_at_optimum_positive_elsewhere(batch):
    traj, ev, _ = batch
    args = (ev.log_pf, ev.log_pb, ev.log_flow, traj.log_reward, traj.mask, traj.done)
    assert float(losses.detailed_balance(*args)) < 1e-8
    for lam in (0.5, 0.9, 2.0):
        assert float(losses.subtrajectory_balance(*args, lam)) < 1e-8
    bad_flow = ev.log_flow + 0.3 * jnp.sin(jnp.arange(ev.log_flow.shape[1]))[None]
    bad = (ev.log_pf, ev.log_pb, bad_flow, traj.log_reward, traj.mask, traj.done)
    assert float(losses.detailed_balance(*bad)) > 1e-3
    assert float(losses.subtrajectory_balance(*bad, 0.9)) > 1e-3


def test_fm_zero_at_true_edge_flows(env, flows, batch):
    """The FM algorithm's loss (parents via backward_step) vanishes at the true edge flows."""
    traj, _, _ = batch

    @dataclasses.dataclass(frozen=True)
    class TableFM(algos.get_class("fm")):
        def apply_net(self, net_params, obs):
            out = table_apply(net_params, jnp.zeros(env.num_states))(obs.reshape(-1, obs.shape[-1]))
            return type("O", (), {"logits": out[0].reshape(obs.shape[:-1] + (-1,))})

    fm = TableFM(env=env, config=algos.get_class("fm").Config())
    good = jnp.asarray(flows["log_edge"], jnp.float32)
    loss_good, _ = fm.loss({"net": good}, traj, None)
    assert float(loss_good) < 1e-8
    loss_bad, _ = fm.loss({"net": good.at[:, 0].add(0.5)}, traj, None)
    assert float(loss_bad) > 1e-3


def test_losses_match_direct_loops_on_random_inputs():
    B, T = 5, 7
    k = jax.random.split(jax.random.PRNGKey(0), 5)
    lpf = -jax.random.uniform(k[0], (B, T))
    lpb = -jax.random.uniform(k[1], (B, T))
    lflow = jax.random.normal(k[2], (B, T + 1))
    lr = jax.random.normal(k[3], (B,))
    length = jnp.array([1, 3, 7, 5, 2])
    mask = jnp.arange(T)[None] < length[:, None]
    done = jnp.arange(T)[None] == (length[:, None] - 1)
    lz = jnp.float32(0.7)
    n = lambda x: np.asarray(x, np.float64)
    lpf_, lpb_, lf_, lr_ = n(lpf), n(lpb), n(lflow), n(lr)
    tb = np.mean(
        [(lz + lpf_[b, :L].sum() - lr_[b] - lpb_[b, :L].sum()) ** 2 for b, L in enumerate(length)]
    )
    np.testing.assert_allclose(losses.trajectory_balance(lpf, lpb, lr, lz, mask), tb, rtol=1e-5)

    def F(b, i, L):
        return lr_[b] if i == L else lf_[b, i]

    sq = [
        [(F(b, t, L) + lpf_[b, t] - F(b, t + 1, L) - lpb_[b, t]) ** 2 for t in range(L)]
        for b, L in enumerate(length)
    ]
    db_transitions = np.mean([x for row in sq for x in row])  # the authors' flat mean
    db_trajectories = np.mean([np.mean(row) for row in sq])
    np.testing.assert_allclose(
        losses.detailed_balance(lpf, lpb, lflow, lr, mask, done), db_transitions, rtol=1e-5
    )
    np.testing.assert_allclose(
        losses.detailed_balance(lpf, lpb, lflow, lr, mask, done, reduce="trajectories"),
        db_trajectories,
        rtol=1e-5,
    )
    for lam in (0.9, 1.5):
        per = []
        for b, L in enumerate(np.asarray(length)):
            num = den = 0.0
            for i in range(L):
                for j in range(i + 1, L + 1):
                    r = F(b, i, L) + lpf_[b, i:j].sum() - F(b, j, L) - lpb_[b, i:j].sum()
                    num += lam ** (j - i) * r**2
                    den += lam ** (j - i)
            per.append(num / den)
        np.testing.assert_allclose(
            losses.subtrajectory_balance(lpf, lpb, lflow, lr, mask, done, lam),
            np.mean(per),
            rtol=1e-4,
        )


def test_losses_jit_and_vmap():
    B, T = 4, 6
    lpf = -jnp.ones((3, B, T))
    lpb = -jnp.ones((3, B, T))
    lr = jnp.zeros((3, B))
    mask = jnp.ones((3, B, T), bool)
    out = jax.jit(jax.vmap(losses.trajectory_balance))(lpf, lpb, lr, jnp.zeros(3), mask)
    chex.assert_shape(out, (3,))
    np.testing.assert_allclose(out, 0.0)
