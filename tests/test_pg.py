"""Policy-gradient family (docs/methods.md §3): exact identities on an enumerable 3×3 hypergrid
with a tabular policy, Monte-Carlo gradient estimators against the autodiff gradient of the exact
ELBO (tolerances from the sample standard error), and short convergence runs."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import algos, envs, optim
from gfnjax.algos import guides
from gfnjax.envs.hypergrid import Hypergrid, HypergridState
from gfnjax.losses import flow as flow_losses
from gfnjax.losses import pg
from gfnjax.metrics import ExactDistribution
from gfnjax.rollout import evaluate, sample_forward
from gfnjax.trainer import train
from gfnjax.utils import masked_log_softmax

ENV = Hypergrid(dim=2, side=3, r0=0.1)  # 9 terminals, 19 complete trajectories
S, A = ENV.num_states, ENV.num_actions
Z_SCORE = 4.5  # per-component MC tolerance (27 components: false-alarm probability < 2e-4)


# --- tabular policy and an independent oracle ----------------------------------------------------


def state_idx(obs):
    coords = jnp.argmax(obs.reshape(obs.shape[0], ENV.dim, ENV.side), -1)
    return coords[:, 0] * ENV.side + coords[:, 1]


def tabular_policy(theta):
    return lambda obs: (theta[state_idx(obs)], None)


def tabular_apply(theta):
    return lambda obs: (theta[state_idx(obs)], None, None)


def np_log_reward(c):
    r0, r1, r2 = ENV.reward_constants
    a = np.abs(np.asarray(c) / (ENV.side - 1) - 0.5)
    return math.log(r0 + r1 * np.all(a > 0.25) + r2 * np.all((a > 0.3) & (a < 0.4)))


def enumerate_trajectories():
    """Every complete trajectory of the 3×3 grid in plain Python: (state ids, actions, log P_B,
    log R)."""
    out = []

    def rec(c, states, actions, log_pb):
        sid = c[0] * ENV.side + c[1]
        # stop: P_B(stop) = 1
        out.append((states + [sid], actions + [ENV.dim], log_pb, np_log_reward(c)))
        for i in range(ENV.dim):
            if c[i] < ENV.side - 1:
                n = list(c)
                n[i] += 1
                parents = sum(v > 0 for v in n)  # uniform P_B over parents of the child
                rec(n, states + [sid], actions + [i], log_pb - math.log(parents))

    rec([0, 0], [], [], 0.0)
    T = max(len(a) for _, a, _, _ in out)
    pad = lambda xs: xs + [0] * (T - len(xs))
    return dict(
        states=jnp.array([pad(s) for s, _, _, _ in out]),
        actions=jnp.array([pad(a) for _, a, _, _ in out]),
        mask=jnp.array([[t < len(a) for t in range(T)] for _, a, _, _ in out]),
        log_pb=jnp.array([lp for _, _, lp, _ in out]),
        log_reward=jnp.array([lr for _, _, _, lr in out]),
    )


TAUS = enumerate_trajectories()
ALL_STATES = ENV.enumerate_states()
FMASK = ENV.forward_mask(ALL_STATES)  # [S, A], row order = state_idx order


def exact_log_pf(theta):
    """log P_F(τ) of every enumerated trajectory, float[N_τ]."""
    logp = masked_log_softmax(theta, FMASK)[TAUS["states"], TAUS["actions"]]
    return jnp.where(TAUS["mask"], logp, 0.0).sum(-1)


def exact_elbo(theta):
    """ELBO = Σ_τ P_F(τ) [log R(x) + log P_B(τ|x) − log P_F(τ)] over all 19 trajectories."""
    lpf = exact_log_pf(theta)
    return jnp.sum(jnp.exp(lpf) * (TAUS["log_reward"] + TAUS["log_pb"] - lpf))


def exact_var_g(theta):
    lpf = exact_log_pf(theta)
    g = TAUS["log_reward"] + TAUS["log_pb"] - lpf
    p = jnp.exp(lpf)
    return jnp.sum(p * g**2) - jnp.sum(p * g) ** 2


THETA = jax.random.normal(jax.random.PRNGKey(42), (S, A))
VALUES_TABLE = jax.random.normal(jax.random.PRNGKey(7), (S,)) * 2.0  # an arbitrary baseline


def test_oracle_is_a_distribution_and_matches_the_dp():
    p = jnp.exp(exact_log_pf(THETA))
    assert len(p) == 19 and abs(float(p.sum()) - 1.0) < 1e-5
    elbo_true = exact_elbo(THETA)
    assert float(elbo_true) < float(ENV.log_partition())  # ELBO ≤ log Z, strict off-optimum


@pytest.fixture(scope="module")
def batch():
    """40 000 on-policy trajectories of the tabular policy, evaluated once."""
    return jax.jit(lambda k: sample_forward(ENV, k, tabular_policy(THETA), 40_000))(
        jax.random.PRNGKey(0)
    )


def per_traj_grads(traj, adv):
    """Per-trajectory gradients of the PG surrogate, float[N, S, A] (vmap of grad)."""

    def one(tr, a):
        tr1 = jax.tree.map(lambda x: x[None], tr)
        f = lambda th: pg.pg_surrogate(evaluate(tabular_apply(th), tr1).log_pf, a[None], tr1.mask)
        return jax.grad(f)(THETA)

    return jax.jit(jax.vmap(one))(traj, adv)


@jax.jit
def soft_g(traj):
    ev = evaluate(tabular_apply(THETA), traj)
    return pg.soft_rewards(ev.log_pf, ev.log_pb, traj.log_reward, traj.mask, traj.done)


def _assert_unbiased(grads, exact):
    mean = -grads.mean(0)  # surrogate gradient = −(ELBO gradient estimate)
    se = grads.std(0) / math.sqrt(grads.shape[0])
    err = np.abs(np.asarray(mean - exact))
    assert np.all(err <= Z_SCORE * np.asarray(se) + 1e-6), (err.max(), np.asarray(se).max())
    # the check has power: the standard errors are far below the gradient's size
    assert float(se.max()) < 0.05 * float(jnp.abs(exact).max())


@pytest.mark.parametrize("estimator", ["vpg", "rtg", "gae1"])
def test_mc_policy_gradient_matches_exact_elbo_gradient(batch, estimator):
    exact = jax.grad(exact_elbo)(THETA)
    g = soft_g(batch)
    if estimator == "vpg":
        adv = jnp.where(batch.mask, pg.soft_return(g, batch.mask)[:, None], 0.0)
    elif estimator == "rtg":
        adv = pg.reward_to_go(g, batch.mask)
    else:  # GAE(λ = 1) with an arbitrary value table: still unbiased
        values = VALUES_TABLE[jax.vmap(state_idx)(batch.obs)]
        adv, _ = pg.gae(g, values, batch.mask, 1.0)
    _assert_unbiased(per_traj_grads(batch, adv), exact)


def test_wrong_estimator_is_detected(batch):
    """Dropping the entropy term (g = log R only) biases the gradient: the same check must fail."""
    exact = jax.grad(exact_elbo)(THETA)
    g = jnp.where(batch.done, batch.log_reward[:, None], 0.0)
    grads = per_traj_grads(batch, pg.reward_to_go(g, batch.mask))
    mean, se = -grads.mean(0), grads.std(0) / math.sqrt(grads.shape[0])
    assert np.any(np.abs(np.asarray(mean - exact)) > Z_SCORE * np.asarray(se) + 1e-6)


def test_pg_gradient_is_minus_half_expected_tb_gradient():
    """On-policy: Σ_τ P_F(τ) ∇L_TB(τ; log Z) = −2 ∇ELBO for any log Z (exact enumeration)."""
    exact = jax.grad(exact_elbo)(THETA)
    for log_z in (-1.3, 0.0, 2.5):

        def expected_tb_grad_surrogate(theta, log_z=log_z):
            lpf = exact_log_pf(theta)
            resid = log_z + lpf - TAUS["log_reward"] - TAUS["log_pb"]
            return jnp.sum(jax.lax.stop_gradient(jnp.exp(lpf)) * resid**2)

        tb_grad = jax.grad(expected_tb_grad_surrogate)(THETA)
        np.testing.assert_allclose(-0.5 * tb_grad, exact, atol=1e-5)


def test_tb_loss_function_agrees_with_oracle_residual(batch):
    """The library TB loss on sampled trajectories uses the same residual as the oracle."""
    sub = jax.tree.map(lambda x: x[:64], batch)
    ev = jax.jit(lambda t: evaluate(tabular_apply(THETA), t))(sub)
    g = soft_g(sub)
    tb = flow_losses.trajectory_balance(ev.log_pf, ev.log_pb, sub.log_reward, 0.7, sub.mask)
    np.testing.assert_allclose(tb, jnp.mean((0.7 - pg.soft_return(g, sub.mask)) ** 2), rtol=1e-5)


def test_ppo_objective_at_theta_old_is_zero_and_its_gradient_is_the_gae_gradient(batch):
    sub = jax.tree.map(lambda x: x[:256], batch)
    ev_old = jax.jit(lambda t: evaluate(tabular_apply(THETA), t))(sub)
    values = VALUES_TABLE[jax.vmap(state_idx)(sub.obs)]
    adv, _ = pg.gae(soft_g(sub), values, sub.mask, 0.7)

    def ppo_loss(theta):
        ev = evaluate(tabular_apply(theta), sub)
        return pg.ppo_surrogate(
            ev.log_probs[:, :-1],
            ev_old.log_probs[:, :-1],
            sub.actions,
            adv,
            sub.forward_mask[:, :-1],
            sub.mask,
            0.2,
            1.0,
        )

    def pg_loss(theta):
        return pg.pg_surrogate(evaluate(tabular_apply(theta), sub).log_pf, adv, sub.mask)

    (loss, info), grad = jax.jit(jax.value_and_grad(ppo_loss, has_aux=True))(THETA)
    assert abs(float(loss)) < 1e-6 and float(info["kl"]) < 1e-7
    np.testing.assert_allclose(grad, jax.jit(jax.grad(pg_loss))(THETA), atol=1e-5, rtol=1e-5)
    assert float(jnp.abs(grad).max()) > 1e-2
    # away from θ_old the KL penalty is positive and the objective differs from the PG one
    (loss2, info2) = jax.jit(ppo_loss)(
        THETA + 0.5 * jax.random.normal(jax.random.PRNGKey(3), THETA.shape)
    )
    assert float(info2["kl"]) > 1e-3


def test_niu_log_z_gradient_is_log_z_minus_mean_soft_return(batch):
    """∂/∂log Z of Niu et al.'s objective: mean_b Σ_t c_t = log Z − mean_b G(τ_b)."""
    sub = jax.tree.map(lambda x: x[:512], batch)
    g = pg.soft_return(soft_g(sub), sub.mask)
    for log_z in (-2.0, 0.3):
        costs = pg.niu_costs(sub.log_pf, sub.log_pb, sub.log_reward, log_z, sub.mask, sub.done)
        np.testing.assert_allclose(
            pg.niu_log_z_gradient(costs, sub.mask), log_z - g.mean(), rtol=1e-5, atol=1e-5
        )


