"""Exact terminal distribution by dynamic programming over the enumerated DAG
(docs/methods.md §5).

    u(s0) = 1,  u(s') = Σ_{s ∈ parents(s')} u(s)·P_F(s'|s),  P_T(x) = Σ_s u(s)·P_F(x|s)

`build_dag` enumerates every non-terminal state once (host side, at setup) and records each
(state, action) pair's child index; `terminal_distribution` then runs max_steps rounds of a
scatter-add, exact for a DAG whose depth is at most max_steps.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from gfnjax.envs.base import Env
from gfnjax.utils import NEG_LOGIT


class DAG(NamedTuple):
    obs: jax.Array  # float32[S, D]
    forward_mask: jax.Array  # bool[S, A]
    child: jax.Array  # int32[S, A] index of the child: state index, or terminal index
    child_terminal: jax.Array  # bool[S, A]
    s0: jax.Array  # int32[] index of the initial state
    true_log_probs: jax.Array  # float32[X] log π(x)
    log_z: jax.Array  # float32[] exact log Z
    depth: int  # rounds of propagation (static)


def build_dag(env: Env) -> DAG:
    """Enumerate the DAG of an enumerable environment (a few seconds at most for ~10^5 states)."""
    if not env.enumerable:
        raise ValueError(f"environment {env.name!r} is not enumerable: exact metrics unavailable")

    @jax.jit
    def build(states, terminals):
        S = jax.tree.leaves(states)[0].shape[0]
        fmask = env.forward_mask(states)

        def child_of(a):
            child = env.step(states, jnp.full((S,), a, jnp.int32))
            term = env.is_terminal(child)
            idx = jnp.where(term, env.terminal_index(child), env.state_index(child))
            return idx, term

        child, term = jax.vmap(child_of)(jnp.arange(env.num_actions))
        child = jnp.where(fmask, child.T, 0).astype(jnp.int32)
        s0 = env.state_index(env.reset(1))[0]
        log_r = env.log_reward(terminals)
        log_z = jax.nn.logsumexp(log_r)
        return env.observe(states), fmask, child, term.T & fmask, s0, log_r - log_z, log_z

    # states enter as an argument: as closed-over constants XLA would constant-fold the whole build
    obs, fmask, child, term, s0, true_lp, log_z = build(
        env.enumerate_states(), env.enumerate_terminals()
    )
    return DAG(obs, fmask, child, term, s0, true_lp, log_z, env.max_steps)


def terminal_distribution(dag: DAG, log_probs: jax.Array) -> jax.Array:
    """P_T(x) for every terminal, float32[X], from masked forward log-probs float32[S, A]."""
    S = dag.obs.shape[0]
    X = dag.true_log_probs.shape[0]
    p = jnp.where(dag.forward_mask, jnp.exp(log_probs), 0.0)
    p_move = jnp.where(dag.child_terminal, 0.0, p).ravel()
    p_term = jnp.where(dag.child_terminal, p, 0.0)
    child = dag.child.ravel()
    e0 = jnp.zeros((S,), jnp.float32).at[dag.s0].set(1.0)

    def body(_, u):
        w = (u[:, None] * p_move.reshape(S, -1)).ravel()
        return e0 + jax.ops.segment_sum(w, child, num_segments=S)

    u = jax.lax.fori_loop(0, dag.depth, body, e0)
    return jax.ops.segment_sum((u[:, None] * p_term).ravel(), child, num_segments=X)


def policy_terminal_distribution(dag: DAG, logits: jax.Array) -> jax.Array:
    """P_T from unmasked forward logits float[S, A] over all enumerated states.

    Every enumerated non-terminal state has a valid action, so no all-masked-row guard is needed
    (the guard would be a reduction over a constant mask that XLA tries to constant-fold).
    """
    return terminal_distribution(
        dag, jax.nn.log_softmax(jnp.where(dag.forward_mask, logits, NEG_LOGIT), -1)
    )


def distribution_metrics(p_model: jax.Array, log_p_true: jax.Array) -> dict[str, jax.Array]:
    """Exact TV = ½Σ|P_T − π|, KL(π‖P_T), KL(P_T‖π), JSD, and the Tiapkin L1 = mean_x|P_T − π|."""
    p_true = jnp.exp(log_p_true)
    eps = 1e-30
    log_pm = jnp.log(jnp.maximum(p_model, eps))
    m = 0.5 * (p_model + p_true)
    log_m = jnp.log(jnp.maximum(m, eps))
    kl = jnp.sum(p_true * (log_p_true - log_pm))
    kl_rev = jnp.sum(jnp.where(p_model > 0, p_model * (log_pm - log_p_true), 0.0))
    jsd = 0.5 * jnp.sum(p_true * (log_p_true - log_m)) + 0.5 * jnp.sum(
        jnp.where(p_model > 0, p_model * (log_pm - log_m), 0.0)
    )
    diff = jnp.abs(p_model - p_true)
    return {"tv": 0.5 * diff.sum(), "kl": kl, "kl_reverse": kl_rev, "jsd": jsd}
