"""The methods follow the authors' code: objectives checked against exact enumeration, trust
regions against an independent KL, and the published presets applied by `algos.make`.

Exact checks use the 3×3 hypergrid (9 terminals, 19 complete trajectories) with tabular policies,
so every expectation is a finite sum computed here in plain jnp/numpy.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fast_compile import compiled

from gfnjax import algos, envs, optim
from gfnjax.algos import guides
from gfnjax.algos.niu import RLB, RLG
from gfnjax.envs.hypergrid import Hypergrid, HypergridState
from gfnjax.losses import pg
from gfnjax.nets import NetOutput
from gfnjax.rollout import evaluate, sample_forward
from gfnjax.utils import masked_log_softmax

ENV = Hypergrid(dim=2, side=3, r0=0.1)  # corners are rewarding; the RL-G guide caps elsewhere
S, A, AB = ENV.num_states, ENV.num_actions, ENV.num_backward_actions
Z_SCORE = 4.5  # per-component Monte-Carlo tolerance over ≤ 27 components


def state_idx(obs):
    coords = jnp.argmax(obs.reshape(obs.shape[0], ENV.dim, ENV.side), -1)
    return coords[:, 0] * ENV.side + coords[:, 1]


def coords_of(i):
    return [i // ENV.side, i % ENV.side]


# --- every complete trajectory, in plain Python ------------------------------------------------
def enumerate_trajectories():
    """(visited state ids, forward actions) of every trajectory s0 → x (stop last)."""
    out = []

    def rec(c, sids, acts):
        sid = c[0] * ENV.side + c[1]
        out.append((sids + [sid], acts + [ENV.dim]))
        for i in range(ENV.dim):
            if c[i] < ENV.side - 1:
                n = list(c)
                n[i] += 1
                rec(n, sids + [sid], acts + [i])

    rec([0, 0], [], [])
    return out


TAUS = enumerate_trajectories()


def forward_mask_of(sid):
    c = coords_of(sid)
    return np.array([c[0] < ENV.side - 1, c[1] < ENV.side - 1, True])


def backward_mask_of(sid):
    c = coords_of(sid)
    return np.array([c[0] > 0, c[1] > 0, False])  # non-terminal states: moves only


FMASK = jnp.asarray(np.stack([forward_mask_of(i) for i in range(S)]))
BMASK = jnp.asarray(np.stack([backward_mask_of(i) for i in range(S)]))


def exact_terminal_probs(pf_table):
    lp = masked_log_softmax(pf_table, FMASK)
    p = np.zeros(S)
    for sids, acts in TAUS:
        p[sids[-1]] += float(jnp.exp(sum(lp[s, a] for s, a in zip(sids, acts))))
    return p


def exact_backward_kl(pb_table, log_target, p_x):
    """Σ_x P_T(x) Σ_{τ→x} P_B(τ|x) [log P_B(τ|x) − log P_target(τ)], non-stop transitions."""
    lpb = masked_log_softmax(pb_table, BMASK)
    total = 0.0
    for sids, acts in TAUS:
        x = sids[-1]
        moves = list(zip(sids[:-1], acts[:-1]))  # (s_t, a_t) with s_{t+1} = step(s_t, a_t)
        log_b = 0.0
        log_t = 0.0
        for t, (s, a) in enumerate(moves):
            child = sids[t + 1]
            log_b = log_b + lpb[child, a]  # backward action a at the child undoes forward a
            log_t = log_t + log_target[s, a]
        total = total + p_x[x] * jnp.exp(log_b) * (log_b - log_t)
    return total


@dataclasses.dataclass(frozen=True)
class Tabular:
    """Mixin: tables instead of networks (net params {"pf": [S, A], "pb": [S, A_b]}, values [S])."""

    def apply_net(self, net_params, obs):
        i = state_idx(obs.reshape(-1, obs.shape[-1]))
        lead = obs.shape[:-1]
        return NetOutput(
            net_params["pf"][i].reshape(lead + (A,)),
            net_params["pb"][i].reshape(lead + (AB,)),
            None,
        )

    def values(self, value_params, obs):
        flat = obs.reshape(-1, obs.shape[-1])
        return value_params[state_idx(flat)].reshape(obs.shape[:-1])

    def trajectory_values(self, value_params, traj):
        return self.values(value_params, traj.obs)


@dataclasses.dataclass(frozen=True)
class TabularRLG(Tabular, RLG):
    pass


@dataclasses.dataclass(frozen=True)
class TabularRLB(Tabular, RLB):
    pass


PF = jax.random.normal(jax.random.PRNGKey(42), (S, A)) * 1.5
PB = jax.random.normal(jax.random.PRNGKey(43), (S, AB)) * 1.5
VB = jax.random.normal(jax.random.PRNGKey(44), (S,)) * 2.0  # an arbitrary backward baseline


N_MC = 100_000


def mc_backward_gradients(cls):
    """Per-trajectory backward REINFORCE gradients (w.r.t. the P_B table) of `cls`'s update, from
    x ~ P_F and τ ~ P_B(·|x): float[N_MC, S, A_b]; and the exact reverse-KL gradient."""
    algo = cls(env=ENV, config=RLB.Config())
    states = ENV.enumerate_states()
    target = guides.get(ENV)(ENV, states, PF) if cls is TabularRLG else PF
    log_target = masked_log_softmax(target, FMASK)
    exact = jax.grad(exact_backward_kl)(PB, log_target, exact_terminal_probs(PF))
    net = {"pf": PF, "pb": PB}
    state = algos.TrainState(
        params={"net": net, "value_b": VB}, opt_state=None, hparams={}, step=jnp.int32(0)
    )

    @jax.jit
    def batch(key):
        k_f, k_b = jax.random.split(key)
        fwd = sample_forward(ENV, k_f, algo.policy_fn(state), N_MC)
        btraj, _, _, adv = algo.backward_batch(state, fwd.final_state, k_b)

        def one(row, a):
            row1 = jax.tree.map(lambda x: x[None], row)
            return jax.grad(lambda p: algo.backward_pg_loss(p, row1, a[None]))(net)["pb"]

        return jax.vmap(one)(btraj, adv)

    grads = batch(jax.random.PRNGKey(0))
    return np.asarray(grads.mean(0)), np.asarray(grads.std(0)) / math.sqrt(N_MC), np.asarray(exact)


@pytest.mark.parametrize("cls", [TabularRLG, TabularRLB], ids=["rl_g", "rl_b"])
def test_backward_gradient_is_the_exact_kl_gradient(cls):
    """RL-G (RL-B): the backward REINFORCE gradient, averaged over x ~ P_F and τ ~ P_B(·|x), equals
    ∇_φ E_{x~P_F} KL(P_B(τ|x) ‖ P_G(τ)) (‖ P_F(τ)) computed by enumeration (Niu et al.). With an
    arbitrary backward value table as baseline, per component within 4.5 standard errors."""
    if cls is TabularRLG:  # the guide acts on this grid
        assert np.any(
            np.asarray(guides.get(ENV)(ENV, ENV.enumerate_states(), PF)) != np.asarray(PF)
        )
    mean, se, exact = mc_backward_gradients(cls)
    err = np.abs(mean - exact)
    assert np.all(err <= Z_SCORE * se + 1e-6), (err.max(), se.max())
    # power: the maximum-likelihood gradient of the earlier implementation (forward KL on P_G's
    # own trajectories) is far outside the same tolerance
    ml = np.asarray(
        jax.grad(ml_backward_loss)(
            PB,
            masked_log_softmax(
                guides.get(ENV)(ENV, ENV.enumerate_states(), PF) if cls is TabularRLG else PF, FMASK
            ),
        )
    )
    assert np.any(np.abs(ml - exact) > 3 * Z_SCORE * se + 1e-6)


def ml_backward_loss(pb_table, log_target):
    """E_{τ~P_target}[−log P_B(τ|x)], exact over the target's trajectories."""
    lpb = masked_log_softmax(pb_table, BMASK)
    total = 0.0
    for sids, acts in TAUS:
        lg = sum(log_target[s, a] for s, a in zip(sids, acts))
        lb = sum(lpb[sids[t + 1], a] for t, a in enumerate(acts[:-1]))
        total = total - jnp.exp(lg) * lb
    return total


