"""Fixed-length sequences over an alphabet, built token by token (docs/methods.md §4).

A state holds `tokens` int32[B, L] (−1 = empty position) and `length` int32[B] (filled
positions); the object is complete — terminal, with no stop action — when all L positions are
filled. Three ways of building it (`moves`), shared by every sequence environment:

  "append"          autoregressive: the next token goes at position `length`. The state graph is
                    a tree, so P_B = 1 (log P_B = 0). Forward actions: V tokens; backward: 1.
  "prepend_append"  a token is put in front of or after the current string (Ent-PPO's
                    QM9-string); forward actions: a < V prepends token a, a ≥ V appends a − V;
                    backward: 0 removes the first, 1 the last token (uniform P_B over the two).
                    Tokens are kept left-aligned.
  "any_position"    a token is written into any empty position (Tiapkin et al.'s
                    non-autoregressive bit sequences, Niu et al.'s QM9-string); forward action
                    a = position·V + token; backward action = the position to clear (uniform
                    P_B over filled positions).

Observation: per-position features float[L, F] flattened to float[L·F]; `token_shape = (L, F)`
lets the transformer torso reshape it. The default features are [filled, one-hot(token)]
(F = V + 1); bit sequences override them with [filled, ±bits] (F = k + 1), which keeps the
network input small for 256-word alphabets.

Subclasses set `seq_length` (L), `vocab_size` (V), `moves` and `log_reward_tokens(tokens)`.
`AutoregressiveSequence` is the generic append-only environment with a pluggable reward.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gfnjax.envs.base import Env
from gfnjax.utils import check_range

MOVES = ("append", "prepend_append", "any_position")
# Enumeration is offered up to this many configurations (states + terminals).
MAX_ENUMERABLE = 2_000_000


@struct.dataclass
class SequenceState:
    tokens: jax.Array  # int32[B, L]; −1 = empty
    length: jax.Array  # int32[B]; number of filled positions


def _positions(L: int) -> jax.Array:
    return jnp.arange(L, dtype=jnp.int32)[None, :]


def _set_at(tokens: jax.Array, pos: jax.Array, value: jax.Array) -> jax.Array:
    """tokens[b, pos[b]] = value[b] for every row (a select: cheap under vmap and on CPU)."""
    return jnp.where(_positions(tokens.shape[1]) == pos[:, None], value[:, None], tokens)


def _get_at(tokens: jax.Array, pos: jax.Array) -> jax.Array:
    return jnp.take_along_axis(tokens, jnp.clip(pos, 0, tokens.shape[1] - 1)[:, None], axis=1)[:, 0]


def _base_digits(codes: np.ndarray, base: int, width: int) -> np.ndarray:
    """int[N] -> int[N, width], most significant digit first."""
    powers = base ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (codes[:, None] // powers[None, :]) % base


@functools.lru_cache(maxsize=8)
def _any_position_tables(L: int, V: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense indices of the non-terminal 'any_position' configurations.

    A configuration is coded in base V+1 (empty = 0, token t = t+1, first position most
    significant). Returns (codes int64[S] of the non-terminal configurations, index int32[(V+1)^L]
    mapping a code to its dense index, −1 for complete sequences).
    """
    all_codes = np.arange((V + 1) ** L, dtype=np.int64)
    digits = _base_digits(all_codes, V + 1, L)
    nonterminal = np.any(digits == 0, axis=1)
    index = np.full(all_codes.shape, -1, np.int32)
    index[nonterminal] = np.arange(int(nonterminal.sum()), dtype=np.int32)
    return all_codes[nonterminal], index


