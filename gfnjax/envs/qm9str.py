"""QM9-string (Shen et al. 2023; used by Ent-PPO and Niu et al.; docs/methods.md §4).

A molecule is a string of 5 blocks from an alphabet of 11 molecular fragments
(`qm9str_blocks.json`: C, O, N, C-F, C=O, C=C, C#C, benzene, cyclohexane, pyrrolidine, CCC).
Two ways of building it (`variant`):
  "prepend_append" (Ent-PPO): a block is put in front of or after the current string
      (22 forward actions, 2 backward actions, uniform P_B);
  "any_position" (Niu et al.): a block is written into any of the 5 empty positions
      (55 forward actions, backward = clear a filled position, uniform P_B).
Both are enumerable (16,105 resp. 87,781 non-terminal states; 161,051 terminals), so exact
TV/KL come from the DP of gfnjax.metrics.exact.

Reward from the published proxy of the HOMO-LUMO gap, y(x) = table[index(x)], index = base-11
number of the block ids (first block most significant):
    R(x) = scale · max(y(x), floor)^β / max_x' max(y(x'), floor)^β,
scale = 100, floor = 1e−3, β = 5 (Ent-PPO); the max runs over the environment's terminal set.
`num_blocks` < 11 restricts the alphabet to the first blocks (a smaller enumerable instance with
the same table, for tests).

Metrics (gfnjax.metrics.sequence): correlation of log P_θ(x) with log R on a fixed random test
set of `test_size` strings; modes = the top 0.5% of strings by reward (Niu et al.); top-k reward.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from gfnjax.data import load_array, load_json
from gfnjax.envs.sequence import SequenceEnv, SequenceState, _base_digits
from gfnjax.utils import check_choice, check_range

NUM_BLOCKS = 11
LENGTH = 5
PROXY_FILE = "qm9str_proxy_s5.npy"
BLOCKS_FILE = "qm9str_blocks.json"
ORIGIN = (
    "maxwshen/gflownet, datasets/qm9str (block_qm9str_v1_s5.pkl converted to a float32[11**5] "
    "array indexed by the base-11 number of the 5 block ids, first block most significant; "
    "blocks from the same folder)"
)
VARIANTS = ("prepend_append", "any_position")
MAX_ABS_LOG_REWARD = 1e6  # |log R| beyond this overflows squared float32 residuals (~3e38)


def load_proxy() -> np.ndarray:
    """float32[11**5] proxy values y (HOMO-LUMO gap), read from the data directory."""
    return load_array(PROXY_FILE, ORIGIN, shape=(NUM_BLOCKS**LENGTH,), dtype=np.float32)


def load_blocks() -> dict:
    """The block table (names, SMILES, attachment stems) from `qm9str_blocks.json`."""
    data = load_json(BLOCKS_FILE, ORIGIN)
    if not isinstance(data, dict) or len(data.get("block_smi", {})) != NUM_BLOCKS:
        from gfnjax.data import DataFileError, data_path

        raise DataFileError(
            f"{BLOCKS_FILE} at {data_path(BLOCKS_FILE)} lacks 11 'block_smi' entries. "
            f"Origin: {ORIGIN}"
        )
    return data


def proxy_index(tokens: np.ndarray) -> np.ndarray:
    """int[..., 5] block ids -> int[...] base-11 table index (first block most significant)."""
    powers = NUM_BLOCKS ** np.arange(LENGTH - 1, -1, -1)
    return (np.asarray(tokens) * powers).sum(-1)


@functools.lru_cache(maxsize=16)
def log_reward_table(num_blocks: int, exponent: float, scale: float, floor: float) -> np.ndarray:
    """float32[num_blocks**5] log R over the environment's terminals (its own base-V order)."""
    tokens = _base_digits(np.arange(num_blocks**LENGTH, dtype=np.int64), num_blocks, LENGTH)
    y = load_proxy()[proxy_index(tokens)].astype(np.float64)
    log_y = exponent * np.log(np.maximum(y, floor))
    out = (np.log(scale) + log_y - log_y.max()).astype(np.float32)
    out.flags.writeable = False
    return out