# --- TRPO: the per-trajectory KL trust region --------------------------------------------------
def test_trpo_step_bounds_the_per_trajectory_kl():
    """A trpo_step on the per-trajectory KL keeps (1/B) Σ_b Σ_t KL(π_old ‖ π_new) ≤ δ, and lands
    close to δ when the full step is accepted (the quadratic model is accurate for small δ)."""
    theta = PF
    tab = lambda th: lambda obs: (th[state_idx(obs)], None, None)
    sub = jax.jit(lambda k: sample_forward(ENV, k, lambda o: tab(theta)(o)[:2], 512))(
        jax.random.PRNGKey(1)
    )
    ev_old = evaluate(tab(theta), sub)
    g = pg.soft_rewards(ev_old.log_pf, ev_old.log_pb, sub.log_reward, sub.mask, sub.done)
    adv = pg.mean_center(pg.reward_to_go(g, sub.mask), sub.mask)

    def loss_fn(th):
        return pg.importance_surrogate(evaluate(tab(th), sub).log_pf, ev_old.log_pf, adv, sub.mask)

    def kl_np(th):  # independent numpy computation of the per-trajectory KL
        lp_old = np.asarray(ev_old.log_probs[:, :-1], np.float64)
        lp_new = np.asarray(evaluate(tab(th), sub).log_probs[:, :-1], np.float64)
        valid = np.asarray(sub.forward_mask[:, :-1])
        kl = np.where(valid, np.exp(lp_old) * (lp_old - lp_new), 0.0).sum(-1)
        return float(np.where(np.asarray(sub.mask), kl, 0.0).sum(-1).mean())

    for delta in (0.01, 0.05):
        kl_fn = lambda th: pg.trajectory_kl(
            ev_old.log_probs[:, :-1],
            evaluate(tab(th), sub).log_probs[:, :-1],
            sub.forward_mask[:, :-1],
            sub.mask,
        )
        new, info = jax.jit(
            lambda th, kl_fn=kl_fn, d=delta: optim.trpo_step(loss_fn, kl_fn, th, d)
        )(theta)
        assert float(info["accepted"]) == 1.0
        kl = kl_np(new)
        assert kl <= delta * (1 + 1e-4), (kl, delta)
        if float(info["step_fraction"]) == 1.0:
            assert kl > 0.5 * delta, (kl, delta)
        assert float(loss_fn(new)) < float(loss_fn(theta))


