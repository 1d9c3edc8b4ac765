"""Shared on-policy policy-gradient update (REFERENCE.md §3); vpg.py, niu.py, trpo.py and ppo.py
only choose the advantage, the policy step and the backward-policy step.

One iteration (`PGAlgorithm.update`), everything inside jit:
  1. sample `batch_size` trajectories with the current P_F (on-policy; ε/temperature exploration
     is available but makes the estimators biased);
  2. backward-policy step (`pb` ≠ "uniform"): maximum likelihood of the batch's backward
     transitions ("tlm", and "learned" — for PG methods the ELBO gradient w.r.t. P_B is exactly
     that likelihood gradient), or an algorithm-specific objective (RL-B, RL-G);
  3. per-step soft rewards g_t under the current (old) policy, values V(s_t), advantages;
  4. policy step(s) on the surrogate (one Adam step; PPO epochs; a TRPO step);
  5. value regression (`value_epochs` × `value_minibatches` Adam steps) on the value targets.

Train state: params = {"net": policy (+ P_B head), "value": ValueNet (if used), "log_z": (Niu)},
opt_state = {"policy", "value", "pb"} separate Adam states (learning rates are sweepable leaves).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax

from gfnjax.algos.base import Algorithm, BaseConfig, TrainState, adam, resolve_torso
from gfnjax.losses.flow import backward_maximum_likelihood, subtrajectory_balance
from gfnjax.losses.pg import (
    gae,
    mean_center,
    normalize,
    pg_surrogate,
    reward_to_go,
    soft_return,
    soft_rewards,
)
from gfnjax.nets import ValueNet, make_torso
from gfnjax.rollout import Evaluation, Trajectory, evaluate, sample_forward
from gfnjax.utils import check_choice, check_range

sg = jax.lax.stop_gradient
ADVANTAGE_NORMS = ("none", "center", "normalize")


@dataclasses.dataclass(frozen=True)
class PGConfig(BaseConfig):
    """Fields of every policy-gradient algorithm (on top of BaseConfig).

    advantage_norm: "none" (default in (a) and (c)), "center" (mean-centred, Niu et al. (b)) or
        "normalize" (centred and divided by the std).
    """

    advantage_norm: str = "none"

    def __post_init__(self):
        super().__post_init__()
        check_choice(self, "advantage_norm", ADVANTAGE_NORMS)


@dataclasses.dataclass(frozen=True)
class ValueConfig(PGConfig):
    """Value-network fields.

    lam: GAE λ; 0.9 on hypergrid in (c) (0.7 for sequences).
    value_lr: Adam learning rate of the value net; 1e−3 (assumed equal to the policy lr; PPO uses
        3e−4 from (a) code).
    value_hidden: MLP widths of the value torso; () = same as `hidden`.
    value_epochs, value_minibatches: value regression passes over the batch × splits per pass
        (1 × 1 here; 4 × 2 in (a) code for PPO).
    """

    lam: float = 0.9
    value_lr: float = 1e-3
    value_hidden: tuple[int, ...] = ()
    value_epochs: int = 1
    value_minibatches: int = 1

    SWEEPABLE: ClassVar[tuple[str, ...]] = BaseConfig.SWEEPABLE + ("lam", "value_lr")

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "lam", 0.0, 1.0)
        check_range(self, "value_lr", 0.0, None, lo_open=True)
        if any((not isinstance(h, int)) or isinstance(h, bool) or h < 1 for h in self.value_hidden):
            raise ValueError(f"{type(self).__name__}.value_hidden must be positive ints, got {self.value_hidden!r}")
        check_range(self, "value_epochs", 1, None, integer=True)
        check_range(self, "value_minibatches", 1, self.batch_size, integer=True)
        if self.batch_size % self.value_minibatches:
            raise ValueError(
                f"{type(self).__name__}.value_minibatches ({self.value_minibatches}) must divide "
                f"batch_size ({self.batch_size})"
            )


def take_rows(tree: Any, idx: jax.Array) -> Any:
    """Select rows `idx` (int[b]) of every leaf with a leading batch axis."""
    return jax.tree_util.tree_map(lambda x: x[idx], tree)


def minibatch_indices(key: jax.Array, batch_size: int, num_minibatches: int) -> jax.Array:
    """A random split of range(B) into int[num_minibatches, B / num_minibatches]."""
    return jax.random.permutation(key, batch_size).reshape(num_minibatches, -1)


@dataclasses.dataclass(frozen=True)
class PGAlgorithm(Algorithm):
    """Base of every policy-gradient algorithm; subclasses set the class variables below."""

    advantage_kind: ClassVar[str] = "gae"  # "return" (VPG) | "rtg" | "gae"
    uses_value: ClassVar[bool] = False
    value_loss: ClassVar[str] = "td"  # "td" (MSE to TD(λ) targets) | "subtb" (log-flow by SubTB)
    Config: ClassVar[type] = PGConfig

    # networks -------------------------------------------------------------------------------
    @property
    def value_net(self) -> ValueNet:
        hidden = getattr(self.config, "value_hidden", ()) or self.config.hidden
        return ValueNet(torso=make_torso(resolve_torso(self.config, self.env), hidden, self.env))

    def values(self, value_params: Any, obs: jax.Array) -> jax.Array:
        """V(s) for obs float[..., D] -> float[...] (one batched pass)."""
        flat = obs.reshape((-1, obs.shape[-1]))
        return self.value_net.apply(value_params, flat).reshape(obs.shape[:-1])

    def log_z(self, state: TrainState) -> jax.Array | None:
        """V(s0) (soft value of s0 → log Z at the optimum), when there is a value net."""
        if not self.uses_value:
            return None
        obs0 = self.env.observe(self.env.reset(1))
        return self.values(state.params["value"], obs0)[0]

    # optimizers -----------------------------------------------------------------------------
    def optimizers(self, hp) -> dict[str, optax.GradientTransformation]:
        out = {"policy": adam(hp["lr"])}
        if self.uses_value:
            out["value"] = adam(hp["value_lr"])
        if self.config.pb != "uniform":
            out["pb"] = adam(hp["lr"])
        return out

    def init_params(self, key: jax.Array, hp) -> dict:
        k_net, k_value = jax.random.split(key)
        params = {"net": self.init_net(k_net)}
        if self.uses_value:
            params["value"] = self.value_net.init(k_value, jnp.zeros((1, self.env.obs_dim), jnp.float32))
        return params

    def init(self, key, hparams=None) -> TrainState:
        hp = self.resolve_hparams(hparams)
        params = self.init_params(key, hp)
        txs = self.optimizers(hp)
        opt_state = {
            name: tx.init(params["value"] if name == "value" else params["net"])
            for name, tx in txs.items()
        }
        return TrainState(params=params, opt_state=opt_state, hparams=hp, step=jnp.zeros((), jnp.int32))

    def _adam_step(self, state: TrainState, name: str, target: str, grads) -> TrainState:
        tx = self.optimizers(state.hparams)[name]
        updates, opt = tx.update(grads, state.opt_state[name], state.params[target])
        params = dict(state.params)
        params[target] = optax.apply_updates(state.params[target], updates)
        return state.replace(params=params, opt_state={**state.opt_state, name: opt})

    # pieces ------------------------------------------------------------------------------------
    def evaluation(self, net_params: Any, traj: Trajectory) -> Evaluation:
        return evaluate(lambda o: self.apply_net(net_params, o), traj)

    def backward_loss(self, net_params: Any, traj: Trajectory, key: jax.Array, state: TrainState):
        """Loss of the backward policy (pb ≠ "uniform"): −mean Σ log P_B on the batch (TLM)."""
        ev = self.evaluation(net_params, traj)
        return backward_maximum_likelihood(ev.log_pb, traj.mask)

    def backward_update(self, state: TrainState, traj: Trajectory, key: jax.Array):
        if self.config.pb == "uniform":
            return state, {}
        loss, grads = jax.value_and_grad(self.backward_loss)(state.params["net"], traj, key, state)
        return self._adam_step(state, "pb", "net", grads), {"pb_loss": loss}

    def advantages(self, state: TrainState, ev: Evaluation, traj: Trajectory, values: jax.Array):
        """(advantages [B, T], value targets [B, T] or None, new state, info) under π_old."""
        g = soft_rewards(ev.log_pf, ev.log_pb, traj.log_reward, traj.mask, traj.done)
        info = {"soft_return": soft_return(g, traj.mask).mean()}
        if self.advantage_kind == "return":
            adv = jnp.where(traj.mask, soft_return(g, traj.mask)[:, None], 0.0)
            targets = None
        elif self.advantage_kind == "rtg":
            adv, targets = reward_to_go(g, traj.mask), None
        else:
            adv, targets = gae(g, values, traj.mask, state.hparams["lam"])
        return self.normalize(adv, traj.mask), targets, state, info

    def normalize(self, adv: jax.Array, mask: jax.Array) -> jax.Array:
        if self.config.advantage_norm == "center":
            return mean_center(adv, mask)
        if self.config.advantage_norm == "normalize":
            return normalize(adv, mask)
        return adv

    def policy_update(self, state, traj, ev_old, adv, key):
        """One Adam step on the REINFORCE surrogate."""

        def loss_fn(net_params):
            ev = self.evaluation(net_params, traj)
            return pg_surrogate(ev.log_pf, adv, traj.mask)

        loss, grads = jax.value_and_grad(loss_fn)(state.params["net"])
        return self._adam_step(state, "policy", "net", grads), {"loss": loss}

    def value_objective(self, value_params, traj, ev_old, targets, hp):
        v = self.values(value_params, traj.obs)  # [b, T+1]
        if self.value_loss == "subtb":
            # V as a log-flow, P_F and P_B fixed, V(x) := log R(x) (REFERENCE.md §3.5)
            return subtrajectory_balance(
                ev_old.log_pf, ev_old.log_pb, v, traj.log_reward, traj.mask, traj.done,
                hp["subtb_lam"],
            )
        sq = jnp.where(traj.mask, v[:, :-1] - targets, 0.0) ** 2
        return sq.sum() / jnp.maximum(traj.mask.sum(), 1)

    def value_update(self, state, traj, ev_old, targets, key):
        """`value_epochs` passes × `value_minibatches` Adam steps (nested lax.scan)."""
        if not self.uses_value:
            return state, {}
        cfg = self.config
        data = (traj, ev_old, targets)

        def minibatch(state, idx):
            t, e, y = take_rows(data, idx)
            loss, grads = jax.value_and_grad(self.value_objective)(
                state.params["value"], t, e, y, state.hparams
            )
            return self._adam_step(state, "value", "value", grads), loss

        def epoch(state, k):
            return jax.lax.scan(minibatch, state, minibatch_indices(k, traj.batch_size, cfg.value_minibatches))

        state, losses = jax.lax.scan(epoch, state, jax.random.split(key, cfg.value_epochs))
        return state, {"value_loss": losses[-1].mean()}

    # the update ----------------------------------------------------------------------------------
    def update(self, state: TrainState, key: jax.Array):
        hp = state.hparams
        k_sample, k_pb, k_pol, k_val = jax.random.split(key, 4)
        traj = sg(sample_forward(
            self.env, k_sample, self.policy_fn(state), self.config.batch_size,
            epsilon=hp["epsilon"], temperature=hp["temperature"],
        ))
        state, info = self.backward_update(state, traj, k_pb)
        ev_old = sg(self.evaluation(state.params["net"], traj))
        values = (
            sg(self.values(state.params["value"], traj.obs)) if self.uses_value
            else jnp.zeros(traj.obs.shape[:2], jnp.float32)
        )
        adv, targets, state, adv_info = self.advantages(state, ev_old, traj, values)
        state, pol_info = self.policy_update(state, traj, ev_old, adv, k_pol)
        state, val_info = self.value_update(state, traj, ev_old, targets, k_val)
        info = {**info, **adv_info, **pol_info, **val_info}
        info.update(
            num_trajectories=jnp.asarray(traj.batch_size, jnp.int32),
            num_transitions=traj.length.sum().astype(jnp.int32),
            terminals=traj.final_state,
            mean_log_reward=traj.log_reward.mean(),
        )
        return state.replace(step=state.step + 1), info
