"""Policy-gradient estimators of the soft-RL view of GFlowNets as pure functions
(docs/methods.md §3).

Shapes: B trajectories, T transitions (padded), per-step arrays [B, T], per-state arrays
[B, T+1] (s_0 … s_T), `mask` bool[B, T] valid transitions, `done` bool[B, T] the transition that
reaches the terminal state x. Padded entries may hold anything finite: they are masked out.

Soft-RL view (Tiapkin et al. 2024): the reward of a transition s→s' is log P_B(s|s') and the
terminating one also earns log R(x); discount 1, entropy coefficient 1. The entropy-augmented
per-step reward is g_t = r_t − sg(log P_F(a_t|s_t)), whose sum is the soft return
G(τ) = log R(x) + log P_B(τ|x) − log P_F(τ), E_{P_F}[G] = ELBO = log Z − KL(P_F ‖ P_B R/Z).
Losses are *minimised*: `pg_surrogate` has gradient −∇ELBO (estimated).

None of these functions needs anything else from gfnjax (the notebook use case).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

sg = jax.lax.stop_gradient


def _check(*arrays):
    chex.assert_rank(list(arrays), 2)
    chex.assert_equal_shape(list(arrays))


def soft_rewards(
    log_pf: jax.Array, log_pb: jax.Array, log_reward: jax.Array, mask: jax.Array, done: jax.Array
) -> jax.Array:
    """Entropy-augmented per-step rewards g_t = r_t − log P_F(a_t|s_t), float[B, T] (no gradient).

    r_t = log P_B(s_t|s_{t+1}) + 1[t terminates]·log R(x). With an explicit stop action the
    terminating transition has P_B = 1, so r_T = log R(x) exactly as in Tiapkin et al.; with
    automatic termination the last ordinary transition keeps its log P_B. 0 where ~mask.

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

        δ_t = g_t + V(s_{t+1}) − V(s_t),   A_t = Σ_{l≥0} λ^l δ_{t+l},
        target_t = A_t + V(s_t)   (the TD(λ) return, the value regression target).

    The sum is one [B, T] × [T, T] product with the triangular matrix W[t, t'] = λ^{t'−t}
    (t' ≥ t) instead of a sequential reverse scan of T tiny steps (which dominated PPO's value
    updates on CPU). `mask` must be a prefix of each row (valid transitions first), as in every
    trajectory batch.

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
    gap = jnp.arange(T)[None, :] - jnp.arange(T)[:, None]  # t' − t
    weights = jnp.where(gap >= 0, jnp.power(lam, jnp.maximum(gap, 0).astype(g.dtype)), 0.0)
    adv = jnp.where(mask, delta @ weights.T, 0.0)
    return adv, jnp.where(mask, adv + v[:, :-1], 0.0)


def mean_center(advantages: jax.Array, mask: jax.Array) -> jax.Array:
    """A − mean of A over the valid steps of the batch (Niu et al.); 0 where ~mask."""
    _check(advantages, mask)
    mean = jnp.where(mask, advantages, 0.0).sum() / jnp.maximum(mask.sum(), 1)
    return jnp.where(mask, advantages - mean, 0.0)


def normalize(advantages: jax.Array, mask: jax.Array) -> jax.Array:
    """(A − mean)/std over the valid steps of the batch (off by default in Ent-PPO)."""
    centred = mean_center(advantages, mask)
    var = (centred**2).sum() / jnp.maximum(mask.sum(), 1)
    return centred / jnp.sqrt(var + 1e-8)


def _per_trajectory(per_step: jax.Array, mask: jax.Array, reduce: str) -> jax.Array:
    """Σ_t over valid steps, then the batch mean (reduce="mean") or float[B] (reduce="none")."""
    per_traj = jnp.where(mask, per_step, 0.0).sum(-1)
    if reduce == "mean":
        return jnp.mean(per_traj)
    if reduce == "none":
        return per_traj
    raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")