def test_niu_log_z_by_adam_converges_to_the_elbo_for_a_fixed_policy():
    """Adam (lr 0.1, Niu et al.'s optimiser) on that gradient: log Z → the exact ELBO."""
    import optax

    B, n = 64, 600
    policy = tabular_policy(THETA)
    tx = optax.adam(0.1)

    def body(carry, key):
        log_z, opt = carry
        tr = sample_forward(ENV, key, policy, B)
        costs = pg.niu_costs(tr.log_pf, tr.log_pb, tr.log_reward, log_z, tr.mask, tr.done)
        upd, opt = tx.update(pg.niu_log_z_gradient(costs, tr.mask), opt)
        log_z = optax.apply_updates(log_z, upd)
        return (log_z, opt), log_z

    init = jnp.asarray(-5.0)
    run = jax.jit(lambda k: jax.lax.scan(body, (init, tx.init(init)), jax.random.split(k, n)))
    _, path = run(jax.random.PRNGKey(5))
    elbo = float(exact_elbo(THETA))
    assert abs(elbo - float(init)) > 3.0  # started far away
    assert abs(float(path[-200:].mean()) - elbo) < 0.05, (float(path[-200:].mean()), elbo)


def test_gae_matches_brute_force_and_its_limits():
    rng = np.random.default_rng(0)
    B, T = 5, 7
    length = np.array([1, 3, 7, 5, 2])
    mask = np.arange(T)[None] < length[:, None]
    g = rng.normal(size=(B, T)).astype(np.float32)
    v = rng.normal(size=(B, T + 1)).astype(np.float32)
    lam = 0.8
    adv, tgt = pg.gae(jnp.asarray(g), jnp.asarray(v), jnp.asarray(mask), lam)
    for b in range(B):
        n = length[b]
        vv = np.concatenate([v[b, :n], [0.0]])  # V(terminal) = 0
        for t in range(n):
            want = sum(lam ** (k - t) * (g[b, k] + vv[k + 1] - vv[k]) for k in range(t, n))
            assert abs(float(adv[b, t]) - want) < 1e-4
            assert abs(float(tgt[b, t]) - (want + vv[t])) < 1e-4
        assert np.all(np.asarray(adv[b, n:]) == 0)
    rtg = pg.reward_to_go(jnp.asarray(g), jnp.asarray(mask))
    a1, _ = pg.gae(jnp.asarray(g), jnp.asarray(v), jnp.asarray(mask), 1.0)
    np.testing.assert_allclose(a1, np.where(mask, rtg - v[:, :-1], 0), atol=1e-5)


