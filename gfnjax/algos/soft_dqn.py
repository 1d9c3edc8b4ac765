"""SoftDQN and Munchausen DQN for GFlowNets (Tiapkin et al. 2024, source (c); REFERENCE.md §2).

One `update` (one iteration of the one training loop):
  1. sample `batch_size` trajectories with the behaviour policy
     (1 − ε_t)·softmax(Q/τ) + ε_t·uniform(valid), ε_t linear from `epsilon` to `epsilon_final`;
  2. cut them into transitions (s, a, s', log P_B(s|s'), log R, done) and push the valid ones into
     the replay buffer that lives in `TrainState.extra` (priority = their current Huber TD loss, as
     the authors' code does when it adds to its prioritised buffer);
  3. draw `replay_batch_size` transitions (prioritised: P(i) ∝ p_i^α, importance weights with β_t
     linear from `per_beta` to `per_beta_final`), take one Adam step on the weighted Huber TD loss
     against `soft_dqn_targets` / `munchausen_targets`, and write the new priorities back;
  4. move the target network, θ' ← (1 − ρ)·θ' + ρ·θ every `target_every` iterations
     (ρ = `polyak`; ρ = 1 is a hard copy).
Steps 3–4 run from iteration `learning_starts` on (the buffer fills first).

Q-network: the PolicyNet forward-logit head is Q(s, ·) (zero-initialised: training starts from the
uniform policy); with `dueling=True`, Q = V(s) + A(s, ·) − mean_valid A(s, ·) with the log-flow head
as V and the logit head as A. The policy seen by rollouts and the exact metrics is softmax(Q/τ)
(`policy_fn` returns Q/τ as logits; the dueling shift cancels in the softmax), and `log_z` is
V(s0) = τ·logsumexp_a Q(s0, a)/τ, which equals log Z at the fixed point of both methods.
τ = `tau` for SoftDQN (1 = the GFlowNet entropy coefficient) and τ = 1/(1 − α) for M-DQN.

Only the fixed uniform P_B of (c) is supported (`pb="uniform"`): stored transitions keep the
log P_B they were sampled with.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from gfnjax import replay
from gfnjax.algos.base import Algorithm, BaseConfig, TrainState, adam
from gfnjax.losses.soft_rl import munchausen_targets, soft_dqn_targets, soft_q_loss, soft_value
from gfnjax.rollout import Trajectory, sample_forward
from gfnjax.utils import check_choice, check_range, gather_last

LOSSES = ("huber", "mse")
NEW_PRIORITIES = ("td", "max")


@dataclasses.dataclass(frozen=True)
class SoftRLConfig(BaseConfig):
    """Shared soft-RL fields. Defaults are the authors' hypergrid settings
    (gflownet-rl `hypergrid/experiments/config/algo.py`, "code" below) unless stated.

    batch_size: trajectories sampled per iteration, 16 (a, c).
    lr: Adam learning rate of the Q-network, 1e−3 (code). hidden: 2×256 (code).
    epsilon / epsilon_final / epsilon_decay_iterations: ε-uniform exploration decayed linearly from
        `epsilon` to `epsilon_final` over that many iterations (0 = constant `epsilon`); 0 on
        hypergrid (code), 1e−3 constant on bitseq (code, `rand_action_prob`).
    buffer_capacity: replay buffer size, 1e5 (code); static (fixes array shapes).
    replay_batch_size: transitions per gradient step, 256 (code).
    prioritised: proportional prioritised replay (True, code) or uniform replay.
    per_alpha: priority exponent α, 0.5 hypergrid (code); 0.9 bitseq (code).
    per_beta / per_beta_final / per_beta_iterations: importance-weight exponent β annealed linearly
        from `per_beta` (0, code) to `per_beta_final` (1) over `per_beta_iterations` iterations
        (0 = constant β). The authors anneal β over their whole run; gfnjax's default length is the
        hypergrid benchmark's 2000 iterations. (Their loss does not multiply by the weights, which
        `per_beta_final=0` reproduces.)
    polyak: target-network step ρ, θ' ← (1 − ρ)θ' + ρθ; 0.25 hypergrid (code); 1 = hard copy.
    target_every: iterations between target updates; 1 hypergrid (code), 5 bitseq (code).
    learning_starts: iterations that only fill the buffer before learning; 16 hypergrid (code),
        50 bitseq (code, `start_learning`).
    new_priority: priority of newly added transitions: "td" = their current Huber TD loss (code;
        one extra pass of the online and target nets over the B·(T+1) states of the batch), or
        "max" = the largest priority so far (Schaul et al. 2016; no extra network pass).
    loss: "huber" (code) or "mse"; huber_delta: Huber threshold δ, 1 (code, torch default).
    dueling: dueling Q head (V + A − mean A); off in (code).
    """

    buffer_capacity: int = 100_000
    replay_batch_size: int = 256
    prioritised: bool = True
    per_alpha: float = 0.5
    per_beta: float = 0.0
    per_beta_final: float = 1.0
    per_beta_iterations: int = 2000
    polyak: float = 0.25
    target_every: int = 1
    learning_starts: int = 16
    new_priority: str = "td"
    loss: str = "huber"
    huber_delta: float = 1.0
    dueling: bool = False
    epsilon_final: float = 0.0
    epsilon_decay_iterations: int = 0

    SWEEPABLE: ClassVar[tuple[str, ...]] = BaseConfig.SWEEPABLE + (
        "epsilon_final", "per_alpha", "per_beta", "per_beta_final", "polyak", "huber_delta",
    )

    def __post_init__(self):
        super().__post_init__()
        if self.pb != "uniform":
            raise ValueError(
                f"{type(self).__name__}.pb must be 'uniform' (soft-RL methods use the fixed uniform "
                f"P_B of Tiapkin et al.), got {self.pb!r}"
            )
        check_range(self, "buffer_capacity", 1, None, integer=True)
        check_range(self, "replay_batch_size", 1, None, integer=True)
        check_range(self, "per_alpha", 0.0, None)
        check_range(self, "per_beta", 0.0, 1.0)
        check_range(self, "per_beta_final", 0.0, 1.0)
        check_range(self, "per_beta_iterations", 0, None, integer=True)
        check_range(self, "polyak", 0.0, 1.0, lo_open=True)
        check_range(self, "target_every", 1, None, integer=True)
        check_range(self, "learning_starts", 0, None, integer=True)
        check_choice(self, "loss", LOSSES)
        check_choice(self, "new_priority", NEW_PRIORITIES)
        check_range(self, "huber_delta", 0.0, None, lo_open=True)
        check_range(self, "epsilon_final", 0.0, 1.0)
        check_range(self, "epsilon_decay_iterations", 0, None, integer=True)
        for f in ("prioritised", "dueling"):
            if not isinstance(getattr(self, f), bool):
                raise ValueError(f"{type(self).__name__}.{f} must be True or False, got {getattr(self, f)!r}")


# Per-environment defaults of the authors' code, applied by `Config.for_env(env_name)`.
ENV_PRESETS: dict[str, dict[str, Any]] = {
    "hypergrid": {},
    # gflownet-rl `bitseq/run.py`: hard target copy every 5 iterations, l0 = −25, PER α 0.9,
    # β 0.1 without annealing, 50 warm-up iterations, ε = 1e−3.
    "bitseq": dict(
        polyak=1.0, target_every=5, per_alpha=0.9, per_beta=0.1, per_beta_final=0.1,
        per_beta_iterations=0, learning_starts=50, epsilon=1e-3, epsilon_final=1e-3,
    ),
}


@dataclasses.dataclass(frozen=True)
class SoftDQNConfig(SoftRLConfig):
    """tau: entropy coefficient τ of the soft Bellman target and of the policy softmax(Q/τ);
    1 makes the fixed point the GFlowNet policy (REFERENCE.md §2)."""

    tau: float = 1.0

    SWEEPABLE: ClassVar[tuple[str, ...]] = SoftRLConfig.SWEEPABLE + ("tau",)

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "tau", 0.0, None, lo_open=True)

    @classmethod
    def for_env(cls, env_name: str, **overrides) -> "SoftDQNConfig":
        """The authors' defaults for `env_name` (see ENV_PRESETS), then `overrides`."""
        return cls(**{**ENV_PRESETS.get(env_name, {}), **overrides})