def test_trpo_update_keeps_the_per_trajectory_kl_below_delta():
    """The trpo algorithm with a 2×32 MLP on 8×8: after a few updates, one more update moves the
    policy by at most δ in per-trajectory KL on the batch it sampled (independent numpy KL)."""
    env = envs.make("hypergrid", dim=2, side=8)
    algo = algos.make("trpo", env, hidden=(32, 32))
    assert algo.preset.name == "ent-ppo"
    state = algo.init(jax.random.PRNGKey(0))
    update = compiled(algo.update, state, jax.random.PRNGKey(0))
    for i in range(5):
        state, _ = update(state, jax.random.PRNGKey(100 + i))
    key = jax.random.PRNGKey(7)
    traj = algo.sample(state, jax.random.split(key, 4)[0])  # the batch the update samples
    new, info = update(state, key)

    def log_probs(s):
        logits, _ = algo.policy_fn(s)(traj.obs.reshape(-1, env.obs_dim))
        return np.asarray(
            masked_log_softmax(logits.reshape(traj.obs.shape[:2] + (-1,)), traj.forward_mask),
            np.float64,
        )[:, :-1]

    lp_old, lp_new = log_probs(state), log_probs(new)
    valid = np.asarray(traj.forward_mask[:, :-1])
    kl = np.where(valid, np.exp(lp_old) * (lp_old - lp_new), 0.0).sum(-1)
    per_traj = np.where(np.asarray(traj.mask), kl, 0.0).sum(-1).mean()
    assert per_traj <= algo.config.max_kl * (1 + 1e-3), per_traj
    if float(info.scalars["step_fraction"]) == 1.0:
        assert per_traj > 0.3 * algo.config.max_kl


# --- presets ------------------------------------------------------------------------------------
def test_every_preset_builds_a_valid_config_for_its_environment():
    from gfnjax.algos.presets import PRESETS

    small = {
        "hypergrid": dict(dim=2, side=4),
        "bitseq": dict(n=16, k=4, num_modes=4),
        "qm9str": dict(num_blocks=3),
        "molgraph": dict(max_atoms=3),
    }
    for (algo, env_name), options in PRESETS.items():
        for p in options:
            env = envs.make(env_name, **small[env_name], **p.when)
            a = algos.make(algo, env, preset=p.name)
            for k, v in p.values.items():
                assert getattr(a.config, k) == v, (algo, env_name, p.name, k)
            assert a.preset.source


