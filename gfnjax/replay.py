"""A replay buffer as a pure pytree: fixed-capacity ring buffer with uniform or prioritised
sampling.

    buffer = init(example_item, capacity)                      # items: pytree, leaves [C, ...]
    buffer = add(buffer, items, mask, priorities)              # items leaves [N, ...], mask bool[N]
    sample = sample_prioritised(buffer, key, n, alpha, beta)   # or sample_uniform(buffer, key, n)
    buffer = update_priorities(buffer, sample.indices, new_priorities)

Every function is pure, jit-able and vmap-able (a seed axis of buffers is just a leading axis of
every leaf); capacity and batch sizes are static, α and β may be traced (sweepable) scalars.

Prioritised experience replay (Schaul et al. 2016), proportional variant: slot i holds a raw
priority p_i > 0 (typically |TD error| or the Huber loss, plus `eps`); draws are i.i.d. with

    P(i) = p_i^α / Σ_{j < size} p_j^α,
    importance weight  w_i = (size·P(i))^−β / max_j (size·P(j))^−β
                           = (P(i) / min_j P(j))^−β ∈ (0, 1].

The exponent α is applied at sampling time (raw priorities are stored), so α can be changed or
vmapped without touching the buffer. Sampling inverts the cumulative sum of p^α: O(C) per call,
which for C = 1e5 costs less than one network pass and keeps the code a few array ops (a sum tree
would make it O(n log C) but needs a sequential scatter per update in JAX). Float32 cumulative sums
carry a relative error ~1e−7·C on the CDF, negligible at these capacities.

Adding N items with a validity mask writes only the valid ones, in order, at consecutive ring
positions (the oldest items are overwritten first); when more than C valid items arrive at once,
only the last C are kept.

Why not flashbax: flashbax 0.1.3 installs and runs with jax 0.10.2 (checked with
`pip install --no-deps --target ... flashbax tensorstore`; its prioritised item buffer inits, adds
and samples under vmap). It is not used because (1) its `add` stores every row of a fixed-size
batch, while a gfnjax trajectory batch has B·T padded transition slots of which only `mask` are
real (about half on hypergrid 20^4): padding would take capacity and need a zero-priority hack, and
its uniform buffers cannot exclude it at all; (2) it would add tensorstore (~60 MB, used for its
on-disk vault) to the install for what is here ~100 lines of array code; (3) its prioritised batches
are stratified over the sum tree, while the frequencies tested here are plain i.i.d. draws.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

PRIORITY_EPS = 1e-6  # added to every priority so that no stored item becomes unsampleable


class ReplayBuffer(struct.PyTreeNode):
    """items: pytree with leaves [C, ...]; priorities: float32[C] raw p_i (0 in empty slots);
    position: int32[] next slot to write; size: int32[] filled slots (≤ C);
    max_priority: float32[] largest priority seen (the default priority of new items)."""

    items: Any
    priorities: jax.Array
    position: jax.Array
    size: jax.Array
    max_priority: jax.Array

    @property
    def capacity(self) -> int:
        return self.priorities.shape[-1]


class Sample(struct.PyTreeNode):
    """indices: int32[n] buffer slots; items: pytree [n, ...]; probs: float32[n] P(i);
    weights: float32[n] importance weights (1 for uniform sampling)."""

    indices: jax.Array
    items: Any
    probs: jax.Array
    weights: jax.Array


def init(example_item: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer of `capacity` slots shaped like `example_item` (one item, no batch axis)."""
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise ValueError(f"replay buffer capacity must be an integer ≥ 1, got {capacity!r}")
    items = jax.tree.map(
        lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example_item
    )
    return ReplayBuffer(
        items=items,
        priorities=jnp.zeros((capacity,), jnp.float32),
        position=jnp.zeros((), jnp.int32),
        size=jnp.zeros((), jnp.int32),
        max_priority=jnp.ones((), jnp.float32),
    )


def add(
    buffer: ReplayBuffer,
    items: Any,
    mask: jax.Array | None = None,
    priorities: jax.Array | None = None,
) -> ReplayBuffer:
    """Write the valid rows of `items` (leaves [N, ...], mask bool[N]) at consecutive ring slots.

    priorities: float32[N] raw priorities of the new items, or None for the running maximum
    (Schaul et al.'s default, so new items are sampled at least once soon).
    """
    C = buffer.capacity
    n = jax.tree.leaves(items)[0].shape[0]
    mask = jnp.ones((n,), bool) if mask is None else mask.astype(bool)
    rank = jnp.cumsum(mask) - 1  # 0-based rank among the valid rows
    n_valid = mask.sum().astype(jnp.int32)
    # keep only the last C valid rows, so that no two rows are written to the same slot
    keep = mask & (rank >= n_valid - C)
    slot = jnp.where(keep, (buffer.position + rank) % C, C)  # C = out of bounds: dropped
    write = lambda buf, new: buf.at[slot].set(new.astype(buf.dtype), mode="drop")
    new_items = jax.tree.map(write, buffer.items, items)
    if priorities is None:
        prio = jnp.full((n,), buffer.max_priority, jnp.float32)
    else:
        prio = jnp.asarray(priorities, jnp.float32) + PRIORITY_EPS
    max_prio = jnp.maximum(buffer.max_priority, jnp.max(jnp.where(keep, prio, 0.0)))
    return ReplayBuffer(
        items=new_items,
        priorities=buffer.priorities.at[slot].set(prio, mode="drop"),
        position=(buffer.position + n_valid) % C,
        size=jnp.minimum(buffer.size + n_valid, C),
        max_priority=max_prio,
    )