@dataclasses.dataclass(frozen=True)
class MDQNConfig(SoftRLConfig):
    """munchausen_alpha: α of the Munchausen bonus, 0.15 (code); τ = 1/(1 − α) is derived so that
    (1 − α)·τ = 1 (code). munchausen_l0: lower clip l0 of τ·log π, −100 hypergrid, −25 bitseq (code)."""

    munchausen_alpha: float = 0.15
    munchausen_l0: float = -100.0

    SWEEPABLE: ClassVar[tuple[str, ...]] = SoftRLConfig.SWEEPABLE + ("munchausen_alpha", "munchausen_l0")

    def __post_init__(self):
        super().__post_init__()
        check_range(self, "munchausen_alpha", 0.0, 1.0, hi_open=True)
        check_range(self, "munchausen_l0", None, 0.0)

    @classmethod
    def for_env(cls, env_name: str, **overrides) -> "MDQNConfig":
        """The authors' defaults for `env_name` (see ENV_PRESETS; l0 = −25 on bitseq), then `overrides`."""
        preset = dict(ENV_PRESETS.get(env_name, {}))
        if env_name == "bitseq":
            preset["munchausen_l0"] = -25.0
        return cls(**{**preset, **overrides})


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
    state = jax.tree_util.tree_map(lambda x: flat(x[:, :-1]), traj.states)
    next_state = jax.tree_util.tree_map(lambda x: flat(x[:, 1:]), traj.states)
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


