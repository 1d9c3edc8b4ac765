"""Every public loss of gfnjax.losses against an independent numpy formula, at hand-chosen inputs
that exercise each branch (clipped and unclipped PPO ratios with positive and negative advantages,
terminal and non-terminal transitions, every `reduce`, clamps), and the gradients the docstrings
promise: zero through stop-gradients (`soft_rewards`, `niu_costs`, advantages, targets, old
log-probabilities), non-zero and equal to a hand-derived formula elsewhere.

Shapes follow gfnjax.losses: B trajectories, T transitions, per-step float[B, T], mask bool[B, T].
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import losses
from gfnjax.utils import NEG_LOGIT

RTOL, ATOL = 1e-5, 1e-5

# --- a small padded batch: lengths 3, 1, 4 (T = 4); done marks each trajectory's last step ----
LENGTH = np.array([3, 1, 4])
B, T = 3, 4
MASK = np.arange(T)[None] < LENGTH[:, None]
DONE = np.arange(T)[None] == LENGTH[:, None] - 1
_rng = np.random.default_rng(0)
LOG_PF = -_rng.uniform(0.1, 2.0, (B, T)).astype(np.float32)
LOG_PB = -_rng.uniform(0.0, 1.5, (B, T)).astype(np.float32)
LOG_R = _rng.normal(0.0, 2.0, B).astype(np.float32)
LOG_FLOW = _rng.normal(0.0, 1.0, (B, T + 1)).astype(np.float32)
# padding holds arbitrary finite values: every loss must ignore it
LOG_PF[~MASK] = 7.0
LOG_PB[~MASK] = -9.0


def f64(x):
    return np.asarray(x, np.float64)


def close(got, want, formula, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(f64(got), f64(want), rtol=rtol, atol=atol, err_msg=formula)


def np_soft_rewards():
    r = f64(LOG_PB) + np.where(DONE, f64(LOG_R)[:, None], 0.0)
    return np.where(MASK, r - f64(LOG_PF), 0.0)


# --- soft rewards, returns, advantages ------------------------------------------------------------
def test_soft_rewards_formula_and_no_gradient():
    args = [jnp.asarray(x) for x in (LOG_PF, LOG_PB, LOG_R, MASK, DONE)]
    g = losses.soft_rewards(*args)
    close(g, np_soft_rewards(), "g_t = log P_B + 1[done]·log R − log P_F, 0 where ~mask")
    w = jnp.asarray(_rng.normal(size=(B, T)), jnp.float32)
    grads = jax.grad(
        lambda pf, pb, lr: jnp.sum(w * losses.soft_rewards(pf, pb, lr, *args[3:])), (0, 1, 2)
    )(*args[:3])
    for name, gr in zip(("log_pf", "log_pb", "log_reward"), grads):
        assert np.all(np.asarray(gr) == 0.0), (
            f"soft_rewards is documented gradient-free: ∂/∂{name} ≠ 0"
        )


def test_soft_return_and_reward_to_go():
    g = np_soft_rewards()
    gj = jnp.asarray(g, jnp.float32)
    close(losses.soft_return(gj, MASK), g.sum(-1), "G(τ) = Σ_t g_t over valid steps")
    rtg = np.zeros_like(g)
    for b in range(B):
        for t in range(LENGTH[b]):
            rtg[b, t] = g[b, t : LENGTH[b]].sum()
    close(losses.reward_to_go(gj, MASK), rtg, "RTG_t = Σ_{t'≥t} g_{t'}, 0 where ~mask")


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_gae_at_lambda_zero_and_half(lam):
    """A_t = Σ_l λ^l δ_{t+l}, δ_t = g_t + V(s_{t+1}) − V(s_t), V(x) = 0; target = A_t + V(s_t)."""
    g = np_soft_rewards()
    v = f64(LOG_FLOW)
    adv = np.zeros((B, T))
    for b in range(B):
        n = LENGTH[b]
        vv = np.concatenate([v[b, :n], [0.0]])
        delta = g[b, :n] + vv[1:] - vv[:-1]
        for t in range(n):
            adv[b, t] = sum(lam ** (k - t) * delta[k] for k in range(t, n))
    a, y = losses.gae(jnp.asarray(g, jnp.float32), jnp.asarray(v, jnp.float32), MASK, lam)
    close(a, adv, f"GAE(λ={lam}) advantages A_t = Σ_l λ^l δ_(t+l)")
    close(y, np.where(MASK, adv + v[:, :-1], 0.0), "value target y_t = A_t + V(s_t) (state s_t)")


def test_mean_center_and_normalize_use_the_valid_steps_only():
    a = _rng.normal(size=(B, T)).astype(np.float32)
    a[~MASK] = 100.0  # padding must not enter the mean or the std
    valid = a[MASK].astype(np.float64)
    centred = np.where(MASK, a - valid.mean(), 0.0)
    close(losses.mean_center(a, MASK), centred, "A − mean_valid(A), 0 where ~mask")
    std = np.sqrt(((valid - valid.mean()) ** 2).mean() + 1e-8)
    close(losses.normalize(a, MASK), centred / std, "(A − mean)/sqrt(var + 1e-8) over valid steps")


def test_pg_surrogate_value_and_gradients():
    adv = _rng.normal(size=(B, T)).astype(np.float32)
    want = -np.where(MASK, f64(LOG_PF) * f64(adv), 0.0).sum(-1)
    close(losses.pg_surrogate(LOG_PF, adv, MASK, reduce="none"), want, "−Σ_t log P_F·A_t")
    close(losses.pg_surrogate(LOG_PF, adv, MASK), want.mean(), "−(1/B) Σ_b Σ_t log P_F·A_t")
    g_pf, g_adv = jax.grad(lambda lp, a: losses.pg_surrogate(lp, a, MASK), (0, 1))(
        jnp.asarray(LOG_PF), jnp.asarray(adv)
    )
    close(g_pf, np.where(MASK, -f64(adv) / B, 0.0), "∂/∂log P_F of the PG surrogate = −A_t/B")
    assert np.all(np.asarray(g_adv) == 0), "pg_surrogate stops the gradient of the advantages"
    with pytest.raises(ValueError, match="reduce"):
        losses.pg_surrogate(LOG_PF, adv, MASK, reduce="sum")


def test_value_regression_reductions_and_fixed_targets():
    v = _rng.normal(size=(B, T)).astype(np.float32)
    y = _rng.normal(size=(B, T)).astype(np.float32)
    sq = np.where(MASK, (f64(v) - f64(y)) ** 2, 0.0)
    close(losses.value_regression(v, y, MASK), sq.sum() / MASK.sum(), "mean over valid steps")
    close(
        losses.value_regression(v, y, MASK, "trajectories"),
        sq.sum(-1).mean(),
        "Σ_t per trajectory, mean over trajectories (Niu et al.)",
    )
    close(
        losses.value_regression(v, y, MASK, "positions"),
        sq.sum() / MASK.size,
        "mean over all B·T positions, padding as zero error (Ent-PPO code)",
    )
    close(losses.value_regression(v, y, MASK, "none"), sq, "(V − y)² per step")
    g_y = jax.grad(lambda t: losses.value_regression(jnp.asarray(v), t, MASK))(jnp.asarray(y))
    assert np.all(np.asarray(g_y) == 0), "value targets are fixed: sg(y)"
    with pytest.raises(ValueError, match="reduce"):
        losses.value_regression(v, y, MASK, "mean")


@pytest.mark.parametrize("clamp", [None, -1.0])
def test_niu_costs_and_log_z_gradient(clamp):
    log_z = 0.37
    lr = f64(LOG_R) if clamp is None else np.maximum(f64(LOG_R), clamp)
    assert clamp is None or np.any(f64(LOG_R) < clamp)  # the clamp acts on this batch
    c = f64(LOG_PF) - f64(LOG_PB) - np.where(DONE, lr[:, None] - log_z, 0.0)
    c = np.where(MASK, c, 0.0)
    args = (jnp.asarray(LOG_PF), jnp.asarray(LOG_PB), jnp.asarray(LOG_R))
    got = losses.niu_costs(*args, jnp.float32(log_z), MASK, DONE, clamp)
    close(got, c, "c_t = log P_F − log P_B − 1[done](max(log R, min) − log Z)")
    # Σ_t c_t = log Z − G(τ) (with the clamped log R)
    g = np.where(MASK, f64(LOG_PB) + np.where(DONE, lr[:, None], 0.0) - f64(LOG_PF), 0.0)
    close(np.asarray(got).sum(-1), log_z - g.sum(-1), "Σ_t c_t = log Z − G(τ)")
    close(losses.niu_log_z_gradient(got, MASK), c.sum(-1).mean(), "∂/∂log Z = mean_b Σ_t c_t")
    grads = jax.grad(
        lambda pf, pb, r, z: jnp.sum(losses.niu_costs(pf, pb, r, z, MASK, DONE, clamp)),
        (0, 1, 2, 3),
    )(*args, jnp.float32(log_z))
    assert all(np.all(np.asarray(x) == 0) for x in grads), "niu_costs is documented gradient-free"


# --- KL, PPO, TRPO -----------------------------------------------------------------------------
def np_kl(log_p, log_q, valid):
    return np.where(valid, np.exp(log_p) * (log_p - log_q), 0.0).sum(-1)


def test_categorical_kl_direction():
    p = np.log(np.array([[0.9, 0.08, 0.02, 1.0]]))
    q = np.log(np.array([[0.2, 0.3, 0.5, 1.0]]))
    valid = np.array([[True, True, True, False]])
    p[~valid], q[~valid] = NEG_LOGIT, NEG_LOGIT  # invalid action: masked log-probability
    kl_pq = np_kl(p, q, valid)
    assert abs(kl_pq - np_kl(q, p, valid)) > 0.1  # asymmetric: the direction matters
    close(losses.categorical_kl(p, q, valid), kl_pq, "KL(p ‖ q) = Σ_a p(a)(log p(a) − log q(a))")


# PPO at hand-chosen ratios ρ ∈ {0.5, 0.9, 1.1, 1.3, 1.6} around ε = 0.2, each with A > 0 and
# A < 0. Old policy at each step: p_old(a) = 0.4 for the action taken, the rest over two other
# actions (far from the new split, so that the two KL directions differ); a fourth action is
# invalid everywhere.
RATIOS = np.array([0.5, 0.9, 1.1, 1.3, 1.6])
CLIP_EPS, KL_COEF = 0.2, 0.7


def _ppo_batch():
    steps = []
    for sign in (1.0, -1.0):
        for k, r in enumerate(RATIOS):
            p_old = np.array([0.4, 0.35, 0.25, 0.0])
            p_new_a = 0.4 * r
            rest = 1.0 - p_new_a
            split = [0.97, 0.03, 0.9, 0.15, 0.6][k]
            p_new = np.array([p_new_a, rest * split, rest * (1 - split), 0.0])
            adv = sign * (0.5 + 0.3 * k)
            steps.append((p_old, p_new, adv))
    n = len(steps)  # 10 steps: 2 trajectories of 5 valid steps each, plus one padded step
    Bp, Tp, A = 2, 6, 4
    lp_old = np.full((Bp, Tp, A), NEG_LOGIT)
    lp_new = np.full((Bp, Tp, A), NEG_LOGIT)
    adv = np.zeros((Bp, Tp))
    valid = np.zeros((Bp, Tp, A), bool)
    mask = np.zeros((Bp, Tp), bool)
    for i, (po, pn, a) in enumerate(steps):
        b, t = divmod(i, n // Bp)
        valid[b, t, :3] = True
        lp_old[b, t, :3], lp_new[b, t, :3] = np.log(po[:3]), np.log(pn[:3])
        adv[b, t], mask[b, t] = a, True
    lp_new[:, -1, :3] = np.log([0.1, 0.1, 0.8])  # padded step: must be ignored
    lp_old[:, -1, :3] = np.log([0.3, 0.3, 0.4])
    valid[:, -1, :3] = True
    adv[:, -1] = 5.0
    actions = np.zeros((Bp, Tp), np.int32)  # action 0 everywhere
    return lp_new, lp_old, actions, adv, valid, mask


def _np_ppo(lp_new, lp_old, adv, valid, mask):
    ratio = np.exp(lp_new[..., 0] - lp_old[..., 0])
    clipped = np.clip(ratio, 1 - CLIP_EPS, 1 + CLIP_EPS)
    surr = np.minimum(ratio * adv, clipped * adv) - adv
    kl = np_kl(lp_new, lp_old, valid)  # KL(π_θ ‖ π_old)
    per_step = np.where(mask, surr - KL_COEF * kl, 0.0)
    return -per_step.sum(-1), ratio, kl


def test_ppo_surrogate_clipped_and_unclipped_ratios_with_both_advantage_signs():
    lp_new, lp_old, actions, adv, valid, mask = _ppo_batch()
    want, ratio, kl = _np_ppo(lp_new, lp_old, adv, valid, mask)
    np.testing.assert_allclose(ratio[mask], np.tile(RATIOS, 2), rtol=1e-6)
    args = [jnp.asarray(x, jnp.float32) for x in (lp_new, lp_old)]
    rest = (jnp.asarray(actions), jnp.asarray(adv, jnp.float32), valid, mask, CLIP_EPS, KL_COEF)
    loss, info = losses.ppo_surrogate(*args, *rest, reduce="none")
    formula = (
        "Ent-PPO loss −Σ_t [min(ρA, clip(ρ, 1−ε, 1+ε)A) − A − β·KL(π_θ ‖ π_old)], "
        "ρ ∈ {0.5, 0.9, 1.1, 1.3, 1.6}, A ≷ 0"
    )
    close(loss, want, formula)
    loss_mean, _ = losses.ppo_surrogate(*args, *rest)
    close(loss_mean, want.mean(), "Ent-PPO loss: mean over trajectories")
    close(info["kl"], kl[mask].mean(), "reported KL = mean_valid KL(π_θ ‖ π_old)")
    frac = np.mean(np.abs(ratio[mask] - 1) > CLIP_EPS)
    close(info["clip_fraction"], frac, "clip fraction = mean_valid 1[|ρ − 1| > ε]")

    # gradient w.r.t. log π_θ: the surrogate term only where min picks ρA, and the KL term
    # ∂KL(π_θ‖π_old)/∂log π_θ(a) = π_θ(a)(log π_θ(a) − log π_old(a) + 1)
    g_new, g_old, g_adv = jax.grad(
        lambda a, b, c: losses.ppo_surrogate(a, b, rest[0], c, *rest[2:])[0], (0, 1, 2)
    )(args[0], args[1], rest[1])
    unclipped = ratio * adv <= np.clip(ratio, 1 - CLIP_EPS, 1 + CLIP_EPS) * adv
    d_surr = np.zeros_like(lp_new)
    d_surr[..., 0] = np.where(unclipped, ratio * adv, 0.0)
    p = np.exp(lp_new)
    d_kl = np.where(valid, p * (lp_new - lp_old + 1.0), 0.0)
    want_g = -np.where(mask[..., None], d_surr - KL_COEF * d_kl, 0.0) / lp_new.shape[0]
    close(g_new, want_g, "∇ log π_θ of the Ent-PPO loss (clipped entries: only the KL term)")
    # A > 0 & ρ > 1+ε and A < 0 & ρ < 1−ε are clipped: no surrogate gradient there
    assert unclipped[mask].tolist() == [
        True,
        True,
        True,
        False,
        False,
        False,
        True,
        True,
        True,
        True,
    ]
    assert np.all(np.asarray(g_old) == 0), "π_old is fixed: sg(log π_old)"
    assert np.all(np.asarray(g_adv) == 0), "advantages are fixed: sg(A)"


def test_ppo_kl_term_sign_and_direction_at_theta_not_theta_old():
    """With A = 0 the loss is +β·Σ_t KL(π_θ ‖ π_old) ≥ 0: a flipped sign or the reverse KL
    (π_old ‖ π_θ) gives another number."""
    lp_new, lp_old, actions, _, valid, mask = _ppo_batch()
    zero = jnp.zeros(mask.shape, jnp.float32)
    loss, _ = losses.ppo_surrogate(
        jnp.asarray(lp_new, jnp.float32),
        jnp.asarray(lp_old, jnp.float32),
        jnp.asarray(actions),
        zero,
        valid,
        mask,
        CLIP_EPS,
        KL_COEF,
        reduce="none",
    )
    fwd = np.where(mask, np_kl(lp_new, lp_old, valid), 0.0).sum(-1)
    rev = np.where(mask, np_kl(lp_old, lp_new, valid), 0.0).sum(-1)
    assert np.all(np.abs(fwd - rev) > 1e-2)  # the two directions differ on this batch
    close(
        loss,
        KL_COEF * fwd,
        "A = 0: Ent-PPO loss = +β·Σ_t KL(π_θ ‖ π_old) (penalty, this direction)",
    )


def test_importance_surrogate_value_and_gradient():
    lp_old = LOG_PF + _rng.normal(0, 0.3, (B, T)).astype(np.float32)
    adv = _rng.normal(size=(B, T)).astype(np.float32)
    ratio = np.exp(f64(LOG_PF) - f64(lp_old))
    want = -np.where(MASK, ratio * f64(adv), 0.0).sum(-1)
    close(losses.importance_surrogate(LOG_PF, lp_old, adv, MASK, "none"), want, "−Σ_t ρ_t A_t")
    close(losses.importance_surrogate(LOG_PF, lp_old, adv, MASK), want.mean(), "−(1/B)Σ ρ_t A_t")
    g_new, g_old, g_adv = jax.grad(
        lambda a, b, c: losses.importance_surrogate(a, b, c, MASK), (0, 1, 2)
    )(jnp.asarray(LOG_PF), jnp.asarray(lp_old), jnp.asarray(adv))
    close(g_new, np.where(MASK, -ratio * f64(adv) / B, 0.0), "∂/∂log π_θ = −ρ_t A_t / B")
    assert np.all(np.asarray(g_old) == 0) and np.all(np.asarray(g_adv) == 0), "sg(π_old), sg(A)"


def test_trajectory_kl_direction_and_gradient():
    lp_new, lp_old, _, _, valid, mask = _ppo_batch()
    want = np.where(mask, np_kl(lp_old, lp_new, valid), 0.0).sum(-1)
    args = (jnp.asarray(lp_old, jnp.float32), jnp.asarray(lp_new, jnp.float32), valid, mask)
    close(losses.trajectory_kl(*args, reduce="none"), want, "Σ_t KL(π_old ‖ π_θ) per trajectory")
    close(losses.trajectory_kl(*args), want.mean(), "(1/B) Σ_b Σ_t KL(π_old ‖ π_θ)")
    g_old = jax.grad(lambda o: losses.trajectory_kl(o, *args[1:]))(args[0])
    assert np.all(np.asarray(g_old) == 0), "trajectory_kl stops the gradient of π_old"
    g_new = jax.grad(lambda n: losses.trajectory_kl(args[0], n, *args[2:]))(args[1])
    want_g = np.where(valid & mask[..., None], -np.exp(lp_old), 0.0) / mask.shape[0]
    close(g_new, want_g, "∂KL(π_old ‖ π_θ)/∂log π_θ(a) = −π_old(a)/B")


# --- flow objectives ---------------------------------------------------------------------------
def test_trajectory_balance_residual_and_backward_maximum_likelihood():
    lz = 0.3
    diff = np.where(MASK, f64(LOG_PF) - f64(LOG_PB), 0.0).sum(-1)
    resid = lz + diff - f64(LOG_R)
    close(
        losses.trajectory_balance_residual(LOG_PF, LOG_PB, LOG_R, lz, MASK),
        resid,
        "δ(τ) = log Z + Σ log P_F − log R − Σ log P_B",
    )
    close(losses.trajectory_balance(LOG_PF, LOG_PB, LOG_R, lz, MASK, "none"), resid**2, "δ(τ)²")
    nll = -np.where(MASK, f64(LOG_PB), 0.0).sum(-1)
    close(losses.backward_maximum_likelihood(LOG_PB, MASK, "none"), nll, "TLM: −Σ_t log P_B")
    close(losses.backward_maximum_likelihood(LOG_PB, MASK), nll.mean(), "TLM: batch mean")
    with pytest.raises(ValueError, match="reduce"):
        losses.trajectory_balance(LOG_PF, LOG_PB, LOG_R, lz, MASK, "sum")


def test_detailed_balance_residual_uses_log_reward_at_the_terminal_state():
    f = f64(LOG_FLOW).copy()
    for b in range(B):
        f[b, LENGTH[b]] = LOG_R[b]  # log F(x) := log R(x)
    want = np.where(MASK, f[:, :-1] + f64(LOG_PF) - f[:, 1:] - f64(LOG_PB), 0.0)
    got = losses.detailed_balance_residual(LOG_PF, LOG_PB, LOG_FLOW, LOG_R, MASK, DONE)
    close(got, want, "δ_t = log F(s_t) + log P_F − log F(s_(t+1)) − log P_B, log F(x) = log R(x)")
    close(
        losses.detailed_balance(LOG_PF, LOG_PB, LOG_FLOW, LOG_R, MASK, DONE, "none"),
        want**2,
        "δ_t²",
    )


def _np_flow_matching(log_in, in_mask, log_out, out_mask, log_r, is_term, state_mask):
    def lse(x, m):
        x = np.where(m, f64(x), -np.inf)
        mx = np.max(np.where(m, x, 0.0), -1, keepdims=True)
        with np.errstate(divide="ignore"):  # rows without a valid entry are excluded below
            return np.log(np.exp(x - mx).sum(-1)) + mx[..., 0]

    target = np.where(is_term, log_r, lse(log_out, out_mask))
    valid = state_mask & in_mask.any(-1) & (is_term | out_mask.any(-1))
    sq = np.where(valid, (lse(log_in, in_mask) - target) ** 2, 0.0)
    return sq, valid


def test_flow_matching_terminal_and_interior_states():
    rng = np.random.default_rng(3)
    Bf, N, Ab, A = 2, 5, 3, 4
    log_in = rng.normal(size=(Bf, N, Ab)).astype(np.float32)
    log_out = rng.normal(size=(Bf, N, A)).astype(np.float32)
    in_mask = rng.random((Bf, N, Ab)) < 0.7
    in_mask[:, :, 0] = True
    in_mask[0, 4] = False  # no parent: excluded
    out_mask = rng.random((Bf, N, A)) < 0.6
    out_mask[:, :, 1] = True
    is_term = np.zeros((Bf, N), bool)
    is_term[:, 3] = True
    out_mask[:, 3] = False  # terminal: no forward action, target log R
    log_r = rng.normal(size=(Bf, N)).astype(np.float32)
    state_mask = np.ones((Bf, N), bool)
    state_mask[1, 2] = False
    sq, valid = _np_flow_matching(log_in, in_mask, log_out, out_mask, log_r, is_term, state_mask)
    args = (log_in, in_mask, log_out, out_mask, log_r, is_term, state_mask)
    formula = (
        "FM: (logsumexp_parents log F(p→s) − [log R(s) if terminal else logsumexp_a log F(s→a)])²"
    )
    close(losses.flow_matching(*args, reduce="none"), sq, formula)
    close(losses.flow_matching(*args), sq.sum() / valid.sum(), "FM: mean over valid states")


# --- soft RL -----------------------------------------------------------------------------------
def _np_lse(x, m, axis=-1):
    x = np.where(m, x, -np.inf)
    mx = x.max(axis, keepdims=True)
    return np.log(np.exp(x - mx).sum(axis)) + mx.squeeze(axis)


def test_soft_value_and_policy_at_tau_not_one():
    rng = np.random.default_rng(4)
    q = rng.normal(0, 3, (6, 5)).astype(np.float32)
    m = rng.random((6, 5)) < 0.6
    m[:, 2] = True
    tau = 2.5
    v = tau * _np_lse(f64(q) / tau, m)
    close(losses.soft_value(q, m, tau), v, "V(s) = τ·logsumexp_valid Q/τ (τ = 2.5)")
    lp = losses.soft_policy_log_probs(q, m, tau)
    close(np.asarray(lp)[m], (f64(q) / tau - v[:, None] / tau)[m], "log π = Q/τ − V/τ over valid a")
    assert np.all(np.asarray(lp)[~m] < -1e6), "invalid actions have probability 0"


def test_munchausen_bonus_clip_bounds():
    """α·clip(τ·log π_targ(a|s), l0, 0) on both sides of l0, with τ ≠ 1."""
    q = np.array([[0.0, -1.0, -4.0, 3.0], [2.0, 2.0, 0.0, 0.0]], np.float32)
    m = np.array([[True, True, True, False], [True, True, False, True]])
    tau, alpha, l0 = 1.5, 0.3, -2.5
    log_pi = f64(q) / tau - _np_lse(f64(q) / tau, m)[:, None]
    for action in ([0, 1], [2, 3], [1, 0]):
        a = np.array(action)
        x = tau * log_pi[np.arange(2), a]
        want = alpha * np.clip(x, l0, 0.0)
        got = losses.munchausen_bonus(q, m, jnp.asarray(a), alpha, l0, tau)
        close(got, want, f"Munchausen bonus α·clip(τ log π, l0, 0), τ log π = {x}")
    assert (tau * log_pi[0, 2] < l0) and (tau * log_pi[0, 0] > l0)  # both sides of l0 covered


def test_munchausen_targets_default_tau():
    """τ defaults to 1/(1 − α) in both the soft value and the bonus."""
    rng = np.random.default_rng(5)
    n, A = 4, 3
    qn, qs = (
        rng.normal(0, 2, (n, A)).astype(np.float32),
        rng.normal(0, 2, (n, A)).astype(np.float32),
    )
    mn, ms = np.ones((n, A), bool), np.ones((n, A), bool)
    a = np.array([0, 1, 2, 1])
    lpb, lr = -rng.random(n).astype(np.float32), rng.normal(size=n).astype(np.float32)
    done = np.array([False, True, False, False])
    alpha, l0 = 0.4, -50.0
    tau = 1 / (1 - alpha)
    log_pi = f64(qs) / tau - _np_lse(f64(qs) / tau, ms)[:, None]
    y = f64(lpb) + np.where(done, f64(lr), tau * _np_lse(f64(qn) / tau, mn))
    y += alpha * np.clip(tau * log_pi[np.arange(n), a], l0, 0)
    got = losses.munchausen_targets(qn, mn, qs, ms, jnp.asarray(a), lpb, lr, done, alpha, l0)
    close(got, y, "M-DQN y = log P_B + [log R | τ lse Q'/τ] + α clip(τ log π, l0, 0), τ = 1/(1−α)")


def test_soft_q_loss_squared_branch_and_huber_delta():
    q = np.array([0.0, 1.0, -3.0, 0.5], np.float32)
    y = np.array([0.2, -1.0, 0.0, 0.5], np.float32)
    err = f64(q) - f64(y)
    loss, per = losses.soft_q_loss(q, y, None, None)
    close(per, 0.5 * err**2, "delta=None: ℓ = ½(Q − y)²")
    close(loss, np.mean(0.5 * err**2), "mean_i ℓ_i")
    d = 2.0
    hub = np.where(np.abs(err) <= d, 0.5 * err**2, d * (np.abs(err) - 0.5 * d))
    w = np.array([1.0, 0.5, 2.0, 1.0], np.float32)
    loss, per = losses.soft_q_loss(q, y, w, d)
    close(per, hub, "Huber(δ = 2)")
    close(loss, np.mean(f64(w) * hub), "mean_i w_i·Huber_i")
    g_y = jax.grad(lambda t: losses.soft_q_loss(jnp.asarray(q), t, jnp.asarray(w), d)[0])(
        jnp.asarray(y)
    )
    assert np.all(np.asarray(g_y) == 0), "targets are fixed: sg(y)"
