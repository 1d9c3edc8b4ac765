"""Soft-RL value targets for GFlowNets (Tiapkin et al. 2024; docs/methods.md §2).

GFlowNet training as entropy-regularised RL: reward r(s, s') = log P_B(s|s') on ordinary
transitions and log R(x) on the one that terminates, discount 1, entropy coefficient 1. The optimal
soft Q-function is Q*(s, s') = log F(s→s') (the edge flow) and the soft-optimal policy
softmax(Q*) is a P_F satisfying trajectory balance with the given P_B.

Pure functions over arrays; batch axes are leading `...` axes (or add them with `vmap`).
Shapes: Q-values float[..., A] over forward actions with a validity mask bool[..., A]
(True = valid); per-transition quantities float[...] / bool[...] / int[...].
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax

from gfnjax.utils import gather_last, masked_logits


def soft_value(q: jax.Array, mask: jax.Array, tau: float | jax.Array = 1.0) -> jax.Array:
    """V(s) = τ·logsumexp_{a valid} Q(s, a)/τ:  float[..., A], bool[..., A] -> float[...].

    Rows with no valid action (terminal states) return a finite, meaningless value.
    """
    chex.assert_equal_shape([q, mask])
    return tau * jax.nn.logsumexp(masked_logits(q / tau, mask), axis=-1)


def soft_policy_log_probs(q: jax.Array, mask: jax.Array, tau: float | jax.Array = 1.0) -> jax.Array:
    """log π(a|s) = Q(s,a)/τ − logsumexp_{a'} Q(s,a')/τ over valid actions: float[..., A]."""
    chex.assert_equal_shape([q, mask])
    return jax.nn.log_softmax(masked_logits(q / tau, mask), axis=-1)


def soft_dqn_targets(
    q_next_target: jax.Array,
    next_mask: jax.Array,
    log_pb: jax.Array,
    log_reward: jax.Array,
    done: jax.Array,
    tau: float | jax.Array = 1.0,
) -> jax.Array:
    """Soft Bellman targets of SoftDQN (docs/methods.md §2):

        y = log P_B(s|s') + log R(x)                                   if s' = x is terminal,
        y = log P_B(s|s') + τ·logsumexp_{a'} Q_targ(s', a')/τ          otherwise.

    With an explicit stop action the terminating transition has P_B = 1, so y = log R(x); for
    environments that terminate automatically (no stop) the log P_B of the last step is kept,
    which is the reward of the soft-RL view. τ = 1 is the GFlowNet entropy coefficient.

    Args:
      q_next_target: float[..., A] Q_targ(s', ·) (target network) at the next state.
      next_mask:     bool[..., A]  valid forward actions at s' (ignored where done).
      log_pb:        float[...]    log P_B(s|s').
      log_reward:    float[...]    log R(s') (used where done).
      done:          bool[...]     the transition reaches a terminal state.
      tau:           entropy coefficient τ > 0 (scalar).
    Returns: float[...] targets (no gradient is stopped here; callers stop it).
    """
    chex.assert_equal_shape([log_pb, log_reward, done])
    chex.assert_equal_shape_prefix([q_next_target, log_pb], log_pb.ndim)
    v_next = soft_value(q_next_target, next_mask, tau)
    return log_pb + jnp.where(done, log_reward, v_next)


def munchausen_bonus(
    q_target: jax.Array,
    mask: jax.Array,
    action: jax.Array,
    alpha: float | jax.Array,
    l0: float | jax.Array,
    tau: float | jax.Array,
) -> jax.Array:
    """α·clip(τ·log π_targ(a|s), l0, 0) with π_targ = softmax(Q_targ(s, ·)/τ) over valid actions.

    q_target float[..., A] (target network at s), mask bool[..., A], action int[...] -> float[...].
    """
    log_pi = gather_last(soft_policy_log_probs(q_target, mask, tau), action)
    return alpha * jnp.clip(tau * log_pi, l0, 0.0)


def munchausen_targets(
    q_next_target: jax.Array,
    next_mask: jax.Array,
    q_target: jax.Array,
    mask: jax.Array,
    action: jax.Array,
    log_pb: jax.Array,
    log_reward: jax.Array,
    done: jax.Array,
    alpha: float | jax.Array,
    l0: float | jax.Array = -100.0,
    tau: float | jax.Array | None = None,
) -> jax.Array:
    """Munchausen DQN targets (Vieillard et al. 2020; docs/methods.md §2):

        y = soft_dqn_targets(τ) + α·clip(τ·log π_targ(a|s), l0, 0),   τ = 1/(1 − α) by default,

    so that the effective entropy weight (1 − α)·τ stays 1 and softmax(Q/τ) of the fixed point is
    the GFlowNet policy: without clipping the fixed point is Q_M(s, a) = τ·(Q*(s, a) − α·V*(s)),
    with Q* = log F(s→s') and V* = log F(s), so softmax(Q_M/τ) = softmax(Q*) and
    τ·logsumexp(Q_M(s, ·)/τ) = V*(s).

    Args: as `soft_dqn_targets`, plus q_target float[..., A] (target network at s), mask
    bool[..., A] (valid actions at s), action int[...] (the action taken), alpha ∈ [0, 1),
    l0 ≤ 0 (clip of the log-policy term: −100 hypergrid, −25 bitseq, as in Tiapkin et al.'s
    code), tau (default 1/(1 − α)).
    Returns: float[...].
    """
    if tau is None:
        tau = 1.0 / (1.0 - alpha)
    y = soft_dqn_targets(q_next_target, next_mask, log_pb, log_reward, done, tau)
    return y + munchausen_bonus(q_target, mask, action, alpha, l0, tau)


def soft_q_loss(
    q_sa: jax.Array,
    targets: jax.Array,
    weights: jax.Array | None = None,
    delta: float | jax.Array | None = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """mean_i w_i·ℓ(Q(s_i, a_i) − sg(y_i)), ℓ = Huber(δ) (Tiapkin et al.'s code) or the square
    when delta is None.

    q_sa float[n], targets float[n], weights float[n] (importance weights; 1 if None).
    Returns (loss float[], per-sample ℓ float[n], e.g. as new replay priorities).
    """
    chex.assert_equal_shape([q_sa, targets])
    err = q_sa - jax.lax.stop_gradient(targets)
    if delta is None:
        per = 0.5 * jnp.square(err)
    else:
        per = optax.losses.huber_loss(err, delta=delta)
    w = jnp.ones_like(per) if weights is None else jax.lax.stop_gradient(weights)
    return jnp.mean(w * per), per