class SequenceEnv(Env):
    """Base of the sequence environments; see the module docstring."""

    name: ClassVar[str] = "sequence_base"
    default_torso: ClassVar[str] = "transformer"

    # subclasses provide: seq_length, vocab_size, moves, log_reward_tokens

    def log_reward_tokens(self, tokens: jax.Array) -> jax.Array:
        """float32[B] log R of complete sequences int32[B, L]."""
        raise NotImplementedError

    # sizes ---------------------------------------------------------------------------------
    @property
    def num_actions(self) -> int:
        L, V = self.seq_length, self.vocab_size
        return {"append": V, "prepend_append": 2 * V, "any_position": L * V}[self.moves]

    @property
    def num_backward_actions(self) -> int:
        return {"append": 1, "prepend_append": 2, "any_position": self.seq_length}[self.moves]

    @property
    def max_steps(self) -> int:
        return self.seq_length

    @property
    def token_dim(self) -> int:
        return self.vocab_size + 1

    @property
    def token_shape(self) -> tuple[int, int]:
        """(L, F): the observation is float[L·F] = per-position features (for the transformer)."""
        return (self.seq_length, self.token_dim)

    @property
    def obs_dim(self) -> int:
        return self.seq_length * self.token_dim

    @property
    def token_vocab(self) -> int:
        return self.vocab_size + 1

    def token_ids(self, obs):
        """int32[..., L] from the default features [filled, one-hot(token)]: 1 + token, 0 if
        empty."""
        feats = obs.reshape(obs.shape[:-1] + self.token_shape)
        return jnp.where(feats[..., 0] > 0, jnp.argmax(feats[..., 1:], -1) + 1, 0)

    @property
    def action_tokens(self) -> tuple[int, int] | None:
        """(L, V) for "any_position" moves (action = position·V + token); None otherwise."""
        return (self.seq_length, self.vocab_size) if self.moves == "any_position" else None

    # dynamics ------------------------------------------------------------------------------
    def reset(self, batch_size: int) -> SequenceState:
        return SequenceState(
            tokens=jnp.full((batch_size, self.seq_length), -1, jnp.int32),
            length=jnp.zeros((batch_size,), jnp.int32),
        )

    def _step(self, state, action):
        V, tokens, length = self.vocab_size, state.tokens, state.length
        action = action.astype(jnp.int32)
        if self.moves == "append":
            tokens = _set_at(tokens, length, action)
        elif self.moves == "prepend_append":
            prepend = action < V
            tok = action % V
            shifted = jnp.concatenate([tok[:, None], tokens[:, :-1]], axis=1)
            tokens = jnp.where(prepend[:, None], shifted, _set_at(tokens, length, tok))
        else:
            tokens = _set_at(tokens, action // V, action % V)
        return SequenceState(tokens=tokens, length=length + 1)

    def _backward_step(self, state, backward_action):
        tokens, length = state.tokens, state.length
        b = backward_action.astype(jnp.int32)
        empty = jnp.full_like(length, -1)
        if self.moves == "append":
            tokens = _set_at(tokens, length - 1, empty)
        elif self.moves == "prepend_append":
            shifted = jnp.concatenate([tokens[:, 1:], jnp.full_like(tokens[:, :1], -1)], axis=1)
            tokens = jnp.where((b == 0)[:, None], shifted, _set_at(tokens, length - 1, empty))
        else:
            tokens = _set_at(tokens, b, empty)
        return SequenceState(tokens=tokens, length=length - 1)

    def _forward_mask(self, state):
        B = state.length.shape[0]
        if self.moves == "any_position":
            empty = state.tokens < 0  # [B, L]
            return jnp.broadcast_to(
                empty[:, :, None], (B, self.seq_length, self.vocab_size)
            ).reshape(B, self.num_actions)
        return jnp.ones((B, self.num_actions), bool)

    def _backward_mask(self, state):
        if self.moves == "any_position":
            return state.tokens >= 0
        return jnp.ones((state.length.shape[0], self.num_backward_actions), bool)

    def is_terminal(self, state):
        return state.length >= self.seq_length

    def is_initial(self, state):
        return state.length == 0

    def to_backward_action(self, state, action):
        action = action.astype(jnp.int32)
        if self.moves == "append":
            return jnp.zeros_like(action)
        return action // self.vocab_size

    def to_forward_action(self, state, backward_action):
        V, tokens, length = self.vocab_size, state.tokens, state.length
        b = backward_action.astype(jnp.int32)
        if self.moves == "append":
            return _get_at(tokens, length - 1)
        if self.moves == "prepend_append":
            return jnp.where(b == 0, tokens[:, 0], _get_at(tokens, length - 1) + V)
        return b * V + _get_at(tokens, b)

    # observation and reward ------------------------------------------------------------------
    def token_features(self, tokens: jax.Array) -> jax.Array:
        """float32[..., L, F]: [filled, one-hot(token)] (one_hot(−1) is all zeros)."""
        filled = (tokens >= 0).astype(jnp.float32)[..., None]
        return jnp.concatenate(
            [filled, jax.nn.one_hot(tokens, self.vocab_size, dtype=jnp.float32)], -1
        )

    def observe(self, state):
        feats = self.token_features(state.tokens)
        return feats.reshape(feats.shape[:-2] + (self.obs_dim,))

    def log_reward(self, state):
        return self.log_reward_tokens(jnp.maximum(state.tokens, 0)).astype(jnp.float32)

    # enumeration ------------------------------------------------------------------------------
    @property
    def enumerable(self) -> bool:
        L, V = self.seq_length, self.vocab_size
        total = (V + 1) ** L if self.moves == "any_position" else sum(V**i for i in range(L + 1))
        return total <= MAX_ENUMERABLE

    def _check_enumerable(self):
        if not self.enumerable:
            raise NotImplementedError(
                f"{self.name} with L={self.seq_length}, V={self.vocab_size} "
                "is too large to enumerate"
            )

    @property
    def num_terminals(self) -> int:
        self._check_enumerable()
        return self.vocab_size**self.seq_length

    @property
    def num_states(self) -> int:
        self._check_enumerable()
        L, V = self.seq_length, self.vocab_size
        if self.moves == "any_position":
            return (V + 1) ** L - V**L
        return sum(V**i for i in range(L))

    def enumerate_terminals(self):
        self._check_enumerable()
        L, V = self.seq_length, self.vocab_size
        tokens = _base_digits(np.arange(V**L, dtype=np.int64), V, L).astype(np.int32)
        return SequenceState(tokens=jnp.asarray(tokens), length=jnp.full((V**L,), L, jnp.int32))

    def terminal_index(self, state):
        L, V = self.seq_length, self.vocab_size
        powers = jnp.asarray(V ** np.arange(L - 1, -1, -1), jnp.int32)
        return jnp.sum(jnp.maximum(state.tokens, 0) * powers, axis=-1).astype(jnp.int32)

    def enumerate_states(self):
        self._check_enumerable()
        L, V = self.seq_length, self.vocab_size
        if self.moves == "any_position":
            codes, _ = _any_position_tables(L, V)
            tokens = _base_digits(codes, V + 1, L).astype(np.int32) - 1
            length = np.sum(tokens >= 0, axis=1).astype(np.int32)
            return SequenceState(tokens=jnp.asarray(tokens), length=jnp.asarray(length))
        rows = []
        for ell in range(L):  # strings of length ell, left-aligned, in code order
            digits = (
                _base_digits(np.arange(V**ell, dtype=np.int64), V, ell)
                if ell
                else np.zeros((1, 0), np.int64)
            )
            pad = np.full((digits.shape[0], L - ell), -1, np.int64)
            rows.append(np.concatenate([digits, pad], axis=1))
        tokens = np.concatenate(rows).astype(np.int32)
        length = np.sum(tokens >= 0, axis=1).astype(np.int32)
        return SequenceState(tokens=jnp.asarray(tokens), length=jnp.asarray(length))

    def state_index(self, state):
        L, V = self.seq_length, self.vocab_size
        if self.moves == "any_position":
            _, index = _any_position_tables(L, V)
            powers = jnp.asarray((V + 1) ** np.arange(L - 1, -1, -1), jnp.int32)
            code = jnp.sum((state.tokens + 1) * powers, axis=-1)
            return jnp.asarray(index)[code]
        # offset of strings of length ℓ + base-V code of the first ℓ tokens
        offsets = jnp.asarray(np.cumsum([0] + [V**i for i in range(L)]), jnp.int32)
        ell = state.length[:, None]
        i = _positions(L)
        expo = jnp.maximum(ell - 1 - i, 0)
        weights = jnp.where(i < ell, V**expo, 0)
        code = jnp.sum(jnp.maximum(state.tokens, 0) * weights, axis=-1)
        return (offsets[jnp.clip(state.length, 0, L)] + code).astype(jnp.int32)

    # metric capabilities -------------------------------------------------------------------
    @property
    def top_k(self) -> int:
        return 100

    def object_key(self, state):
        return state.tokens


class SequenceReward:
    """Pluggable reward of `AutoregressiveSequence`: a hashable object (e.g. a frozen dataclass)
    with `__call__(tokens int32[B, L]) -> float32[B]` returning log R."""

    def __call__(self, tokens: jax.Array) -> jax.Array:
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class PositionalReward(SequenceReward):
    """log R(x) = β·Σ_i w_i[x_i] with fixed random weights w ~ N(0, 1) drawn from `seed` —
    a cheap, enumerable stand-in reward for the generic environment (no published table)."""

    seq_length: int = 8
    vocab_size: int = 4
    beta: float = 1.0
    seed: int = 0

    def weights(self) -> np.ndarray:
        return (
            np.random.default_rng(self.seed)
            .standard_normal((self.seq_length, self.vocab_size))
            .astype(np.float32)
        )

    def __call__(self, tokens):
        w = jnp.asarray(self.weights())
        per_pos = jnp.take_along_axis(w[None], tokens[..., None], axis=-1)[..., 0]
        return self.beta * per_pos.sum(-1)


@dataclasses.dataclass(frozen=True)
class AutoregressiveSequence(SequenceEnv):
    """Generic append-only sequence environment (a tree: log P_B = 0) with a pluggable reward.

    Attributes:
      seq_length: L (≥ 1). Default 8 with vocab_size 4: the TFBind8 shape (docs/methods.md §4).
      vocab_size: V (≥ 2).
      reward: a `SequenceReward`; None = `PositionalReward(seq_length, vocab_size)`.
    """

    seq_length: int = 8
    vocab_size: int = 4
    reward: SequenceReward | None = None
    num_test_trajectories: int = 1  # a tree: one backward trajectory gives log P_θ(x) exactly

    name: ClassVar[str] = "sequence"
    moves: ClassVar[str] = "append"
    default_torso: ClassVar[str] = "transformer"
    bench_defaults: ClassVar[dict[str, int]] = {"iterations": 2000, "eval_every": 250}

    def __post_init__(self):
        check_range(self, "seq_length", 1, None, integer=True)
        check_range(self, "vocab_size", 2, None, integer=True)
        check_range(self, "num_test_trajectories", 1, None, integer=True)

    @property
    def reward_fn(self) -> SequenceReward:
        return self.reward or PositionalReward(self.seq_length, self.vocab_size)

    def log_reward_tokens(self, tokens):
        return self.reward_fn(tokens)

    # metrics: the whole terminal set as test set when enumerable, else a random sample
    def test_set(self) -> SequenceState:
        L, V = self.seq_length, self.vocab_size
        if V**L <= 4096:
            return self.enumerate_terminals()
        tokens = np.random.default_rng(0).integers(0, V, size=(4096, L)).astype(np.int32)
        return SequenceState(tokens=jnp.asarray(tokens), length=jnp.full((4096,), L, jnp.int32))