def pg_surrogate(
    log_pf: jax.Array, advantages: jax.Array, mask: jax.Array, reduce: str = "mean"
) -> jax.Array:
    """REINFORCE surrogate loss −(1/B) Σ_b Σ_t log P_F(a_t|s_t)·sg(A_t).

    Its gradient is −(1/B) Σ_b Σ_t A_t ∇log P_F: minus the ELBO gradient estimate for A = G(τ)
    (VPG), RTG_t, RTG_t − V(s_t) or GAE(λ) advantages. With `log_pf` replaced by backward
    log-probabilities it is the REINFORCE loss of a backward policy (RL-B, RL-G).
    Args: log_pf, advantages: float[B, T]; mask: bool[B, T]; reduce: "mean" | "none" (float[B]).
    """
    _check(log_pf, advantages, mask)
    return _per_trajectory(-log_pf * sg(advantages), mask, reduce)


def value_regression(
    values: jax.Array, targets: jax.Array, mask: jax.Array, reduce: str = "transitions"
) -> jax.Array:
    """Squared error of a value net against fixed targets: (V(s_t) − sg(y_t))².

    reduce: "transitions" (mean over valid steps of the batch, default), "positions" (mean over
    all B·T positions, padding counted as zero error: `jnp.mean` in the Ent-PPO hypergrid and
    QM9 code), "trajectories" (Σ_t per trajectory, mean over trajectories: Niu et al.'s
    normalisation) or "none" (float[B, T]).
    Args: values, targets: float[B, T]; mask: bool[B, T].
    """
    _check(values, targets, mask)
    sq = jnp.where(mask, values - sg(targets), 0.0) ** 2
    if reduce == "transitions":
        return sq.sum() / jnp.maximum(mask.sum(), 1)
    if reduce == "positions":
        return jnp.mean(sq)
    if reduce == "trajectories":
        return jnp.mean(sq.sum(-1))
    if reduce == "none":
        return sq
    raise ValueError(
        f"reduce must be 'transitions', 'positions', 'trajectories' or 'none', got {reduce!r}"
    )


# --- Niu et al. 2024: costs with a learned log Z ----------------------------------------------


def niu_costs(
    log_pf: jax.Array,
    log_pb: jax.Array,
    log_reward: jax.Array,
    log_z: jax.Array,
    mask: jax.Array,
    done: jax.Array,
    log_reward_min: float | None = None,
) -> jax.Array:
    """Per-step costs of Niu et al. 2024, float[B, T] (no gradient), 0 where ~mask:

        c_t = log P_F(a_t|s_t) − log P_B(s_t|s_{t+1}),
        c_T = log P_F(a_T|s_T) − log P_B(s_T|x) − (log R(x) − log Z)    (terminating transition),
    so Σ_t c_t = log Z − G(τ): the reward −c_t equals g_t except for log Z at the end. With an
    explicit stop action log P_B(s_T|x) = 0. `log_reward_min` clamps log R from below (their
    code uses −12 on sequence tasks); None = no clamp.
    """
    _check(log_pf, log_pb, mask, done)
    if log_reward_min is not None:
        log_reward = jnp.maximum(log_reward, log_reward_min)
    c = log_pf - log_pb - jnp.where(done, log_reward[:, None] - log_z, 0.0)
    return sg(jnp.where(mask, c, 0.0))


def niu_log_z_gradient(costs: jax.Array, mask: jax.Array) -> jax.Array:
    """∂/∂log Z of Niu et al.'s log-Z objective: mean_b Σ_t c_t = log Z − mean_b G(τ_b), float[].

    Stepped by Adam (their code: lr 0.1), its fixed point in expectation is log Z = E[G], the
    ELBO of the current policy, where log Z acts as a constant baseline of the costs.
    """
    _check(costs, mask)
    return jnp.mean(jnp.where(mask, costs, 0.0).sum(-1))


