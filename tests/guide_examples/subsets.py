"""Subsets of {0, …, n−1}, built one element at a time (docs/adding_an_environment.md).

A state is a subset, stored as a membership vector, plus a `done` flag. Forward actions: i < n
adds element i (valid while i is absent); n stops, which makes the current subset the terminal
object x. Backward actions: i < n removes element i (valid while present, before the stop); n
undoes the stop (the only parent of a terminal state). A subset of k elements is reached by k!
orders, so the state graph is a DAG, not a tree.

Reward: log R(x) = Σ_{i ∈ x} w_i. It factorises, so Z = Π_i (1 + e^{w_i}) and under π = R/Z
each element is in x independently with probability sigmoid(w_i).
Observation: float[n + 1], the membership vector and the done flag.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gfnjax.envs.base import Env


@struct.dataclass
class SubsetState:
    member: jax.Array  # bool[B, n]
    done: jax.Array  # bool[B]


@dataclasses.dataclass(frozen=True)
class Subsets(Env):
    """weights: the per-element log-rewards w_i (1 to 16 of them, so 2^n states enumerate)."""

    weights: tuple[float, ...] = (1.0, -0.5, 2.0, 0.0)

    name: ClassVar[str] = "subsets"
    bench_defaults: ClassVar[dict[str, int]] = {"iterations": 500, "eval_every": 100}

    def __post_init__(self):
        w = self.weights
        if not (isinstance(w, tuple) and 1 <= len(w) <= 16 and np.all(np.isfinite(w))):
            raise ValueError(f"Subsets.weights must be a tuple of 1 to 16 finite floats, got {w!r}")

    @property
    def n(self) -> int:
        return len(self.weights)

    # sizes
    @property
    def num_actions(self) -> int:
        return self.n + 1

    @property
    def num_backward_actions(self) -> int:
        return self.n + 1

    @property
    def obs_dim(self) -> int:
        return self.n + 1

    @property
    def max_steps(self) -> int:
        return self.n + 1  # every element, then stop

    @property
    def stop_action(self) -> int:
        return self.n

    # dynamics (the base class adds the terminal / initial guards)
    def reset(self, batch_size: int) -> SubsetState:
        return SubsetState(
            member=jnp.zeros((batch_size, self.n), bool), done=jnp.zeros((batch_size,), bool)
        )

    def _step(self, state, action):
        add = jax.nn.one_hot(action, self.n, dtype=jnp.int32) > 0  # all False for stop
        return SubsetState(member=state.member | add, done=state.done | (action == self.n))

    def _backward_step(self, state, backward_action):
        remove = jax.nn.one_hot(backward_action, self.n, dtype=jnp.int32) > 0
        unstop = backward_action == self.n
        return SubsetState(member=state.member & ~remove, done=state.done & ~unstop)

    def _forward_mask(self, state):
        return jnp.concatenate([~state.member, jnp.ones_like(state.member[:, :1])], axis=-1)

    def _backward_mask(self, state):
        done = state.done[:, None]
        return jnp.concatenate([state.member & ~done, done], axis=-1)

    def is_terminal(self, state):
        return state.done

    def is_initial(self, state):
        return ~jnp.any(state.member, axis=-1) & ~state.done

    def to_backward_action(self, state, action):
        return action.astype(jnp.int32)  # remove the element just added / undo the stop

    def to_forward_action(self, state, backward_action):
        return backward_action.astype(jnp.int32)

    def observe(self, state):
        return jnp.concatenate([state.member, state.done[:, None]], axis=-1).astype(jnp.float32)

    def log_reward(self, state):
        w = jnp.asarray(self.weights, jnp.float32)
        return jnp.sum(jnp.where(state.member, w, 0.0), axis=-1)

    # enumeration: subset ↔ the integer Σ_{i ∈ x} 2^i, for non-terminal and terminal states alike
    @property
    def enumerable(self) -> bool:
        return True

    @property
    def num_states(self) -> int:
        return 2**self.n

    @property
    def num_terminals(self) -> int:
        return 2**self.n

    def _all_members(self) -> jax.Array:
        bits = (np.arange(2**self.n)[:, None] >> np.arange(self.n)[None, :]) & 1
        return jnp.asarray(bits, bool)

    def enumerate_states(self):
        member = self._all_members()
        return SubsetState(member=member, done=jnp.zeros(member.shape[0], bool))

    def enumerate_terminals(self):
        member = self._all_members()
        return SubsetState(member=member, done=jnp.ones(member.shape[0], bool))

    def state_index(self, state):
        return jnp.sum(state.member * (2 ** jnp.arange(self.n)), axis=-1).astype(jnp.int32)

    terminal_index = state_index

    # metric capability: one known mode, the subset of highest reward {i : w_i > 0}
    @property
    def num_modes(self) -> int:
        return 1

    def mode_match(self, state):
        best = jnp.asarray(self.weights) > 0
        return (jnp.all(state.member == best, axis=-1) & state.done)[:, None]
