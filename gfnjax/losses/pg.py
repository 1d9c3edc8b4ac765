"""Policy-gradient estimators of the soft-RL view of GFlowNets as pure functions (REFERENCE.md §3).

Shapes: B trajectories, T transitions (padded), per-step arrays [B, T], per-state arrays
[B, T+1] (s_0 … s_T), `mask` bool[B, T] valid transitions, `done` bool[B, T] the transition that
reaches the terminal state x. Padded entries may hold anything finite: they are masked out.

Soft-RL view (Tiapkin et al. 2024, (c)): the reward of a transition s→s' is log P_B(s|s') and the
terminating one also earns log R(x); discount 1, entropy coefficient 1. The entropy-augmented
per-step reward is g_t = r_t − sg(log P_F(a_t|s_t)), whose sum is the soft return
G(τ) = log R(x) + log P_B(τ|x) − log P_F(τ), E_{P_F}[G] = ELBO = log Z − KL(P_F ‖ P_B R/Z).
Losses are *minimised*: `pg_surrogate` has gradient −∇ELBO (estimated).

None of these functions needs anything else from gfnjax (the notebook use case).
"""

from __future__ import annotations

from typing import Callable

import chex
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

sg = jax.lax.stop_gradient


def _check(*arrays):
    chex.assert_rank(list(arrays), 2)
    chex.assert_equal_shape(list(arrays))


def soft_rewards(
    log_pf: jax.Array, log_pb: jax.Array, log_reward: jax.Array, mask: jax.Array, done: jax.Array
) -> jax.Array:
    """Entropy-augmented per-step rewards g_t = r_t − log P_F(a_t|s_t), float[B, T] (no gradient).

    r_t = log P_B(s_t|s_{t+1}) + 1[t terminates]·log R(x). With an explicit stop action the
    terminating transition has P_B = 1, so r_T = log R(x) exactly as in (c); with automatic
    termination the last ordinary transition keeps its log P_B. 0 where ~mask.

    Args: log_pf, log_pb: float[B, T]; log_reward: float[B]; mask, done: bool[B, T].
    """
    _check(log_pf, log_pb, mask, done)
    chex.assert_shape(log_reward, (log_pf.shape[0],))
    r = log_pb + jnp.where(done, log_reward[:, None], 0.0)
    return sg(jnp.where(mask, r - log_pf, 0.0))


def soft_return(g: jax.Array, mask: jax.Array) -> jax.Array:
    """G(τ) = Σ_t g_t over valid steps: float[B, T] -> float[B]."""
    _check(g, mask)
    return jnp.where(mask, g, 0.0).sum(-1)


def reward_to_go(g: jax.Array, mask: jax.Array) -> jax.Array:
    """RTG_t = Σ_{t'≥t} g_{t'} over valid steps, float[B, T] (0 where ~mask)."""
    _check(g, mask)
    g = jnp.where(mask, g, 0.0)
    return jnp.where(mask, jnp.flip(jnp.cumsum(jnp.flip(g, -1), -1), -1), 0.0)


