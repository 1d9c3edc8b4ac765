"""The one training loop: every algorithm × environment runs through it.

    train(key, hparams) = scan over evaluations of (scan of `eval_every` algo.update; metrics)

The whole run is one jitted program; `train_seeds` vmaps it over keys (and optionally over a
hyperparameter grid). `Trainer.run` runs a chunk of evaluation periods from a carry so the
harness can print progress between chunks; `train` is exactly `init` + `run` over every period,
so chunked and single-program runs give the same numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import struct

from gfnjax.algos.base import Algorithm, TrainState
from gfnjax.metrics import MetricsConfig, default_metrics


class Carry(struct.PyTreeNode):
    """Loop state: the algorithm's train state, the PRNG key, counters and metric carries."""

    state: TrainState
    key: jax.Array
    iteration: jax.Array  # int32[]
    trajectories: jax.Array  # float32[] (float: no int32 overflow in long runs)
    transitions: jax.Array  # float32[]
    metric_carry: Any


@dataclasses.dataclass(frozen=True, eq=False)
class Trainer:
    """Binds an algorithm, the evaluation schedule and the metrics into pure functions."""

    algo: Algorithm
    num_iterations: int
    eval_every: int
    metrics: Sequence[Any]

    @property
    def num_evals(self) -> int:
        return self.num_iterations // self.eval_every

    def init(self, key: jax.Array, hparams: dict | None = None) -> Carry:
        k_init, k_loop = jax.random.split(key)
        return Carry(
            state=self.algo.init(k_init, hparams),
            key=k_loop,
            iteration=jnp.zeros((), jnp.int32),
            trajectories=jnp.zeros((), jnp.float32),
            transitions=jnp.zeros((), jnp.float32),
            metric_carry=tuple(m.init() for m in self.metrics),
        )

    def step(self, carry: Carry, _=None) -> tuple[Carry, dict]:
        key, k_update = jax.random.split(carry.key)
        state, info = self.algo.update(carry.state, k_update)
        mc = tuple(m.update(c, info) for m, c in zip(self.metrics, carry.metric_carry))
        carry = Carry(
            state=state,
            key=key,
            iteration=carry.iteration + 1,
            trajectories=carry.trajectories + info["num_trajectories"].astype(jnp.float32),
            transitions=carry.transitions + info["num_transitions"].astype(jnp.float32),
            metric_carry=mc,
        )
        scalars = {k: v for k, v in info.items() if k != "terminals" and jnp.ndim(v) == 0}
        return carry, scalars

    def evaluate(self, carry: Carry) -> tuple[Carry, dict]:
        key, k_eval = jax.random.split(carry.key)
        out = {
            "iteration": carry.iteration.astype(jnp.float32),
            "trajectories": carry.trajectories,
            "transitions": carry.transitions,
        }
        keys = jax.random.split(k_eval, max(len(self.metrics), 1))
        for m, c, k in zip(self.metrics, carry.metric_carry, keys):
            out.update({name: jnp.asarray(v, jnp.float32) for name, v in m.compute(c, self.algo, carry.state, k).items()})
        return carry.replace(key=key), out

    def period(self, carry: Carry, _=None) -> tuple[Carry, dict]:
        carry, info = jax.lax.scan(self.step, carry, None, length=self.eval_every)
        carry, out = self.evaluate(carry)
        out.update({f"train_{k}": v.mean() for k, v in info.items() if k not in ("num_trajectories", "num_transitions")})
        return carry, out

    def run(self, carry: Carry, num_periods: int) -> tuple[Carry, dict]:
        """`num_periods` evaluation periods from `carry`; curves have a leading [num_periods] axis."""
        return jax.lax.scan(self.period, carry, None, length=num_periods)

    def train(self, key: jax.Array, hparams: dict | None = None) -> tuple[Carry, dict]:
        """The whole run: curves float32[num_evals + 1] (the first point is before training)."""
        carry = self.init(key, hparams)
        carry, first = self.evaluate(carry)
        carry, curves = self.run(carry, self.num_evals)
        curves = {
            k: jnp.concatenate([jnp.asarray(first[k])[None], v]) if k in first else jnp.concatenate([jnp.full((1,), jnp.nan), v])
            for k, v in curves.items()
        }
        return carry, curves