# --- Ent-PPO (Zykova-Myzina et al. 2026) and TRPO -----------------------------------------------


def categorical_kl(log_p: jax.Array, log_q: jax.Array, valid: jax.Array) -> jax.Array:
    """KL(p ‖ q) = Σ_a p(a)(log p(a) − log q(a)) over valid actions: float[..., A] -> float[...]."""
    chex.assert_equal_shape([log_p, log_q, valid])
    return jnp.where(valid, jnp.exp(log_p) * (log_p - log_q), 0.0).sum(-1)


def ppo_surrogate(
    log_probs: jax.Array,
    log_probs_old: jax.Array,
    actions: jax.Array,
    advantages: jax.Array,
    forward_mask: jax.Array,
    mask: jax.Array,
    clip_eps: float | jax.Array = 0.2,
    kl_coef: float | jax.Array = 1.0,
    reduce: str = "mean",
) -> tuple[jax.Array, dict]:
    """Ent-PPO loss, to minimise: minus

        (1/B) Σ_b Σ_t [ min(ρ_t A_t, clip(ρ_t, 1−ε, 1+ε) A_t) − A_t
                        − β·KL(π_θ(·|s_t) ‖ π_old(·|s_t)) ],

    ρ_t = π_θ(a_t|s_t)/π_old(a_t|s_t), exact KL over valid actions, β = 1 (no entropy bonus:
    the soft rewards already carry it). The constant A_t is subtracted so the objective is the
    surrogate *improvement* over π_old: exactly 0 at θ = θ_old, where its gradient is the GAE
    policy gradient (the KL term has zero gradient there); the gradient is unchanged elsewhere.

    Args:
      log_probs, log_probs_old: float[B, T, A] masked log π_θ(·|s_t), log π_old(·|s_t);
      actions: int[B, T]; advantages: float[B, T] (computed under π_old); forward_mask:
      bool[B, T, A]; mask: bool[B, T]; clip_eps: ε; kl_coef: β; reduce: "mean" | "none".
    Returns: (loss float[] or float[B], info with the mean KL per step and the clip fraction).
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
    loss = _per_trajectory(-(surr - kl_coef * kl), mask, reduce)
    n = jnp.maximum(mask.sum(), 1)
    info = {
        "kl": jnp.where(mask, kl, 0.0).sum() / n,
        "clip_fraction": jnp.where(mask, jnp.abs(ratio - 1.0) > clip_eps, False).sum() / n,
    }
    return loss, info


def importance_surrogate(
    log_pf: jax.Array,
    log_pf_old: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    reduce: str = "mean",
) -> jax.Array:
    """TRPO's surrogate loss −(1/B) Σ_b Σ_t ρ_t·sg(A_t), ρ_t = exp(log π_θ − sg log π_old)
    (Schulman et al. 2015); 0 improvement at θ = θ_old, where its gradient is the PG gradient.
    Args: log_pf, log_pf_old, advantages: float[B, T]; mask: bool[B, T]."""
    _check(log_pf, log_pf_old, advantages, mask)
    ratio = jnp.exp(log_pf - sg(log_pf_old))
    return _per_trajectory(-ratio * sg(advantages), mask, reduce)


def trajectory_kl(
    log_probs_old: jax.Array,
    log_probs: jax.Array,
    forward_mask: jax.Array,
    mask: jax.Array,
    reduce: str = "mean",
) -> jax.Array:
    """(1/B) Σ_b Σ_t KL(π_old(·|s_t) ‖ π_θ(·|s_t)): the per-trajectory KL that Niu et al.'s and
    the Ent-PPO authors' TRPO bound by δ (a per-step mean would allow ~T̄ times larger steps).
    Args: log_probs_old, log_probs: float[B, T, A]; forward_mask: bool[B, T, A]; mask: bool[B, T].
    """
    kl = categorical_kl(sg(log_probs_old), log_probs, forward_mask)
    return _per_trajectory(kl, mask, reduce)