@dataclasses.dataclass(frozen=True)
class QM9String(SequenceEnv):
    """QM9-string environment (`qm9str`).

    Attributes:
      variant: "prepend_append" (Ent-PPO; default) or "any_position" (Niu et al.).
      num_blocks: alphabet size, the first `num_blocks` of the 11 blocks (11 = the benchmark).
      reward_exponent: β = 5. reward_scale: 100. reward_floor: 1e−3 (all as in Ent-PPO).
      mode_fraction: the top fraction of strings (by reward) that count as modes: 0.005, i.e. the
        805 best of the 161,051 strings, as Niu et al.'s code (the only paper counting modes here).
      test_size: strings in the correlation test set (1024, uniform without replacement, seed
        `test_seed`); all terminals when fewer.
      num_test_trajectories: backward trajectories N per test string for log P_θ(x) (10, as gfnx).
      top_k: size of the top-k reward metric (100).
    """

    variant: str = "prepend_append"
    num_blocks: int = NUM_BLOCKS
    reward_exponent: float = 5.0
    reward_scale: float = 100.0
    reward_floor: float = 1e-3
    mode_fraction: float = 0.005
    test_size: int = 1024
    test_seed: int = 0
    num_test_trajectories: int = 10
    top_k: int = 100

    name: ClassVar[str] = "qm9str"
    default_torso: ClassVar[str] = "mlp"
    bench_defaults: ClassVar[dict[str, int]] = {"iterations": 2000, "eval_every": 250}

    def __post_init__(self):
        check_choice(self, "variant", VARIANTS)
        check_range(self, "num_blocks", 1, NUM_BLOCKS, integer=True)
        check_range(self, "reward_exponent", 0.0, None, lo_open=True)
        check_range(self, "reward_scale", 0.0, None, lo_open=True)
        check_range(self, "reward_floor", 0.0, None, lo_open=True)
        check_range(self, "mode_fraction", 0.0, 1.0, lo_open=True)
        check_range(self, "test_size", 1, None, integer=True)
        check_range(self, "num_test_trajectories", 1, None, integer=True)
        check_range(self, "top_k", 1, None, integer=True)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            table = self._log_reward_table()  # fails early, with the data-file message, if absent
        # log R enters float32 losses (squared residuals): it must be finite and moderate
        if not np.all(np.isfinite(table)) or np.abs(table).max() > MAX_ABS_LOG_REWARD:
            with np.errstate(all="ignore"):
                lo = float(np.nanmin(table)) if np.isfinite(table).any() else float("nan")
            raise ValueError(
                f"QM9String: reward_exponent={self.reward_exponent!r}, reward_scale="
                f"{self.reward_scale!r}, reward_floor={self.reward_floor!r} give log R values "
                f"that are non-finite or beyond ±{MAX_ABS_LOG_REWARD:g} (smallest {lo:.3g}), which "
                "overflow float32 training losses; the benchmark uses reward_exponent=5"
            )

    @property
    def moves(self) -> str:
        return self.variant

    @property
    def seq_length(self) -> int:
        return LENGTH

    @property
    def vocab_size(self) -> int:
        return self.num_blocks

    def _log_reward_table(self) -> np.ndarray:
        return log_reward_table(
            self.num_blocks,
            float(self.reward_exponent),
            float(self.reward_scale),
            float(self.reward_floor),
        )

    def proxy(self, tokens) -> np.ndarray:
        """Proxy values y of complete strings int[..., 5] (host side, for inspection)."""
        return load_proxy()[proxy_index(tokens)]

    def log_reward_tokens(self, tokens):
        table = jnp.asarray(self._log_reward_table())
        powers = jnp.asarray(self.num_blocks ** np.arange(LENGTH - 1, -1, -1), jnp.int32)
        return table[jnp.sum(tokens * powers, axis=-1)]

    def smiles(self, tokens) -> list[str]:
        """Block SMILES of each string, joined by '.' (fragments; attachment is not modelled)."""
        smi = load_blocks()["block_smi"]
        return [".".join(smi[str(int(t))] for t in row) for row in np.asarray(tokens)]

    # metric capabilities
    @property
    def num_modes(self) -> int:
        return max(1, int(self.mode_fraction * self.num_blocks**LENGTH))

    def _mode_ids(self) -> np.ndarray:
        """int32[X]: rank among the modes (0 = best) or −1."""
        log_r = self._log_reward_table()
        order = np.argsort(-log_r, kind="stable")[: self.num_modes]
        ids = np.full(log_r.shape, -1, np.int32)
        ids[order] = np.arange(self.num_modes, dtype=np.int32)
        return ids

    def mode_match(self, state) -> jnp.ndarray:
        ids = jnp.asarray(self._mode_ids())[self.terminal_index(state)]
        return ids[:, None] == jnp.arange(self.num_modes, dtype=jnp.int32)[None, :]

    def test_set(self) -> SequenceState:
        X = self.num_blocks**LENGTH
        size = min(self.test_size, X)
        idx = np.sort(np.random.default_rng(self.test_seed).choice(X, size=size, replace=False))
        tokens = _base_digits(idx.astype(np.int64), self.num_blocks, LENGTH).astype(np.int32)
        return SequenceState(
            tokens=jnp.asarray(tokens), length=jnp.full((size,), LENGTH, jnp.int32)
        )
