"""Rank statistics in jnp (one implementation for every environment's correlation metrics)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def rankdata(x: jax.Array) -> jax.Array:
    """float32[N] ranks of x (0-based), ties get their average rank (scipy.stats.rankdata − 1)."""
    s = jnp.sort(x)
    lo = jnp.searchsorted(s, x, side="left")
    hi = jnp.searchsorted(s, x, side="right")
    return 0.5 * (lo + hi - 1).astype(jnp.float32)


def pearson(x: jax.Array, y: jax.Array) -> jax.Array:
    """Pearson correlation of float[N] vectors; 0 when either is constant."""
    x = x - x.mean()
    y = y - y.mean()
    den = jnp.sqrt(jnp.sum(x * x) * jnp.sum(y * y))
    return jnp.where(den > 0, jnp.sum(x * y) / jnp.where(den > 0, den, 1.0), 0.0)


def spearman(x: jax.Array, y: jax.Array) -> jax.Array:
    """Spearman rank correlation: Pearson of average ranks (ties handled as scipy does)."""
    return pearson(rankdata(x), rankdata(y))
