"""The shared part of the molecular environments `molgraph` and `fragments` (docs/methods.md §4).

`MoleculeEnv` holds the reward options and their checks, the reward glue and the molecule
capabilities of `gfnjax.envs.base`:
  score s(x) ∈ [0, 1] of the state's molecule (`score`, formulas in `gfnjax.envs.chem`),
  log R = β·s ("exp") or β·log max(s, 1e−6) ("power"), log R = `invalid_log_reward` where RDKit
  rejects the molecule; one `jax.pure_callback` per batch scores every row on the host.
It also gives `stop_action` (the last forward action), `obs_dim` (from `graph_layout`),
`is_terminal` (`state.done`) and `is_initial`. A subclass declares `state_type`,
`molecule_arrays` (the state's fields but `done`, in order), `host_molecules` and `_nonempty`;
optionally float32 extras of the host call (`_num_extras`, `_host_extras`) for its `_log_reward`.

Enumerable subclasses share the indexing: `_enumeration()` returns (keys int32[S] sorted,
*molecule arrays [S, ...]) of the non-terminal states (`enumerate_bfs`); the empty state has the
smallest key, and the terminals are the non-empty states in key order.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from gfnjax.envs import chem
from gfnjax.envs.base import Env
from gfnjax.utils import check_choice, check_range


@dataclasses.dataclass(frozen=True)
class MoleculeEnv(Env):
    """Base of the molecular environments; see the module docstring.

    Attributes:
      chemistry: "plausible" (default; the rules of `gfnjax.envs.chem`) or "unrestricted".
      score: "qed" (default), "sa", "qed_sa", "qed_alerts", "drug_like" or a name registered with
        `gfnjax.envs.chem.register_score` (formulas in `gfnjax.envs.chem`).
      transform: "exp" (log R = β·s, docs/methods.md §4) or "power" (log R = β·log s, R = s^β).
      beta: reward exponent β > 0; 10 (seed papers use 4, 8, 10, 16).
      invalid_log_reward: log R of anything RDKit rejects (−100, below every valid log R).
      mode_threshold: score at or above which a molecule can count as a mode (per environment).
      test_size: test molecules for the correlation metric (128).
      mc_samples: backward trajectories per test molecule for log P_θ(x) (8).
      top_k: k of the top-k reward metric (100).
    """

    chemistry: str = "plausible"
    score: str = "qed"
    transform: str = "exp"
    beta: float = 10.0
    invalid_log_reward: float = -100.0
    mode_threshold: float = 0.5  # each subclass sets its own
    test_size: int = 128
    mc_samples: int = 8
    top_k: int = 100

    default_torso: ClassVar[str] = "graph"
    bench_defaults: ClassVar[dict[str, int]] = {"iterations": 600, "eval_every": 100}
    state_type: ClassVar[type]  # state pytree: state_type(*molecule_arrays, done=...)
    _num_extras: ClassVar[int] = 0  # float32 outputs of the host call after (score, ok)

    def __post_init__(self):
        check_choice(self, "chemistry", chem.CHEMISTRY)
        chem.check_score(self.score)
        check_choice(self, "transform", ("exp", "power"))
        check_range(self, "beta", 0.0, None, lo_open=True)
        check_range(self, "invalid_log_reward", None, None)
        check_range(self, "mode_threshold", 0.0, 1.0)
        check_range(self, "test_size", 1, None, integer=True)
        check_range(self, "mc_samples", 1, None, integer=True)
        check_range(self, "top_k", 1, None, integer=True)

    # --- shared sizes and dynamics (stop is the last forward action) ----------------------------
    @property
    def stop_action(self) -> int:
        return self.num_actions - 1

    @property
    def obs_dim(self) -> int:
        N, F, E, X = self.graph_layout
        return N * F + N * N * E + X

    def _nonempty(self, state) -> jax.Array:
        """bool[B]: the state holds a molecule (at least one atom or block)."""
        raise NotImplementedError

    def is_terminal(self, state):
        return state.done

    def is_initial(self, state):
        return ~self._nonempty(state) & ~state.done

    # --- reward -------------------------------------------------------------------------------
    def score_states(self, state) -> tuple[jax.Array, ...]:
        """(score float32[B], ok bool[B], *extras float32[B]) via one host RDKit callback."""
        compute = self._nonempty(state)
        shape = compute.shape
        f32 = jax.ShapeDtypeStruct(shape, jnp.float32)
        out = (f32, jax.ShapeDtypeStruct(shape, jnp.bool_)) + (f32,) * self._num_extras
        host = functools.partial(chem.timed(_host_scores), env=self)
        return jax.pure_callback(
            host, out, *self.molecule_arrays(state), compute, vmap_method="broadcast_all"
        )

    def _host_extras(self, arrays, valid) -> tuple[np.ndarray, ...]:
        """Host side: float32[n] extras of rows `arrays` ([n, ...]); `valid` = the scored rows."""
        return ()

    def log_reward_from_score(self, score: jax.Array) -> jax.Array:
        """log R = β·s ("exp") or β·log max(s, 1e−6) ("power")."""
        if self.transform == "exp":
            return self.beta * score
        return self.beta * jnp.log(jnp.maximum(score, 1e-6))

    def _log_reward(self, score, *extras) -> jax.Array:
        """float32[B]: log R of valid molecules from the outputs of `score_states`."""
        return self.log_reward_from_score(score)

    def log_reward(self, state):
        score, ok, *extras = self.score_states(state)
        log_r = self._log_reward(score, *extras)
        return jnp.where(ok, log_r, self.invalid_log_reward).astype(jnp.float32)

    # --- molecule capabilities (gfnjax.envs.base) ----------------------------------------------
    @property
    def molecular(self) -> bool:
        return True

    @property
    def score_name(self) -> str:
        return self.score

    @property
    def num_test_trajectories(self) -> int:
        return self.mc_samples

    # --- enumeration (tiny instances) ---------------------------------------------------------
    def _enumeration(self):
        raise NotImplementedError(f"{self.name} is not enumerable")

    @property
    def num_states(self) -> int:
        return int(self._enumeration()[0].shape[0])

    @property
    def num_terminals(self) -> int:
        return self.num_states - 1

    def _enumerated(self, rows, done: bool):
        arrays = [jnp.asarray(a[rows]) for a in self._enumeration()[1:]]
        return self.state_type(*arrays, done=jnp.full((arrays[0].shape[0],), done))

    def enumerate_states(self):
        return self._enumerated(slice(None), False)

    def enumerate_terminals(self):
        return self._enumerated(slice(1, None), True)

    def state_index(self, state):
        keys = jnp.asarray(self._enumeration()[0])
        idx = jnp.searchsorted(keys, self.state_key(state))
        return jnp.clip(idx, 0, keys.shape[0] - 1).astype(jnp.int32)

    def terminal_index(self, state):
        return jnp.maximum(self.state_index(state) - 1, 0).astype(jnp.int32)


def _host_scores(*args, env: MoleculeEnv):
    """Host batch scorer: `env.molecule_arrays` int[..., ...] and compute bool[...] -> (score
    float32[...], ok bool[...], *extras float32[...]); rows with compute False or rejected by
    RDKit get score 0, ok False."""
    *arrays, compute = args
    shape = compute.shape
    arrays = tuple(np.asarray(a, np.int32).reshape(-1, *a.shape[len(shape) :]) for a in arrays)
    compute = np.asarray(compute, bool).reshape(-1)
    rows = np.nonzero(compute)[0]
    entries = env.host_molecules(tuple(a[rows] for a in arrays))
    score = np.zeros(compute.shape, np.float32)
    ok = np.zeros(compute.shape, bool)
    score[rows], ok[rows] = chem.score_rows(entries, env.score)
    extras = env._host_extras(arrays, rows[ok[rows]])
    return tuple(x.reshape(shape) for x in (score, ok, *extras))


@functools.lru_cache(maxsize=16)
def enumerate_bfs(env: MoleculeEnv, chunk: int):
    """Breadth-first enumeration of every non-terminal state with the environment's own jitted
    step and mask, `chunk` states per call (one compilation per instance): (keys int32[S]
    sorted, *molecule arrays int32[S, ...])."""
    A = env.num_actions

    @jax.jit
    def expand(state):
        mask = env.forward_mask(state)[:, : A - 1]  # stop leads to terminals (same molecules)
        rep = jax.tree.map(lambda x: jnp.repeat(x, A - 1, axis=0), state)
        child = env.step(rep, jnp.tile(jnp.arange(A - 1), chunk))
        return env.molecule_arrays(child), mask.reshape(-1), env.state_key(child)

    s0 = env.reset(1)
    empty = tuple(np.asarray(a[0]) for a in env.molecule_arrays(s0))
    nf = len(empty)
    seen = {int(env.state_key(s0)[0]): empty}
    frontier = list(seen)
    while frontier:
        new = []
        for c in range(0, len(frontier), chunk):
            part = frontier[c : c + chunk]
            pad = part + [part[0]] * (chunk - len(part))
            st = env.state_type(
                *(jnp.asarray(np.stack([seen[k][f] for k in pad])) for f in range(nf)),
                done=jnp.zeros((chunk,), bool),
            )
            arrays, mask, key = expand(st)
            arrays = [np.asarray(a) for a in arrays]
            mask = np.array(mask)
            key = np.asarray(key)
            mask[len(part) * (A - 1) :] = False
            for r in np.nonzero(mask)[0]:
                k = int(key[r])
                if k not in seen:
                    seen[k] = tuple(a[r] for a in arrays)
                    new.append(k)
        frontier = new
    keys = np.asarray(sorted(seen), np.int32)
    fields = [np.stack([seen[int(k)][f] for k in keys]).astype(np.int32) for f in range(nf)]
    return (keys, *fields)


__all__ = ["MoleculeEnv", "enumerate_bfs"]
