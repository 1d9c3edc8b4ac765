"""The one training loop: every algorithm × environment runs through it.

    train(key, hparams) = scan over evaluations of (scan of `eval_every` algo.update; metrics)

The loop reads an update's typed `StepInfo` (trajectory and transition counts, terminal states
for the metrics, diagnostics) and flags divergence: a non-finite diagnostic or parameter sets
`Carry.diverged_at` and the `diverged` curve, which the harness reports as a failed run.

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
    """Loop state: the algorithm's train state, the PRNG key, counters and metric carries.

    diverged_at: int32[] the first iteration whose update produced a non-finite loss or
    diagnostic, or whose period ended with non-finite parameters; −1 while the run is healthy.
    """

    state: TrainState
    key: jax.Array
    iteration: jax.Array  # int32[]
    trajectories: jax.Array  # float32[] (float: no int32 overflow in long runs)
    transitions: jax.Array  # float32[]
    metric_carry: Any
    diverged_at: jax.Array  # int32[]


def _all_finite(tree: Any) -> jax.Array:
    leaves = [
        jnp.all(jnp.isfinite(x))
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


@dataclasses.dataclass(frozen=True, eq=False)
class Trainer:
    """Binds an algorithm, the evaluation schedule and the metrics into pure functions.

    Evaluations happen before training and after every `eval_every` iterations; when
    `num_iterations` is not a multiple of `eval_every`, the last period is shorter.
    """

    algo: Algorithm
    num_iterations: int
    eval_every: int
    metrics: Sequence[Any]

    @property
    def num_evals(self) -> int:
        return -(-self.num_iterations // self.eval_every)

    @property
    def last_period(self) -> int:
        """Length of the last period (eval_every unless num_iterations is not a multiple)."""
        return self.num_iterations - (self.num_evals - 1) * self.eval_every

    def period_length(self, index: int) -> int:
        """Iterations in period `index` (0-based)."""
        return self.last_period if index == self.num_evals - 1 else self.eval_every

    def init(self, key: jax.Array, hparams: dict | None = None) -> Carry:
        k_init, k_loop = jax.random.split(key)
        return Carry(
            state=self.algo.init(k_init, hparams),
            key=k_loop,
            iteration=jnp.zeros((), jnp.int32),
            trajectories=jnp.zeros((), jnp.float32),
            transitions=jnp.zeros((), jnp.float32),
            metric_carry=tuple(m.init() for m in self.metrics),
            diverged_at=jnp.full((), -1, jnp.int32),
        )

    def step(self, carry: Carry, _=None) -> tuple[Carry, dict]:
        key, k_update = jax.random.split(carry.key)
        state, info = self.algo.update(carry.state, k_update)
        mc = tuple(m.update(c, info) for m, c in zip(self.metrics, carry.metric_carry))
        bad = ~_all_finite(info.scalars)
        carry = Carry(
            state=state,
            key=key,
            iteration=carry.iteration + 1,
            trajectories=carry.trajectories + info.num_trajectories.astype(jnp.float32),
            transitions=carry.transitions + info.num_transitions.astype(jnp.float32),
            metric_carry=mc,
            diverged_at=jnp.where(
                (carry.diverged_at < 0) & bad, carry.iteration + 1, carry.diverged_at
            ),
        )
        return carry, info.scalars

    def evaluate(self, carry: Carry) -> tuple[Carry, dict]:
        key, k_eval = jax.random.split(carry.key)
        out = {
            "iteration": carry.iteration.astype(jnp.float32),
            "trajectories": carry.trajectories,
            "transitions": carry.transitions,
        }
        keys = jax.random.split(k_eval, max(len(self.metrics), 1))
        for m, c, k in zip(self.metrics, carry.metric_carry, keys):
            values = m.compute(c, self.algo, carry.state, k)
            out.update({name: jnp.asarray(v, jnp.float32) for name, v in values.items()})
        bad = ~_all_finite(carry.state.params)
        diverged_at = jnp.where((carry.diverged_at < 0) & bad, carry.iteration, carry.diverged_at)
        out["diverged"] = (diverged_at >= 0).astype(jnp.float32)
        return carry.replace(key=key, diverged_at=diverged_at), out

    def period(self, carry: Carry, _=None, length: int | None = None) -> tuple[Carry, dict]:
        """`length` (default eval_every) updates, then one evaluation."""
        carry, info = jax.lax.scan(self.step, carry, None, length=length or self.eval_every)
        carry, out = self.evaluate(carry)
        out.update({f"train_{k}": v.mean() for k, v in info.items()})
        return carry, out

    def run(self, carry: Carry, num_periods: int, length: int | None = None) -> tuple[Carry, dict]:
        """`num_periods` periods of `length` iterations (default eval_every) from `carry`;
        curves have a leading [num_periods] axis."""
        return jax.lax.scan(
            lambda c, _: self.period(c, length=length), carry, None, length=num_periods
        )

    def train(self, key: jax.Array, hparams: dict | None = None) -> tuple[Carry, dict]:
        """The whole run: curves float32[num_evals + 1] (the first point is before training)."""
        carry = self.init(key, hparams)
        carry, first = self.evaluate(carry)
        pieces = []
        full = self.num_evals - (1 if self.last_period != self.eval_every else 0)
        if full:
            carry, curves = self.run(carry, full)
            pieces.append(curves)
        if self.last_period != self.eval_every:
            carry, curves = self.run(carry, 1, self.last_period)
            pieces.append(curves)
        curves = {k: jnp.concatenate([p[k] for p in pieces]) for k in pieces[0]}
        curves = {
            k: jnp.concatenate(
                [jnp.asarray(first[k])[None] if k in first else jnp.full((1,), jnp.nan), v]
            )
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
    if (
        isinstance(num_iterations, bool)
        or not isinstance(num_iterations, int)
        or num_iterations < 1
    ):
        raise ValueError(f"num_iterations must be an integer ≥ 1, got {num_iterations!r}")
    eval_every = num_iterations if eval_every is None else eval_every
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be an integer ≥ 1, got {eval_every!r}")
    eval_every = min(eval_every, num_iterations)
    if metrics is None:
        metrics = default_metrics(algo.env, metrics_config)
    return Trainer(
        algo=algo, num_iterations=num_iterations, eval_every=eval_every, metrics=tuple(metrics)
    )


def train(
    algo: Algorithm,
    key: jax.Array,
    num_iterations: int,
    eval_every: int | None = None,
    hparams: dict | None = None,
    **kwargs,
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
        raise ValueError(
            f"seed_batch must be None (vmap all rows) or an integer ≥ 1, got {seed_batch!r}"
        )

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
    algo: Algorithm,
    keys: jax.Array,
    num_iterations: int,
    eval_every: int | None = None,
    hparams: dict | None = None,
    hparams_batched: bool = False,
    seed_batch: int | None = None,
    **kwargs,
) -> tuple[Carry, dict]:
    """Train one seed per key as a vmapped axis of one program: leaves get a leading [num_seeds].

    With `hparams_batched=True`, every hparams leaf has the same leading axis as `keys` (a grid
    flattened to cells), so a seed × learning-rate grid is one program. `seed_batch` chooses
    between vmapping every row (None, default) and `lax.map` over rows (see `map_rows`).
    """
    trainer = make_trainer(for_rows(algo, seed_batch), num_iterations, eval_every, **kwargs)
    in_axes = (0, 0 if hparams_batched else None)
    return jax.jit(map_rows(trainer.train, in_axes, seed_batch))(keys, hparams)


def for_rows(algo: Algorithm, seed_batch: int | None) -> Algorithm:
    """The algorithm as run by `map_rows(seed_batch)`: rows vmapped together (seed_batch None or
    > 1) run padded network passes, since a packed pass switches on a batched index, which under
    vmap computes every capacity (gfnjax.rollout.apply_packed); both give the same numbers."""
    vmapped = seed_batch is None or seed_batch > 1
    return dataclasses.replace(algo, pack=False) if vmapped and algo.pack else algo