def test_mdqn_on_bitseq_runs_the_authors_settings_and_records_them():
    env = envs.make("bitseq", n=16, k=4, num_modes=4)
    a = algos.make("mdqn", env)
    c = a.config
    assert a.preset.name == "tiapkin" and "bitseq/run.py" in a.preset.source
    assert (c.polyak, c.target_every, c.learning_starts, c.epsilon, c.epsilon_final) == (
        1.0,
        5,
        50,
        1e-3,
        1e-3,
    )
    assert (c.per_alpha, c.per_beta, c.per_beta_final, c.importance_weights) == (
        0.9,
        0.1,
        0.1,
        True,
    )
    assert (c.leaf_coeff, c.munchausen_l0, c.weight_decay, c.lr, c.torso) == (
        2.0,
        -25.0,
        1e-5,
        2e-3,
        "transformer",
    )
    # the user's override wins over the preset; "defaults" skips it
    assert algos.make("mdqn", env, lr=5e-4).config.lr == 5e-4
    assert algos.make("mdqn", env, preset="defaults").config.polyak == 0.25
    with pytest.raises(ValueError, match="unknown preset"):
        algos.make("mdqn", env, preset="gfnx")


def test_inactive_fields_cannot_be_set():
    env = envs.make("hypergrid", dim=2, side=4)
    with pytest.raises(ValueError, match="unknown trpo config field"):
        algos.make("trpo", env, lr=0.1)  # the trust region sets TRPO's step
    with pytest.raises(ValueError, match="unknown db config field"):
        algos.make("db", env, lr_log_z=0.1)  # DB reads log Z off the flow head
    with pytest.raises(ValueError, match="unknown v_baseline config field"):
        algos.make("v_baseline", env, lam=0.5)  # A = RTG − V: λ is 1 by definition
    assert "lr" not in algos.get_class("trpo").Config.sweepable_fields()


# --- soft RL: importance weights and the terminal-transition weight -----------------------------
def test_soft_q_loss_weights_terminals_by_leaf_coeff_and_importance_weights_only_when_asked():
    env = envs.make("hypergrid", dim=2, side=4)
    for iw in (False, True):
        algo = algos.make("soft_dqn", env, hidden=(8,), leaf_coeff=3.0, importance_weights=iw)
        state = algo.init(jax.random.PRNGKey(0))
        traj = algo.sample(state, jax.random.PRNGKey(1))
        from gfnjax.algos.soft_dqn import trajectory_transitions

        tr, valid = trajectory_transitions(traj)
        rows = np.nonzero(np.asarray(valid))[0]
        take = jax.tree.map(lambda x, rows=rows: x[rows], tr)
        w = jnp.linspace(0.2, 1.0, take.action.shape[0])
        params = jax.tree.map(lambda x: x + 0.1, state.params)
        loss, (per, _) = algo.loss(
            params, state.extra["target"], take, w if iw else jnp.ones_like(w), state.hparams
        )
        q_sa, y = algo.td(params["net"], state.extra["target"], take, state.hparams)
        err = np.asarray(q_sa - y, np.float64)
        huber = np.where(np.abs(err) <= 1, 0.5 * err**2, np.abs(err) - 0.5)
        c = np.where(np.asarray(take.done), 3.0, 1.0)
        ww = np.asarray(w) if iw else 1.0
        np.testing.assert_allclose(float(loss), np.mean(ww * c * huber), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(per), c * huber, rtol=1e-5)  # the new priorities
    hg = algos.make("mdqn", env).config
    assert hg.importance_weights is False  # Tiapkin et al.'s hypergrid loss is the plain mean


# --- the structure of an update ----------------------------------------------------------------
def test_tlm_takes_pb_steps_adam_steps_with_decaying_learning_rate():
    env = envs.make("hypergrid", dim=2, side=4)
    algo = algos.make("ppo", env, hidden=(16,), pb="tlm", pb_steps=3, pb_lr=1e-3, pb_lr_decay=0.5)
    state = algo.init(jax.random.PRNGKey(0))
    state, _ = jax.jit(algo.update)(state, jax.random.PRNGKey(1))
    opt = state.opt_state["pb"]
    inner = opt.inner_states["net"].inner_state
    assert int(inner.count) == 3  # three TLM steps this iteration
    # the injected learning rate is the schedule at the last step's count: 1e-3·0.5^2
    np.testing.assert_allclose(float(inner.hyperparams["learning_rate"]), 1e-3 * 0.5**2, rtol=1e-6)


