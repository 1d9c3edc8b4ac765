"""Flow objectives as pure functions of arrays (docs/methods.md §1).

Shapes: B trajectories, T transitions (padded), per-step arrays [B, T], per-state arrays
[B, T+1] (s_0 … s_T). `mask` bool[B, T] marks valid transitions and `done` bool[B, T] the
transition into the terminal state x. Padded entries may hold anything finite: they are masked
out. Every objective returns per-trajectory (or per-transition) values with `reduce="none"` and
the batch mean of the authors' code by default; add batch axes with `vmap`.
None of them needs anything else from gfnjax (the notebook use case).
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

from gfnjax.utils import NEG_LOGIT


def _check(log_pf, log_pb, mask):
    chex.assert_rank([log_pf, log_pb, mask], 2)
    chex.assert_equal_shape([log_pf, log_pb, mask])


def _reduce(values: jax.Array, reduce: str) -> jax.Array:
    if reduce == "mean":
        return jnp.mean(values)
    if reduce == "none":
        return values
    raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")


def trajectory_balance_residual(log_pf, log_pb, log_reward, log_z, mask):
    """δ(τ) = log Z + Σ_t log P_F(s_{t+1}|s_t) − log R(x) − Σ_t log P_B(s_t|s_{t+1}); float[B]."""
    _check(log_pf, log_pb, mask)
    diff = jnp.where(mask, log_pf - log_pb, 0.0).sum(-1)
    return log_z + diff - log_reward


def trajectory_balance(
    log_pf: jax.Array,
    log_pb: jax.Array,
    log_reward: jax.Array,
    log_z: jax.Array,
    mask: jax.Array,
    reduce: str = "mean",
) -> jax.Array:
    """Trajectory balance (Malkin et al. 2022): δ(τ_b)², mean over the batch.

    Args:
      log_pf, log_pb: float[B, T]; log_reward: float[B]; log_z: float[] (learned);
      mask: bool[B, T]; reduce: "mean" (float[]) or "none" (float[B], per trajectory).
    """
    return _reduce(
        trajectory_balance_residual(log_pf, log_pb, log_reward, log_z, mask) ** 2, reduce
    )


def _state_log_flow(log_flow, log_reward, done):
    """log F(s_t) for t = 0..T with the terminal state's flow replaced by log R(x); float[B, T+1].

    Position t+1 is the terminal state where done[:, t]; positions past it are unused.
    """
    is_x = jnp.concatenate([jnp.zeros_like(done[:, :1]), done], axis=1)
    return jnp.where(is_x, log_reward[:, None], log_flow)


def detailed_balance_residual(log_pf, log_pb, log_flow, log_reward, mask, done):
    """δ_t = log F(s_t) + log P_F(s_{t+1}|s_t) − log F(s_{t+1}) − log P_B(s_t|s_{t+1}),
    log F(x) := log R(x); float[B, T], 0 where ~mask."""
    _check(log_pf, log_pb, mask)
    chex.assert_shape(log_flow, (log_pf.shape[0], log_pf.shape[1] + 1))
    f = _state_log_flow(log_flow, log_reward, done)
    return jnp.where(mask, f[:, :-1] + log_pf - f[:, 1:] - log_pb, 0.0)


def detailed_balance(
    log_pf: jax.Array,
    log_pb: jax.Array,
    log_flow: jax.Array,
    log_reward: jax.Array,
    mask: jax.Array,
    done: jax.Array,
    reduce: str = "transitions",
) -> jax.Array:
    """Detailed balance (Bengio et al. 2023): δ_t² (see `detailed_balance_residual`).

    reduce: "transitions" (default: mean over every valid transition of the batch, as the
    Ent-PPO, gfnx and torchgfn code average), "trajectories" (mean over each trajectory's
    transitions, then over the batch: short trajectories weigh more), or "none" (float[B, T],
    0 where ~mask).

    Args:
      log_pf, log_pb: float[B, T]; log_flow: float[B, T+1]; log_reward: float[B];
      mask, done: bool[B, T].
    """
    sq = detailed_balance_residual(log_pf, log_pb, log_flow, log_reward, mask, done) ** 2
    if reduce == "transitions":
        return sq.sum() / jnp.maximum(mask.sum(), 1)
    if reduce == "trajectories":
        return jnp.mean(sq.sum(-1) / jnp.maximum(mask.sum(-1), 1))
    if reduce == "none":
        return sq
    raise ValueError(f"reduce must be 'transitions', 'trajectories' or 'none', got {reduce!r}")


def subtrajectory_balance(
    log_pf: jax.Array,
    log_pb: jax.Array,
    log_flow: jax.Array,
    log_reward: jax.Array,
    mask: jax.Array,
    done: jax.Array,
    lam: float | jax.Array = 0.9,
    reduce: str = "mean",
) -> jax.Array:
    """Subtrajectory balance (Madan et al. 2023) in O(T²) with cumulative sums.

    With a_i = log F(s_i) − Σ_{t<i} log P_F + Σ_{t<i} log P_B (log F(x) := log R(x)), the
    residual of the sub-trajectory i..j is a_i − a_j. Per trajectory:
        L = Σ_{0≤i<j≤n} λ^{j−i} (a_i − a_j)² / Σ_{0≤i<j≤n} λ^{j−i},   n = length,
    averaged over the batch (reduce="mean") or returned per trajectory (reduce="none", float[B]).
    The weights are normalised in log space, so large λ or long trajectories cannot overflow.

    Args:
      log_pf, log_pb: float[B, T]; log_flow: float[B, T+1]; log_reward: float[B];
      mask, done: bool[B, T]; lam: λ > 0.
    """
    _check(log_pf, log_pb, mask)
    B, T = log_pf.shape
    f = _state_log_flow(log_flow, log_reward, done)
    step = jnp.where(mask, log_pf - log_pb, 0.0)
    cum = jnp.concatenate([jnp.zeros((B, 1), step.dtype), jnp.cumsum(step, axis=1)], axis=1)
    a = f - cum  # [B, T+1]
    length = mask.sum(-1)
    idx = jnp.arange(T + 1)
    i, j = idx[:, None], idx[None, :]
    valid = (i < j)[None] & (j[None] <= length[:, None, None])  # [B, T+1, T+1]
    gap = jnp.maximum(j - i, 0).astype(jnp.float32)
    log_w = jnp.where(valid, (gap * jnp.log(jnp.asarray(lam, jnp.float32)))[None], -1e30)
    w = jax.nn.softmax(log_w.reshape(B, -1), axis=-1).reshape(log_w.shape)
    w = jnp.where(valid, w, 0.0)
    resid = jnp.where(valid, a[:, :, None] - a[:, None, :], 0.0)
    return _reduce((w * resid**2).sum((1, 2)), reduce)


def flow_matching(
    log_in_edge_flows: jax.Array,
    in_mask: jax.Array,
    log_out_edge_flows: jax.Array,
    out_mask: jax.Array,
    log_reward: jax.Array,
    is_terminal: jax.Array,
    state_mask: jax.Array,
    reduce: str = "mean",
) -> jax.Array:
    """Flow matching (Bengio et al. 2021) in log space.

    For each visited state s ≠ s0:
        ( logsumexp_{p ∈ parents(s)} log F(p→s)
          − [ log R(s) if s is terminal else logsumexp_{a valid} log F(s→a) ] )²,
    averaged over the valid states (reduce="mean") or returned per state (reduce="none",
    float[B, N], 0 where not valid).

    Args:
      log_in_edge_flows: float[B, N, A_b] log F(parent_b → s) for each backward action b;
      in_mask: bool[B, N, A_b] valid parents;
      log_out_edge_flows: float[B, N, A] log F(s → s') for each forward action;
      out_mask: bool[B, N, A] valid forward actions;
      log_reward: float[B, N] log R(s) (used where is_terminal);
      is_terminal: bool[B, N]; state_mask: bool[B, N] states that enter the loss.
    """
    chex.assert_rank([log_in_edge_flows, log_out_edge_flows], 3)
    log_in = jax.nn.logsumexp(jnp.where(in_mask, log_in_edge_flows, NEG_LOGIT), axis=-1)
    log_out = jax.nn.logsumexp(jnp.where(out_mask, log_out_edge_flows, NEG_LOGIT), axis=-1)
    target = jnp.where(is_terminal, log_reward, log_out)
    valid = state_mask & jnp.any(in_mask, -1) & (is_terminal | jnp.any(out_mask, -1))
    sq = jnp.where(valid, log_in - target, 0.0) ** 2
    if reduce == "none":
        return sq
    if reduce != "mean":
        raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")
    return sq.sum() / jnp.maximum(valid.sum(), 1)


def backward_maximum_likelihood(
    log_pb: jax.Array, mask: jax.Array, reduce: str = "mean"
) -> jax.Array:
    """TLM backward loss (Gritsaev et al. 2024): −Σ_t log P_B(s_t|s_{t+1}) over the valid
    transitions of each trajectory, mean over the batch (reduce="none": float[B])."""
    chex.assert_equal_shape([log_pb, mask])
    return _reduce(-jnp.where(mask, log_pb, 0.0).sum(-1), reduce)
