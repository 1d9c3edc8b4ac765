"""Sampling trajectories and evaluating their log-probabilities.

Every sampler returns one `Trajectory` pytree of fixed shapes ([B, T] transitions, [B, T+1]
states, T = env.max_steps) padded after termination, which every loss and algorithm consumes.

Forward sampling runs a `lax.while_loop` that stops as soon as every trajectory of the batch has
terminated, writing into fixed-size buffers: a batch whose longest trajectory has L ≪ T steps
costs L network evaluations, not T. Padded positions repeat the terminal state.

A `policy_fn(obs float[N, D]) -> (logits float[N, A], backward_logits float[N, A_b] | None)`
is the only model interface: `backward_logits = None` means the uniform backward policy over
valid parents.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from gfnjax.envs.base import Env
from gfnjax.utils import gather_last, masked_log_softmax, sample_from_log_probs, uniform_log_probs

PolicyFn = Callable[[jax.Array], tuple[jax.Array, jax.Array | None]]


@struct.dataclass
class Trajectory:
    """A batch of B trajectories, T = env.max_steps transitions at most.

    states:           env State with leaves [B, T+1, ...]; positions > length repeat x
    obs:              float32[B, T+1, D]
    forward_mask:     bool[B, T+1, A]    valid forward actions at s_t (all False at x)
    backward_mask:    bool[B, T+1, A_b]  valid backward actions at s_t (all False at s0)
    actions:          int32[B, T]        forward action a_t: s_t -> s_{t+1}
    backward_actions: int32[B, T]        backward action at s_{t+1} that returns to s_t
    log_pf:           float32[B, T]      log P_F(a_t|s_t) under the sampling parameters
                                         (temperature 1, no exploration); 0 where ~mask
    log_pb:           float32[B, T]      log P_B(s_t|s_{t+1}) under the sampling P_B; 0 where ~mask
    log_reward:       float32[B]         log R(x)
    mask:             bool[B, T]         t < length (valid transitions)
    done:             bool[B, T]         t == length − 1 (the transition that reaches x)
    length:           int32[B]
    final_state:      env State [B]      the terminal states x
    """

    states: Any
    obs: jax.Array
    forward_mask: jax.Array
    backward_mask: jax.Array
    actions: jax.Array
    backward_actions: jax.Array
    log_pf: jax.Array
    log_pb: jax.Array
    log_reward: jax.Array
    mask: jax.Array
    done: jax.Array
    length: jax.Array
    final_state: Any

    @property
    def batch_size(self) -> int:
        return self.actions.shape[0]

    @property
    def horizon(self) -> int:
        return self.actions.shape[1]


def _backward_log_probs(bmask: jax.Array, backward_logits: jax.Array | None) -> jax.Array:
    if backward_logits is None:
        return uniform_log_probs(bmask)
    return masked_log_softmax(backward_logits, bmask)


def _exploration_log_probs(logits, fmask, epsilon, temperature):
    """log of (1 − ε)·softmax(logits / temperature) + ε·uniform over valid actions."""
    logp = masked_log_softmax(logits / temperature, fmask)
    if epsilon is None:
        return logp
    uni = uniform_log_probs(fmask)
    eps = jnp.clip(jnp.asarray(epsilon, jnp.float32), 1e-12, 1.0)
    mixed = jnp.logaddexp(jnp.log1p(-jnp.minimum(eps, 1 - 1e-7)) + logp, jnp.log(eps) + uni)
    return jnp.where(eps > 1e-12, mixed, logp)


def _has_backward_head(policy_fn: PolicyFn, obs: jax.Array) -> bool:
    """Whether policy_fn returns backward logits (decided at trace time, no compute)."""
    return jax.eval_shape(policy_fn, obs)[1] is not None


def _set(buf: jax.Array, t: jax.Array, value: jax.Array) -> jax.Array:
    """buf[:, t] = value as a masked select, not a dynamic-update-slice: under vmap over seeds
    the loop counter becomes batched and `.at[:, t].set` turns into a slow scatter."""
    hit = (jnp.arange(buf.shape[1]) == t).reshape((1, -1) + (1,) * (buf.ndim - 2))
    return jnp.where(hit, jnp.expand_dims(value, 1), buf)


def _tree_set(buf, t, value):
    return jax.tree.map(lambda b, v: _set(b, t, v), buf, value)


def _tree_alloc(value, length):
    return jax.tree.map(lambda v: jnp.zeros((v.shape[0], length) + v.shape[1:], v.dtype), value)


def _pad_after(x, length):
    """Repeat position `length` into every later position along axis 1."""
    t = jnp.arange(x.shape[1])
    idx = jnp.minimum(t[None, :], length[:, None])
    idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


def sample_forward(
    env: Env,
    key: jax.Array,
    policy_fn: PolicyFn,
    batch_size: int,
    epsilon: float | jax.Array | None = None,
    temperature: float | jax.Array = 1.0,
) -> Trajectory:
    """Sample B trajectories from s0 with the forward policy.

    Exploration (behaviour policy): (1 − ε)·softmax(logits/temperature) + ε·uniform(valid);
    `log_pf` records the policy itself (temperature 1, ε = 0), as the losses need.
    """
    T = env.max_steps
    state0 = env.reset(batch_size)
    learned_pb = _has_backward_head(policy_fn, env.observe(state0))
    # The loop carries only small per-step buffers: under vmap (seeds) a while_loop selects its
    # whole carry every iteration, so observations and masks are rebuilt after the loop instead.
    bufs = dict(
        states=_tree_alloc(state0, T + 1),
        actions=jnp.zeros((batch_size, T), jnp.int32),
        backward_actions=jnp.zeros((batch_size, T), jnp.int32),
        log_pf=jnp.zeros((batch_size, T), jnp.float32),
        length=jnp.zeros((batch_size,), jnp.int32),
    )
    if learned_pb:
        bufs["log_pb"] = jnp.zeros((batch_size, T + 1), jnp.float32)  # [t+1] for transition t

    def cond(carry):
        t, state, _, _ = carry
        return (t < T) & ~jnp.all(env.is_terminal(state))

    def body(carry):
        t, state, key, bufs = carry
        key, k_sample = jax.random.split(key)
        fmask = env.forward_mask(state)
        logits, back_logits = policy_fn(env.observe(state))
        logp = masked_log_softmax(logits, fmask)
        behaviour = _exploration_log_probs(logits, fmask, epsilon, temperature)
        action = sample_from_log_probs(k_sample, behaviour)
        alive = ~env.is_terminal(state)
        action = jnp.where(alive, action, 0)
        nxt = env.step(state, action)
        b_action = env.to_backward_action(state, action)
        new = dict(
            states=_tree_set(bufs["states"], t, state),
            actions=_set(bufs["actions"], t, action),
            backward_actions=_set(bufs["backward_actions"], t, jnp.where(alive, b_action, 0)),
            log_pf=_set(bufs["log_pf"], t, jnp.where(alive, gather_last(logp, action), 0.0)),
            length=bufs["length"] + alive.astype(jnp.int32),
        )
        if learned_pb:
            # log P_B of the *previous* transition is known at s_t
            prev_b = bufs["backward_actions"][:, jnp.maximum(t - 1, 0)]
            prev_logpb = gather_last(
                _backward_log_probs(env.backward_mask(state), back_logits), prev_b
            )
            new["log_pb"] = _set(bufs["log_pb"], t, prev_logpb)
        return t + 1, nxt, key, new

    t_end, state, key, bufs = jax.lax.while_loop(cond, body, (jnp.int32(0), state0, key, bufs))
    t_w = jnp.minimum(t_end, T)
    bufs["states"] = _tree_set(bufs["states"], t_w, state)  # every row is terminal now
    length = bufs["length"]
    states = jax.tree.map(lambda x: _pad_after(x, length), bufs["states"])
    flat = jax.tree.map(lambda x: x.reshape((batch_size * (T + 1),) + x.shape[2:]), states)
    obs = env.observe(flat)
    bufs["states"] = states
    bufs["obs"] = obs.reshape((batch_size, T + 1) + obs.shape[1:])
    bufs["forward_mask"] = env.forward_mask(flat).reshape(batch_size, T + 1, -1)
    bufs["backward_mask"] = env.backward_mask(flat).reshape(batch_size, T + 1, -1)
    if learned_pb:
        last_b = bufs["backward_actions"][:, jnp.maximum(t_end - 1, 0)]
        last_logpb = gather_last(
            _backward_log_probs(env.backward_mask(state), policy_fn(env.observe(state))[1]), last_b
        )
        log_pb_next = _set(bufs["log_pb"], t_w, last_logpb)[:, 1:]
    else:
        log_pb_next = gather_last(
            uniform_log_probs(bufs["backward_mask"][:, 1:]), bufs["backward_actions"]
        )
    return _finish(env, bufs, length, state, log_pb_next=log_pb_next)


def _finish(env, bufs, length, final_state, log_pb_next):
    T = env.max_steps
    t = jnp.arange(T)
    mask = t[None, :] < length[:, None]
    pad = lambda x: _pad_after(x, length)
    return Trajectory(
        states=jax.tree.map(pad, bufs["states"]),
        obs=pad(bufs["obs"]),
        forward_mask=pad(bufs["forward_mask"]),
        backward_mask=pad(bufs["backward_mask"]),
        actions=jnp.where(mask, bufs["actions"], 0),
        backward_actions=jnp.where(mask, bufs["backward_actions"], 0),
        log_pf=jnp.where(mask, bufs["log_pf"], 0.0),
        log_pb=jnp.where(mask, log_pb_next, 0.0),
        log_reward=env.log_reward(final_state),
        mask=mask,
        done=t[None, :] == (length[:, None] - 1),
        length=length,
        final_state=final_state,
    )


def sample_backward(
    env: Env,
    key: jax.Array,
    terminal_state: Any,
    policy_fn: PolicyFn,
) -> Trajectory:
    """Sample trajectories backward from terminal states x with P_B, returned in forward order.

    P_B is the uniform distribution over parents, or softmax of `policy_fn`'s backward logits when
    they are not None. `log_pf` is evaluated with `policy_fn` on the whole batch in one pass.
    """
    T = env.max_steps
    B = jax.tree.leaves(terminal_state)[0].shape[0]
    learned_pb = _has_backward_head(policy_fn, env.observe(terminal_state))
    rev = dict(
        states=_tree_alloc(terminal_state, T + 1),
        actions=jnp.zeros((B, T), jnp.int32),
        backward_actions=jnp.zeros((B, T), jnp.int32),
        log_pb=jnp.zeros((B, T), jnp.float32),
        length=jnp.zeros((B,), jnp.int32),
    )

    def cond(carry):
        k, state, _, _ = carry
        return (k < T) & ~jnp.all(env.is_initial(state))

    def body(carry):
        k, state, key, rev = carry
        key, k_sample = jax.random.split(key)
        bmask = env.backward_mask(state)
        back_logits = policy_fn(env.observe(state))[1] if learned_pb else None
        logpb = _backward_log_probs(bmask, back_logits)
        b = sample_from_log_probs(k_sample, logpb)
        alive = ~env.is_initial(state)
        b = jnp.where(alive, b, 0)
        parent = env.backward_step(state, b)
        a = env.to_forward_action(state, b)
        rev = dict(
            states=_tree_set(rev["states"], k, state),
            actions=_set(rev["actions"], k, jnp.where(alive, a, 0)),
            backward_actions=_set(rev["backward_actions"], k, b),
            log_pb=_set(rev["log_pb"], k, jnp.where(alive, gather_last(logpb, b), 0.0)),
            length=rev["length"] + alive.astype(jnp.int32),
        )
        return k + 1, parent, key, rev

    k_end, state0, _, rev = jax.lax.while_loop(cond, body, (jnp.int32(0), terminal_state, key, rev))
    rev["states"] = _tree_set(rev["states"], jnp.minimum(k_end, T), state0)
    length = rev["length"]
    # forward position t holds reversed position length − t (clamped: padding repeats x)
    t1 = jnp.arange(T + 1)
    idx_s = jnp.maximum(length[:, None] - t1[None, :], 0)
    states = jax.tree.map(
        lambda x: jnp.take_along_axis(x, idx_s.reshape(idx_s.shape + (1,) * (x.ndim - 2)), axis=1),
        rev["states"],
    )
    t = jnp.arange(T)
    idx_a = jnp.clip(length[:, None] - 1 - t[None, :], 0, T - 1)
    take = lambda x: jnp.take_along_axis(x, idx_a, axis=1)
    flat = jax.tree.map(lambda x: x.reshape((B * (T + 1),) + x.shape[2:]), states)
    obs = env.observe(flat)
    fmask = env.forward_mask(flat)
    bmask = env.backward_mask(flat)
    logits, _ = policy_fn(obs)
    logp = masked_log_softmax(logits, fmask).reshape(B, T + 1, -1)
    actions = take(rev["actions"])
    log_pf = gather_last(logp[:, :T], actions)
    bufs = dict(
        states=states,
        obs=obs.reshape((B, T + 1) + obs.shape[1:]),
        forward_mask=fmask.reshape(B, T + 1, -1),
        backward_mask=bmask.reshape(B, T + 1, -1),
        actions=actions,
        backward_actions=take(rev["backward_actions"]),
        log_pf=log_pf,
    )
    return _finish(env, bufs, length, terminal_state, log_pb_next=take(rev["log_pb"]))


class Evaluation(struct.PyTreeNode):
    """Log-probabilities of a trajectory batch under given parameters (differentiable).

    log_pf:   float32[B, T]       0 where ~mask
    log_pb:   float32[B, T]       0 where ~mask (uniform P_B when the model has no backward head)
    log_probs: float32[B, T+1, A] masked log P_F(·|s_t) over all actions
    log_flow: float32[B, T+1] | None
    """

    log_pf: jax.Array
    log_pb: jax.Array
    log_probs: jax.Array
    log_flow: jax.Array | None


# Packed network passes: a batch's real states (s_0 … s_n of each trajectory) are gathered into a
# dense buffer whose size is the smallest of a few static capacities (halving from B·(T+1)), chosen
# by `lax.switch` on the real count. Compute follows the real transitions, shapes never change,
# nothing recompiles. Under `vmap` (seeds vmapped on accelerators) a switch on a batched index
# runs every branch, so the harness turns packing off there (`pack=False`).
PACK_MIN_ROWS = 8


# consecutive capacities differ by this factor; √2 took a tenth off a PPO update but nearly
# doubled its compile time (benchmarks/results/pack_ratio.md)
PACK_RATIO = 2.0


def pack_capacities(num_rows: int, min_rows: int) -> tuple[int, ...]:
    """Static buffer sizes N, N/r, N/r², … (r = PACK_RATIO) down to `min_rows`, rounded up to
    multiples of 8."""
    caps, c = [], float(num_rows)
    while True:
        caps.append(min(num_rows, -(-int(-(-c // 1)) // 8) * 8))
        c = c / PACK_RATIO
        if c < max(min_rows, PACK_MIN_ROWS):
            break
    return tuple(sorted(set(caps)))


def _valid_first(valid: jax.Array) -> jax.Array:
    """The permutation of range(N) listing the valid rows first, then the others, each in order:
    `argsort(~valid, stable=True)` by a cumulative count and one scatter (as a sort per network
    pass it took 5% of a PPO update's thread time: benchmarks/throughput.md)."""
    v = valid.astype(jnp.int32)
    count = v.sum()
    pos = jnp.where(valid, jnp.cumsum(v) - 1, count + jnp.cumsum(1 - v) - 1)
    return jnp.zeros_like(pos).at[pos].set(jnp.arange(valid.shape[0], dtype=pos.dtype))


def apply_packed(
    fn: Callable, x: Any, valid: jax.Array, min_rows: int = 1, pack: bool = True
) -> Any:
    """`fn(x)` computed only on the rows where `valid` (x: array or pytree of [N, ...] leaves,
    valid: bool[N]).

    Returns fn's output pytree with leaves [N, ...]: equal to fn(x) on valid rows (row-wise
    functions only); invalid rows hold fn of some other row (finite, to be masked by the caller).
    `min_rows` is a lower bound on the valid count (the smallest capacity needed); `pack=False`
    is the padded pass fn(x).
    """
    N = valid.shape[0]
    caps = pack_capacities(N, min_rows)
    if len(caps) == 1 or not pack:
        return fn(x)
    count = valid.sum()
    order = _valid_first(valid)

    def branch(c):
        def run(operand):
            x, order = operand
            if c == N:
                return fn(x)
            rows = order[:c]
            out = fn(jax.tree.map(lambda a: a[rows], x))
            return jax.tree.map(
                lambda o: jnp.zeros((N,) + o.shape[1:], o.dtype).at[rows].set(o), out
            )

        return run

    k = jnp.searchsorted(jnp.asarray(caps), count, side="left")
    return jax.lax.switch(jnp.minimum(k, len(caps) - 1), [branch(c) for c in caps], (x, order))


def state_validity(traj: Trajectory) -> jax.Array:
    """bool[B, T+1]: s_t is a real state of its trajectory (t ≤ length; s_length = x)."""
    return jnp.arange(traj.obs.shape[1])[None, :] <= traj.length[:, None]


def evaluate(apply_fn: Callable, traj: Trajectory, pack: bool = True) -> Evaluation:
    """Run the model once on every real state of the batch and gather log-probs.

    `apply_fn(obs) -> NetOutput`-like tuple (logits, backward_logits | None, log_flow | None).
    With `pack` (default) only the Σ_b (length_b + 1) real states go through the network
    (`apply_packed`); the result equals the padded pass over all B·(T+1) rows.
    """
    B, T1 = traj.obs.shape[:2]
    obs = traj.obs.reshape((B * T1,) + traj.obs.shape[2:])
    out = apply_packed(apply_fn, obs, state_validity(traj).reshape(-1), 2 * B, pack)
    logits, back_logits, log_flow = out[0], out[1], out[2]
    log_probs = masked_log_softmax(logits.reshape(B, T1, -1), traj.forward_mask)
    log_pf = jnp.where(traj.mask, gather_last(log_probs[:, :-1], traj.actions), 0.0)
    if back_logits is None:
        logpb_all = uniform_log_probs(traj.backward_mask)
    else:
        logpb_all = masked_log_softmax(back_logits.reshape(B, T1, -1), traj.backward_mask)
    log_pb = jnp.where(traj.mask, gather_last(logpb_all[:, 1:], traj.backward_actions), 0.0)
    if log_flow is not None:
        log_flow = log_flow.reshape(B, T1)
    return Evaluation(log_pf=log_pf, log_pb=log_pb, log_probs=log_probs, log_flow=log_flow)
