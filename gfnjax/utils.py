"""Small array helpers shared by environments, rollouts, losses and metrics."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import jax
import jax.numpy as jnp

# Invalid actions get this finite logit: exp() underflows to 0 but gradients stay finite.
NEG_LOGIT = -1e9


def masked_logits(logits: jax.Array, mask: jax.Array) -> jax.Array:
    """Replace invalid entries (mask False) by a large negative finite logit.

    Rows with no valid entry get all-zero logits so that a `log_softmax` over them stays finite
    (their result is discarded by the caller's validity mask).
    """
    any_valid = jnp.any(mask, axis=-1, keepdims=True)
    safe_mask = jnp.where(any_valid, mask, True)
    return jnp.where(safe_mask, logits, NEG_LOGIT)


def masked_log_softmax(logits: jax.Array, mask: jax.Array) -> jax.Array:
    """log softmax over valid entries: float[..., A]; invalid entries get ~NEG_LOGIT."""
    return jax.nn.log_softmax(masked_logits(logits, mask), axis=-1)


def uniform_log_probs(mask: jax.Array) -> jax.Array:
    """log of the uniform distribution over valid entries of `mask` (bool[..., A])."""
    return masked_log_softmax(jnp.zeros(mask.shape, jnp.float32), mask)


SAMPLE_BLOCK = 64  # block width of the two-level inverse CDF (wide action spaces)


def sample_from_log_probs(key: jax.Array, log_probs: jax.Array) -> jax.Array:
    """Sample int[...] from categorical rows float[..., A] by inverse CDF.

    One uniform u per row; the action is the first index whose cumulative probability reaches
    u·total. Cheaper than Gumbel-max (`jax.random.categorical`) for wide action spaces (one
    random number per row instead of A). For A > 2·SAMPLE_BLOCK the search is two-level: block
    sums, the block where the CDF crosses u·total, then a cumulative sum inside that block only
    (a full-width cumulative sum was 9% of a bitseq TB update's thread time:
    benchmarks/throughput.md).
    Zero-probability entries are never returned: the CDF does not increase across them,
    u ∈ (0, 1], and a rounding overshoot inside a block falls back to its last positive entry.
    """
    A = log_probs.shape[-1]
    probs = jnp.exp(log_probs - jnp.max(log_probs, axis=-1, keepdims=True))
    u = 1.0 - jax.random.uniform(key, log_probs.shape[:-1])  # (0, 1]
    if A <= 2 * SAMPLE_BLOCK:
        cdf = jnp.cumsum(probs, axis=-1)
        idx = jnp.sum(cdf < (u * cdf[..., -1])[..., None], axis=-1)
        return jnp.minimum(idx, A - 1).astype(jnp.int32)
    W = SAMPLE_BLOCK
    G = -(-A // W)
    pad = [(0, 0)] * (probs.ndim - 1) + [(0, G * W - A)]
    blocks = jnp.pad(probs, pad).reshape(probs.shape[:-1] + (G, W))
    block_cdf = jnp.cumsum(blocks.sum(-1), axis=-1)  # [..., G]
    target = u * block_cdf[..., -1]
    g = jnp.minimum(jnp.sum(block_cdf < target[..., None], axis=-1), G - 1)
    inside = jnp.take_along_axis(blocks, g[..., None, None], axis=-2)[..., 0, :]  # [..., W]
    before = jnp.take_along_axis(block_cdf, jnp.maximum(g - 1, 0)[..., None], -1)[..., 0]
    before = jnp.where(g > 0, before, 0.0)
    j = jnp.sum(before[..., None] + jnp.cumsum(inside, -1) < target[..., None], axis=-1)
    last_positive = W - 1 - jnp.argmax(jnp.flip(inside > 0, -1), axis=-1)
    return (g * W + jnp.minimum(j, last_positive)).astype(jnp.int32)


def sample_many(key: jax.Array, cdf: jax.Array, n: int) -> jax.Array:
    """n i.i.d. samples int32[n] from one categorical given by its (unnormalised) CDF
    float[X]: binary searches, O(n log X), instead of O(n·X) random numbers for Gumbel-max.
    Compute the CDF once outside jit when the distribution is fixed (XLA would constant-fold it
    at every compile)."""
    u = (1.0 - jax.random.uniform(key, (n,))) * cdf[-1]
    idx = jnp.searchsorted(cdf, u, side="left")
    return jnp.minimum(idx, cdf.shape[0] - 1).astype(jnp.int32)


def gather_last(x: jax.Array, idx: jax.Array) -> jax.Array:
    """x[..., idx] per leading index: float[..., A], int[...] -> float[...]."""
    return jnp.take_along_axis(x, idx[..., None].astype(jnp.int32), axis=-1)[..., 0]


def logmeanexp(x: jax.Array, axis: int = -1) -> jax.Array:
    return jax.nn.logsumexp(x, axis=axis) - jnp.log(x.shape[axis])


def tree_where(cond: jax.Array, a: Any, b: Any) -> Any:
    """Per-row select between two pytrees with a leading batch axis; cond is bool[B]."""

    def sel(x, y):
        c = cond.reshape(cond.shape + (1,) * (x.ndim - cond.ndim))
        return jnp.where(c, x, y)

    return jax.tree.map(sel, a, b)


def check_range(
    obj: Any,
    name: str,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    integer: bool = False,
) -> None:
    """Raise ValueError naming `name` if getattr(obj, name) lies outside the allowed range."""
    value = getattr(obj, name)
    owner = type(obj).__name__
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    allowed = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{owner}.{name} must be an integer in {allowed}, got {value!r}")
    if not integer and not isinstance(value, (int, float)):
        raise ValueError(f"{owner}.{name} must be a number in {allowed}, got {value!r}")
    bad = (
        (lo is not None and (value <= lo if lo_open else value < lo))
        or (hi is not None and (value >= hi if hi_open else value > hi))
        or value != value
    )
    if bad:
        raise ValueError(f"{owner}.{name} must be in {allowed}, got {value!r}")


def check_choice(obj: Any, name: str, choices: tuple) -> None:
    value = getattr(obj, name)
    if value not in choices:
        raise ValueError(
            f"{type(obj).__name__}.{name} must be one of {list(choices)}, got {value!r}"
        )


def replace_checked(obj: Any, **overrides: Any) -> Any:
    """dataclasses.replace that names unknown fields and the valid ones."""
    names = [f.name for f in dataclasses.fields(obj)]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise ValueError(
            f"unknown {type(obj).__name__} field(s) {unknown}; valid fields: {sorted(names)}"
        )
    return dataclasses.replace(obj, **overrides)


def linear_schedule(start, end, step, num_steps: int | jax.Array) -> jax.Array:
    """start + (end − start)·min(1, step/num_steps) (ε decay, β annealing); num_steps ≤ 0 keeps
    the value constant at `start`."""
    n = jnp.asarray(num_steps, jnp.float32)
    t = jnp.asarray(step, jnp.float32)
    frac = jnp.where(n > 0, jnp.minimum(1.0, t / jnp.maximum(n, 1.0)), 0.0)
    start = jnp.asarray(start, jnp.float32)
    return start + (jnp.asarray(end, jnp.float32) - start) * frac


class Registry:
    """Name -> "module:Class" table whose classes are imported on first use (lazy registries of
    environments and algorithms: importing the registry loads none of them)."""

    def __init__(self, kind: str, entries: dict[str, str]):
        self.kind = kind
        self.entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def register(self, name: str, entry: Any) -> None:
        """Register a class (or its "module:Class" path) under `name`."""
        if not isinstance(entry, str):
            entry = f"{entry.__module__}:{entry.__qualname__}"
        self.entries[name] = entry

    def get(self, name: str) -> Any:
        if name not in self.entries:
            raise ValueError(f"unknown {self.kind} {name!r}; valid names: {self.names()}")
        module, cls = self.entries[name].split(":")
        return getattr(importlib.import_module(module), cls)
