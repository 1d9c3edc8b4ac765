"""The environment contract.

An environment is an immutable, hashable configuration object (a frozen dataclass) with pure
methods over a batched state pytree. Nothing is stored on the object at run time, so it can be a
static argument of `jit` or be closed over, and `vmap`/`scan` compose with every method.

Conventions (one name per concept across gfnjax):

* `state`: a pytree (flax.struct.dataclass) whose leaves have a leading batch axis [B].
* `action`: int32[B] index into the forward action set of size `num_actions`;
  `backward_action`: int32[B] index into the backward action set of size `num_backward_actions`.
* `mask`: bool, True = valid. A terminal state has no valid forward action; the initial state
  has no valid backward action. Callers guard all-False rows (see `gfnjax.utils.masked_logits`).
* Terminal states are reached either by an explicit stop action (`stop_action >= 0`, e.g.
  hypergrid) or automatically when the object is complete (`stop_action == -1`, e.g. bit
  sequences). In both cases `is_terminal(state)` is True for the terminal state x and
  `log_reward(state)` is log R(x). The transition into a terminal state is the last transition of
  a trajectory; `backward_step` from a terminal state undoes it.
* `to_backward_action(parent, action)` is the backward action at the child that undoes `action`;
  `to_forward_action(child, backward_action)` is the forward action at the parent that leads back
  to `child`. They let one trajectory carry both forward and backward action indices.

Subclasses implement the underscore methods (`_step`, `_backward_step`, `_forward_mask`,
`_backward_mask`); the base class adds the terminal/initial guards once: stepping a terminal row
(or backward-stepping an initial row) leaves it unchanged, and masks are False there.

Enumerable environments (`enumerable` is True) also implement `enumerate_states` (every
non-terminal state, [S]), `state_index`, `enumerate_terminals` ([X]) and `terminal_index`, which
the exact metrics use for dynamic programming over the DAG.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from gfnjax.utils import tree_where

State = Any


@dataclasses.dataclass(frozen=True)
class Env:
    """Base class of every environment; see the module docstring for the contract.

    Every member a caller may use is declared here, with a default for the optional
    capabilities, so that a new environment gets exactly the metrics, torso and harness
    settings it declares, and nothing is discovered with `getattr`.
    """

    name: ClassVar[str] = "env"
    # Capabilities with class-level defaults (override as ClassVar or dataclass field).
    default_torso: ClassVar[str] = "mlp"
    """Torso used when a config says torso="auto" ("mlp", "transformer", "graph", ...)."""
    bench_defaults: ClassVar[dict[str, int]] = {"iterations": 2000, "eval_every": 250}
    """Default schedule of `python -m gfnjax.bench` and sweeps for this environment."""

    # --- static sizes (subclasses define them as properties) ---------------------------
    @property
    def num_actions(self) -> int:
        raise NotImplementedError

    @property
    def num_backward_actions(self) -> int:
        raise NotImplementedError

    @property
    def obs_dim(self) -> int:
        raise NotImplementedError

    @property
    def max_steps(self) -> int:
        """Static upper bound on the number of transitions of a trajectory (scan length)."""
        raise NotImplementedError

    @property
    def stop_action(self) -> int:
        """Index of the explicit stop action, or -1 when termination is automatic."""
        return -1

    # --- dynamics -----------------------------------------------------------------------
    def reset(self, batch_size: int) -> State:
        """Initial states s0, [B]."""
        raise NotImplementedError

    def step(self, state: State, action: jax.Array) -> State:
        """Forward transition; terminal rows are left unchanged."""
        return tree_where(self.is_terminal(state), state, self._step(state, action))

    def backward_step(self, state: State, backward_action: jax.Array) -> State:
        """Inverse transition to a parent; initial rows are left unchanged."""
        return tree_where(
            self.is_initial(state), state, self._backward_step(state, backward_action)
        )

    def forward_mask(self, state: State) -> jax.Array:
        """bool[B, num_actions]: valid forward actions (all False at terminal states)."""
        return self._forward_mask(state) & ~self.is_terminal(state)[:, None]

    def backward_mask(self, state: State) -> jax.Array:
        """bool[B, num_backward_actions]: valid backward actions (all False at s0)."""
        return self._backward_mask(state) & ~self.is_initial(state)[:, None]

    def observe(self, state: State) -> jax.Array:
        """float32[B, obs_dim]: network input."""
        raise NotImplementedError

    def log_reward(self, state: State) -> jax.Array:
        """float32[B]: log R(x); meaningful for terminal states."""
        raise NotImplementedError

    def is_terminal(self, state: State) -> jax.Array:
        """bool[B]."""
        raise NotImplementedError

    def is_initial(self, state: State) -> jax.Array:
        """bool[B]: True at s0."""
        raise NotImplementedError

    def to_backward_action(self, state: State, action: jax.Array) -> jax.Array:
        """int32[B]: backward action at step(state, action) that returns to `state`."""
        raise NotImplementedError

    def to_forward_action(self, state: State, backward_action: jax.Array) -> jax.Array:
        """int32[B]: forward action at backward_step(state, b) that returns to `state`."""
        raise NotImplementedError

    # --- subclass hooks -------------------------------------------------------------------
    def _step(self, state: State, action: jax.Array) -> State:
        raise NotImplementedError

    def _backward_step(self, state: State, backward_action: jax.Array) -> State:
        raise NotImplementedError

    def _forward_mask(self, state: State) -> jax.Array:
        raise NotImplementedError

    def _backward_mask(self, state: State) -> jax.Array:
        raise NotImplementedError

    # --- enumeration (small environments) ---------------------------------------------------
    @property
    def enumerable(self) -> bool:
        """True when every state can be listed: exact DP metrics and enumeration tests apply."""
        return False

    @property
    def num_states(self) -> int:
        """Number of non-terminal states S."""
        raise NotImplementedError(f"{self.name} is not enumerable")

    @property
    def num_terminals(self) -> int:
        """Number of terminal objects X."""
        raise NotImplementedError(f"{self.name} is not enumerable")

    def enumerate_states(self) -> State:
        """Every non-terminal state, [S]."""
        raise NotImplementedError(f"{self.name} is not enumerable")

    def state_index(self, state: State) -> jax.Array:
        """int32[B] in [0, S) for non-terminal states."""
        raise NotImplementedError(f"{self.name} is not enumerable")

    def enumerate_terminals(self) -> State:
        """Every terminal state, [X], ordered so that terminal_index(x) == position."""
        raise NotImplementedError(f"{self.name} is not enumerable")

    def terminal_index(self, state: State) -> jax.Array:
        """int32[B] in [0, X) for terminal states."""
        raise NotImplementedError(f"{self.name} is not enumerable")

    def true_log_probs(self) -> jax.Array:
        """float32[X]: log π(x) = log R(x) − log Z over the enumerated terminals."""
        log_r = self.log_reward(self.enumerate_terminals())
        return log_r - jax.nn.logsumexp(log_r)

    def log_partition(self) -> jax.Array:
        """Exact log Z = logsumexp_x log R(x) (enumerable environments)."""
        return jax.nn.logsumexp(self.log_reward(self.enumerate_terminals()))

    # --- network layout ---------------------------------------------------------------------
    @property
    def token_shape(self) -> tuple[int, int] | None:
        """(L, F) when the observation is L tokens of F features (float[L·F]; the transformer
        torso needs it), else None."""
        return None

    @property
    def token_vocab(self) -> int | None:
        """Number of token ids when the environment declares `token_ids` (0 = empty position),
        else None. The transformer torso then embeds tokens by a lookup table, as Tiapkin et
        al.'s and gfnx's sequence transformers do."""
        return None

    def token_ids(self, obs: jax.Array) -> jax.Array:
        """int32[..., L]: the token at each position of observations float[..., L·F] (0 for an
        empty position, 1 + symbol otherwise); declared when `token_vocab` is not None."""
        raise NotImplementedError(f"{self.name} declares no token ids")

    @property
    def action_tokens(self) -> tuple[int, int] | None:
        """(L, V) when forward action a is symbol a % V at token a // V (L·V = num_actions) and
        backward action b clears token b (num_backward_actions = L): per-token policy heads
        apply (nets.PolicyNet). None otherwise."""
        return None

    @property
    def graph_layout(self) -> tuple[int, int, int, int] | None:
        """(nodes N, node features F, edge channels E, extra features X) when the observation is
        [nodes N·F | edges N·N·E | extra X] (the graph torso needs it), else None."""
        return None

    # --- metric capabilities ------------------------------------------------------------------
    def test_set(self) -> State | None:
        """A fixed set of terminal states, [X_test], for the correlation of log P_θ(x) with
        log R(x), or None (no correlation metric)."""
        return None

    @property
    def num_test_trajectories(self) -> int:
        """Backward trajectories per test object in the Monte-Carlo estimate of log P_θ(x)."""
        return 10

    @property
    def num_modes(self) -> int:
        """Size M of a known mode set (0 = none; then `mode_match` is never called)."""
        return 0

    def mode_match(self, state: State) -> jax.Array:
        """bool[B, M]: which known modes each terminal state matches (e.g. within a radius)."""
        raise NotImplementedError(f"{self.name} declares no modes")

    @property
    def top_k(self) -> int:
        """k of the top-k reward metric over distinct sampled objects (0 = no such metric)."""
        return 0

    def object_key(self, state: State) -> jax.Array:
        """int[B, ...]: identifies the terminal object of each state (for distinct top-k)."""
        raise NotImplementedError(f"{self.name} declares no object key")

    # --- molecule capabilities (molecular environments) ----------------------------------------
    @property
    def molecular(self) -> bool:
        """True when terminal objects are molecules (RDKit metrics: validity, novelty, modes...);
        such an environment implements the four members below."""
        return False

    def molecule_arrays(self, state: State) -> tuple[jax.Array, ...]:
        """Arrays with leading axis [B] that determine each state's molecule; `host_molecules`
        turns them into RDKit molecules on the host (inside one `jax.pure_callback`)."""
        raise NotImplementedError(f"{self.name} is not molecular")

    def host_molecules(self, arrays: tuple[np.ndarray, ...]) -> list:
        """Host side (numpy in, no jit) of `molecule_arrays` with one leading axis [n]: per row,
        (canonical SMILES, sanitised RDKit Mol), or None for an empty or RDKit-rejected state."""
        raise NotImplementedError(f"{self.name} is not molecular")

    @property
    def score_name(self) -> str:
        """Name of the molecule score s(x) in `gfnjax.envs.chem.SCORES` (molecular environments)."""
        raise NotImplementedError(f"{self.name} is not molecular")

    def log_reward_from_score(self, score: jax.Array) -> jax.Array:
        """float32[B]: log R as a function of the score s(x) (molecular environments)."""
        raise NotImplementedError(f"{self.name} is not molecular")

    @property
    def mode_threshold(self) -> float:
        """Score at or above which a molecule can count as a mode (molecular environments)."""
        raise NotImplementedError(f"{self.name} is not molecular")


def batch_size_of(state: State) -> int:
    return jax.tree.leaves(state)[0].shape[0]


def full_actions(batch_size: int, action: int) -> jax.Array:
    return jnp.full((batch_size,), action, jnp.int32)