def _tree_select(cond: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree_util.tree_map(lambda x, y: jnp.where(cond, x, y), a, b)


@dataclasses.dataclass(frozen=True)
class SoftRLAlgorithm(Algorithm):
    """Shared update of SoftDQN and M-DQN; subclasses define `tau` and `targets`."""

    uses_target_at_s: ClassVar[bool] = False  # M-DQN needs Q_targ(s, ·) for log π_targ(a|s)

    @property
    def uses_flow_head(self) -> bool:  # type: ignore[override]
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
        n_valid = jnp.maximum(mask.sum(-1, keepdims=True), 1)
        mean_adv = jnp.where(mask, out.logits, 0.0).sum(-1, keepdims=True) / n_valid
        return out.log_flow[..., None] + out.logits - mean_adv

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
    def optimizer(self, hp) -> optax.GradientTransformation:
        return adam(hp["lr"])

    def example_transition(self) -> Transition:
        s = jax.tree_util.tree_map(lambda x: x[0], self.env.reset(1))
        return Transition(
            state=s, next_state=s, action=jnp.zeros((), jnp.int32), log_pb=jnp.zeros((), jnp.float32),
            log_reward=jnp.zeros((), jnp.float32), done=jnp.zeros((), bool),
        )

    def init(self, key, hparams=None) -> TrainState:
        hp = self.resolve_hparams(hparams)
        net = self.init_net(key)
        params = {"net": net}
        buffer = replay.init(self.example_transition(), self.config.buffer_capacity)
        return TrainState(
            params=params,
            opt_state=self.optimizer(hp).init(params),
            hparams=hp,
            step=jnp.zeros((), jnp.int32),
            extra={"target": net, "buffer": buffer},
        )

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
        q = self.q_values(net_params, obs, fmask).reshape(B, T1, -1)
        qt = self.q_values(target_params, obs, fmask).reshape(B, T1, -1)
        pairs = lambda x: x.reshape((B * (T1 - 1),) + x.shape[2:])
        mask, next_mask = pairs(traj.forward_mask[:, :-1]), pairs(traj.forward_mask[:, 1:])
        q_sa = gather_last(pairs(q[:, :-1]), batch.action)
        y = self.targets(pairs(qt[:, 1:]), next_mask, pairs(qt[:, :-1]), mask, batch, hp)
        return q_sa, jax.lax.stop_gradient(y)

    def loss(self, params, target_params, batch: Transition, weights, hp):
        q_sa, y = self.td(params["net"], target_params, batch, hp)
        delta = hp["huber_delta"] if self.config.loss == "huber" else None
        loss, per = soft_q_loss(q_sa, y, weights, delta)
        return loss, (per, q_sa)

    def update(self, state: TrainState, key):
        c, hp, env = self.config, state.hparams, self.env
        it = state.step
        k_roll, k_replay = jax.random.split(key)
        epsilon = replay.linear_schedule(hp["epsilon"], hp["epsilon_final"], it, c.epsilon_decay_iterations)
        traj = sample_forward(
            env, k_roll, self.policy_fn(state), c.batch_size,
            epsilon=epsilon, temperature=hp["temperature"],
        )
        traj = jax.lax.stop_gradient(traj)
        target, buffer = state.extra["target"], state.extra["buffer"]

        # 2. push the new transitions, prioritised by their current TD loss (code) or max priority
        new, valid = trajectory_transitions(traj)
        priorities = None
        if c.prioritised and c.new_priority == "td":
            q_new, y_new = self.trajectory_td(state.params["net"], target, traj, new, hp)
            delta = hp["huber_delta"] if c.loss == "huber" else None
            _, priorities = soft_q_loss(q_new, y_new, None, delta)
        buffer = replay.add(buffer, new, valid, priorities)

        # 3. one gradient step on a replayed batch
        beta = replay.linear_schedule(hp["per_beta"], hp["per_beta_final"], it, c.per_beta_iterations)
        batch = replay.sample(buffer, k_replay, c.replay_batch_size, c.prioritised, hp["per_alpha"], beta)
        (loss, (per, q_sa)), grads = jax.value_and_grad(self.loss, has_aux=True)(
            state.params, target, batch.items, batch.weights, hp
        )
        updates, opt_state = self.optimizer(hp).update(grads, state.opt_state, state.params)
        learning = it >= c.learning_starts
        params = _tree_select(learning, optax.apply_updates(state.params, updates), state.params)
        opt_state = _tree_select(learning, opt_state, state.opt_state)
        if c.prioritised:  # out-of-range slots are dropped: no priority update while warming up
            idx = jnp.where(learning, batch.indices, buffer.capacity)
            buffer = replay.update_priorities(buffer, idx, per)

        # 4. target network
        move = learning & ((it - c.learning_starts) % c.target_every == 0)
        rho = jnp.where(move, hp["polyak"], 0.0)
        target = jax.tree_util.tree_map(lambda t, p: (1.0 - rho) * t + rho * p, target, params["net"])

        info = dict(
            loss=loss,
            learning=learning.astype(jnp.float32),
            mean_q=q_sa.mean(),
            epsilon=epsilon,
            per_beta=beta,
            buffer_size=buffer.size.astype(jnp.float32),
            num_trajectories=jnp.asarray(traj.batch_size, jnp.int32),
            num_transitions=traj.length.sum().astype(jnp.int32),
            terminals=traj.final_state,
            mean_log_reward=traj.log_reward.mean(),
        )
        new_state = state.replace(
            params=params, opt_state=opt_state, step=it + 1,
            extra={"target": target, "buffer": buffer},
        )
        return new_state, info


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
            q_next_target, next_mask, q_target, mask, batch.action, batch.log_pb,
            batch.log_reward, batch.done, hp["munchausen_alpha"], hp["munchausen_l0"],
        )
