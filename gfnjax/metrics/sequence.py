"""Test-set correlation, modes found and top-k reward (docs/methods.md §5), inside the jitted loop.

* `TestSetCorrelation`: Pearson and Spearman correlation between log R(x) and the Monte-Carlo
  estimate of the model's log-probability on a fixed test set,
      log P_θ(x) ≈ logmeanexp_{i=1..N} [log P_F(τ_i) − log P_B(τ_i|x)],  τ_i ~ P_B(·|x),
  (an importance-sampling estimate with P_B as proposal; exact for N = 1 on a tree).
* `ModesFound`: number of modes m with at least one training sample x matching it
  (e.g. Hamming(x, m) ≤ threshold), cumulative over training: the carry is a bool[M] updated
  from `info.terminals` every iteration.
* `TopKReward`: mean reward (and mean log-reward) of the k best distinct terminal objects sampled
  so far in training, carried as a running top-k.

`gfnjax.metrics.default_metrics` adds each one when the environment declares the capability it
needs (`test_set()`, `num_modes`/`mode_match`, `top_k`/`object_key`; gfnjax.envs.base).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from gfnjax.envs.base import Env
from gfnjax.metrics.base import Metric
from gfnjax.metrics.stats import pearson, rankdata
from gfnjax.rollout import PolicyFn, sample_backward
from gfnjax.utils import logmeanexp

# Elements of the largest per-chunk array ([chunk·(T+1), max(A, D)]) in the log P_θ estimate.
CHUNK_BUDGET = 1 << 22


# --- correlation ---------------------------------------------------------------------------------
def default_chunk_size(env: Env, total: int) -> int:
    width = max(env.num_actions, env.obs_dim, 256)
    return int(max(1, min(total, CHUNK_BUDGET // ((env.max_steps + 1) * width))))


def estimate_log_prob(
    env: Env,
    key: jax.Array,
    terminals: Any,
    policy_fn: PolicyFn,
    num_trajectories: int,
    chunk_size: int | None = None,
) -> jax.Array:
    """float32[X]: logmeanexp over N backward trajectories of log P_F(τ) − log P_B(τ|x).

    The N·X trajectories are processed in chunks (`lax.map`) to bound memory: one chunk is a
    single `sample_backward` call whose network pass covers chunk·(T+1) states.
    """
    X = jax.tree.leaves(terminals)[0].shape[0]
    N = num_trajectories
    total = N * X
    chunk = chunk_size or default_chunk_size(env, total)
    n_chunks = math.ceil(total / chunk)
    # row r of the flat [N·X] batch is terminal r % X; padding rows repeat early terminals
    rows = jnp.arange(n_chunks * chunk) % X
    batch = jax.tree.map(lambda a: a[rows].reshape((n_chunks, chunk) + a.shape[1:]), terminals)
    keys = jax.random.split(key, n_chunks)

    def one(args):
        k, x = args
        traj = sample_backward(env, k, x, policy_fn)
        return jnp.where(traj.mask, traj.log_pf - traj.log_pb, 0.0).sum(-1)

    log_w = jax.lax.map(one, (keys, batch)).reshape(-1)[:total].reshape(N, X)
    return logmeanexp(log_w, axis=0)


class TestSetCorrelation(Metric):
    """Pearson / Spearman correlation of log P_θ(x) (N backward trajectories) with log R(x)."""

    __test__ = False  # not a pytest class

    def __init__(
        self, env: Env, test_states: Any, num_trajectories: int, chunk_size: int | None = None
    ):
        self.env = env
        self.test_states = test_states
        self.num_trajectories = num_trajectories
        self.chunk_size = chunk_size
        self.log_reward = jax.jit(env.log_reward)(test_states)
        # ranks of the fixed log R once, outside the loop (XLA would constant-fold the sort slowly)
        self.reward_ranks = jax.jit(rankdata)(self.log_reward)

    def compute(self, carry, algo, state, key):
        log_p = estimate_log_prob(
            self.env,
            key,
            self.test_states,
            algo.policy_fn(state),
            self.num_trajectories,
            self.chunk_size,
        )
        return {
            "pearson": pearson(log_p, self.log_reward),
            "spearman": pearson(rankdata(log_p), self.reward_ranks),
            "test_log_prob": log_p.mean(),
        }


# --- modes and top-k ------------------------------------------------------------------------------
class ModesFound(Metric):
    """Cumulative number of modes matched by at least one training sample."""

    def __init__(self, match_fn: Callable[[Any], jax.Array], num_modes: int):
        self.match_fn = match_fn
        self.num_modes = num_modes

    def init(self):
        return jnp.zeros((self.num_modes,), bool)

    def update(self, carry, info):
        return carry | jnp.any(self.match_fn(info.terminals), axis=0)

    def compute(self, carry, algo, state, key):
        return {"modes": carry.sum().astype(jnp.float32)}


class TopKReward(Metric):
    """Running top-k of distinct terminal objects sampled in training (identified by `key_fn`).

    top_k_reward = (1/k) Σ R over the k best (objects not yet seen count as R = 0);
    top_k_log_reward = mean log R over the entries filled so far (NaN before any sample).
    """

    def __init__(self, env: Env, k: int, key_fn: Callable[[Any], jax.Array] | None = None):
        self.env = env
        self.k = k
        self.key_fn = key_fn or env.object_key
        probe = self.key_fn(env.reset(1))
        self.key_shape = probe.shape[1:]
        self.key_dtype = probe.dtype

    def init(self):
        return (
            jnp.full((self.k,), -jnp.inf, jnp.float32),
            jnp.full((self.k,) + self.key_shape, -1, self.key_dtype),
        )

    def update(self, carry, info):
        best, keys = carry
        x = info.terminals
        log_r = jnp.concatenate([best, info.log_reward.astype(jnp.float32)])
        ids = jnp.concatenate([keys, self.key_fn(x).astype(self.key_dtype)])
        flat = ids.reshape(ids.shape[0], -1)
        same = jnp.all(flat[:, None, :] == flat[None, :, :], axis=-1)
        n = ids.shape[0]
        earlier = jnp.arange(n)[None, :] < jnp.arange(n)[:, None]  # j < i
        dup = jnp.any(same & earlier, axis=1)
        log_r = jnp.where(dup, -jnp.inf, log_r)
        best, idx = jax.lax.top_k(log_r, self.k)
        return best, ids[idx]

    def compute(self, carry, algo, state, key):
        best, _ = carry
        filled = jnp.isfinite(best)
        count = filled.sum()
        return {
            "top_k_reward": jnp.where(filled, jnp.exp(jnp.where(filled, best, 0.0)), 0.0).sum()
            / self.k,
            "top_k_log_reward": jnp.where(
                count > 0, jnp.where(filled, best, 0.0).sum() / jnp.maximum(count, 1), jnp.nan
            ),
        }


__all__ = ["ModesFound", "TestSetCorrelation", "TopKReward", "estimate_log_prob"]
