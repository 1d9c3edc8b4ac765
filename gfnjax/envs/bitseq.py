"""Bit sequences (Tiapkin et al. 2024; docs/methods.md §4).

A sequence x ∈ {0,1}^n is cut into n/k words of k bits; a state holds the word (0..2^k − 1) of
every slot or −1 for an empty slot.

* `bitseq` (non-autoregressive, Tiapkin et al.): an action writes a k-bit word into an empty
  slot (action = slot·2^k + word: 15 × 256 = 3840 actions for n = 120, k = 8); no stop action,
  the sequence is terminal when every slot is filled; P_B is uniform over the filled slots.
* `bitseq_ar` (autoregressive): words are appended left to right; the state graph is a tree
  (log P_B = 0), so one backward trajectory gives log P_θ(x) exactly.

Modes: `num_modes` (60) sequences, each the concatenation of n/8 blocks drawn with a fixed seed
from {00000000, 11111111, 11110000, 00001111, 00111100} (distinct sequences).
Reward, with d(x) = min_m Hamming(x, m) (docs/methods.md §4):
    reward="hamming"             log R(x) = −β·d(x),    β = 2 by default (Tiapkin et al.; default)
    reward="normalized_hamming"  log R(x) = −β·d(x)/n,  β = 3 by default (gfnx's convention)
Test set (correlation metric): every mode and, for c = 1..n−1, a copy of it with c distinct random
bits flipped — num_modes·n sequences (7200); a copy is at Hamming distance exactly c from its mode.
A sample "finds" mode m when Hamming(x, m) ≤ mode_threshold (default n // 4 = 30 for n = 120).

Observation: per slot [filled, 2·bit − 1 for its k bits (0 when empty)], float[(n/k)·(k+1)];
135 numbers for n = 120, k = 8, so the observation stays cheap next to the 3840 logits.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from gfnjax.envs.sequence import SequenceEnv, SequenceState
from gfnjax.utils import check_choice, check_range

BLOCKS = ("00000000", "11111111", "11110000", "00001111", "00111100")
BLOCK_LENGTH = 8
REWARDS = {"hamming": 2.0, "normalized_hamming": 3.0}  # convention -> default β


# --- mode set, test set and reward (numpy at setup, jnp in the loop) ----------------------------
def bits_to_words(bits: np.ndarray, k: int) -> np.ndarray:
    """int[..., n] bits -> int32[..., n/k] words, most significant bit first."""
    bits = np.asarray(bits)
    w = bits.reshape(bits.shape[:-1] + (bits.shape[-1] // k, k))
    return (w * (1 << np.arange(k - 1, -1, -1))).sum(-1).astype(np.int32)


def words_to_bits(words: jax.Array, k: int) -> jax.Array:
    """int[..., L] words (−1 = empty -> zeros) -> int32[..., L, k] bits, MSB first."""
    shifts = jnp.arange(k - 1, -1, -1, dtype=jnp.int32)
    return (jnp.maximum(words, 0)[..., None] >> shifts) & 1


@functools.lru_cache(maxsize=16)
def mode_bits(n: int, num_modes: int, seed: int) -> np.ndarray:
    """int8[num_modes, n]: distinct modes, each n/8 blocks drawn uniformly from BLOCKS."""
    m = n // BLOCK_LENGTH
    space = len(BLOCKS) ** m
    if num_modes > space:
        raise ValueError(
            f"num_modes must be in [1, {space}] for n={n} ({len(BLOCKS)}^{m} distinct modes), "
            f"got {num_modes}"
        )
    rng = np.random.default_rng(seed)
    if space <= 10**6:
        codes = rng.choice(space, size=num_modes, replace=False)
        ids = (codes[:, None] // (len(BLOCKS) ** np.arange(m - 1, -1, -1))[None, :]) % len(BLOCKS)
    else:  # sample with replacement and drop duplicates (collisions are astronomically rare)
        ids = np.zeros((0, m), np.int64)
        while ids.shape[0] < num_modes:
            cand = rng.integers(0, len(BLOCKS), size=(2 * num_modes, m))
            ids = np.concatenate([ids, cand])
            _, first = np.unique(ids, axis=0, return_index=True)
            ids = ids[np.sort(first)]
        ids = ids[:num_modes]
    table = np.array([[int(c) for c in b] for b in BLOCKS], np.int8)  # [5, 8]
    out = table[ids].reshape(num_modes, n)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=16)
def bitseq_test_set_bits(
    n: int, num_modes: int, mode_seed: int, test_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(bits int8[num_modes·n, n], flips int32[num_modes·n]): each mode, then for c = 1..n−1
    the mode with c distinct random positions flipped. Vectorised: ranks of uniform noise pick
    the flipped positions (rank < c)."""
    modes = mode_bits(n, num_modes, mode_seed)
    rng = np.random.default_rng(test_seed)
    c = np.arange(n, dtype=np.int32)  # c = 0 is the mode itself
    ranks = np.argsort(np.argsort(rng.random((num_modes, n, n)), axis=-1), axis=-1)
    flip = (ranks < c[None, :, None]).astype(np.int8)
    bits = (modes[:, None, :] ^ flip).reshape(num_modes * n, n)
    flips = np.broadcast_to(c, (num_modes, n)).reshape(-1)
    bits.flags.writeable = False
    return bits, flips.copy()


