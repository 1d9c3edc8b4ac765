"""Sampling against independent oracles: the behaviour policy of `sample_forward` with ε > 0 and
temperature ≠ 1 by a χ² test against the documented mixture (1 − ε)·softmax(logits/T) +
ε·uniform(valid); the log-probabilities a sampler records (forward and backward sampling, learned
and uniform P_B) against a plain-numpy recomputation from tables and against `evaluate`; the
backward sampler's action frequencies against softmax of the learned P_B.

Tabular policies on small hypergrids: logits are looked up by the state's coordinates, decoded from
the one-hot observation, so every expected value is a table entry and a numpy log-softmax.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gfnjax.envs.hypergrid import Hypergrid
from gfnjax.rollout import evaluate, sample_backward, sample_forward
from gfnjax.utils import sample_from_log_probs

P_VALUE = 1e-3  # goodness-of-fit threshold (the tests are deterministic: fixed keys)
POWER = 1e-8  # the documented alternatives must be rejected far more strongly


def tables(env, seed, scale=1.5):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    pf = jax.random.normal(k1, (env.num_states, env.num_actions)) * scale
    pb = jax.random.normal(k2, (env.num_states, env.num_backward_actions)) * scale
    return np.asarray(pf, np.float64), np.asarray(pb, np.float64)


def index_of(env, obs):
    coords = jnp.argmax(obs.reshape(obs.shape[0], env.dim, env.side), -1)
    return coords[:, 0] * env.side + coords[:, 1]


def table_policy(env, pf, pb=None):
    pf, pb = jnp.asarray(pf, jnp.float32), None if pb is None else jnp.asarray(pb, jnp.float32)

    def fn(obs):
        i = index_of(env, obs)
        return pf[i], None if pb is None else pb[i]

    return fn


def np_log_softmax(logits, valid):
    x = np.where(valid, logits, -np.inf)
    return x - np.logaddexp.reduce(x[valid])


def mixture(logits, valid, eps, temperature):
    """(1 − ε)·softmax(logits/T) + ε·uniform over the valid actions (numpy)."""
    p = np.exp(np_log_softmax(np.asarray(logits) / temperature, valid))
    return (1 - eps) * p + eps * valid / valid.sum()


def chi2_p(counts, probs):
    keep = probs > 0
    assert counts[~keep].sum() == 0, "an action of probability 0 was sampled"
    return stats.chisquare(counts[keep], counts.sum() * probs[keep]).pvalue


# --- the behaviour policy ------------------------------------------------------------------------
def test_exploration_mixture_with_epsilon_and_temperature_chi_square():
    """First action at s0 (all 3 valid) and second action after moving along axis 0 on a 2×2 grid
    (axis 0 is then full: 2 valid actions) follow (1 − ε)·softmax(logits/T) + ε·uniform(valid)."""
    env = Hypergrid(dim=2, side=2)
    pf = np.zeros((env.num_states, env.num_actions))
    pf[0] = [2.0, -1.0, 0.5]  # s0 = (0, 0)
    pf[2] = [3.0, -2.0, 1.0]  # (1, 0): action 0 is invalid there
    eps, temp, n = 0.3, 2.5, 40_000
    traj = jax.jit(
        lambda k: sample_forward(env, k, table_policy(env, pf), n, epsilon=eps, temperature=temp)
    )(jax.random.PRNGKey(0))
    a = np.asarray(traj.actions)
    valid0, valid1 = np.array([True, True, True]), np.array([False, True, True])
    c0 = np.bincount(a[:, 0], minlength=3).astype(float)
    c1 = np.bincount(a[a[:, 0] == 0, 1], minlength=3).astype(float)
    p0, p1 = mixture(pf[0], valid0, eps, temp), mixture(pf[2], valid1, eps, temp)
    assert chi2_p(c0, p0) > P_VALUE, ("(1 − ε)·softmax(logits/T) + ε·uniform at s0", c0, p0)
    assert chi2_p(c1, p1) > P_VALUE, ("mixture with uniform over the *valid* actions", c1, p1)
    # power: the swapped mixture, temperature 1, and no exploration are rejected
    for name, alt in [
        ("ε·softmax + (1 − ε)·uniform", (1 - eps, temp)),
        ("temperature 1", (eps, 1.0)),
        ("ε = 0", (0.0, temp)),
    ]:
        q0 = mixture(pf[0], valid0, *alt)
        assert chi2_p(c0, q0) < POWER, f"the χ² test cannot tell the mixture from {name}"
    # log P_F records the policy itself (temperature 1, no exploration), not the behaviour
    m = np.asarray(traj.mask)
    lp0 = np_log_softmax(pf[0], valid0)[a[:, 0]]
    np.testing.assert_allclose(
        np.asarray(traj.log_pf)[:, 0], lp0, rtol=1e-5, err_msg="log_pf = log softmax(logits)"
    )
    rows = (a[:, 0] == 0) & m[:, 1]
    lp1 = np_log_softmax(pf[2], valid1)[a[rows, 1]]
    np.testing.assert_allclose(np.asarray(traj.log_pf)[rows, 1], lp1, rtol=1e-5)


# --- recorded log-probabilities against an oracle -----------------------------------------------
ENV = Hypergrid(dim=2, side=3, r0=0.1)


def coords_index(c):
    return c[..., 0] * ENV.side + c[..., 1]


def oracle_log_probs(traj, pf, pb):
    """log P_F(a_t|s_t) and log P_B(s_t|s_{t+1}) of every valid step from the states, in numpy:
    forward valid = coordinate < side − 1 or stop; backward valid at a non-terminal state =
    coordinate > 0, at a terminal state only "undo stop" (P_B = 1)."""
    coords = np.asarray(traj.states.coords)
    done = np.asarray(traj.states.done)
    a, b = np.asarray(traj.actions), np.asarray(traj.backward_actions)
    mask = np.asarray(traj.mask)
    log_pf, log_pb = np.zeros(a.shape), np.zeros(a.shape)
    for i, t in zip(*np.nonzero(mask)):
        s, s1 = coords[i, t], coords[i, t + 1]
        assert not done[i, t]
        if a[i, t] == ENV.dim:  # stop: the next state is terminal with the same coordinates
            assert done[i, t + 1] and np.array_equal(s1, s)
        else:
            assert np.array_equal(s1 - s, np.eye(ENV.dim, dtype=int)[a[i, t]])
        assert b[i, t] == a[i, t], "the backward action undoing a_t has the same index"
        fvalid = np.append(s < ENV.side - 1, True)
        log_pf[i, t] = np_log_softmax(pf[coords_index(s)], fvalid)[a[i, t]]
        if done[i, t + 1]:
            bvalid = np.array([False] * ENV.dim + [True])
        else:
            bvalid = np.append(s1 > 0, False)
        row = np.zeros(ENV.num_backward_actions) if pb is None else pb[coords_index(s1)]
        log_pb[i, t] = np_log_softmax(row, bvalid)[b[i, t]]
    return log_pf, log_pb


@pytest.mark.parametrize("learned_pb", [True, False], ids=["learned_pb", "uniform_pb"])
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_recorded_log_probs_equal_the_oracle_and_evaluate(direction, learned_pb):
    pf, pb = tables(ENV, seed=1)
    pb = pb if learned_pb else None
    policy = table_policy(ENV, pf, pb)
    if direction == "forward":
        pf[:, ENV.stop_action] += 1.5  # mostly short trajectories: `evaluate` packs its pass
        policy = table_policy(ENV, pf, pb)
        traj = jax.jit(lambda k: sample_forward(ENV, k, policy, 512))(jax.random.PRNGKey(2))
        assert int(traj.length.sum()) + 512 < traj.obs.shape[0] * traj.obs.shape[1] // 2
    else:
        x = jax.tree.map(
            lambda v: jnp.tile(v, (64,) + (1,) * (v.ndim - 1)), ENV.enumerate_terminals()
        )
        traj = jax.jit(lambda k: sample_backward(ENV, k, x, policy))(jax.random.PRNGKey(2))
    want_pf, want_pb = oracle_log_probs(traj, pf, pb)
    what = f"{direction} sampling, {'learned' if learned_pb else 'uniform'} P_B"
    np.testing.assert_allclose(
        np.asarray(traj.log_pf), want_pf, atol=1e-5, err_msg=f"log P_F(a_t|s_t), {what}"
    )
    np.testing.assert_allclose(
        np.asarray(traj.log_pb), want_pb, atol=1e-5, err_msg=f"log P_B(s_t|s_(t+1)), {what}"
    )
    np.testing.assert_array_equal(
        np.asarray(traj.done),
        np.arange(traj.horizon)[None] == np.asarray(traj.length)[:, None] - 1,
        err_msg="done_t ⇔ t = length − 1 (the transition into x)",
    )

    def apply(obs):
        out = policy(obs)
        return out[0], out[1], index_of(ENV, obs).astype(jnp.float32)  # log F(s) := cell of s

    ev = jax.jit(lambda t: evaluate(apply, t))(traj)
    np.testing.assert_allclose(
        np.asarray(ev.log_pf), want_pf, atol=1e-5, err_msg="evaluate log P_F"
    )
    np.testing.assert_allclose(
        np.asarray(ev.log_pb), want_pb, atol=1e-5, err_msg="evaluate log P_B"
    )
    # log F(s_t) is aligned with the states s_0 … s_(length−1) (padding is unspecified)
    cells = coords_index(np.asarray(traj.states.coords))
    before_x = np.arange(traj.horizon + 1)[None] < np.asarray(traj.length)[:, None]
    np.testing.assert_array_equal(np.asarray(ev.log_flow)[before_x], cells[before_x])


def test_backward_sampler_follows_softmax_of_the_learned_backward_policy():
    """From x = (1, 1): the stop is undone (P_B = 1), then a parent is drawn with
    softmax(P_B logits at (1, 1)) over its two valid backward actions; then the only parent."""
    pf, pb = tables(ENV, seed=3)
    pb[4, :2] = [1.2, -0.8]
    n = 20_000
    x = jax.tree.map(lambda v: jnp.repeat(v[4:5], n, axis=0), ENV.enumerate_terminals())
    traj = jax.jit(lambda k: sample_backward(ENV, k, x, table_policy(ENV, pf, pb)))(
        jax.random.PRNGKey(4)
    )
    length = np.asarray(traj.length)
    assert np.all(length == 3)
    b = np.asarray(traj.backward_actions)[:, 1]  # the transition into (1, 1)
    counts = np.bincount(b, minlength=3).astype(float)
    p = np.exp(np_log_softmax(pb[4], np.array([True, True, False])))
    assert chi2_p(counts, p) > P_VALUE, (
        "backward actions ~ softmax(P_B logits) over parents",
        counts,
    )
    assert chi2_p(counts, np.array([0.5, 0.5, 0.0])) < POWER, "indistinguishable from uniform P_B"
    np.testing.assert_array_equal(np.asarray(traj.actions)[:, 2], ENV.stop_action)
    assert math.isclose(float(np.asarray(traj.log_pb)[:, 2].max()), 0.0, abs_tol=1e-6)


@pytest.mark.parametrize("width", [100, 1000], ids=["flat", "two_level"])
def test_inverse_cdf_sampler_chi_square_on_wide_masked_rows(width):
    """`sample_from_log_probs` against numpy softmax probabilities: random logits with a random
    mask, a fully masked stretch longer than a block, and mass in the last partial block; no masked
    action is ever drawn, frequencies pass χ², and the uniform alternative is rejected."""
    rng = np.random.default_rng(width)
    logits = rng.normal(size=width) * 2.0
    valid = rng.random(width) < 0.3
    valid[width // 4 : width // 4 + 150] = False
    valid[-3:] = True
    logits[-1] = logits.max() + 2.0  # a heavy action in the last (partial) block
    lp = jnp.asarray(np.where(valid, logits - np.logaddexp.reduce(logits[valid]), -np.inf))
    n = 200_000
    draws = jax.jit(jax.vmap(lambda k: sample_from_log_probs(k, lp)))(
        jax.random.split(jax.random.PRNGKey(0), n)
    )
    counts = np.bincount(np.asarray(draws), minlength=width).astype(float)
    p = np.exp(np_log_softmax(logits, valid))
    assert chi2_p(counts, p) > P_VALUE
    assert chi2_p(counts, valid / valid.sum()) < POWER


def test_inverse_cdf_sampler_never_draws_masked_actions_at_extreme_ranges():
    """Rows whose valid probabilities span 1e-30 … 1 next to masked stretches (where rounding of
    the block sums is largest): every draw is a valid action; an all-masked row returns 0."""
    A = 3840
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(16):
        valid = rng.random(A) < 0.02
        valid[rng.integers(A)] = True
        logits = np.where(valid, rng.uniform(-70.0, 0.0, A), -np.inf)
        rows.append(logits)
    lp = jnp.asarray(np.stack(rows), jnp.float32)
    draws = jax.jit(jax.vmap(lambda k: sample_from_log_probs(k, lp)))(
        jax.random.split(jax.random.PRNGKey(3), 1024)
    )
    hit = np.take_along_axis(np.isfinite(np.stack(rows))[None], np.asarray(draws)[..., None], -1)
    assert hit.all(), "a masked action was drawn"
    none = jnp.full((1, A), -jnp.inf)
    assert int(sample_from_log_probs(jax.random.PRNGKey(0), none)[0]) == 0
