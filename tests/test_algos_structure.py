"""The structure of one `update`, pinned without convergence: how many optimiser steps each phase
takes (read from the optax states' counts), and — with tabular networks and a fixed batch — the
exact parameters and reported losses after one update, against a direct numpy computation of the
soft rewards, advantages, value targets and surrogate gradients followed by plain `optax.adam`.

The tabular algorithms replace the networks by tables indexed by the hypergrid cell and `sample`
by a fixed batch, so one update is a finite computation: P_F = softmax of the table row over valid
actions, V(s) = table entry (V(x) = 0 at the terminal state), uniform P_B over parents. Adam's
first step moves each entry by −lr·sign(gradient), so the parameters pin the sign of every
gradient entry, and the reported losses pin their values.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from fast_compile import compiled

from gfnjax.algos import get_class
from gfnjax.algos.soft_dqn import MDQN, MDQNConfig, SoftDQN, SoftDQNConfig, trajectory_transitions
from gfnjax.envs.hypergrid import Hypergrid
from gfnjax.nets import NetOutput
from gfnjax.rollout import sample_forward

ENV = Hypergrid(dim=2, side=3, r0=0.1)
S, A, AB = ENV.num_states, ENV.num_actions, ENV.num_backward_actions
B = 16
NEG = -1e30


def cell(obs):
    coords = jnp.argmax(obs.reshape(obs.shape[0], ENV.dim, ENV.side), -1)
    return coords[:, 0] * ENV.side + coords[:, 1]


THETA = np.random.default_rng(1).normal(size=(S, A)).astype(np.float32).astype(np.float64)
V0 = (1.5 * np.random.default_rng(2).normal(size=S)).astype(np.float32).astype(np.float64)


@functools.lru_cache(maxsize=1)
def fixed_batch():
    """B trajectories of the table policy THETA (sampled once per process, on first use)."""
    policy = lambda o: (jnp.asarray(THETA, jnp.float32)[cell(o)], None)
    return jax.jit(lambda k: sample_forward(ENV, k, policy, B))(jax.random.PRNGKey(3))


class TableValue:
    """Stands in for the ValueNet module: V(s) = table[cell(s)], params = the table [S]."""

    def apply(self, table, obs):
        return table[cell(obs.reshape(-1, obs.shape[-1]))].reshape(obs.shape[:-1])


class Tabular:
    """Mixin: tables for the policy ({"pf": [S, A]}) and value ([S]) nets; the fixed batch."""

    def apply_net(self, net_params, obs):
        lead = obs.shape[:-1]
        i = cell(obs.reshape(-1, obs.shape[-1]))
        return NetOutput(net_params["pf"][i].reshape(lead + (A,)), None, None)

    @property
    def value_net(self):
        return TableValue()

    def sample(self, state, key):
        return fixed_batch()


def tabular(name, **config):
    fixed_batch()  # sampled here, outside any trace (`sample` is called inside jit)
    base = get_class(name)
    cls = dataclasses.dataclass(frozen=True)(type(f"Tabular{base.__name__}", (Tabular, base), {}))
    return cls(env=ENV, config=base.Config(**config))


def initial_state(algo, **extra):
    params = {"net": {"pf": jnp.asarray(THETA, jnp.float32)}, **extra}
    return algo.make_state(params, algo.resolve_hparams(None))


def update(algo, state):
    """One update (key 0) under the cheapest compilation."""
    key = jax.random.PRNGKey(0)
    return compiled(algo.update, state, key)(state, key)


def step_counts(opt_state):
    """phase -> the set of optax `count`s in its state (one value when the phase is consistent)."""
    out = {}
    for phase, st in opt_state.items():
        leaves = jax.tree_util.tree_flatten_with_path(st)[0]
        out[phase] = {int(x) for p, x in leaves if getattr(p[-1], "name", None) == "count"}
    return out


# --- the numpy oracle of one batch ------------------------------------------------------------
class Oracle:
    """Everything one update computes on the fixed batch, in float64 numpy."""

    def __init__(self, theta=THETA):
        traj = fixed_batch()
        coords = np.asarray(traj.states.coords)
        self.cell = coords[..., 0] * ENV.side + coords[..., 1]  # [B, T+1]
        self.a = np.asarray(traj.actions)
        self.mask, self.done = np.asarray(traj.mask), np.asarray(traj.done)
        self.length = np.asarray(traj.length)
        self.log_r = np.asarray(traj.log_reward, np.float64)
        fvalid = np.concatenate(
            [coords < ENV.side - 1, np.ones(coords.shape[:-1] + (1,), bool)], -1
        )
        self.fvalid = fvalid & (
            np.arange(coords.shape[1])[None, :, None] < self.length[:, None, None]
        )
        self.log_probs = self.log_softmax(theta)
        self.log_pf = np.where(self.mask, self.take(self.log_probs[:, :-1]), 0.0)
        n_parents = (coords[:, 1:] > 0).sum(-1)
        stop = self.a == ENV.stop_action
        self.log_pb = np.where(self.mask & ~stop, -np.log(np.maximum(n_parents, 1)), 0.0)

    def log_softmax(self, theta):
        x = np.where(self.fvalid, np.asarray(theta, np.float64)[self.cell], -np.inf)
        mx = np.where(self.fvalid.any(-1), np.max(x, -1), 0.0)[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            return x - mx - np.log(np.exp(x - mx).sum(-1, keepdims=True))

    def take(self, lp):
        return np.take_along_axis(lp, self.a[..., None], -1)[..., 0]

    def soft_rewards(self):
        g = self.log_pb + np.where(self.done, self.log_r[:, None], 0.0) - self.log_pf
        return np.where(self.mask, g, 0.0)

    def values(self, table):
        """V(s_t) for t < length, 0 at the terminal state and after, [B, T+1]."""
        t = np.arange(self.cell.shape[1])[None]
        return np.where(t < self.length[:, None], np.asarray(table, np.float64)[self.cell], 0.0)

    def gae(self, g, v, lam):
        adv = np.zeros_like(g)
        for b in range(len(g)):
            n = self.length[b]
            delta = g[b, :n] + v[b, 1 : n + 1] - v[b, :n]
            for t in range(n):
                adv[b, t] = sum(lam ** (k - t) * delta[k] for k in range(t, n))
        return adv, np.where(self.mask, adv + v[:, :-1], 0.0)

    def rtg(self, g):
        return np.where(self.mask, np.cumsum(g[:, ::-1], -1)[:, ::-1], 0.0)

    def pg_grad(self, adv):
        """∂/∂θ of −(1/B) Σ_b Σ_t A_t·log P_F(a_t|s_t) for the table θ [S, A]."""
        grad = np.zeros((S, A))
        p = np.exp(self.log_probs)
        for b, t in zip(*np.nonzero(self.mask)):
            d = -p[b, t].copy()
            d[self.a[b, t]] += 1.0
            grad[self.cell[b, t]] -= adv[b, t] * np.where(self.fvalid[b, t], d, 0.0) / len(adv)
        return grad

    def value_loss_and_grad(self, table, targets, average):
        v = self.values(table)[:, :-1]
        err = np.where(self.mask, v - targets, 0.0)
        n = self.mask.sum() if average == "transitions" else len(v)
        loss = (err**2).sum() / n
        grad = np.zeros(S)
        np.add.at(grad, self.cell[:, :-1][self.mask], 2 * err[self.mask] / n)
        return loss, grad


def adam(params, grad_fn, lr, steps=1):
    """`steps` plain optax.adam steps, gradients from `grad_fn(params)` (numpy)."""
    tx = optax.adam(lr)
    p = jnp.asarray(params, jnp.float32)
    st = tx.init(p)
    for _ in range(steps):
        u, st = tx.update(jnp.asarray(grad_fn(np.asarray(p, np.float64)), jnp.float32), st, p)
        p = optax.apply_updates(p, u)
    return np.asarray(p, np.float64)


def close(got, want, what, atol=2e-5, rtol=1e-4):
    np.testing.assert_allclose(
        np.asarray(got, np.float64), want, rtol=rtol, atol=atol, err_msg=what
    )


# --- REINFORCE family -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vpg", "rtg"])
def test_reinforce_update_is_one_adam_step_on_the_documented_advantage(name):
    algo = tabular(name, lr=0.05)
    new, info = update(algo, initial_state(algo))
    o = Oracle()
    g = o.soft_rewards()
    adv = np.where(o.mask, g.sum(-1, keepdims=True), 0.0) if name == "vpg" else o.rtg(g)
    formula = "A_t = G(τ)" if name == "vpg" else "A_t = Σ_(t'≥t) g_t'"
    assert step_counts(new.opt_state) == {"policy": {1}}, "one policy step per iteration"
    close(info.scalars["soft_return"], g.sum(-1).mean(), "mean G(τ) = log R + log P_B − log P_F")
    close(info.scalars["loss"], -(o.log_pf * adv).sum() / B, f"−(1/B)ΣΣ log P_F·A, {formula}")
    want = adam(THETA, lambda _: o.pg_grad(adv), 0.05)
    close(new.params["net"]["pf"], want, f"θ after one Adam step on the PG surrogate, {formula}")


@pytest.mark.parametrize("name", ["v_baseline", "gae"])
def test_value_based_advantages_and_fixed_value_targets(name):
    """v_baseline: A = RTG − V(s_t), targets RTG, 2 value epochs; gae: GAE(0.9), TD(0.9) targets,
    1 value epoch. Targets are computed once with V_old ("fixed")."""
    algo = tabular(name, lr=0.05, value_lr=0.05)
    state = initial_state(algo, value=jnp.asarray(V0, jnp.float32))
    new, info = update(algo, state)
    o = Oracle()
    g, v = o.soft_rewards(), o.values(V0)
    lam = 1.0 if name == "v_baseline" else 0.9
    adv, targets = o.gae(g, v, lam)
    epochs = algo.config.value_epochs
    assert epochs == (2 if name == "v_baseline" else 1)
    assert step_counts(new.opt_state) == {"policy": {1}, "value": {epochs}}
    want = adam(THETA, lambda _: o.pg_grad(adv), 0.05)
    close(new.params["net"]["pf"], want, f"θ after one Adam step, A = GAE(λ = {lam})")
    grad_v = lambda table: o.value_loss_and_grad(table, targets, "transitions")[1]
    v_path = [V0] + [adam(V0, grad_v, 0.05, k) for k in range(1, epochs + 1)]
    close(new.params["value"], v_path[-1], f"V after {epochs} Adam steps to y_t = A_t + V_old(s_t)")
    last_loss, _ = o.value_loss_and_grad(v_path[-2], targets, "transitions")
    close(
        info.scalars["value_loss"], last_loss, "value loss mean_valid (V(s_t) − y_t)² (last step)"
    )


def ppo_loss(theta, o, log_probs_old, adv, clip_eps, kl_coef):
    """Ent-PPO objective written out: −(1/B) Σ [min(ρA, clip(ρ)A) − A − β·KL(π_θ ‖ π_old)]."""
    logits = jnp.where(o.fvalid[:, :-1], theta[o.cell[:, :-1]], NEG)
    lp = jax.nn.log_softmax(logits, -1)
    lp_a = jnp.take_along_axis(lp, o.a[..., None], -1)[..., 0]
    old_a = np.take_along_axis(log_probs_old, o.a[..., None], -1)[..., 0]
    ratio = jnp.exp(lp_a - jnp.where(o.mask, old_a, 0.0))
    surr = jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - clip_eps, 1 + clip_eps) * adv) - adv
    old = jnp.where(o.fvalid[:, :-1], log_probs_old, 0.0)
    kl = jnp.where(o.fvalid[:, :-1], jnp.exp(lp) * (lp - old), 0.0).sum(-1)
    obj = jnp.where(o.mask, surr - kl_coef * kl, 0.0)
    return -obj.sum() / adv.shape[0], (kl * o.mask).sum() / o.mask.sum()


def test_ppo_epochs_clipping_kl_and_recomputed_value_targets():
    """Two policy epochs at lr 0.3 (the second one at θ ≠ θ_old, with clipped ratios and a real KL
    term), then two value steps whose targets are recomputed with the current V."""
    lr, clip_eps, kl_coef, lam = 0.3, 0.2, 1.0, 0.7
    algo = tabular("ppo", lr=lr, value_lr=0.1, policy_epochs=2, value_epochs=2, value_minibatches=1)
    assert (algo.config.clip_eps, algo.config.kl_coef, algo.config.lam) == (clip_eps, kl_coef, lam)
    state = initial_state(algo, value=jnp.asarray(V0, jnp.float32))
    new, info = update(algo, state)
    assert step_counts(new.opt_state) == {"policy": {2}, "value": {2}}, "2 epochs × 1 minibatch"
    o = Oracle()
    g = o.soft_rewards()
    adv, _ = o.gae(g, o.values(V0), lam)
    lp_old = np.where(o.fvalid, o.log_probs, 0.0)[:, :-1]
    loss_fn = jax.jit(lambda th: ppo_loss(th, o, lp_old, jnp.asarray(adv), clip_eps, kl_coef))
    grad_fn = jax.jit(jax.grad(lambda t: loss_fn(t)[0]))
    grad = lambda th: np.asarray(grad_fn(jnp.asarray(th, jnp.float32)), np.float64)
    theta1 = adam(THETA, grad, lr, 1)
    theta2 = adam(THETA, grad, lr, 2)
    loss1, kl1 = loss_fn(jnp.asarray(theta1))
    ratio1 = np.exp(Oracle(theta=theta1).log_pf - o.log_pf)[o.mask]
    assert np.any(np.abs(ratio1 - 1) > clip_eps) and float(kl1) > 1e-2  # the test has power
    close(info.scalars["kl"], kl1, "reported KL(π_θ ‖ π_old) of the last epoch (θ = θ_1)")
    close(info.scalars["loss"], loss1, "Ent-PPO loss of the last epoch at θ_1")
    close(new.params["net"]["pf"], theta2, "θ after 2 Adam epochs on the Ent-PPO loss", atol=1e-4)

    def value_grad(table):  # TD(λ) targets recomputed with the current V
        _, y = o.gae(g, o.values(table), lam)
        return o.value_loss_and_grad(table, y, "transitions")[1]

    close(new.params["value"], adam(V0, value_grad, 0.1, 2), "V after 2 steps, recomputed targets")


def test_niu_rl_u_costs_log_z_centred_advantages_and_monte_carlo_value_targets():
    algo = tabular("rl_u", lr=0.05)
    cfg = algo.config
    assert (cfg.lam, cfg.value_target_lam, cfg.value_average, cfg.advantage_norm) == (
        0.99,
        1.0,
        "trajectories",
        "center",
    )
    state = initial_state(algo, value=jnp.asarray(V0, jnp.float32), log_z=jnp.float32(0.0))
    new, info = update(algo, state)
    assert step_counts(new.opt_state) == {"policy": {1}, "value": {1}}
    o = Oracle()
    costs = np.where(o.mask, o.log_pf - o.log_pb - np.where(o.done, o.log_r[:, None], 0.0), 0.0)
    v = o.values(V0)
    adv, _ = o.gae(-costs, v, 0.99)
    adv = np.where(o.mask, adv - adv[o.mask].mean(), 0.0)
    targets = o.rtg(-costs)  # λ_V = 1: Monte-Carlo returns of the rewards −c_t
    close(info.scalars["soft_return"], (-costs).sum(-1).mean(), "mean_b Σ_t −c_t + log Z (= 0)")
    loss, _ = o.value_loss_and_grad(V0, targets, "trajectories")
    close(info.scalars["value_loss"], loss, "mean_b Σ_t (V(s_t) − Σ_(t'≥t) −c_t')²")
    close(
        new.params["net"]["pf"],
        adam(THETA, lambda _: o.pg_grad(adv), 0.05),
        "θ after one Adam step with mean-centred GAE(0.99) advantages of −c_t",
    )
    grad_v = lambda table: o.value_loss_and_grad(table, targets, "trajectories")[1]
    close(new.params["value"], adam(V0, grad_v, cfg.value_lr), "V after one step to MC returns")
    log_z_grad = costs.sum(-1).mean()  # ∂/∂log Z = mean_b Σ_t c_t
    close(new.params["log_z"], -cfg.lr_log_z * np.sign(log_z_grad), "log Z: Adam, lr_log_z")


def test_trajectory_balance_update_steps_the_policy_and_log_z_together():
    algo = tabular("tb", lr=0.05)
    state = initial_state(algo, log_z=jnp.float32(0.0))
    new, info = update(algo, state)
    assert step_counts(new.opt_state) == {"main": {1}}
    o = Oracle()
    delta = 0.0 + o.log_pf.sum(-1) - o.log_r - o.log_pb.sum(-1)
    close(
        info.scalars["loss"],
        np.mean(delta**2),
        "TB loss mean_b (log Z + Σ log P_F − log R − Σ log P_B)²",
    )
    grad = o.pg_grad(np.where(o.mask, -2 * delta[:, None], 0.0))  # ∂/∂θ of mean_b δ_b²
    close(new.params["net"]["pf"], adam(THETA, lambda _: grad, 0.05), "θ after one TB Adam step")
    close(new.params["log_z"], -0.1 * np.sign(2 * delta.mean()), "log Z moves by lr_log_z = 0.1")


# --- step counts of the other algorithms (small real networks, one program) -----------------------
COUNTS = [  # (algorithm, config overrides, optimiser steps per phase in one update)
    ("db", {}, {"main": {1}}),
    ("subtb", {}, {"main": {1}}),
    ("fm", {}, {"main": {1}}),
    ("tb", {"pb": "tlm", "pb_steps": 3}, {"main": {1}, "pb": {3}}),
    ("gae_subtb", {"value_epochs": 3}, {"policy": {1}, "value": {3}}),
    ("trpo", {}, {"policy": {1}, "value": {1}}),
    ("rl_b", {}, {"policy": {1}, "value": {1}, "pb": {1}, "value_b": {1}}),
]


def test_optimiser_steps_per_iteration():
    """TLM takes pb_steps steps before the flow objective's one; RL-B one P_B and one V_B step
    after the forward update; TRPO one Adam step of log Z (its policy moves by the trust-region
    step); value_epochs × value_minibatches value steps."""
    algs = [
        get_class(n)(env=ENV, config=get_class(n).Config(hidden=(8,), **c)) for n, c, _ in COUNTS
    ]
    states = [a.init(jax.random.PRNGKey(0)) for a in algs]
    key = jax.random.PRNGKey(1)
    run = lambda ss, k: [a.update(s, k)[0] for a, s in zip(algs, ss)]
    for (name, _, counts), new in zip(COUNTS, compiled(run, states, key)(states, key)):
        assert step_counts(new.opt_state) == counts, f"{name}: optimiser steps per phase"


# --- soft RL -------------------------------------------------------------------------------------
def test_soft_dqn_learning_starts_target_period_and_polyak():
    """learning_starts = 2, target_every = 2, ρ = 0.25: no step at iterations 0–1; one Adam step at
    each later iteration; θ' ← (1 − ρ)θ' + ρθ at iterations 2 and 4 only."""
    env = Hypergrid(dim=2, side=4)
    cfg = SoftDQNConfig(
        hidden=(8,),
        batch_size=4,
        buffer_capacity=64,
        replay_batch_size=8,
        learning_starts=2,
        target_every=2,
        polyak=0.25,
    )
    algo = SoftDQN(env=env, config=cfg)
    state = algo.init(jax.random.PRNGKey(0))
    update = compiled(algo.update, state, jax.random.PRNGKey(0))
    leaves = lambda t: np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)])
    for it in range(5):
        target_before = leaves(state.extra["target"])
        state, info = update(state, jax.random.PRNGKey(10 + it))
        assert step_counts(state.opt_state) == {"main": {max(0, it - 1)}}, f"iteration {it}"
        assert float(info.scalars["learning"]) == float(it >= 2)
        target = leaves(state.extra["target"])
        if it in (2, 4):
            want = 0.75 * target_before + 0.25 * leaves(state.params["net"])
            close(target, want, f"θ' ← (1 − ρ)θ' + ρθ at iteration {it}", atol=1e-7)
            assert np.abs(target - target_before).max() > 1e-5
        else:
            np.testing.assert_array_equal(target, target_before, err_msg=f"no move at {it}")


def _np_lse(x, m):
    """logsumexp over the valid entries (rows without one, terminal states: unused, 0)."""
    x = np.where(m, x, -np.inf)
    mx = np.where(m.any(-1), x.max(-1), 0.0)[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m.any(-1), np.log(np.exp(x - mx).sum(-1)) + mx[..., 0], 0.0)


@pytest.mark.parametrize("name", ["soft_dqn", "mdqn"])
def test_td_targets_equal_the_soft_bellman_and_munchausen_formulas(name):
    env = Hypergrid(dim=2, side=4)
    if name == "mdqn":
        algo = MDQN(
            env=env, config=MDQNConfig(hidden=(16,), munchausen_alpha=0.3, munchausen_l0=-1.0)
        )
        alpha = 0.3
        tau = 1 / (1 - alpha)
    else:
        algo = SoftDQN(env=env, config=SoftDQNConfig(hidden=(16,), tau=0.5))
        alpha, tau = 0.0, 0.5
    state = algo.init(jax.random.PRNGKey(0))
    perturb = lambda p, k: jax.tree.map(
        lambda x, kk: x + jax.random.normal(kk, x.shape), p, _keys(p, k)
    )
    net, target = perturb(state.params["net"], 1), perturb(state.params["net"], 2)
    traj = jax.jit(lambda k: sample_forward(env, k, algo.policy_fn(state), 16))(
        jax.random.PRNGKey(3)
    )
    tr, valid = trajectory_transitions(traj)
    q_sa, y = compiled(algo.td, net, target, tr, state.hparams)(net, target, tr, state.hparams)
    v = np.asarray(valid)
    q = lambda p, s: np.asarray(algo.apply_net(p, env.observe(s)).logits, np.float64)
    m, m_next = np.asarray(env.forward_mask(tr.state)), np.asarray(env.forward_mask(tr.next_state))
    a = np.asarray(tr.action)
    close(np.asarray(q_sa)[v], np.take_along_axis(q(net, tr.state), a[:, None], 1)[v, 0], "Q(s, a)")
    v_next = tau * _np_lse(q(target, tr.next_state) / tau, m_next)
    done = np.asarray(tr.done)
    want = np.asarray(tr.log_pb) + np.where(done, np.asarray(tr.log_reward), v_next)
    if name == "mdqn":
        qt = q(target, tr.state) / tau
        log_pi = np.take_along_axis(qt, a[:, None], 1)[:, 0] - _np_lse(qt, m)
        bonus = tau * log_pi
        assert (bonus[v] < -1.0).any() and (bonus[v] > -1.0).any()  # both sides of l0
        want = want + alpha * np.clip(bonus, -1.0, 0.0)
    formula = "y = log P_B + [log R if done else τ·lse Q_targ(s')/τ]" + (
        " + α·clip(τ log π_targ(a|s), l0, 0), τ = 1/(1 − α)" if name == "mdqn" else ", τ = 0.5"
    )
    close(np.asarray(y)[v], want[v], formula)


def _keys(tree, seed):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return jax.tree_util.tree_unflatten(
        treedef, list(jax.random.split(jax.random.PRNGKey(seed), len(leaves)))
    )
