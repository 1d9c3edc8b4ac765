"""Hypergrid (Bengio et al. 2021; docs/methods.md §4).

States are points of {0..side−1}^dim starting at the origin. Forward actions: `i < dim` adds 1 to
coordinate i (valid while it stays below `side`), `dim` is stop, which makes the current point
the terminal object x. Backward actions: `i < dim` subtracts 1 from coordinate i (valid while
≥ 0), `dim` undoes the stop (the only parent of a terminal state, so P_B(stop) = 1).

Reward, with a_i = |x_i/(side−1) − 0.5|:
    R(x) = R0 + R1·Π_i 1[0.25 < a_i] + R2·Π_i 1[0.3 < a_i < 0.4].
Presets: standard (R0, R1, R2) = (1e−3, 0.5, 2.0); hard = (1e−4, 1.0, 3.0) (docs/methods.md §4).
Observation: one-hot encoding of each coordinate, float[dim·side].
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gfnjax.envs.base import Env
from gfnjax.utils import check_range

REWARD_PRESETS = {
    "standard": (1e-3, 0.5, 2.0),
    "hard": (1e-4, 1.0, 3.0),
}


@struct.dataclass
class HypergridState:
    coords: jax.Array  # int32[B, dim]
    done: jax.Array  # bool[B]


@dataclasses.dataclass(frozen=True)
class Hypergrid(Env):
    """Hypergrid environment.

    Attributes:
      dim: number of coordinates d (≥ 1).
      side: grid side H (≥ 2).
      reward: preset name, "standard" or "hard"; ignored for any of r0/r1/r2 given explicitly.
      r0, r1, r2: explicit reward constants (None = take them from the preset).
    Defaults: the 20^4 standard benchmark of Ent-PPO and Tiapkin et al. is dim=4, side=20.
    """

    dim: int = 4
    side: int = 20
    reward: str = "standard"
    r0: float | None = None
    r1: float | None = None
    r2: float | None = None

    name: ClassVar[str] = "hypergrid"
    bench_defaults: ClassVar[dict[str, int]] = {"iterations": 2000, "eval_every": 250}

    def __post_init__(self):
        check_range(self, "dim", 1, None, integer=True)
        check_range(self, "side", 2, None, integer=True)
        if self.reward not in REWARD_PRESETS:
            raise ValueError(
                f"Hypergrid.reward must be one of {sorted(REWARD_PRESETS)}, got {self.reward!r}"
            )
        for f in ("r0", "r1", "r2"):
            if getattr(self, f) is not None:
                check_range(self, f, 0.0, None)
        r0, r1, r2 = self.reward_constants
        if r0 <= 0:
            raise ValueError("Hypergrid.r0 must be > 0 so that every reward is positive")
        # rewards are float32 inside the jitted loop: r0 below the smallest normal float32
        # (1.2e-38) becomes 0 there (log R = −inf, every metric NaN) and r0 + r1 + r2 must be finite
        tiny, big = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
        if r0 < tiny:
            raise ValueError(
                f"Hypergrid.r0 must be ≥ {tiny:.3g} (the smallest normal float32; smaller values "
                f"are 0 in float32, so log R = −inf), got {r0!r}"
            )
        if not r0 + r1 + r2 < big:
            raise ValueError(
                f"Hypergrid rewards must stay finite in float32: r0 + r1 + r2 must be < {big:.3g}, "
                f"got {r0 + r1 + r2!r}"
            )

    @property
    def reward_constants(self) -> tuple[float, float, float]:
        p = REWARD_PRESETS[self.reward]
        return tuple(
            p[i] if v is None else float(v) for i, v in enumerate((self.r0, self.r1, self.r2))
        )

    # sizes
    @property
    def num_actions(self) -> int:
        return self.dim + 1

    @property
    def num_backward_actions(self) -> int:
        return self.dim + 1

    @property
    def obs_dim(self) -> int:
        return self.dim * self.side

    @property
    def max_steps(self) -> int:
        return self.dim * (self.side - 1) + 1

    @property
    def stop_action(self) -> int:
        return self.dim

    # dynamics
    def reset(self, batch_size: int) -> HypergridState:
        return HypergridState(
            coords=jnp.zeros((batch_size, self.dim), jnp.int32),
            done=jnp.zeros((batch_size,), bool),
        )

    def _step(self, state, action):
        stop = action == self.dim
        inc = jax.nn.one_hot(action, self.dim, dtype=jnp.int32)  # all-zero for stop
        return HypergridState(coords=state.coords + inc, done=state.done | stop)

    def _backward_step(self, state, backward_action):
        unstop = backward_action == self.dim
        dec = jax.nn.one_hot(backward_action, self.dim, dtype=jnp.int32)
        return HypergridState(
            coords=jnp.where(unstop[:, None], state.coords, state.coords - dec),
            done=state.done & ~unstop,
        )

    def _forward_mask(self, state):
        move = state.coords < self.side - 1
        return jnp.concatenate([move, jnp.ones_like(move[:, :1])], axis=-1)

    def _backward_mask(self, state):
        done = state.done[:, None]
        move = (state.coords > 0) & ~done
        return jnp.concatenate([move, done], axis=-1)

    def is_terminal(self, state):
        return state.done

    def is_initial(self, state):
        return jnp.all(state.coords == 0, axis=-1) & ~state.done

    def to_backward_action(self, state, action):
        return action.astype(jnp.int32)

    def to_forward_action(self, state, backward_action):
        return backward_action.astype(jnp.int32)

    def observe(self, state):
        return jax.nn.one_hot(state.coords, self.side, dtype=jnp.float32).reshape(
            state.coords.shape[0], self.obs_dim
        )

    def log_reward(self, state):
        r0, r1, r2 = self.reward_constants
        a = jnp.abs(state.coords.astype(jnp.float32) / (self.side - 1) - 0.5)
        band1 = jnp.all(a > 0.25, axis=-1)
        band2 = jnp.all((a > 0.3) & (a < 0.4), axis=-1)
        return jnp.log(r0 + r1 * band1 + r2 * band2).astype(jnp.float32)

    # enumeration
    @property
    def enumerable(self) -> bool:
        return True

    @property
    def num_states(self) -> int:
        return self.side**self.dim

    @property
    def num_terminals(self) -> int:
        return self.side**self.dim

    def _all_coords(self) -> jax.Array:
        grid = np.indices((self.side,) * self.dim).reshape(self.dim, -1).T
        return jnp.asarray(grid, jnp.int32)

    def enumerate_states(self):
        coords = self._all_coords()
        return HypergridState(coords=coords, done=jnp.zeros(coords.shape[0], bool))

    def enumerate_terminals(self):
        coords = self._all_coords()
        return HypergridState(coords=coords, done=jnp.ones(coords.shape[0], bool))

    def state_index(self, state):
        weights = jnp.asarray([self.side ** (self.dim - 1 - i) for i in range(self.dim)], jnp.int32)
        return jnp.sum(state.coords * weights, axis=-1).astype(jnp.int32)

    terminal_index = state_index

    # modes: the terminals of the highest reward band (R = R0 + R1 + R2)
    def _mode_indices(self) -> np.ndarray:
        r0, r1, r2 = self.reward_constants
        coords = np.indices((self.side,) * self.dim).reshape(self.dim, -1).T.astype(np.float32)
        a = np.abs(coords / np.float32(self.side - 1) - np.float32(0.5))  # float32, as log_reward
        band1 = np.all(a > 0.25, -1)
        top = band1 & np.all((a > 0.3) & (a < 0.4), -1) if r2 > 0 else band1
        return np.nonzero(top)[0].astype(np.int32)

    @property
    def num_modes(self) -> int:
        return int(self._mode_indices().shape[0])

    def mode_match(self, state):
        """bool[B, M]: the terminal is mode m (a cell of the highest reward band)."""
        return self.terminal_index(state)[:, None] == jnp.asarray(self._mode_indices())[None, :]
