"""Hypergrid against an independent plain-Python oracle, and the env contract's mask/step
identities."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import envs
from gfnjax.envs.hypergrid import HypergridState


def oracle_reward(x, side, r0, r1, r2):
    a = [abs(c / (side - 1) - 0.5) for c in x]
    return r0 + r1 * all(0.25 < v for v in a) + r2 * all(0.3 < v < 0.4 for v in a)


@pytest.mark.parametrize(
    "dim,side,preset", [(2, 5, "standard"), (3, 4, "hard"), (2, 8, "standard")]
)
def test_reward_matches_oracle(dim, side, preset):
    env = envs.make("hypergrid", dim=dim, side=side, reward=preset)
    r0, r1, r2 = {"standard": (1e-3, 0.5, 2.0), "hard": (1e-4, 1.0, 3.0)}[preset]
    terms = env.enumerate_terminals()
    got = np.exp(np.asarray(env.log_reward(terms)))
    want = [oracle_reward(x, side, r0, r1, r2) for x in np.asarray(terms.coords)]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(float(env.log_partition()), math.log(sum(want)), rtol=1e-6)


def test_explicit_reward_constants_override_preset():
    env = envs.make("hypergrid", dim=2, side=8, r0=0.01, r1=0.0, r2=0.0)
    assert env.reward_constants == (0.01, 0.5, 2.0)[:1] + (0.0, 0.0)
    np.testing.assert_allclose(np.exp(env.log_reward(env.enumerate_terminals())), 0.01, rtol=1e-6)


def all_states(env):
    """Every state, terminal or not, as one batch."""
    s, x = env.enumerate_states(), env.enumerate_terminals()
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), s, x)


@pytest.mark.parametrize("dim,side", [(2, 4), (3, 3)])
def test_masks_agree_with_step_and_backward_step(dim, side):
    env = envs.make("hypergrid", dim=dim, side=side)
    states = all_states(env)
    n = states.done.shape[0]
    fmask = np.asarray(env.forward_mask(states))
    bmask = np.asarray(env.backward_mask(states))
    coords, done = np.asarray(states.coords), np.asarray(states.done)
    # oracle masks: increment while < side-1 or stop, only when not done; decrement while > 0
    # when not done, un-stop only when done
    for i in range(n):
        c, d = coords[i], done[i]
        want_f = [(not d) and c[j] < side - 1 for j in range(dim)] + [not d]
        want_b = [(not d) and c[j] > 0 for j in range(dim)] + [bool(d)]
        assert fmask[i].tolist() == want_f
        assert bmask[i].tolist() == want_b
    n_edges_f = n_edges_b = 0
    for a in range(env.num_actions):
        act = jnp.full((n,), a, jnp.int32)
        child = env.step(states, act)
        b = env.to_backward_action(states, act)
        back = env.backward_step(child, b)
        cb = np.asarray(env.backward_mask(child))[np.arange(n), np.asarray(b)]
        valid = fmask[:, a]
        n_edges_f += valid.sum()
        assert cb[valid].all(), (
            "the inverse of a valid forward action must be a valid backward action"
        )
        np.testing.assert_array_equal(np.asarray(back.coords)[valid], coords[valid])
        np.testing.assert_array_equal(np.asarray(back.done)[valid], done[valid])
    for b in range(env.num_backward_actions):
        bact = jnp.full((n,), b, jnp.int32)
        parent = env.backward_step(states, bact)
        a = env.to_forward_action(states, bact)
        fwd = env.step(parent, a)
        pf = np.asarray(env.forward_mask(parent))[np.arange(n), np.asarray(a)]
        valid = bmask[:, b]
        n_edges_b += valid.sum()
        assert pf[valid].all()
        np.testing.assert_array_equal(np.asarray(fwd.coords)[valid], coords[valid])
        np.testing.assert_array_equal(np.asarray(fwd.done)[valid], done[valid])
    assert n_edges_f == n_edges_b  # forward and backward edges are in bijection
    # s0 has no parent, terminals have no forward action
    assert not bmask[np.asarray(env.is_initial(states))].any()
    assert not fmask[done].any()


def test_enumeration_indices_are_a_bijection():
    env = envs.make("hypergrid", dim=3, side=4)
    idx = np.asarray(env.state_index(env.enumerate_states()))
    np.testing.assert_array_equal(np.sort(idx), np.arange(env.num_states))
    tidx = np.asarray(env.terminal_index(env.enumerate_terminals()))
    np.testing.assert_array_equal(tidx, np.arange(env.num_terminals))


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(dim=0), "dim"),
        (dict(side=1), "side"),
        (dict(side=-3), "side"),
        (dict(reward="easy"), "reward"),
        (dict(r0=-1.0), "r0"),
        (dict(dim=2.5), "dim"),
    ],
)
def test_bad_env_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        envs.make("hypergrid", **kwargs)


def test_unknown_env_name_and_option_list_valid_ones():
    with pytest.raises(ValueError, match="valid names: .*hypergrid"):
        envs.make("hypergird")
    with pytest.raises(ValueError, match="valid options"):
        envs.make("hypergrid", sides=3)


def test_env_is_hashable_and_static():
    a = envs.make("hypergrid", dim=2, side=5)
    b = envs.make("hypergrid", dim=2, side=5)
    assert a == b and hash(a) == hash(b)
    f = jax.jit(lambda env, s: env.forward_mask(s), static_argnums=0)
    s = a.reset(3)
    assert f(a, s).shape == (3, 3)
    assert isinstance(s, HypergridState)


def test_brute_force_trajectory_count_small_grid():
    """Number of complete trajectories = Σ_x multinomial(x) (one path per ordering of
    increments)."""
    dim, side = 2, 3
    env = envs.make("hypergrid", dim=dim, side=side)
    want = sum(
        math.factorial(sum(x)) // math.prod(math.factorial(v) for v in x)
        for x in itertools.product(range(side), repeat=dim)
    )

    # count by walking the env itself with a Python DFS
    def count(state):
        if bool(env.is_terminal(state)[0]):
            return 1
        mask = np.asarray(env.forward_mask(state))[0]
        return sum(count(env.step(state, jnp.array([a]))) for a in np.flatnonzero(mask))

    assert count(env.reset(1)) == want