def hamming_to_modes(words: jax.Array, mode_words: jax.Array) -> jax.Array:
    """int32[B, M] Hamming distances between words int[B, L] and modes int[M, L] (popcount of
    XOR)."""
    x = jnp.bitwise_xor(words[:, None, :], mode_words[None, :, :])
    return jax.lax.population_count(x).sum(-1).astype(jnp.int32)


class _BitSequenceMixin:
    """Fields and reward shared by `bitseq` and `bitseq_ar` (see the module docstring)."""

    def _check(self):
        check_range(self, "n", BLOCK_LENGTH, None, integer=True)
        check_range(self, "k", 1, 16, integer=True)
        if self.n % BLOCK_LENGTH:
            raise ValueError(
                f"{type(self).__name__}.n must be a multiple of {BLOCK_LENGTH} (the block length), "
                f"got {self.n}"
            )
        if self.n % self.k:
            raise ValueError(f"{type(self).__name__}.k must divide n={self.n}, got {self.k}")
        check_choice(self, "reward", tuple(REWARDS))
        if self.beta is not None:
            check_range(self, "beta", 0.0, None, lo_open=True)
        check_range(self, "num_modes", 1, None, integer=True)
        if self.mode_threshold is not None:
            check_range(self, "mode_threshold", 0, self.n, integer=True)
        check_range(self, "num_test_trajectories", 1, None, integer=True)
        check_range(self, "top_k", 1, None, integer=True)
        mode_bits(self.n, self.num_modes, self.mode_seed)  # validates num_modes for this n

    @property
    def seq_length(self) -> int:
        return self.n // self.k

    @property
    def vocab_size(self) -> int:
        return 1 << self.k

    @property
    def token_dim(self) -> int:
        return self.k + 1

    @property
    def reward_beta(self) -> float:
        return REWARDS[self.reward] if self.beta is None else float(self.beta)

    @property
    def threshold(self) -> int:
        return self.n // 4 if self.mode_threshold is None else self.mode_threshold

    def token_features(self, tokens):
        filled = (tokens >= 0).astype(jnp.float32)[..., None]
        bits = words_to_bits(tokens, self.k).astype(jnp.float32)
        return jnp.concatenate([filled, filled * (2.0 * bits - 1.0)], axis=-1)

    def token_ids(self, obs):
        """int32[..., L] from the features [filled, ±bits]: 1 + word, 0 if empty."""
        feats = obs.reshape(obs.shape[:-1] + self.token_shape)
        bits = (feats[..., 1:] > 0).astype(jnp.int32)
        words = (bits << jnp.arange(self.k - 1, -1, -1, dtype=jnp.int32)).sum(-1)
        return jnp.where(feats[..., 0] > 0, words + 1, 0)

    def mode_words(self) -> np.ndarray:
        return bits_to_words(mode_bits(self.n, self.num_modes, self.mode_seed), self.k)

    def mode_distances(self, tokens: jax.Array) -> jax.Array:
        """int32[B, M]: Hamming distance of complete sequences to every mode."""
        return hamming_to_modes(tokens, jnp.asarray(self.mode_words()))

    def log_reward_tokens(self, tokens):
        d = self.mode_distances(tokens).min(-1).astype(jnp.float32)
        scale = self.reward_beta / (self.n if self.reward == "normalized_hamming" else 1.0)
        return -scale * d

    # metric hooks
    def test_set(self) -> SequenceState:
        bits, _ = bitseq_test_set_bits(self.n, self.num_modes, self.mode_seed, self.test_seed)
        words = bits_to_words(bits, self.k)
        return SequenceState(
            tokens=jnp.asarray(words),
            length=jnp.full((words.shape[0],), self.seq_length, jnp.int32),
        )

    def mode_match(self, state) -> jax.Array:
        """bool[B, M]: sample within `threshold` bits of each mode."""
        return self.mode_distances(jnp.maximum(state.tokens, 0)) <= self.threshold