def gae(
    g: jax.Array, values: jax.Array, mask: jax.Array, lam: float | jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation with discount 1 (Schulman et al. 2016).

        δ_t = g_t + V(s_{t+1}) − V(s_t),   A_t = Σ_{l≥0} λ^l δ_{t+l}   (reverse lax.scan),
        target_t = A_t + V(s_t)   (the TD(λ) return, the value regression target).

    V of the terminal state x and of padding is 0 (x is absorbing: its soft value is 0 and
    log R(x) is paid by the terminating transition). λ = 1 gives A_t = RTG_t − V(s_t); λ = 0 the
    one-step TD error.

    Args:
      g: float[B, T] per-step rewards; values: float[B, T+1] V(s_t) (positions ≥ length ignored);
      mask: bool[B, T]; lam: λ ∈ [0, 1] (may be a traced array).
    Returns: (advantages float[B, T], targets float[B, T]), 0 where ~mask.
    """
    _check(g, mask)
    B, T = g.shape
    chex.assert_shape(values, (B, T + 1))
    state_valid = jnp.concatenate([mask, jnp.zeros((B, 1), bool)], axis=1)  # s_t non-terminal
    v = jnp.where(state_valid, values, 0.0)
    delta = jnp.where(mask, g + v[:, 1:] - v[:, :-1], 0.0)
    lam = jnp.asarray(lam, g.dtype)

    def step(next_adv, x):
        d, m = x
        adv = jnp.where(m, d + lam * next_adv, 0.0)
        return adv, adv

    _, adv = jax.lax.scan(step, jnp.zeros((B,), g.dtype), (delta.T, mask.T), reverse=True)
    adv = adv.T
    return adv, jnp.where(mask, adv + v[:, :-1], 0.0)


def mean_center(advantages: jax.Array, mask: jax.Array) -> jax.Array:
    """A − mean of A over the valid steps of the batch (Niu et al. (b)); 0 where ~mask."""
    _check(advantages, mask)
    mean = jnp.where(mask, advantages, 0.0).sum() / jnp.maximum(mask.sum(), 1)
    return jnp.where(mask, advantages - mean, 0.0)


def normalize(advantages: jax.Array, mask: jax.Array) -> jax.Array:
    """(A − mean)/std over the valid steps of the batch (off by default in (a))."""
    centred = mean_center(advantages, mask)
    var = (centred**2).sum() / jnp.maximum(mask.sum(), 1)
    return centred / jnp.sqrt(var + 1e-8)


def pg_surrogate(log_pf: jax.Array, advantages: jax.Array, mask: jax.Array) -> jax.Array:
    """REINFORCE surrogate loss −(1/B) Σ_b Σ_t log P_F(a_t|s_t)·sg(A_t).

    Its gradient is −(1/B) Σ_b Σ_t A_t ∇log P_F: minus the ELBO gradient estimate for A = G(τ)
    (VPG), RTG_t, RTG_t − V(s_t) or GAE(λ) advantages.
    Args: log_pf, advantages: float[B, T]; mask: bool[B, T].
    """
    _check(log_pf, advantages, mask)
    return -jnp.mean(jnp.where(mask, log_pf * sg(advantages), 0.0).sum(-1))


# --- Niu et al. (b): costs with a learned log Z ------------------------------------------------


def niu_costs(
    log_pf: jax.Array, log_pb: jax.Array, log_reward: jax.Array, log_z: jax.Array,
    mask: jax.Array, done: jax.Array,
) -> jax.Array:
    """Per-step costs of Niu et al. (b), float[B, T] (no gradient), 0 where ~mask:

        c_t = log P_F(a_t|s_t) − log P_B(s_t|s_{t+1}),
        c_T = log P_F(stop|x) − (log R(x) − log Z)       (terminating transition, P_B = 1),
    so Σ_t c_t = log Z − G(τ), and the reward −c_t equals g_t except for log Z at the end.
    """
    _check(log_pf, log_pb, mask, done)
    c = log_pf - log_pb - jnp.where(done, log_reward[:, None] - log_z, 0.0)
    return sg(jnp.where(mask, c, 0.0))


def niu_log_z_update(
    log_z: jax.Array, costs: jax.Array, mask: jax.Array, lr: float | jax.Array
) -> jax.Array:
    """log Z ← log Z − η_Z·mean_b Σ_t c_t = (1 − η_Z)·log Z + η_Z·mean_b G(τ_b).

    Its fixed point in expectation is E[G] = the ELBO of the current policy (η_Z = 0.1 in (b)).
    """
    _check(costs, mask)
    return log_z - lr * jnp.mean(jnp.where(mask, costs, 0.0).sum(-1))


# --- Ent-PPO (a) -------------------------------------------------------------------------------


def categorical_kl(log_p: jax.Array, log_q: jax.Array, valid: jax.Array) -> jax.Array:
    """KL(p ‖ q) = Σ_a p(a)(log p(a) − log q(a)) over valid actions: float[..., A] -> float[...]."""
    chex.assert_equal_shape([log_p, log_q, valid])
    return jnp.where(valid, jnp.exp(log_p) * (log_p - log_q), 0.0).sum(-1)


def ppo_surrogate(
    log_probs: jax.Array, log_probs_old: jax.Array, actions: jax.Array, advantages: jax.Array,
    forward_mask: jax.Array, mask: jax.Array, clip_eps: float | jax.Array = 0.2,
    kl_coef: float | jax.Array = 1.0,
) -> tuple[jax.Array, dict]:
    """Ent-PPO loss (a), to minimise: minus

        (1/B) Σ_b Σ_t [ min(ρ_t A_t, clip(ρ_t, 1−ε, 1+ε) A_t) − A_t − β·KL(π_θ(·|s_t) ‖ π_old(·|s_t)) ],

    ρ_t = π_θ(a_t|s_t)/π_old(a_t|s_t), exact KL over valid actions, β = 1 (no entropy bonus:
    the soft rewards already carry it). The constant A_t is subtracted so the objective is the
    surrogate *improvement* over π_old: exactly 0 at θ = θ_old, where its gradient is the GAE
    policy gradient (the KL term has zero gradient there); the gradient is unchanged elsewhere.

    Args:
      log_probs, log_probs_old: float[B, T, A] masked log π_θ(·|s_t), log π_old(·|s_t);
      actions: int[B, T]; advantages: float[B, T] (computed under π_old); forward_mask:
      bool[B, T, A]; mask: bool[B, T]; clip_eps: ε; kl_coef: β.
    Returns: (loss, info with mean KL, clip fraction, objective).
    """
    _check(advantages, mask)
    chex.assert_equal_shape([log_probs, log_probs_old, forward_mask])
    log_probs_old = sg(log_probs_old)
    adv = sg(advantages)
    take = lambda lp: jnp.take_along_axis(lp, actions[..., None].astype(jnp.int32), -1)[..., 0]
    ratio = jnp.exp(take(log_probs) - take(log_probs_old))
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    surr = jnp.minimum(ratio * adv, clipped * adv) - adv
    kl = categorical_kl(log_probs, log_probs_old, forward_mask)
    per_step = jnp.where(mask, surr - kl_coef * kl, 0.0)
    objective = jnp.mean(per_step.sum(-1))
    n = jnp.maximum(mask.sum(), 1)
    info = {
        "ppo_objective": objective,
        "kl": jnp.where(mask, kl, 0.0).sum() / n,
        "clip_fraction": jnp.where(mask, jnp.abs(ratio - 1.0) > clip_eps, False).sum() / n,
    }
    return -objective, info


# --- TRPO (Schulman et al. 2015; RL-T of (b)) --------------------------------------------------


def conjugate_gradient(
    matvec: Callable[[jax.Array], jax.Array], b: jax.Array, iters: int = 10,
    tol: float = 1e-10,
) -> jax.Array:
    """Approximately solve H x = b for symmetric positive-definite H given x ↦ Hx (fixed iters)."""

    def body(_, carry):
        x, r, p, rr = carry
        hp = matvec(p)
        live = rr > tol
        alpha = jnp.where(live, rr / jnp.maximum(jnp.vdot(p, hp), 1e-30), 0.0)
        x = x + alpha * p
        r = r - alpha * hp
        rr_new = jnp.vdot(r, r)
        beta = jnp.where(live, rr_new / jnp.maximum(rr, 1e-30), 0.0)
        return x, r, r + beta * p, jnp.where(live, rr_new, rr)

    x0 = jnp.zeros_like(b)
    x, *_ = jax.lax.fori_loop(0, iters, body, (x0, b, b, jnp.vdot(b, b)))
    return x


def trpo_step(
    loss_fn: Callable, kl_fn: Callable, params, max_kl: float | jax.Array = 0.01,
    cg_iters: int = 10, damping: float | jax.Array = 0.1, backtrack_iters: int = 10,
    backtrack_ratio: float = 0.8,
):
    """One trust-region step: minimise loss_fn subject to kl_fn ≤ δ (Schulman et al. 2015).

    s = −(H + damping·I)⁻¹ ∇L by `cg_iters` conjugate-gradient iterations on the Hessian-vector
    product of the KL (forward-over-reverse autodiff), scaled to the trust-region boundary
    β = sqrt(2δ / sᵀHs); then backtracking θ + ratio^k·β·s, k = 0..backtrack_iters−1, accepting
    the first candidate with KL ≤ δ and a lower loss. If none is accepted, params are unchanged,
    so the returned step always satisfies KL ≤ δ.

    Args:
      loss_fn(params) -> float[] surrogate loss (e.g. −mean Σ ρ_t A_t);
      kl_fn(params) -> float[] mean KL(π_old ‖ π_params) (0 with zero gradient at `params`);
      params: any pytree; max_kl: δ (0.01 in (b)).
    Returns: (new params, info dict with kl, improvement, accepted, step_fraction).
    """
    flat, unravel = ravel_pytree(params)
    f_loss = lambda x: loss_fn(unravel(x))
    f_kl = lambda x: kl_fn(unravel(x))
    loss0, grad = jax.value_and_grad(f_loss)(flat)
    grad_kl = jax.grad(f_kl)

    def hvp(v):
        return jax.jvp(grad_kl, (flat,), (v,))[1] + damping * v

    step = conjugate_gradient(hvp, -grad, cg_iters)
    shs = jnp.vdot(step, hvp(step))
    full = step * jnp.sqrt(2.0 * max_kl / jnp.maximum(shs, 1e-12))

    def cond(carry):
        k, accepted, *_ = carry
        return (k < backtrack_iters) & ~accepted

    def body(carry):
        k, _, _, _, _ = carry
        frac = backtrack_ratio ** k.astype(flat.dtype)
        cand = flat + frac * full
        loss_c, kl_c = f_loss(cand), f_kl(cand)
        ok = (kl_c <= max_kl) & (loss_c < loss0) & jnp.isfinite(loss_c)
        return k + 1, ok, frac, loss_c, kl_c

    init = (jnp.int32(0), jnp.asarray(False), jnp.zeros((), flat.dtype), loss0, jnp.zeros((), flat.dtype))
    _, accepted, frac, loss_new, kl_new = jax.lax.while_loop(cond, body, init)
    new = jnp.where(accepted, flat + frac * full, flat)
    info = {
        "kl": jnp.where(accepted, kl_new, 0.0),
        "improvement": jnp.where(accepted, loss0 - loss_new, 0.0),
        "accepted": accepted.astype(jnp.float32),
        "step_fraction": jnp.where(accepted, frac, 0.0),
    }
    return unravel(new), info
