"""Metrics evaluated inside the jitted training loop (protocol: gfnjax.metrics.base.Metric).

`default_metrics(env, config)` chooses them from what the environment declares
(gfnjax.envs.base): exact distribution metrics and the empirical L1 when it is `enumerable`, the
ELBO (and EUBO when exact samples exist) always, the test-set correlation when it has a
`test_set()`, modes found when `num_modes > 0`, top-k reward when `top_k > 0`, and the molecule
metrics when it is `molecular`. Names, directions and labels: gfnjax.metrics.registry.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gfnjax.envs.base import Env
from gfnjax.metrics.base import Metric
from gfnjax.metrics.exact import DAG, build_dag, distribution_metrics, policy_terminal_distribution
from gfnjax.metrics.sequence import ModesFound, TestSetCorrelation, TopKReward
from gfnjax.rollout import sample_backward, sample_forward
from gfnjax.utils import check_range, sample_many

# Exact metrics enumerate every state; beyond this many the setup takes minutes and gigabytes.
MAX_EXACT_STATES = 5_000_000


@dataclasses.dataclass(frozen=True)
class MetricsConfig:
    """eval_batch_size: trajectories for the ELBO/EUBO estimates (256).
    l1_window: terminal states kept for Tiapkin et al.'s empirical L1 (200k, their code).
    exact: compute the exact DP distribution metrics when the environment is enumerable (True);
        environments with more than MAX_EXACT_STATES states need exact=False."""

    eval_batch_size: int = 256
    l1_window: int = 200_000
    exact: bool = True

    def __post_init__(self):
        check_range(self, "eval_batch_size", 1, 1 << 20, integer=True)
        check_range(self, "l1_window", 1, 1 << 28, integer=True)
        if not isinstance(self.exact, bool):
            raise ValueError(f"MetricsConfig.exact must be True or False, got {self.exact!r}")


class ExactDistribution(Metric):
    """Exact TV / KL / JSD of the current policy's terminal distribution, and |log Z − log Z*|."""

    def __init__(self, env: Env):
        self.env = env
        self.dag: DAG = build_dag(env)

    def compute(self, carry, algo, state, key):
        logits, _ = algo.policy_fn(state)(self.dag.obs)
        p = policy_terminal_distribution(self.dag, logits)
        out = distribution_metrics(p, self.dag.true_log_probs)
        log_z = algo.log_z(state)
        if log_z is not None:
            out["log_z"] = log_z
            out["log_z_error"] = jnp.abs(log_z - self.dag.log_z)
        return out


class Bounds(Metric):
    """ELBO = mean G(τ) over forward samples; EUBO = mean G(τ) over backward trajectories from exact
    samples x ~ π (enumerable environments). G(τ) = log R(x) + log P_B(τ|x) − log P_F(τ)."""

    def __init__(self, env: Env, batch_size: int, true_log_probs=None):
        self.env = env
        self.batch_size = batch_size
        self.true_log_probs = true_log_probs
        if true_log_probs is not None:
            self.true_cdf = np.cumsum(np.exp(np.asarray(true_log_probs, np.float64))).astype(
                np.float32
            )
            self.terminals = env.enumerate_terminals()

    def compute(self, carry, algo, state, key):
        k_f, k_x, k_b = jax.random.split(key, 3)
        policy = algo.policy_fn(state)
        fwd = sample_forward(self.env, k_f, policy, self.batch_size)
        g = fwd.log_reward + (fwd.log_pb - fwd.log_pf).sum(-1)
        out = {"elbo": g.mean()}
        if self.true_log_probs is not None:
            idx = sample_many(k_x, self.true_cdf, self.batch_size)
            x = jax.tree.map(lambda a: a[idx], self.terminals)
            bwd = sample_backward(self.env, k_b, x, policy)
            out["eubo"] = (bwd.log_reward + (bwd.log_pb - bwd.log_pf).sum(-1)).mean()
        return out


class EmpiricalL1(Metric):
    """Tiapkin et al.'s L1 = mean_x |π̂(x) − π(x)|, π̂ from the last `window` training terminals
    (fewer at the start: π̂ divides by the number of terminals seen so far, at most `window`)."""

    def __init__(self, env: Env, window: int, true_log_probs):
        self.env = env
        self.window = window
        self.true_log_probs = true_log_probs

    def init(self):
        return (jnp.full((self.window,), -1, jnp.int32), jnp.zeros((), jnp.int32))

    def update(self, carry, info):
        buf, ptr = carry
        idx = self.env.terminal_index(info.terminals).astype(jnp.int32)
        pos = (ptr + jnp.arange(idx.shape[0])) % self.window
        return buf.at[pos].set(idx), (ptr + idx.shape[0]) % self.window

    def compute(self, carry, algo, state, key):
        # the barrier keeps XLA from constant-folding the first evaluation (an empty window is a
        # compile-time constant), a 160k-segment scatter that cost ~1.5 s of compilation
        buf, _ = jax.lax.optimization_barrier(carry)
        X = self.true_log_probs.shape[0]
        valid = buf >= 0
        counts = jax.ops.segment_sum(valid.astype(jnp.float32), jnp.maximum(buf, 0), num_segments=X)
        p_hat = counts / jnp.maximum(valid.sum(), 1)
        return {"l1": jnp.mean(jnp.abs(p_hat - jnp.exp(self.true_log_probs)))}


def check_exact_size(env: Env) -> None:
    """Refuse exact metrics on environments too large to enumerate in reasonable time/memory."""
    n = env.num_states
    if n > MAX_EXACT_STATES:
        raise ValueError(
            f"exact metrics would enumerate {n:,} states of {env.name} "
            f"(limit {MAX_EXACT_STATES:,}); "
            "set metrics.exact=false (e.g. --set metrics.exact=False) to train without them"
        )


def default_metrics(env: Env, config: MetricsConfig | None = None) -> tuple[Metric, ...]:
    """The metrics `env` supports, chosen from its declared capabilities."""
    config = config or MetricsConfig()
    metrics: list[Metric] = []
    true_lp = None
    if env.enumerable and config.exact:
        check_exact_size(env)
        exact = ExactDistribution(env)
        true_lp = exact.dag.true_log_probs
        metrics += [exact, EmpiricalL1(env, config.l1_window, true_lp)]
    metrics.append(Bounds(env, config.eval_batch_size, true_lp))
    if env.molecular:
        from gfnjax.metrics.molecules import MoleculeMetrics  # imports RDKit: only when needed

        metrics.append(MoleculeMetrics(env, config.eval_batch_size))
        return tuple(metrics)
    test = env.test_set()
    if test is not None:
        metrics.append(TestSetCorrelation(env, test, env.num_test_trajectories))
    if env.num_modes > 0:
        metrics.append(ModesFound(env.mode_match, env.num_modes))
    if env.top_k > 0:
        metrics.append(TopKReward(env, env.top_k))
    return tuple(metrics)


__all__ = [
    "Bounds",
    "DAG",
    "EmpiricalL1",
    "ExactDistribution",
    "Metric",
    "MetricsConfig",
    "build_dag",
    "default_metrics",
    "distribution_metrics",
    "policy_terminal_distribution",
]
