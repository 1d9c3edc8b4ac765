"""Shared pieces of every algorithm: config base, train state, network and optimizer builders.

An algorithm is a frozen dataclass `Algo(env, config)` with
  init(key, hparams=None) -> TrainState
  update(state, key) -> (TrainState, info)
  policy_fn(state) -> rollout.PolicyFn        (what is sampled and evaluated by the metrics)
so a run is `lax.scan(update, init(key))` and a seed sweep is `vmap` of that over keys.

Hyperparameters that do not change shapes (`Config.SWEEPABLE`) are array leaves of
`TrainState.hparams` (learning rates also live in the optax state via `inject_hyperparams`), so a
grid over them is `vmap`ped like seeds. `info` always contains `num_trajectories`,
`num_transitions` (real, unpadded) and `terminals` (the terminal states sampled this update, for
the empirical-distribution metrics).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from gfnjax.envs.base import Env
from gfnjax.nets import PolicyNet, make_torso
from gfnjax.rollout import PolicyFn
from gfnjax.utils import check_choice, check_range

PB_CHOICES = ("uniform", "learned", "tlm")


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """Fields shared by every algorithm.

    batch_size: trajectories sampled per iteration; 16 on hypergrid/bitseq in (a, c).
    hidden: MLP widths of the shared torso; 2×256 as in (a, c) and gfnx.
    torso: "mlp" or a registered torso (e.g. "transformer" for sequences); "auto" = env default.
    lr: policy learning rate (Adam); 1e−3 (a, c code).
    epsilon: ε-uniform exploration mixed into the sampling policy; 0 (on-policy) by default.
    temperature: sampling temperature of the behaviour policy; 1.
    pb: backward policy — "uniform" over parents (default in a, b, c), "learned" (trained by the
        objective), or "tlm" (trained by maximum likelihood of the batch's backward transitions,
        REFERENCE.md §1, with P_B stop-gradient in the main objective).
    """

    batch_size: int = 16
    hidden: tuple[int, ...] = (256, 256)
    torso: str = "auto"
    lr: float = 1e-3
    epsilon: float = 0.0
    temperature: float = 1.0
    pb: str = "uniform"

    SWEEPABLE: ClassVar[tuple[str, ...]] = ("lr", "epsilon", "temperature")

    def __post_init__(self):
        check_range(self, "batch_size", 1, None, integer=True)
        if not self.hidden or any(
            (not isinstance(h, int)) or isinstance(h, bool) or h < 1 for h in self.hidden
        ):
            raise ValueError(f"{type(self).__name__}.hidden must be positive ints, got {self.hidden!r}")
        check_range(self, "lr", 0.0, None, lo_open=True)
        check_range(self, "epsilon", 0.0, 1.0)
        check_range(self, "temperature", 0.0, None, lo_open=True)
        check_choice(self, "pb", PB_CHOICES)

    def default_hparams(self) -> dict[str, jax.Array]:
        return {k: jnp.asarray(getattr(self, k), jnp.float32) for k in self.SWEEPABLE}


class TrainState(struct.PyTreeNode):
    """params: dict of parameter pytrees ('net' and algorithm extras such as 'log_z');
    opt_state: optax state; hparams: dict of float32[] sweepable values; step: int32[];
    extra: algorithm-specific pytree (value nets, replay buffer, ...)."""

    params: Any
    opt_state: Any
    hparams: dict
    step: jax.Array
    extra: Any = None


def adam(lr) -> optax.GradientTransformation:
    """Adam whose learning rate lives in the optimizer state (a sweepable array leaf)."""
    return optax.inject_hyperparams(optax.adam)(learning_rate=lr)


def resolve_torso(config: BaseConfig, env: Env) -> str:
    if config.torso != "auto":
        return config.torso
    return getattr(env, "default_torso", "mlp")


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """Base class; see the module docstring."""

    env: Env
    config: BaseConfig

    name: ClassVar[str] = "algorithm"
    Config: ClassVar[type] = BaseConfig

    # networks ------------------------------------------------------------------------------
    @property
    def net(self) -> PolicyNet:
        return PolicyNet(
            num_actions=self.env.num_actions,
            num_backward_actions=self.env.num_backward_actions,
            torso=make_torso(resolve_torso(self.config, self.env), self.config.hidden, self.env),
            learn_pb=self.config.pb != "uniform",
            flow_head=self.uses_flow_head,
        )

    uses_flow_head: ClassVar[bool] = False

    def init_net(self, key: jax.Array) -> Any:
        return self.net.init(key, jnp.zeros((1, self.env.obs_dim), jnp.float32))

    def apply_net(self, net_params: Any, obs: jax.Array):
        return self.net.apply(net_params, obs)

    def policy_fn(self, state: TrainState) -> PolicyFn:
        """Forward logits and (learned or None) backward logits of the current policy."""

        def fn(obs):
            out = self.apply_net(state.params["net"], obs)
            return out.logits, out.backward_logits

        return fn

    def log_z(self, state: TrainState) -> jax.Array | None:
        """The algorithm's own estimate of log Z, if it has one."""
        return None

    # training --------------------------------------------------------------------------------
    def default_hparams(self) -> dict[str, jax.Array]:
        return self.config.default_hparams()

    def resolve_hparams(self, hparams: dict | None) -> dict[str, jax.Array]:
        out = self.default_hparams()
        for k, v in (hparams or {}).items():
            if k not in out:
                raise ValueError(
                    f"{k!r} is not a sweepable hyperparameter of {self.name}; valid: {sorted(out)}"
                )
            out[k] = jnp.asarray(v, jnp.float32)
        return out

    def init(self, key: jax.Array, hparams: dict | None = None) -> TrainState:
        raise NotImplementedError

    def update(self, state: TrainState, key: jax.Array) -> tuple[TrainState, dict]:
        raise NotImplementedError
