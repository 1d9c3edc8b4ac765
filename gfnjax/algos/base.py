"""What every algorithm shares: config base, train state, the step record, networks, optimisers,
sampling, and the epoch × minibatch scan.

An algorithm is a frozen dataclass `Algo(env, config)` with
  init(key, hparams=None) -> TrainState
  update(state, key) -> (TrainState, StepInfo)
  policy_fn(state) -> rollout.PolicyFn        (what is sampled and evaluated by the metrics)
  log_z(state) -> float[] | None              (its own estimate of log Z, if any)
so a run is `lax.scan(update, init(key))` and a seed sweep is `vmap` of that over keys.

Hyperparameters that do not change shapes (`Config.SWEEPABLE`) are array leaves of
`TrainState.hparams` (learning rates also live in the optax state via `inject_hyperparams`), so a
grid over them is `vmap`ped like seeds.

Optimisers: one idiom. Parameters are a dict of named groups ("net", "value", "log_z"); an
algorithm declares its optimisation *phases* (`phases(hp)`: phase -> {group: learning rate}), each
an `optax.partition` of Adam transforms over those groups with its own state in
`TrainState.opt_state[phase]`. A phase steps only its groups (`apply_step`), so the policy, value
and backward-policy updates of the policy-gradient family keep separate Adam moments, as in the
authors' code, while a flow objective steps the net and log Z together.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from gfnjax.envs.base import Env
from gfnjax.losses.flow import backward_maximum_likelihood
from gfnjax.nets import OUTPUT_INITS, PolicyNet, check_torso, make_torso, resolve_torso
from gfnjax.rollout import Evaluation, PolicyFn, Trajectory, evaluate, sample_forward
from gfnjax.utils import check_choice, check_range, linear_schedule

PB_CHOICES = ("uniform", "learned", "tlm")


def check_widths(obj: Any, name: str, allow_empty: bool = False) -> None:
    """Raise ValueError unless getattr(obj, name) is a tuple of positive ints."""
    value = getattr(obj, name)
    ok = (
        isinstance(value, tuple)
        and (allow_empty or len(value) > 0)
        and all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in value)
    )
    if not ok:
        raise ValueError(
            f"{type(obj).__name__}.{name} must be a tuple of positive layer widths, e.g. (256, 256)"
            f"{' or ()' if allow_empty else ''}, got {value!r}"
        )


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """Fields shared by every algorithm (defaults: docs/presets.md gives each published value).

    batch_size: trajectories sampled per iteration; 16 on hypergrid and bit sequences (Ent-PPO,
        Tiapkin et al.).
    hidden: MLP widths of the shared torso; 2×256 as in Ent-PPO, Tiapkin et al. and gfnx.
    torso: "auto" (the environment's `default_torso`), "mlp", "transformer" or "graph".
    lr: learning rate of the policy network (Adam); 1e−3.
    epsilon / epsilon_final / epsilon_decay_iterations: ε-uniform exploration mixed into the
        sampling policy, decayed linearly from `epsilon` to `epsilon_final` over that many
        iterations (0 = constant `epsilon`); 0 = on-policy, as the Ent-PPO baselines run.
    temperature: sampling temperature of the behaviour policy; 1.
    pb: backward policy — "uniform" over parents (default in all three papers), "learned"
        (trained by the objective itself), or "tlm" (trained by maximum likelihood of the batch's
        backward transitions in `pb_steps` separate Adam steps before the forward update).
    pb_lr, pb_steps, pb_lr_decay: the TLM / learned-P_B optimiser: learning rate, Adam steps per
        iteration and multiplicative decay per step (Ent-PPO's code: 1e−3, 4, 0.999).
    pb_torso: "shared" (a learned P_B is a head on the policy torso) or "separate" (its own
        torso of the same widths, as Niu et al.'s separate P_B network).
    output_init: "zeros" (every head starts at 0: exactly uniform initial policy) or "default"
        (the framework initialiser the authors' code uses); see gfnjax.nets.
    clip_grad_norm: global-norm gradient clipping of every optimiser phase (0 = off).
    weight_decay: L2 weight decay added to the gradient before Adam (PyTorch `Adam(weight_decay)`,
        Tiapkin et al.'s bit-sequence runs use 1e−5); 0 = off.
    """

    batch_size: int = 16
    hidden: tuple[int, ...] = (256, 256)
    torso: str = "auto"
    lr: float = 1e-3
    epsilon: float = 0.0
    epsilon_final: float = 0.0
    epsilon_decay_iterations: int = 0
    temperature: float = 1.0
    pb: str = "uniform"
    pb_lr: float = 1e-3
    pb_steps: int = 4
    pb_lr_decay: float = 0.999
    pb_torso: str = "shared"
    output_init: str = "zeros"
    clip_grad_norm: float = 0.0
    weight_decay: float = 0.0

    SWEEPABLE: ClassVar[tuple[str, ...]] = (
        "lr",
        "epsilon",
        "epsilon_final",
        "temperature",
        "pb_lr",
    )
    # fields inherited from here that an algorithm does not use: not settable (gfnjax.algos)
    INACTIVE: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        check_range(self, "batch_size", 1, 1 << 20, integer=True)
        check_widths(self, "hidden")
        check_torso(self.torso)
        check_range(self, "lr", 0.0, 1e3, lo_open=True)
        check_range(self, "epsilon", 0.0, 1.0)
        check_range(self, "epsilon_final", 0.0, 1.0)
        check_range(self, "epsilon_decay_iterations", 0, None, integer=True)
        check_range(self, "temperature", 1e-6, 1e6)
        check_choice(self, "pb", PB_CHOICES)
        check_range(self, "pb_lr", 0.0, 1e3, lo_open=True)
        check_range(self, "pb_steps", 1, 1000, integer=True)
        check_range(self, "pb_lr_decay", 0.0, 1.0, lo_open=True)
        check_choice(self, "pb_torso", ("shared", "separate"))
        check_choice(self, "output_init", OUTPUT_INITS)
        check_range(self, "clip_grad_norm", 0.0, None)
        check_range(self, "weight_decay", 0.0, 1.0)

    @classmethod
    def sweepable_fields(cls) -> tuple[str, ...]:
        """Fields that are array leaves of the train state (vmappable in one program)."""
        return tuple(k for k in cls.SWEEPABLE if k not in cls.INACTIVE)

    def default_hparams(self) -> dict[str, jax.Array]:
        return {k: jnp.asarray(getattr(self, k), jnp.float32) for k in self.sweepable_fields()}


class TrainState(struct.PyTreeNode):
    """params: dict of parameter groups ('net', 'value', 'log_z', ...); opt_state: dict phase ->
    optax state; hparams: dict of float32[] sweepable values; step: int32[] updates done;
    extra: algorithm-specific pytree (target network, replay buffer, ...)."""

    params: Any
    opt_state: Any
    hparams: dict
    step: jax.Array
    extra: Any = None


class StepInfo(NamedTuple):
    """What one `update` reports to the training loop and the metrics.

    num_trajectories: int32[] trajectories sampled by this update.
    num_transitions:  int32[] real (unpadded) transitions among them.
    terminals:        env State [B] the terminal states sampled (empirical-distribution metrics).
    log_reward:       float32[B] their log R(x).
    scalars:          dict name -> float32[] diagnostics (loss, KL, ...), averaged per period.
    """

    num_trajectories: jax.Array
    num_transitions: jax.Array
    terminals: Any
    log_reward: jax.Array
    scalars: dict


def step_info(traj: Trajectory, scalars: Mapping[str, jax.Array]) -> StepInfo:
    """The StepInfo of an update that sampled `traj`."""
    return StepInfo(
        num_trajectories=jnp.asarray(traj.batch_size, jnp.int32),
        num_transitions=traj.length.sum().astype(jnp.int32),
        terminals=traj.final_state,
        log_reward=traj.log_reward,
        scalars=dict(scalars, mean_log_reward=traj.log_reward.mean()),
    )


def adam(
    lr, clip_grad_norm: float = 0.0, weight_decay: float = 0.0
) -> optax.GradientTransformation:
    """Adam whose learning rate lives in the optimiser state (a sweepable array leaf or a schedule
    `count -> lr`), optionally after global-norm clipping and L2 weight decay."""
    parts = []
    if clip_grad_norm > 0:
        parts.append(optax.clip_by_global_norm(clip_grad_norm))
    if weight_decay > 0:
        parts.append(optax.add_decayed_weights(weight_decay))
    parts.append(optax.inject_hyperparams(optax.adam)(learning_rate=lr))
    return optax.chain(*parts) if len(parts) > 1 else parts[0]


MINIBATCH_ORDERS = ("shuffled", "fixed")


def minibatch_epochs(
    step: Callable[[Any, Any], tuple[Any, Any]],
    carry: Any,
    data: Any,
    key: jax.Array,
    num_epochs: int,
    num_minibatches: int,
    order: str = "shuffled",
) -> tuple[Any, Any]:
    """`num_epochs` passes over `data` (leaves [B, ...]), each split into `num_minibatches`
    minibatches of B / num_minibatches rows: nested lax.scan of `step(carry, minibatch)`.
    order: "shuffled" (a random partition per epoch) or "fixed" (rows [i·b, (i+1)·b) form
    minibatch i in every epoch). Returns (carry, outputs with leading [num_epochs,
    num_minibatches])."""
    B = jax.tree.leaves(data)[0].shape[0]
    if order not in MINIBATCH_ORDERS:
        raise ValueError(f"order must be one of {MINIBATCH_ORDERS}, got {order!r}")

    def epoch(carry, k):
        if order == "fixed":
            idx = jnp.arange(B).reshape(num_minibatches, -1)
        else:
            idx = jax.random.permutation(k, B).reshape(num_minibatches, -1)
        return jax.lax.scan(lambda c, i: step(c, jax.tree.map(lambda x: x[i], data)), carry, idx)

    return jax.lax.scan(epoch, carry, jax.random.split(key, num_epochs))


def check_divides(obj: Any, name: str, total: str = "batch_size") -> None:
    check_range(obj, name, 1, getattr(obj, total), integer=True)
    if getattr(obj, total) % getattr(obj, name):
        raise ValueError(
            f"{type(obj).__name__}.{name} ({getattr(obj, name)}) must divide {total} "
            f"({getattr(obj, total)})"
        )


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """Base class; see the module docstring."""

    env: Env
    config: BaseConfig
    # the published preset the config started from (gfnjax.algos.presets), for the records
    preset: Any = dataclasses.field(default=None, compare=False, hash=False, repr=False)
    # network passes on a batch's real states only (gfnjax.rollout.apply_packed); the harness
    # turns it off when seeds are vmapped (a switch on a batched index runs every branch)
    pack: bool = True

    name: ClassVar[str] = "algorithm"
    Config: ClassVar[type] = BaseConfig
    uses_flow_head: ClassVar[bool] = False

    # networks ------------------------------------------------------------------------------
    def torso(self, hidden=None):
        cfg = self.config
        return make_torso(resolve_torso(cfg.torso, self.env), hidden or cfg.hidden, self.env)

    @property
    def net(self) -> PolicyNet:
        learn_pb = self.config.pb != "uniform"
        separate = learn_pb and self.config.pb_torso == "separate"
        return PolicyNet(
            num_actions=self.env.num_actions,
            num_backward_actions=self.env.num_backward_actions,
            torso=self.torso(),
            learn_pb=learn_pb,
            flow_head=self.flow_head,
            output_init=self.config.output_init,
            pb_torso=self.torso() if separate else None,
        )

    @property
    def flow_head(self) -> bool:
        return self.uses_flow_head

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

    def evaluation(self, net_params: Any, traj: Trajectory) -> Evaluation:
        """log P_F, log P_B, log-probs and log F of a trajectory batch in one network pass."""
        return evaluate(lambda obs: self.apply_net(net_params, obs), traj, self.pack)

    def s0_obs(self) -> jax.Array:
        """float32[1, D]: the observation of the initial state."""
        return self.env.observe(self.env.reset(1))

    def log_z(self, state: TrainState) -> jax.Array | None:
        """The algorithm's own estimate of log Z, if it has one."""
        return None

    # sampling -------------------------------------------------------------------------------
    def exploration(self, state: TrainState) -> jax.Array:
        """ε at this iteration: linear from `epsilon` to `epsilon_final` over the decay length."""
        hp = state.hparams
        return linear_schedule(
            hp["epsilon"], hp["epsilon_final"], state.step, self.config.epsilon_decay_iterations
        )

    def sample(self, state: TrainState, key: jax.Array) -> Trajectory:
        """`batch_size` trajectories of the behaviour policy (no gradient flows through them)."""
        traj = sample_forward(
            self.env,
            key,
            self.policy_fn(state),
            self.config.batch_size,
            epsilon=self.exploration(state),
            temperature=state.hparams["temperature"],
        )
        return jax.lax.stop_gradient(traj)

    # optimisers -----------------------------------------------------------------------------
    def phases(self, hp: dict) -> dict[str, dict[str, Any]]:
        """phase name -> {parameter group: learning rate (array or schedule)}."""
        return {"main": {"net": hp["lr"]}}

    def optimizer(self, phase: str, hp: dict) -> optax.GradientTransformation:
        groups = self.phases(hp)[phase]
        cfg = self.config
        txs = {g: adam(lr, cfg.clip_grad_norm, cfg.weight_decay) for g, lr in groups.items()}
        return optax.partition(txs, {g: g for g in groups})

    def init_opt_state(self, params: dict, hp: dict) -> dict:
        return {
            phase: self.optimizer(phase, hp).init({g: params[g] for g in groups})
            for phase, groups in self.phases(hp).items()
        }

    def apply_step(self, state: TrainState, phase: str, grads: dict) -> TrainState:
        """One optimiser step of `phase` on its parameter groups (grads: dict group -> tree)."""
        groups = self.phases(state.hparams)[phase]
        sub = {g: state.params[g] for g in groups}
        tx = self.optimizer(phase, state.hparams)
        updates, opt = tx.update({g: grads[g] for g in groups}, state.opt_state[phase], sub)
        params = dict(state.params, **optax.apply_updates(sub, updates))
        return state.replace(params=params, opt_state=dict(state.opt_state, **{phase: opt}))

    def make_state(self, params: dict, hp: dict, extra: Any = None) -> TrainState:
        return TrainState(
            params=params,
            opt_state=self.init_opt_state(params, hp),
            hparams=hp,
            step=jnp.zeros((), jnp.int32),
            extra=extra,
        )

    # hyperparameters ------------------------------------------------------------------------
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

    # training --------------------------------------------------------------------------------
    def init(self, key: jax.Array, hparams: dict | None = None) -> TrainState:
        raise NotImplementedError

    def update(self, state: TrainState, key: jax.Array) -> tuple[TrainState, StepInfo]:
        raise NotImplementedError

    # backward policy (pb = "tlm", or a learned P_B trained by its own objective) ---------------
    def trains_pb_separately(self) -> bool:
        """Whether P_B has its own optimiser phase "pb" (TLM; subclasses widen this)."""
        return self.config.pb == "tlm"

    def pb_phase(self, hp: dict) -> dict[str, dict[str, Any]]:
        """{"pb": {"net": lr_k}} with lr_k = pb_lr·pb_lr_decay^k at the k-th P_B step, or {}."""
        if not self.trains_pb_separately():
            return {}
        decay = self.config.pb_lr_decay
        return {"pb": {"net": lambda count: hp["pb_lr"] * decay ** count.astype(jnp.float32)}}

    def backward_loss(self, net_params: Any, traj: Trajectory, key: jax.Array, state: TrainState):
        """TLM: −mean_b Σ_t log P_B(s_t|s_{t+1}) over the batch's backward transitions."""
        ev = self.evaluation(net_params, traj)
        return backward_maximum_likelihood(ev.log_pb, traj.mask)

    def backward_update(self, state: TrainState, traj: Trajectory, key: jax.Array, steps: int = 1):
        """`steps` Adam steps of phase "pb" on `backward_loss`; returns (state, scalars)."""

        def body(state, k):
            loss, grads = jax.value_and_grad(self.backward_loss)(
                state.params["net"], traj, k, state
            )
            return self.apply_step(state, "pb", {"net": grads}), loss

        state, losses = jax.lax.scan(body, state, jax.random.split(key, steps))
        return state, {"pb_loss": losses.mean()}
