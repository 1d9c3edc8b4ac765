"""SoftDQN and Munchausen DQN for GFlowNets (Tiapkin, Morozov, Naumov, Vetrov 2024;
docs/methods.md §2).

One `update` (one iteration of the one training loop):
  1. sample `batch_size` trajectories with the behaviour policy
     (1 − ε_t)·softmax(Q/τ) + ε_t·uniform(valid), ε_t linear from `epsilon` to `epsilon_final`;
  2. cut them into transitions (s, a, s', log P_B(s|s'), log R, done) and push the valid ones into
     the replay buffer that lives in `TrainState.extra` (priority = their current Huber TD loss, as
     the authors' code does when it adds to its prioritised buffer);
  3. draw `replay_batch_size` transitions (prioritised: P(i) ∝ p_i^α; importance weights with β_t
     linear from `per_beta` to `per_beta_final` when `importance_weights`), take one Adam step on
     the Huber TD loss against `soft_dqn_targets` / `munchausen_targets`, terminal transitions
     weighted by `leaf_coeff`, and write the new priorities back;
  4. move the target network, θ' ← (1 − ρ)·θ' + ρ·θ every `target_every` iterations
     (ρ = `polyak`; ρ = 1 is a hard copy).
Steps 3–4 run from iteration `learning_starts` on (the buffer fills first).

Q-network: the PolicyNet forward-logit head is Q(s, ·) (zero-initialised: training starts from the
uniform policy); with `dueling=True`, Q = V(s) + log_softmax_valid A(s, ·) with the log-flow head
as V and the logit head as A (the form of Tiapkin et al.'s molecule code and gfnx: logsumexp_a Q
= V). The policy seen by rollouts and the exact metrics is softmax(Q/τ) (`policy_fn` returns
A/τ as logits; the per-state shift V − logsumexp A cancels in the softmax), and `log_z` is
V(s0) = τ·logsumexp_a Q(s0, a)/τ, which equals log Z at the fixed point of both methods.
τ = `tau` for SoftDQN (1 = the GFlowNet entropy coefficient) and τ = 1/(1 − α) for M-DQN.

Only the fixed uniform P_B of Tiapkin et al. is supported (`pb="uniform"`): stored transitions
keep the log P_B they were sampled with.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from gfnjax import replay
from gfnjax.algos.base import Algorithm, BaseConfig, TrainState, step_info
from gfnjax.losses.soft_rl import munchausen_targets, soft_dqn_targets, soft_q_loss, soft_value
from gfnjax.rollout import Trajectory, apply_packed, state_validity
from gfnjax.utils import (
    check_choice,
    check_range,
    gather_last,
    linear_schedule,
    masked_log_softmax,
    tree_where,
)

LOSSES = ("huber", "mse")
NEW_PRIORITIES = ("td", "max")


@dataclasses.dataclass(frozen=True)
class SoftRLConfig(BaseConfig):
    """Shared soft-RL fields. Defaults are Tiapkin et al.'s hypergrid settings (gflownet-rl
    `hypergrid/experiments/config/algo.py` and `train_softdqn.py`; docs/presets.md gives the
    bit-sequence preset and every source line).

    batch_size: trajectories sampled per iteration, 16. lr: Adam, 1e−3. hidden: 2×256.
    buffer_capacity: replay buffer size, 1e5; static (fixes array shapes).
    replay_batch_size: transitions per gradient step, 256.
    prioritised: proportional prioritised replay (True) or uniform replay.
    per_alpha: priority exponent α, 0.5 hypergrid, 0.9 bit sequences.
    importance_weights: multiply the loss by the PER importance weights; False on hypergrid
        (the authors' loss is the plain mean), True on bit sequences.
    per_beta / per_beta_final / per_beta_iterations: importance-weight exponent β annealed linearly
        from `per_beta` to `per_beta_final` over `per_beta_iterations` iterations (0 = constant β;
        bit sequences: constant 0.1).
    polyak: target-network step ρ, θ' ← (1 − ρ)θ' + ρθ; 0.25 hypergrid; 1 = hard copy (bitseq).
    target_every: iterations between target updates; 1 hypergrid, 5 bit sequences.
    learning_starts: iterations that only fill the buffer before learning; 16 hypergrid, 50 bitseq.
    leaf_coeff: weight of terminal transitions in the loss and in their priorities; 1 hypergrid
        (no weighting), 2 in the authors' bit-sequence runs.
    new_priority: priority of newly added transitions: "td" = their current Huber TD loss (the
        authors' code; one extra pass of the online and target nets over the batch's states), or
        "max" = the largest priority so far (Schaul et al. 2016; no extra network pass).
    loss: "huber" or "mse"; huber_delta: Huber threshold δ, 1 (torch default).
    dueling: dueling Q head (V + A − mean A); off in the authors' hypergrid and bitseq code.
    """

    buffer_capacity: int = 100_000
    replay_batch_size: int = 256
    prioritised: bool = True
    per_alpha: float = 0.5
    importance_weights: bool = False
    per_beta: float = 0.0
    per_beta_final: float = 1.0
    per_beta_iterations: int = 0
    polyak: float = 0.25
    target_every: int = 1
    learning_starts: int = 16
    leaf_coeff: float = 1.0
    new_priority: str = "td"
    loss: str = "huber"
    huber_delta: float = 1.0
    dueling: bool = False

    SWEEPABLE: ClassVar[tuple[str, ...]] = BaseConfig.SWEEPABLE + (
        "per_alpha",
        "per_beta",
        "per_beta_final",
        "polyak",
        "huber_delta",
        "leaf_coeff",
    )
    INACTIVE: ClassVar[tuple[str, ...]] = ("pb", "pb_lr", "pb_steps", "pb_lr_decay")

    def __post_init__(self):
        super().__post_init__()
        if self.pb != "uniform":
            raise ValueError(
                f"{type(self).__name__}.pb must be 'uniform' (soft-RL methods use the fixed "
                f"uniform P_B of Tiapkin et al.), got {self.pb!r}"
            )
        check_range(self, "buffer_capacity", 1, 1 << 26, integer=True)
        check_range(self, "replay_batch_size", 1, 1 << 20, integer=True)
        check_range(self, "per_alpha", 0.0, 100.0)
        check_range(self, "per_beta", 0.0, 1.0)
        check_range(self, "per_beta_final", 0.0, 1.0)
        check_range(self, "per_beta_iterations", 0, None, integer=True)
        check_range(self, "polyak", 0.0, 1.0, lo_open=True)
        check_range(self, "target_every", 1, None, integer=True)
        check_range(self, "learning_starts", 0, None, integer=True)
        check_range(self, "leaf_coeff", 0.0, 1e6, lo_open=True)
        check_choice(self, "loss", LOSSES)
        check_choice(self, "new_priority", NEW_PRIORITIES)
        check_range(self, "huber_delta", 0.0, 1e6, lo_open=True)
        for f in ("prioritised", "dueling", "importance_weights"):
            if not isinstance(getattr(self, f), bool):
                raise ValueError(
                    f"{type(self).__name__}.{f} must be True or False, got {getattr(self, f)!r}"
                )


@dataclasses.dataclass(frozen=True)
class SoftDQNConfig(SoftRLConfig):
    """tau: entropy coefficient τ of the soft Bellman target and of the policy softmax(Q/τ);
    1 makes the fixed point the GFlowNet policy (docs/methods.md §2)."""

    tau: float = 1.0

    SWEEPABLE: ClassVar[tuple[str, ...]] = SoftRLConfig.SWEEPABLE + ("tau",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "tau", 1e-6, 1e6)


@dataclasses.dataclass(frozen=True)
class MDQNConfig(SoftRLConfig):
    """munchausen_alpha: α of the Munchausen bonus, 0.15; τ = 1/(1 − α) is derived so that
    (1 − α)·τ = 1. munchausen_l0: lower clip l0 of τ·log π, −100 hypergrid, −25 bit sequences."""

    munchausen_alpha: float = 0.15
    munchausen_l0: float = -100.0

    SWEEPABLE: ClassVar[tuple[str, ...]] = SoftRLConfig.SWEEPABLE + (
        "munchausen_alpha",
        "munchausen_l0",
    )

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "munchausen_alpha", 0.0, 0.999)
        check_range(self, "munchausen_l0", -1e6, 0.0)


class Transition(struct.PyTreeNode):
    """One transition s → s' (leading batch axes on every leaf when batched).

    Environment states are stored rather than observations: observations and masks are pure
    functions of the state, recomputed when a batch is drawn (hypergrid 20^4: 20 bytes per state
    instead of 320 for the one-hot observation).

    state, next_state: env State; action: int32 forward action; log_pb: float32 log P_B(s|s');
    log_reward: float32 log R(s') where done, else 0; done: bool, s' is terminal.
    """

    state: Any
    next_state: Any
    action: jax.Array
    log_pb: jax.Array
    log_reward: jax.Array
    done: jax.Array


def trajectory_transitions(traj: Trajectory) -> tuple[Transition, jax.Array]:
    """Flatten a trajectory batch into B·T transitions and their validity mask bool[B·T]."""
    B, T = traj.actions.shape
    flat = lambda x: x.reshape((B * T,) + x.shape[2:])
    state = jax.tree.map(lambda x: flat(x[:, :-1]), traj.states)
    next_state = jax.tree.map(lambda x: flat(x[:, 1:]), traj.states)
    log_reward = jnp.where(traj.done, traj.log_reward[:, None], 0.0)
    tr = Transition(
        state=state,
        next_state=next_state,
        action=flat(traj.actions).astype(jnp.int32),
        log_pb=flat(traj.log_pb).astype(jnp.float32),
        log_reward=flat(log_reward).astype(jnp.float32),
        done=flat(traj.done),
    )
    return tr, flat(traj.mask)


@dataclasses.dataclass(frozen=True)
class SoftRLAlgorithm(Algorithm):
    """Shared update of SoftDQN and M-DQN; subclasses define `tau` and `targets`."""

    uses_target_at_s: ClassVar[bool] = False  # M-DQN needs Q_targ(s, ·) for log π_targ(a|s)

    @property
    def flow_head(self) -> bool:
        return self.config.dueling

    # model ---------------------------------------------------------------------------------
    def tau(self, hp: dict) -> jax.Array:
        raise NotImplementedError

    def targets(self, q_next_target, next_mask, q_target, mask, batch: Transition, hp) -> jax.Array:
        raise NotImplementedError

    def q_values(self, net_params: Any, obs: jax.Array, mask: jax.Array) -> jax.Array:
        """Q(s, ·): float[N, A] from observations float[N, D] and valid actions bool[N, A]."""
        out = self.apply_net(net_params, obs)
        if not self.config.dueling:
            return out.logits
        return out.log_flow[..., None] + masked_log_softmax(out.logits, mask)

    def policy_fn(self, state: TrainState):
        """softmax(Q/τ): logits Q/τ (the dueling V − mean A shift cancels in the softmax)."""
        tau = self.tau(state.hparams)

        def fn(obs):
            return self.apply_net(state.params["net"], obs).logits / tau, None

        return fn

    def log_z(self, state: TrainState) -> jax.Array:
        """V(s0) = τ·logsumexp_a Q(s0, a)/τ (= log Z at the fixed point)."""
        s0 = self.env.reset(1)
        mask = self.env.forward_mask(s0)
        q = self.q_values(state.params["net"], self.env.observe(s0), mask)
        return soft_value(q, mask, self.tau(state.hparams))[0]

    # training ------------------------------------------------------------------------------
    def example_transition(self) -> Transition:
        s = jax.tree.map(lambda x: x[0], self.env.reset(1))
        return Transition(
            state=s,
            next_state=s,
            action=jnp.zeros((), jnp.int32),
            log_pb=jnp.zeros((), jnp.float32),
            log_reward=jnp.zeros((), jnp.float32),
            done=jnp.zeros((), bool),
        )

    def init(self, key, hparams=None) -> TrainState:
        hp = self.resolve_hparams(hparams)
        net = self.init_net(key)
        buffer = replay.init(self.example_transition(), self.config.buffer_capacity)
        return self.make_state({"net": net}, hp, extra={"target": net, "buffer": buffer})

    def td(self, net_params, target_params, batch: Transition, hp) -> tuple[jax.Array, jax.Array]:
        """Q(s, a) float[n] (differentiable) and its target y float[n] (no gradient)."""
        env = self.env
        obs, mask = env.observe(batch.state), env.forward_mask(batch.state)
        next_obs, next_mask = env.observe(batch.next_state), env.forward_mask(batch.next_state)
        q_sa = gather_last(self.q_values(net_params, obs, mask), batch.action)
        n = obs.shape[0]
        if self.uses_target_at_s:  # one target pass over s and s'
            qt = self.q_values(
                target_params, jnp.concatenate([obs, next_obs]), jnp.concatenate([mask, next_mask])
            )
            q_target, q_next_target = qt[:n], qt[n:]
        else:
            q_target, q_next_target = None, self.q_values(target_params, next_obs, next_mask)
        y = self.targets(q_next_target, next_mask, q_target, mask, batch, hp)
        return q_sa, jax.lax.stop_gradient(y)

    def trajectory_td(self, net_params, target_params, traj: Trajectory, batch: Transition, hp):
        """`td` for the B·T transitions of `traj` (flattened as `batch`), with one pass of each
        network over the B·(T+1) states instead of separate passes over s and s'."""
        B, T1 = traj.obs.shape[:2]
        flat = lambda x: x.reshape((B * T1,) + x.shape[2:])
        obs, fmask = flat(traj.obs), flat(traj.forward_mask)

        def both(inputs):  # online and target Q on the batch's real states only
            o, m = inputs
            return self.q_values(net_params, o, m), self.q_values(target_params, o, m)

        valid = state_validity(traj).reshape(-1)
        q, qt = apply_packed(both, (obs, fmask), valid, 2 * B, self.pack)
        q, qt = q.reshape(B, T1, -1), qt.reshape(B, T1, -1)
        pairs = lambda x: x.reshape((B * (T1 - 1),) + x.shape[2:])
        mask, next_mask = pairs(traj.forward_mask[:, :-1]), pairs(traj.forward_mask[:, 1:])
        q_sa = gather_last(pairs(q[:, :-1]), batch.action)
        y = self.targets(pairs(qt[:, 1:]), next_mask, pairs(qt[:, :-1]), mask, batch, hp)
        return q_sa, jax.lax.stop_gradient(y)

    def transition_weights(self, batch: Transition, hp) -> jax.Array:
        """c_i = leaf_coeff for terminal transitions, 1 otherwise, float[n]."""
        return jnp.where(batch.done, hp["leaf_coeff"], 1.0)

    def loss(self, params, target_params, batch: Transition, weights, hp):
        q_sa, y = self.td(params["net"], target_params, batch, hp)
        delta = hp["huber_delta"] if self.config.loss == "huber" else None
        c = self.transition_weights(batch, hp)
        loss, per = soft_q_loss(q_sa, y, c * weights, delta)
        return loss, (c * per, q_sa)

    def update(self, state: TrainState, key):
        c, hp = self.config, state.hparams
        it = state.step
        k_roll, k_replay = jax.random.split(key)
        traj = self.sample(state, k_roll)
        target, buffer = state.extra["target"], state.extra["buffer"]

        # 2. push the new transitions, prioritised by their current (weighted) TD loss or max
        new, valid = trajectory_transitions(traj)
        priorities = None
        if c.prioritised and c.new_priority == "td":
            q_new, y_new = self.trajectory_td(state.params["net"], target, traj, new, hp)
            delta = hp["huber_delta"] if c.loss == "huber" else None
            _, per_new = soft_q_loss(q_new, y_new, None, delta)
            priorities = self.transition_weights(new, hp) * per_new
        buffer = replay.add(buffer, new, valid, priorities)

        # 3. one gradient step on a replayed batch
        beta = linear_schedule(hp["per_beta"], hp["per_beta_final"], it, c.per_beta_iterations)
        batch = replay.sample(
            buffer, k_replay, c.replay_batch_size, c.prioritised, hp["per_alpha"], beta
        )
        weights = batch.weights if c.importance_weights else jnp.ones_like(batch.weights)
        (loss, (per, q_sa)), grads = jax.value_and_grad(self.loss, has_aux=True)(
            state.params, target, batch.items, weights, hp
        )
        learning = it >= c.learning_starts
        stepped = self.apply_step(state, "main", grads)
        state = tree_where(learning, stepped, state)
        if c.prioritised:  # out-of-range slots are dropped: no priority update while warming up
            idx = jnp.where(learning, batch.indices, buffer.capacity)
            buffer = replay.update_priorities(buffer, idx, per)

        # 4. target network
        move = learning & ((it - c.learning_starts) % c.target_every == 0)
        rho = jnp.where(move, hp["polyak"], 0.0)
        target = jax.tree.map(lambda t, p: (1.0 - rho) * t + rho * p, target, state.params["net"])

        scalars = dict(
            loss=loss,
            learning=learning.astype(jnp.float32),
            mean_q=q_sa.mean(),
            epsilon=self.exploration(state),
            per_beta=beta,
            buffer_size=buffer.size.astype(jnp.float32),
        )
        new_state = state.replace(step=it + 1, extra={"target": target, "buffer": buffer})
        return new_state, step_info(traj, scalars)


@dataclasses.dataclass(frozen=True)
class SoftDQN(SoftRLAlgorithm):
    name: ClassVar[str] = "soft_dqn"
    Config: ClassVar[type] = SoftDQNConfig

    def tau(self, hp):
        return hp["tau"]

    def targets(self, q_next_target, next_mask, q_target, mask, batch, hp):
        return soft_dqn_targets(
            q_next_target, next_mask, batch.log_pb, batch.log_reward, batch.done, hp["tau"]
        )


@dataclasses.dataclass(frozen=True)
class MDQN(SoftRLAlgorithm):
    name: ClassVar[str] = "mdqn"
    Config: ClassVar[type] = MDQNConfig
    uses_target_at_s: ClassVar[bool] = True

    def tau(self, hp):
        return 1.0 / (1.0 - hp["munchausen_alpha"])

    def targets(self, q_next_target, next_mask, q_target, mask, batch, hp):
        return munchausen_targets(
            q_next_target,
            next_mask,
            q_target,
            mask,
            batch.action,
            batch.log_pb,
            batch.log_reward,
            batch.done,
            hp["munchausen_alpha"],
            hp["munchausen_l0"],
        )