_FIELDS_DOC = """
    Attributes:
      n: sequence length in bits (multiple of 8); 120 in Tiapkin et al.
      k: word length (divides n); 8 in Tiapkin et al.: 15 slots × 256 words.
      reward: "hamming" (log R = −β·d, Tiapkin et al.; default) or "normalized_hamming"
        (−β·d/n, gfnx).
      beta: β; None = the convention's default (2 for "hamming", 3 for "normalized_hamming").
      num_modes: size of the mode set (60 in Tiapkin et al.); at most 5^(n/8).
      mode_seed: seed of the mode set; test_seed: seed of the test-set bit flips.
      mode_threshold: Hamming radius of "mode found"; None = n // 4 (30 for n = 120, as in
        Tiapkin et al.).
      num_test_trajectories: backward trajectories N per test sequence in the log P_θ(x) estimate
        (10, as Tiapkin et al.'s and gfnx's code; 1 is exact for the autoregressive tree).
      top_k: size of the top-k reward metric (100).
"""


@dataclasses.dataclass(frozen=True)
class BitSequence(_BitSequenceMixin, SequenceEnv):
    __doc__ = "Non-autoregressive bit sequences (`bitseq`)." + _FIELDS_DOC

    n: int = 120
    k: int = 8
    reward: str = "hamming"
    beta: float | None = None
    num_modes: int = 60
    mode_seed: int = 0
    test_seed: int = 1
    mode_threshold: int | None = None
    num_test_trajectories: int = 10
    top_k: int = 100

    name: ClassVar[str] = "bitseq"
    moves: ClassVar[str] = "any_position"
    # MLP by default: 4× cheaper per update than the transformer here
    # (benchmarks/throughput.md); `--set torso=transformer` gives a gfnx-sized transformer.
    default_torso: ClassVar[str] = "mlp"
    bench_defaults: ClassVar[dict[str, int]] = {"iterations": 1000, "eval_every": 250}

    def __post_init__(self):
        self._check()


@dataclasses.dataclass(frozen=True)
class AutoregressiveBitSequence(BitSequence):
    __doc__ = "Autoregressive bit sequences (`bitseq_ar`; a tree, log P_B = 0)." + _FIELDS_DOC

    num_test_trajectories: int = 1  # exact on a tree

    name: ClassVar[str] = "bitseq_ar"
    moves: ClassVar[str] = "append"