def make_trainer(
    algo: Algorithm,
    num_iterations: int,
    eval_every: int | None = None,
    metrics: Sequence[Any] | None = None,
    metrics_config: MetricsConfig | None = None,
) -> Trainer:
    """Validate the schedule and build the metrics once (outside jit)."""
    if not isinstance(num_iterations, int) or num_iterations < 1:
        raise ValueError(f"num_iterations must be an integer ≥ 1, got {num_iterations!r}")
    eval_every = eval_every or num_iterations
    if not isinstance(eval_every, int) or not 1 <= eval_every <= num_iterations:
        raise ValueError(f"eval_every must be an integer in [1, num_iterations={num_iterations}], got {eval_every!r}")
    if num_iterations % eval_every:
        raise ValueError(
            f"num_iterations ({num_iterations}) must be a multiple of eval_every ({eval_every})"
        )
    if metrics is None:
        metrics = default_metrics(algo.env, metrics_config)
    return Trainer(algo=algo, num_iterations=num_iterations, eval_every=eval_every, metrics=tuple(metrics))


def train(
    algo: Algorithm, key: jax.Array, num_iterations: int, eval_every: int | None = None,
    hparams: dict | None = None, **kwargs,
) -> tuple[Carry, dict]:
    """Train one seed inside one jitted program; returns the final carry and the metric curves."""
    trainer = make_trainer(algo, num_iterations, eval_every, **kwargs)
    return jax.jit(trainer.train)(key, hparams)


def map_rows(fn, in_axes: tuple, seed_batch: int | None = None):
    """Map `fn` over a leading row axis (seeds, or a flattened seed × hyperparameter grid).

    seed_batch=None: `vmap` over every row (the right choice on accelerators). seed_batch=k ≥ 1:
    `lax.map` over rows, vmapping k rows at a time; on a CPU, k = 1 is fastest, because XLA:CPU
    runs per-row-weight batched matmuls slower than the same matmuls one row at a time (see
    benchmarks/vmap_throughput.md). Either way it is one compiled program and every row computes
    exactly what it computes alone.
    """
    if seed_batch is None:
        return jax.vmap(fn, in_axes=in_axes)
    if not isinstance(seed_batch, int) or seed_batch < 1:
        raise ValueError(f"seed_batch must be None (vmap all rows) or an integer ≥ 1, got {seed_batch!r}")

    def mapped(*args):
        rows = tuple(a for a, ax in zip(args, in_axes) if ax == 0)

        def one(xs):
            it = iter(xs)
            return fn(*[next(it) if ax == 0 else a for a, ax in zip(args, in_axes)])

        return jax.lax.map(one, rows, batch_size=seed_batch if seed_batch > 1 else None)

    return mapped


def default_seed_batch() -> int | None:
    """1 (rows one after another inside the program) on CPU, None (vmap every row) elsewhere."""
    return 1 if jax.default_backend() == "cpu" else None


def train_seeds(
    algo: Algorithm, keys: jax.Array, num_iterations: int, eval_every: int | None = None,
    hparams: dict | None = None, hparams_batched: bool = False, seed_batch: int | None = None,
    **kwargs,
) -> tuple[Carry, dict]:
    """Train one seed per key as a vmapped axis of one program: leaves get a leading [num_seeds].

    With `hparams_batched=True`, every hparams leaf has the same leading axis as `keys` (a grid
    flattened to cells), so a seed × learning-rate grid is one program. `seed_batch` chooses
    between vmapping every row (None, default) and `lax.map` over rows (see `map_rows`).
    """
    trainer = make_trainer(algo, num_iterations, eval_every, **kwargs)
    in_axes = (0, 0 if hparams_batched else None)
    return jax.jit(map_rows(trainer.train, in_axes, seed_batch))(keys, hparams)