def test_conjugate_gradient_solves_spd_system():
    m = jax.random.normal(jax.random.PRNGKey(1), (6, 6))
    h = m @ m.T + 0.5 * jnp.eye(6)
    b = jnp.arange(6.0) - 2.0
    x = optim.conjugate_gradient(lambda v: h @ v, b, iters=12)
    np.testing.assert_allclose(
        x, np.linalg.solve(np.asarray(h, np.float64), np.asarray(b)), rtol=1e-3, atol=1e-4
    )


@pytest.mark.parametrize("max_kl", [0.01, 0.05])
def test_trpo_step_respects_its_kl_bound_and_improves(batch, max_kl):
    sub = jax.tree.map(lambda x: x[:256], batch)
    ev_old = jax.jit(lambda t: evaluate(tabular_apply(THETA), t))(sub)
    values = VALUES_TABLE[jax.vmap(state_idx)(sub.obs)]
    adv, _ = pg.gae(soft_g(sub), values, sub.mask, 0.9)
    n = sub.mask.sum()

    def loss_fn(theta):
        ev = evaluate(tabular_apply(theta), sub)
        return -jnp.mean(jnp.where(sub.mask, jnp.exp(ev.log_pf - ev_old.log_pf) * adv, 0.0).sum(-1))

    def kl_fn(theta):
        ev = evaluate(tabular_apply(theta), sub)
        kl = pg.categorical_kl(
            ev_old.log_probs[:, :-1], ev.log_probs[:, :-1], sub.forward_mask[:, :-1]
        )
        return jnp.where(sub.mask, kl, 0.0).sum() / n

    new, info = jax.jit(lambda th: optim.trpo_step(loss_fn, kl_fn, th, max_kl))(THETA)
    loss_fn, kl_fn = jax.jit(loss_fn), jax.jit(kl_fn)
    kl = float(kl_fn(new))
    assert float(info["accepted"]) == 1.0
    assert kl <= max_kl * (1 + 1e-4)
    assert kl > 0.2 * max_kl  # a real step to near the trust-region boundary
    assert float(loss_fn(new)) < float(loss_fn(THETA))


