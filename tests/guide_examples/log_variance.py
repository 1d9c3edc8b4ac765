"""The log-variance (VarGrad) objective, written as gfnjax/losses/flow.py writes its objectives
(docs/adding_an_algorithm.md): a pure function of arrays with shapes in the docstring and a
`reduce` option, importing nothing from gfnjax but its helpers."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def log_partition_estimates(
    log_pf: jax.Array, log_pb: jax.Array, log_reward: jax.Array, mask: jax.Array
) -> jax.Array:
    """ζ(τ) = log R(x) + Σ_t log P_B(s_t|s_{t+1}) − Σ_t log P_F(s_{t+1}|s_t), float[B].

    At the optimum ζ(τ) = log Z for every trajectory. Args: log_pf, log_pb, mask [B, T];
    log_reward [B].
    """
    chex.assert_rank([log_pf, log_pb, mask], 2)
    chex.assert_equal_shape([log_pf, log_pb, mask])
    return log_reward + jnp.where(mask, log_pb - log_pf, 0.0).sum(-1)


def log_variance(
    log_pf: jax.Array,
    log_pb: jax.Array,
    log_reward: jax.Array,
    mask: jax.Array,
    reduce: str = "mean",
) -> jax.Array:
    """Log-partition variance loss (VarGrad; Richter et al. 2020, for GFlowNets Zhang et al.
    2023): (ζ_b − ζ̄)² with ζ̄ = mean_b ζ_b, the batch's own estimate of log Z.

    It is trajectory balance with log Z replaced by ζ̄: the gradients with respect to P_F and
    P_B are those of TB at log Z = ζ̄, and no log Z has to be learned.
    reduce: "mean" (float[]) or "none" (float[B]).
    """
    zeta = log_partition_estimates(log_pf, log_pb, log_reward, mask)
    sq = (zeta - zeta.mean()) ** 2
    if reduce == "mean":
        return sq.mean()
    if reduce == "none":
        return sq
    raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")