def update_priorities(
    buffer: ReplayBuffer, indices: jax.Array, priorities: jax.Array
) -> ReplayBuffer:
    """Set raw priorities (float32[n], plus eps) of slots `indices` (int32[n]). Indices outside
    [0, C) are ignored (a masked update); with repeated indices one of the given values is kept."""
    prio = jnp.asarray(priorities, jnp.float32) + PRIORITY_EPS
    in_range = (indices >= 0) & (indices < buffer.capacity)
    return buffer.replace(
        priorities=buffer.priorities.at[indices].set(prio, mode="drop"),
        max_priority=jnp.maximum(buffer.max_priority, jnp.max(jnp.where(in_range, prio, 0.0))),
    )


def take(buffer: ReplayBuffer, indices: jax.Array) -> Any:
    """Items at slots `indices` (int32[n]) -> pytree [n, ...]."""
    return jax.tree.map(lambda x: x[indices], buffer.items)


def priority_weights(buffer: ReplayBuffer, alpha: float | jax.Array) -> jax.Array:
    """Unnormalised sampling weights p_i^α of the filled slots, float32[C] (0 for empty slots)."""
    filled = jnp.arange(buffer.capacity) < buffer.size
    return jnp.where(filled, jnp.power(jnp.maximum(buffer.priorities, PRIORITY_EPS), alpha), 0.0)


def sampling_probs(buffer: ReplayBuffer, alpha: float | jax.Array) -> jax.Array:
    """P(i) = p_i^α / Σ_{j<size} p_j^α over all slots, float32[C] (0 for empty slots)."""
    w = priority_weights(buffer, alpha)
    return w / jnp.maximum(w.sum(), 1e-30)


def importance_weights(probs: jax.Array, min_prob: jax.Array, beta: float | jax.Array) -> jax.Array:
    """w = (P(i)/min_j P(j))^−β = (size·P(i))^−β / max_j (size·P(j))^−β; float[n] in (0, 1]."""
    return jnp.power(jnp.maximum(probs, 1e-30) / jnp.maximum(min_prob, 1e-30), -beta)


def sample_uniform(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Sample:
    """`batch_size` i.i.d. draws, uniform over the filled slots (the buffer must not be empty)."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    probs = jnp.full((batch_size,), 1.0, jnp.float32) / jnp.maximum(buffer.size, 1)
    return Sample(idx, take(buffer, idx), probs, jnp.ones((batch_size,), jnp.float32))


def sample_prioritised(
    buffer: ReplayBuffer,
    key: jax.Array,
    batch_size: int,
    alpha: float | jax.Array,
    beta: float | jax.Array,
) -> Sample:
    """`batch_size` i.i.d. draws with P(i) ∝ p_i^α over the filled slots, with importance weights
    (P(i)/min_j P(j))^−β (see the module docstring). The buffer must not be empty."""
    w = priority_weights(buffer, alpha)
    filled = jnp.arange(buffer.capacity) < buffer.size
    cdf = jnp.cumsum(w)
    total = cdf[-1]
    u = jax.random.uniform(key, (batch_size,)) * total
    idx = jnp.searchsorted(cdf, u, side="right")
    idx = jnp.clip(idx, 0, jnp.maximum(buffer.size - 1, 0)).astype(jnp.int32)
    probs = w[idx] / jnp.maximum(total, 1e-30)
    min_prob = jnp.min(jnp.where(filled, w, jnp.inf)) / jnp.maximum(total, 1e-30)
    weights = importance_weights(probs, min_prob, beta)
    return Sample(idx, take(buffer, idx), probs, weights)


def sample(
    buffer: ReplayBuffer,
    key: jax.Array,
    batch_size: int,
    prioritised: bool,
    alpha: float | jax.Array = 1.0,
    beta: float | jax.Array = 0.0,
) -> Sample:
    """Dispatch on the static `prioritised` flag."""
    if prioritised:
        return sample_prioritised(buffer, key, batch_size, alpha, beta)
    return sample_uniform(buffer, key, batch_size)
