"""Shared on-policy update of the flow objectives (TB, DB, SubTB, FM).

Each iteration: sample `batch_size` trajectories with the current policy (optional ε / temperature
exploration), evaluate log P_F, log P_B and log F in one batched network pass, take one Adam step
on the objective. `tb.py`, `db.py`, `subtb.py` and `fm.py` only define their config and loss.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import optax

from gfnjax.algos.base import Algorithm, BaseConfig, TrainState, adam
from gfnjax.losses.flow import backward_maximum_likelihood
from gfnjax.rollout import Evaluation, Trajectory, evaluate, sample_forward
from gfnjax.utils import check_range


@dataclasses.dataclass(frozen=True)
class FlowConfig(BaseConfig):
    """lr_log_z: learning rate of log Z (TB) — 0.1 in the authors' code (REFERENCE.md §1)."""

    lr_log_z: float = 0.1

    SWEEPABLE: ClassVar[tuple[str, ...]] = BaseConfig.SWEEPABLE + ("lr_log_z",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "lr_log_z", 0.0, None, lo_open=True)


@dataclasses.dataclass(frozen=True)
class FlowAlgorithm(Algorithm):
    uses_log_z: ClassVar[bool] = False

    def optimizer(self, hp) -> optax.GradientTransformation:
        if not self.uses_log_z:
            return optax.multi_transform({"net": adam(hp["lr"])}, {"net": "net"})
        return optax.multi_transform(
            {"net": adam(hp["lr"]), "log_z": adam(hp["lr_log_z"])},
            {"net": "net", "log_z": "log_z"},
        )

    def init(self, key, hparams=None) -> TrainState:
        hp = self.resolve_hparams(hparams)
        params = {"net": self.init_net(key)}
        if self.uses_log_z:
            params["log_z"] = jnp.zeros((), jnp.float32)
        return TrainState(
            params=params,
            opt_state=self.optimizer(hp).init(params),
            hparams=hp,
            step=jnp.zeros((), jnp.int32),
        )

    def log_z(self, state):
        return state.params["log_z"] if self.uses_log_z else None

    def objective(self, params, ev: Evaluation, traj: Trajectory, hp) -> jax.Array:
        raise NotImplementedError

    def evaluation(self, params, traj: Trajectory) -> Evaluation:
        ev = evaluate(lambda o: self.apply_net(params["net"], o), traj)
        return ev

    def loss(self, params, traj: Trajectory, hp) -> tuple[jax.Array, dict]:
        ev = self.evaluation(params, traj)
        extra = jnp.zeros(())
        if self.config.pb == "tlm":
            extra = backward_maximum_likelihood(ev.log_pb, traj.mask)
            ev = ev.replace(log_pb=jax.lax.stop_gradient(ev.log_pb))
        obj = self.objective(params, ev, traj, hp)
        return obj + extra, {"loss": obj, "pb_loss": extra}

    def update(self, state: TrainState, key):
        hp = state.hparams
        traj = sample_forward(
            self.env, key, self.policy_fn(state), self.config.batch_size,
            epsilon=hp["epsilon"], temperature=hp["temperature"],
        )
        traj = jax.lax.stop_gradient(traj)
        (_, aux), grads = jax.value_and_grad(self.loss, has_aux=True)(state.params, traj, hp)
        tx = self.optimizer(hp)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        info = dict(aux)
        info.update(
            num_trajectories=jnp.asarray(traj.batch_size, jnp.int32),
            num_transitions=traj.length.sum().astype(jnp.int32),
            terminals=traj.final_state,
            mean_log_reward=traj.log_reward.mean(),
        )
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1), info