def test_hypergrid_guide_caps_the_raw_stop_logit_only_outside_reward_bands():
    """Niu et al.'s guide: stop logit ← min(stop logit, log 1e−5) where R(s) = R0; nothing else."""
    env = Hypergrid(dim=2, side=8)
    states = env.enumerate_states()
    logits = jax.random.normal(jax.random.PRNGKey(0), (env.num_states, env.num_actions)) * 5
    guided = np.asarray(guides.get(env)(env, states, logits))
    low = (
        env.log_reward(HypergridState(states.coords, jnp.ones_like(states.done)))
        <= math.log(1e-3) + 1e-6
    )
    np.testing.assert_array_equal(guided[:, :-1], np.asarray(logits[:, :-1]))
    want = np.where(low, np.minimum(logits[:, -1], math.log(1e-5)), logits[:, -1])
    np.testing.assert_allclose(guided[:, -1], want)
    assert 0 < int(low.sum()) < len(low)


def test_rl_g_requires_a_guide():
    env = envs.make("sequence", seq_length=3, vocab_size=2)  # no guide is defined for it
    with pytest.raises(ValueError, match="guide"):
        algos.make("rl_g", env)
    with pytest.raises(ValueError, match="pb"):
        algos.make("rl_b", ENV, pb="uniform")
    with pytest.raises(ValueError, match="value_minibatches"):
        algos.make("ppo", ENV, batch_size=16, value_minibatches=3)


# --- convergence ----------------------------------------------------------------------------------

CONV_ENV = Hypergrid(dim=2, side=6)
CONV = {  # algo: (iterations, config overrides, TV threshold)
    "ppo": (150, {}, 0.10),
    "ppo_tlm": (150, {"pb": "tlm"}, 0.10),  # Ent-PPO with a TLM-trained backward policy
    "gae": (300, {}, 0.25),
    "trpo": (150, {}, 0.15),
    "rl_u": (300, {"lr": 3e-3}, 0.20),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONV))
def test_convergence_small_hypergrid(name):
    iters, over, threshold = CONV[name]
    algo = algos.make(name.removesuffix("_tlm"), CONV_ENV, hidden=(32, 32), **over)
    carry, curves = train(
        algo, jax.random.PRNGKey(0), iters, iters, metrics=[ExactDistribution(CONV_ENV)]
    )
    tv = np.asarray(curves["tv"])
    assert tv[0] > 0.5  # the uniform initial policy is far from π
    assert tv[-1] < threshold, tv
    assert np.all(np.isfinite(jax.tree.leaves(carry.state.params)[0]))
