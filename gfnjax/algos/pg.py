"""Shared on-policy policy-gradient update (docs/methods.md §3); vpg.py, niu.py, trpo.py and
ppo.py only choose the advantage, the policy step and the backward-policy step.

One iteration (`PGAlgorithm.update`), everything inside jit:
  1. sample `batch_size` trajectories with the current P_F (on-policy; ε/temperature exploration
     is available but makes the estimators biased);
  2. backward-policy step (`pb` ≠ "uniform"): maximum likelihood of the batch's backward
     transitions ("tlm": `pb_steps` Adam steps; "learned": one, which is exactly the ELBO
     gradient with respect to P_B); RL-B and RL-G train P_B after the forward update instead;
  3. per-step soft rewards g_t under the current (old) policy, values V(s_t), advantages;
  4. policy step(s) on the surrogate (one Adam step; PPO epochs; a TRPO step);
  5. value regression (`value_epochs` × `value_minibatches` Adam steps) on the value targets.

Parameters: {"net": policy (+ P_B head), "value": ValueNet (if used), "log_z": (Niu)}; optimiser
phases "policy", "value" and "pb" with separate Adam states (gfnjax.algos.base).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from gfnjax.algos.base import (
    MINIBATCH_ORDERS,
    Algorithm,
    BaseConfig,
    StepInfo,
    TrainState,
    check_divides,
    check_widths,
    minibatch_epochs,
    step_info,
)
from gfnjax.losses.flow import subtrajectory_balance
from gfnjax.losses.pg import (
    gae,
    mean_center,
    normalize,
    pg_surrogate,
    reward_to_go,
    soft_return,
    soft_rewards,
    value_regression,
)
from gfnjax.nets import ValueNet
from gfnjax.rollout import Evaluation, Trajectory, apply_packed, state_validity
from gfnjax.utils import check_choice, check_range

ADVANTAGE_NORMS = ("none", "center", "normalize")
VALUE_TARGETS = ("fixed", "recomputed")
VALUE_AVERAGES = ("transitions", "positions", "trajectories")


@dataclasses.dataclass(frozen=True)
class PGConfig(BaseConfig):
    """Fields of every policy-gradient algorithm (on top of BaseConfig).

    advantage_norm: "none" (Ent-PPO and Tiapkin et al.; default), "center" (mean-centred over
        the batch's valid steps, Niu et al.) or "normalize" (centred and divided by the std).
    """

    advantage_norm: str = "none"

    def __post_init__(self):
        super().__post_init__()
        check_choice(self, "advantage_norm", ADVANTAGE_NORMS)


@dataclasses.dataclass(frozen=True)
class ValueConfig(PGConfig):
    """Value-network fields.

    value_lr: Adam learning rate of the value net; 1e−3 (Ent-PPO GAE code).
    value_hidden: MLP widths of the value torso; () = same as `hidden`.
    value_epochs, value_minibatches: value regression passes over the batch × splits per pass.
    value_targets: "fixed" (targets computed once with V_old, as the Ent-PPO molecule code) or
        "recomputed" (recomputed with the current V before every value step, as the Ent-PPO
        hypergrid code).
    value_average: "transitions" (squared error averaged over valid steps), "positions"
        (averaged over all B·T positions, padding as zero error: the Ent-PPO PPO and GAE code
        for hypergrid and QM9; the same up to the batch's share of valid steps, which Adam
        nearly cancels) or "trajectories" (summed over each trajectory, averaged over
        trajectories: Niu et al.).
    minibatch_order: how each epoch splits the batch into minibatches: "shuffled" (a new random
        partition every epoch, as PPO usually does; gfnjax's default, with which the studies in
        experiments/ ran) or "fixed" (contiguous splits of the batch, the same in every epoch:
        what every Ent-PPO script does, gfnx baselines and the molecule code alike). The
        trajectories of a batch are exchangeable, so the two differ only in which trajectories
        share a minibatch in later epochs.
    """

    value_lr: float = 1e-3
    value_hidden: tuple[int, ...] = ()
    value_epochs: int = 1
    value_minibatches: int = 1
    value_targets: str = "fixed"
    value_average: str = "transitions"
    minibatch_order: str = "shuffled"

    SWEEPABLE: ClassVar[tuple[str, ...]] = PGConfig.SWEEPABLE + ("value_lr",)

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.value_hidden, list):
            object.__setattr__(self, "value_hidden", tuple(self.value_hidden))
        check_range(self, "value_lr", 0.0, 1e3, lo_open=True)
        check_widths(self, "value_hidden", allow_empty=True)
        check_range(self, "value_epochs", 1, 1000, integer=True)
        check_divides(self, "value_minibatches")
        check_choice(self, "value_targets", VALUE_TARGETS)
        check_choice(self, "value_average", VALUE_AVERAGES)
        check_choice(self, "minibatch_order", MINIBATCH_ORDERS)


@dataclasses.dataclass(frozen=True)
class GAEConfig(ValueConfig):
    """GAE fields.

    lam: GAE λ; 0.9 for GAE on hypergrid (Ent-PPO code), 0.7 for PPO, 0.99 for Niu et al.
    value_target_lam: λ of the value targets; None = `lam` (the TD(λ) return of GAE), 1 =
        Monte-Carlo returns (Niu et al.).
    """

    lam: float = 0.9
    value_target_lam: float | None = None

    SWEEPABLE: ClassVar[tuple[str, ...]] = ValueConfig.SWEEPABLE + ("lam",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "lam", 0.0, 1.0)
        if self.value_target_lam is not None:
            check_range(self, "value_target_lam", 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class PGAlgorithm(Algorithm):
    """Base of every policy-gradient algorithm; subclasses set the class variables below."""

    advantage_kind: ClassVar[str] = "gae"  # "return" (VPG) | "rtg" | "gae"
    uses_value: ClassVar[bool] = False
    value_loss: ClassVar[str] = "td"  # "td" (MSE to TD(λ) targets) | "subtb" (log-flow by SubTB)
    pb_after_forward: ClassVar[bool] = False  # RL-B / RL-G: P_B is trained after the P_F step
    Config: ClassVar[type] = PGConfig

    # networks -------------------------------------------------------------------------------
    @property
    def value_net(self) -> ValueNet:
        hidden = getattr(self.config, "value_hidden", ()) or self.config.hidden
        return ValueNet(torso=self.torso(hidden), output_init=self.config.output_init)

    def values(self, value_params: Any, obs: jax.Array) -> jax.Array:
        """V(s) for obs float[..., D] -> float[...] (one batched pass)."""
        flat = obs.reshape((-1, obs.shape[-1]))
        return self.value_net.apply(value_params, flat).reshape(obs.shape[:-1])

    def trajectory_values(self, value_params: Any, traj: Trajectory) -> jax.Array:
        """V(s_t) for every state of a batch, float[B, T+1], computed on its real states only
        (padded positions hold finite values that every consumer masks)."""
        B, T1 = traj.obs.shape[:2]
        flat = traj.obs.reshape((B * T1, -1))
        fn = lambda o: self.value_net.apply(value_params, o)
        valid = state_validity(traj).reshape(-1)
        return apply_packed(fn, flat, valid, 2 * B, self.pack).reshape(B, T1)

    def log_z(self, state: TrainState) -> jax.Array | None:
        """V(s0) (soft value of s0 → log Z at the optimum), when there is a value net."""
        if not self.uses_value:
            return None
        return self.values(state.params["value"], self.s0_obs())[0]

    # optimisers -----------------------------------------------------------------------------
    def trains_pb_separately(self) -> bool:
        return self.config.pb != "uniform"

    def policy_groups(self, hp) -> dict[str, Any]:
        return {"net": hp["lr"]}

    def phases(self, hp):
        out = {"policy": self.policy_groups(hp)}
        if self.uses_value:
            out["value"] = {"value": hp["value_lr"]}
        return {**out, **self.pb_phase(hp)}

    def init_params(self, key: jax.Array, hp) -> dict:
        k_net, k_value = jax.random.split(key)
        params = {"net": self.init_net(k_net)}
        if self.uses_value:
            obs = jnp.zeros((1, self.env.obs_dim), jnp.float32)
            params["value"] = self.value_net.init(k_value, obs)
        return params

    def init(self, key, hparams=None) -> TrainState:
        hp = self.resolve_hparams(hparams)
        return self.make_state(self.init_params(key, hp), hp)

    # pieces ------------------------------------------------------------------------------------
    def pb_update(self, state: TrainState, traj: Trajectory, key: jax.Array):
        """P_B training: `pb_steps` TLM steps, or one maximum-likelihood step for pb="learned"."""
        if self.config.pb == "uniform":
            return state, {}
        steps = self.config.pb_steps if self.config.pb == "tlm" else 1
        return self.backward_update(state, traj, key, steps)

    def advantages(self, state: TrainState, ev: Evaluation, traj: Trajectory, values: jax.Array):
        """(advantages [B, T], value targets [B, T] or None, extra policy-phase grads, info),
        all computed under π_old."""
        g = soft_rewards(ev.log_pf, ev.log_pb, traj.log_reward, traj.mask, traj.done)
        info = {"soft_return": soft_return(g, traj.mask).mean()}
        if self.advantage_kind == "return":
            adv = jnp.where(traj.mask, soft_return(g, traj.mask)[:, None], 0.0)
            return self.normalize(adv, traj.mask), None, {}, info
        if self.advantage_kind == "rtg":
            return self.normalize(reward_to_go(g, traj.mask), traj.mask), None, {}, info
        adv, targets = self.gae_and_targets(g, values, traj.mask, state.hparams)
        return self.normalize(adv, traj.mask), targets, {}, info

    def gae_and_targets(self, rewards, values, mask, hp):
        """GAE(λ) advantages and value targets (TD(λ) returns, or of `value_target_lam`)."""
        adv, targets = gae(rewards, values, mask, hp["lam"])
        lam_v = self.config.value_target_lam
        if lam_v is not None:
            _, targets = gae(rewards, values, mask, lam_v)
        return adv, targets

    def normalize(self, adv: jax.Array, mask: jax.Array) -> jax.Array:
        if self.config.advantage_norm == "center":
            return mean_center(adv, mask)
        if self.config.advantage_norm == "normalize":
            return normalize(adv, mask)
        return adv

    def policy_update(self, state, traj, ev_old, adv, extra_grads, key):
        """One Adam step on the REINFORCE surrogate (plus any extra policy-phase gradients)."""

        def loss_fn(net_params):
            return pg_surrogate(self.evaluation(net_params, traj).log_pf, adv, traj.mask)

        loss, grads = jax.value_and_grad(loss_fn)(state.params["net"])
        state = self.apply_step(state, "policy", {"net": grads, **extra_grads})
        return state, {"loss": loss}

    def value_objective(self, value_params, traj, ev_old, targets, hp):
        v = self.trajectory_values(value_params, traj)  # [b, T+1]
        if self.value_loss == "subtb":
            # V as a log-flow with P_F and P_B fixed, V(x) := log R(x) (docs/methods.md §3.5)
            return subtrajectory_balance(
                ev_old.log_pf,
                ev_old.log_pb,
                v,
                traj.log_reward,
                traj.mask,
                traj.done,
                hp["subtb_lam"],
            )
        if self.config.value_targets == "recomputed":
            g = soft_rewards(ev_old.log_pf, ev_old.log_pb, traj.log_reward, traj.mask, traj.done)
            targets = self.value_targets_from(g, jax.lax.stop_gradient(v), traj, hp)
        return value_regression(v[:, :-1], targets, traj.mask, self.config.value_average)

    def value_targets_from(self, rewards, values, traj, hp):
        """Value targets recomputed with the current V (value_targets="recomputed")."""
        return self.gae_and_targets(rewards, values, traj.mask, hp)[1]

    def value_update(self, state, traj, ev_old, targets, key):
        """`value_epochs` passes × `value_minibatches` Adam steps (nested lax.scan)."""
        if not self.uses_value:
            return state, {}
        cfg = self.config
        if targets is None:
            targets = jnp.zeros(traj.mask.shape, jnp.float32)

        def step(state, batch):
            t, e, y = batch
            loss, grads = jax.value_and_grad(self.value_objective)(
                state.params["value"], t, e, y, state.hparams
            )
            return self.apply_step(state, "value", {"value": grads}), loss

        data = (traj, ev_old, targets)
        state, losses = minibatch_epochs(
            step, state, data, key, cfg.value_epochs, cfg.value_minibatches, cfg.minibatch_order
        )
        return state, {"value_loss": losses[-1].mean()}

    def pb_after_update(self, state, traj, key):
        """RL-B / RL-G: the backward-policy objective after the forward update."""
        return state, {}

    # the update ----------------------------------------------------------------------------------
    def update(self, state: TrainState, key: jax.Array) -> tuple[TrainState, StepInfo]:
        k_sample, k_pb, k_pol, k_val = jax.random.split(key, 4)
        traj = self.sample(state, k_sample)
        scalars = {}
        if not self.pb_after_forward:
            state, scalars = self.pb_update(state, traj, k_pb)
        ev_old = jax.lax.stop_gradient(self.evaluation(state.params["net"], traj))
        values = (
            jax.lax.stop_gradient(self.trajectory_values(state.params["value"], traj))
            if self.uses_value
            else jnp.zeros(traj.obs.shape[:2], jnp.float32)
        )
        adv, targets, extra_grads, adv_info = self.advantages(state, ev_old, traj, values)
        state, pol_info = self.policy_update(state, traj, ev_old, adv, extra_grads, k_pol)
        state, val_info = self.value_update(state, traj, ev_old, targets, k_val)
        if self.pb_after_forward:
            state, scalars = self.pb_after_update(state, traj, k_pb)
        scalars = {**scalars, **adv_info, **pol_info, **val_info}
        return state.replace(step=state.step + 1), step_info(traj, scalars)