def test_niu_log_z_moves_by_its_adam_learning_rate():
    """Adam's first step moves a parameter by lr·sign(gradient): log Z (initially 0) moves by
    lr_log_z = 0.1 towards the batch's mean soft return (its gradient is log Z − mean G), not by
    an SGD step of 0.1·(mean G − log Z)."""
    env = envs.make("hypergrid", dim=2, side=8)
    algo = algos.make("rl_u", env, hidden=(16,), value_hidden=(16,))
    state = algo.init(jax.random.PRNGKey(0))
    new, info = jax.jit(algo.update)(state, jax.random.PRNGKey(1))
    mean_g = float(info.scalars["soft_return"])
    assert abs(abs(mean_g) - 1.0) > 0.2  # an SGD step would move log Z by 0.1·mean G ≠ ±0.1
    assert float(new.params["log_z"]) == pytest.approx(0.1 * np.sign(mean_g), abs=1e-4)


def test_ppo_takes_epochs_times_minibatches_policy_steps_and_value_steps():
    env = envs.make("hypergrid", dim=2, side=4)
    algo = algos.make(
        "ppo",
        env,
        hidden=(8,),
        policy_epochs=3,
        policy_minibatches=2,
        value_epochs=2,
        value_minibatches=4,
    )
    state = algo.init(jax.random.PRNGKey(0))
    state, _ = jax.jit(algo.update)(state, jax.random.PRNGKey(1))
    count = lambda phase: int(
        jax.tree.leaves(
            state.opt_state[phase]
            .inner_states[{"policy": "net", "value": "value"}[phase]]
            .inner_state.count
        )[0]
    )
    assert count("policy") == 6 and count("value") == 8


def test_minibatch_order_fixed_is_contiguous_splits_and_shuffled_is_a_new_partition():
    data = jnp.arange(8)
    seen = lambda order, key: np.asarray(
        algos.base.minibatch_epochs(lambda c, b: (c, b), 0, data, key, 3, 2, order)[1]
    )
    for key in jax.random.split(jax.random.PRNGKey(0), 4):
        np.testing.assert_array_equal(
            seen("fixed", key), np.tile(np.arange(8).reshape(2, 4), (3, 1, 1))
        )
    shuffled = np.stack([seen("shuffled", k) for k in jax.random.split(jax.random.PRNGKey(1), 4)])
    np.testing.assert_array_equal(
        np.sort(shuffled.reshape(4, 3, 8), -1), np.broadcast_to(np.arange(8), (4, 3, 8))
    )
    assert len({p.tobytes() for p in shuffled.reshape(12, 8)}) > 1, "the partitions change"


@pytest.mark.parametrize("order", ["fixed", "shuffled"])
def test_ppo_minibatch_order_reaches_the_policy_and_value_epochs(order):
    """With fixed splits the minibatches do not depend on the key, so two keys give the same
    update; with shuffled splits they differ."""
    env = envs.make("hypergrid", dim=2, side=4)
    algo = algos.make(
        "ppo", env, hidden=(8,), policy_minibatches=2, value_minibatches=2, minibatch_order=order
    )
    state = algo.init(jax.random.PRNGKey(0))
    traj = algo.sample(state, jax.random.PRNGKey(1))
    ev = algo.evaluation(state.params["net"], traj)
    adv = jnp.where(traj.mask, jax.random.normal(jax.random.PRNGKey(2), traj.mask.shape), 0.0)
    policy = jax.jit(lambda k: algo.policy_update(state, traj, ev, adv, {}, k)[0].params["net"])
    value = jax.jit(lambda k: algo.value_update(state, traj, ev, adv, k)[0].params["value"])
    for update in (policy, value):
        a, b = update(jax.random.PRNGKey(3)), update(jax.random.PRNGKey(4))
        same = all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
        assert same == (order == "fixed")
    with pytest.raises(ValueError, match="minibatch_order"):
        algos.make("ppo", env, minibatch_order="contiguous")


def test_hypergrid_guide_uses_the_reward_floor():
    s = HypergridState(coords=jnp.asarray([[0, 0], [1, 1], [2, 0]]), done=jnp.zeros(3, bool))
    logits = jnp.zeros((3, A))
    out = np.asarray(guides.get(ENV)(ENV, s, logits))
    # corners (0,0) and (2,0) are rewarding on the 3×3 grid: no cap; (1,1) is at R0: capped
    assert out[0, -1] == 0 and out[2, -1] == 0 and out[1, -1] == pytest.approx(math.log(1e-5))
