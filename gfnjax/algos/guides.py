"""Guides of RL-G (Niu et al. 2024): `guide(env, states, logits) -> guided logits`, float[N, A].

RL-G pulls P_B towards the guided forward policy P_G = softmax(guided logits) over valid actions.
The guide is an algorithm's detail, so it lives here, keyed by environment name, not on the
environments. Only the hypergrid guide is the authors'; Niu et al. publish no guide for bit
sequences ("not supported" in their code), QM9-string, molecular graphs or fragment molecules, so
the guides of those environments are gfnjax's own, written in the same spirit (steer terminations
towards rewarding objects) and labelled as such in docs/presets.md.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from gfnjax.envs.base import Env

LOG_CAP = math.log(1e-5)  # the authors' cap on the guided stop logit

Guide = Callable[[Env, Any, jax.Array], jax.Array]


def hypergrid_guide(env, states, logits):
    """Niu et al.'s hypergrid guide: the raw stop logit is capped at log 1e−5 at states whose
    reward (if stopped there) is the floor R0, i.e. outside every reward band."""
    stop_state = states.replace(done=jnp.ones_like(states.done))
    low = env.log_reward(stop_state) <= math.log(env.reward_constants[0]) + 1e-6
    stop = logits[:, env.stop_action]
    capped = jnp.where(low, jnp.minimum(stop, LOG_CAP), stop)
    return logits.at[:, env.stop_action].set(capped)


def bitseq_guide(env, states, logits):
    """gfnjax's own bit-sequence guide: writing a word that no mode has at that slot is capped at
    log 1e−5, so guided trajectories stay close to the mode set."""
    L, V = env.seq_length, env.vocab_size
    allowed = np.zeros((L, V), bool)
    allowed[np.arange(L)[None, :], env.mode_words()] = True
    if env.moves == "any_position":  # action = slot·V + word
        ok = jnp.broadcast_to(jnp.asarray(allowed).reshape(1, L * V), logits.shape)
    else:  # append: the slot is the current length
        ok = jnp.asarray(allowed)[jnp.clip(states.length, 0, L - 1)]
    return jnp.where(ok, logits, jnp.minimum(logits, LOG_CAP))


def qm9str_guide(env, states, logits):
    """gfnjax's own QM9-string guide: one step before completion, an action whose completed string
    has log R below the 90% quantile of log R is capped at log 1e−5."""
    n = states.length.shape[0]
    low = float(np.quantile(env._log_reward_table(), 0.9))

    def child_log_r(a):
        return env.log_reward(env._step(states, jnp.full((n,), a, jnp.int32)))

    log_r = jax.vmap(child_log_r, out_axes=1)(jnp.arange(env.num_actions))  # [N, A]
    last = (states.length == env.seq_length - 1)[:, None]
    return jnp.where(last & (log_r < low), jnp.minimum(logits, LOG_CAP), logits)


def molgraph_guide(env, states, logits):
    """gfnjax's own molecular-graph guide (no RDKit call): stop is capped at log 1e−5 while the
    molecule has fewer than ⌈N/2⌉ heavy atoms (drug-likeness scores of such small molecules are
    low)."""
    small = env.num_atoms(states) < math.ceil(env.max_atoms / 2)
    stop = logits[:, env.stop_action]
    return logits.at[:, env.stop_action].set(jnp.where(small, jnp.minimum(stop, LOG_CAP), stop))


def fragments_guide(env, states, logits):
    """gfnjax's own fragment guide (no RDKit call): stop is capped at log 1e−5 while the molecule
    has fewer than ⌈M/2⌉ blocks and a free attachment point (small molecules score low)."""
    n = env.num_blocks(states)
    can_grow = jnp.any(env.free_stems(states), axis=(1, 2)) & (n < env.max_blocks)
    small = (n < math.ceil(env.max_blocks / 2)) & can_grow
    stop = logits[:, env.stop_action]
    return logits.at[:, env.stop_action].set(jnp.where(small, jnp.minimum(stop, LOG_CAP), stop))


GUIDES: dict[str, Guide] = {
    "hypergrid": hypergrid_guide,
    "bitseq": bitseq_guide,
    "bitseq_ar": bitseq_guide,
    "qm9str": qm9str_guide,
    "molgraph": molgraph_guide,
    "fragments": fragments_guide,
}


def get(env: Env) -> Guide:
    """The RL-G guide of `env`; ValueError naming the environments that have one."""
    if env.name not in GUIDES:
        raise ValueError(
            f"rl_g needs a guide for environment {env.name!r}; guides exist for {sorted(GUIDES)} "
            "(gfnjax.algos.guides); use rl_b or rl_u instead"
        )
    return GUIDES[env.name]
