"""Optimiser steps that are not plain gradient descent: conjugate gradient and the TRPO step.

Pure functions of a loss, a constraint and a parameter pytree (no gfnjax dependency), used by the
TRPO algorithm (Niu et al. 2024's RL-T; the Ent-PPO paper's TRPO baseline).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def conjugate_gradient(
    matvec: Callable[[jax.Array], jax.Array],
    b: jax.Array,
    iters: int = 10,
    tol: float = 1e-10,
) -> jax.Array:
    """Approximately solve H x = b for symmetric positive-definite H given x ↦ Hx: `iters`
    conjugate-gradient iterations from x = 0 (stopping early once |r|² ≤ tol)."""

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
    loss_fn: Callable[[Any], jax.Array],
    kl_fn: Callable[[Any], jax.Array],
    params: Any,
    max_kl: float | jax.Array = 0.01,
    cg_iters: int = 10,
    damping: float | jax.Array = 0.0,
    backtrack_iters: int = 10,
    backtrack_ratio: float = 0.5,
    accept_kl_fn: Callable[[Any], jax.Array] | None = None,
    revert_on_failure: bool = True,
) -> tuple[Any, dict[str, jax.Array]]:
    """One trust-region step: minimise loss_fn subject to kl_fn ≤ δ (Schulman et al. 2015).

    s = −(H + damping·I)⁻¹ ∇L by `cg_iters` conjugate-gradient iterations on the Hessian-vector
    product of the KL (forward-over-reverse autodiff), scaled to the trust-region boundary of the
    quadratic model, β = sqrt(2δ / sᵀHs); then backtracking θ + ratio^k·β·s, k = 0..iters−1,
    accepting the first candidate with KL ≤ δ and a lower loss. If none is accepted, params are
    unchanged, so the returned step always satisfies KL ≤ δ (the Ent-PPO code). Niu et al.'s code
    differs in two places, selectable here: its acceptance test uses another KL
    (`accept_kl_fn`: the per-state mean of KL(π_new ‖ π_old)), and when every candidate fails it
    keeps the last, smallest one (`revert_on_failure=False`).

    Args:
      loss_fn(params) -> float[] surrogate loss (e.g. −mean_b Σ_t ρ_t A_t);
      kl_fn(params) -> float[] KL(π_old ‖ π_params), 0 with zero gradient at `params` (both
        references use the per-trajectory sum averaged over trajectories);
      params: any pytree; max_kl: δ (0.01 in both references); damping: 0 in both references.
    Returns: (new params, info: kl, improvement, accepted, step_fraction, predicted_kl).
    """
    flat, unravel = ravel_pytree(params)
    f_loss = lambda x: loss_fn(unravel(x))
    f_kl = lambda x: kl_fn(unravel(x))
    f_accept = f_kl if accept_kl_fn is None else (lambda x: accept_kl_fn(unravel(x)))
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
        loss_c, kl_c = f_loss(cand), f_accept(cand)
        ok = (kl_c <= max_kl) & (loss_c < loss0) & jnp.isfinite(loss_c)
        return k + 1, ok, frac, loss_c, kl_c

    zero = jnp.zeros((), flat.dtype)
    init = (jnp.int32(0), jnp.asarray(False), zero, loss0, zero)
    _, accepted, frac, loss_new, kl_new = jax.lax.while_loop(cond, body, init)
    last = flat + backtrack_ratio ** (backtrack_iters - 1) * full
    new = jnp.where(accepted, flat + frac * full, flat if revert_on_failure else last)
    info = {
        "kl": jnp.where(accepted, kl_new, 0.0),
        "improvement": jnp.where(accepted, loss0 - loss_new, 0.0),
        "accepted": accepted.astype(jnp.float32),
        "step_fraction": jnp.where(accepted, frac, 0.0),
    }
    return unravel(new), info
