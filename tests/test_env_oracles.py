"""Rewards and masks of every environment against plain-numpy oracles on the benchmark sizes
themselves: hypergrid 20^4 (all 160,000 terminals, with the band counts derived by hand),
bit sequences n = 120 (the 7,200-sequence test set and random sequences, Hamming distances from
unpacked bits), the generic sequence environment, and the full QM9-string table (161,051 strings,
read from the data file with an independent index). Masks and dynamics are checked on random
partial states of the same sizes. (Small-size step/mask consistency and DAG enumeration:
tests/test_hypergrid_env.py and tests/test_sequences.py.)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import envs
from gfnjax.envs.bitseq import BLOCKS, bitseq_test_set_bits, mode_bits
from gfnjax.envs.qm9str import load_proxy
from gfnjax.envs.sequence import SequenceState


# --- hypergrid 20^4 -------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["standard", "hard"])
def test_hypergrid_20_4_reward_bands(preset):
    """a_i = |x_i/19 − 0.5| = |2x_i − 19|/38: a > 0.25 ⇔ x_i ∈ {0..4, 15..19} (10 values);
    0.3 < a < 0.4 ⇔ x_i ∈ {2, 3, 16, 17} (4 values). So 4^4 = 256 cells earn R0 + R1 + R2,
    10^4 − 256 = 9,744 earn R0 + R1 and the other 150,000 earn R0."""
    env = envs.make("hypergrid", dim=4, side=20, reward=preset)
    r0, r1, r2 = {"standard": (1e-3, 0.5, 2.0), "hard": (1e-4, 1.0, 3.0)}[preset]
    x = env.enumerate_terminals()
    coords = np.asarray(x.coords)
    a = np.abs(coords / 19.0 - 0.5)
    want = r0 + r1 * np.all(a > 0.25, -1) + r2 * np.all((a > 0.3) & (a < 0.4), -1)
    got = np.exp(np.asarray(env.log_reward(x), np.float64))
    np.testing.assert_allclose(
        got, want, rtol=1e-6, err_msg="R = R0 + R1·Π 1[a > 0.25] + R2·Π 1[0.3 < a < 0.4]"
    )
    values, counts = np.unique(np.round(got, 6), return_counts=True)
    expected = {round(r0, 6): 150_000, round(r0 + r1, 6): 9_744, round(r0 + r1 + r2, 6): 256}
    assert dict(zip(values.tolist(), counts.tolist())) == expected, "band sizes 150000/9744/256"
    log_z = math.log(150_000 * r0 + 9_744 * (r0 + r1) + 256 * (r0 + r1 + r2))
    assert float(env.log_partition()) == pytest.approx(log_z, rel=1e-5)
    assert env.num_modes == 256, "modes = the cells of the top band"
    top = np.nonzero(np.isin(coords, [2, 3, 16, 17]).all(-1))[0]
    rest = np.random.default_rng(0).choice(np.setdiff1d(np.arange(len(coords)), top), 300)
    sub = jax.tree.map(lambda v: v[np.concatenate([top, rest])], x)
    hits = np.asarray(env.mode_match(sub))
    assert np.all(hits[:256].sum(1) == 1) and not hits[256:].any(), "mode_match = top-band cell"
    assert len(set(np.argmax(hits[:256], 1).tolist())) == 256


def test_hypergrid_20_4_masks():
    env = envs.make("hypergrid", dim=4, side=20)
    s, x = env.enumerate_states(), env.enumerate_terminals()
    c = np.asarray(s.coords)
    f = np.asarray(env.forward_mask(s))
    np.testing.assert_array_equal(f[:, :4], c < 19, err_msg="increment i valid iff x_i < side − 1")
    assert f[:, 4].all(), "stop is valid at every non-terminal state"
    b = np.asarray(env.backward_mask(s))
    np.testing.assert_array_equal(b[:, :4], c > 0, err_msg="decrement i valid iff x_i > 0")
    assert not b[:, 4].any(), "'undo stop' only at terminal states"
    assert not np.asarray(env.forward_mask(x)).any(), "terminal states have no forward action"
    bx = np.asarray(env.backward_mask(x))
    assert bx[:, 4].all() and not bx[:, :4].any(), "a terminal state's only parent: undo stop"
    init = np.asarray(env.is_initial(s))
    assert init.sum() == 1 and init[0] and not np.asarray(env.is_initial(x)).any()


# --- bit sequences n = 120 ------------------------------------------------------------------------
def words_of(bits, k):
    """int[N, n] bits -> int[N, n/k] words, most significant bit first (numpy oracle)."""
    n = bits.shape[1]
    w = bits.reshape(len(bits), n // k, k).astype(np.int64)
    return (w * 2 ** np.arange(k - 1, -1, -1)).sum(-1).astype(np.int32)


def seq_state(tokens):
    tokens = jnp.asarray(tokens, jnp.int32)
    return SequenceState(tokens=tokens, length=(tokens >= 0).sum(-1).astype(jnp.int32))


@pytest.fixture(scope="module")
def bit_sequences():
    """The default test set (every mode and its copies with c = 1..119 flips) + 500 random."""
    env = envs.make("bitseq")
    bits, flips = bitseq_test_set_bits(120, 60, env.mode_seed, env.test_seed)
    rand = np.random.default_rng(7).integers(0, 2, (500, 120)).astype(np.int8)
    modes = np.asarray(mode_bits(120, 60, env.mode_seed))
    all_bits = np.concatenate([bits, rand])
    dist = (all_bits[:, None, :] != modes[None]).sum(-1)  # Hamming to every mode, [N, 60]
    return dict(bits=all_bits, flips=flips, modes=modes, dist=dist)


def test_bitseq_modes_and_test_set_are_as_documented(bit_sequences):
    modes, bits, flips, dist = (bit_sequences[k] for k in ("modes", "bits", "flips", "dist"))
    assert modes.shape == (60, 120) and len({m.tobytes() for m in modes}) == 60, "60 distinct"
    blocks = {tuple(int(c) for c in b) for b in BLOCKS}
    assert all(tuple(blk) in blocks for blk in modes.reshape(-1, 8)), "modes are BLOCKS words"
    n_test = len(flips)
    assert n_test == 7200
    own = dist[np.arange(n_test), np.arange(n_test) // 120]
    np.testing.assert_array_equal(own, flips, err_msg="test copy c is c bits from its mode")


@pytest.mark.parametrize("name", ["bitseq", "bitseq_ar"])
@pytest.mark.parametrize(
    "reward,beta,scale",
    [("hamming", None, 2.0), ("normalized_hamming", None, 3.0 / 120), ("hamming", 1.5, 1.5)],
)
def test_bitseq_120_reward_and_mode_match(bit_sequences, name, reward, beta, scale):
    env = envs.make(name, reward=reward, beta=beta)
    bits, dist = bit_sequences["bits"], bit_sequences["dist"]
    state = seq_state(words_of(bits, 8))
    d = dist.min(1)
    np.testing.assert_allclose(
        np.asarray(env.log_reward(state)),
        -scale * d,
        rtol=1e-6,
        err_msg=f"{reward}: log R = −β·min_m Hamming(x, m){' / n' if 'norm' in reward else ''}",
    )
    assert d.min() == 0 and d.max() > 30  # modes, near and far sequences
    match = np.asarray(env.mode_match(state))
    np.testing.assert_array_equal(match, dist <= 30, err_msg="mode found ⇔ Hamming ≤ n // 4 = 30")
    assert (dist == 30).any()  # the threshold itself is exercised


def test_bitseq_120_masks_and_dynamics_on_random_partial_states():
    env = envs.make("bitseq")
    rng = np.random.default_rng(1)
    tokens = np.where(rng.random((64, 15)) < 0.5, rng.integers(0, 256, (64, 15)), -1)
    tokens[0], tokens[1] = -1, rng.integers(0, 256, 15)  # s0 and a complete sequence
    s = seq_state(tokens)
    f = np.asarray(env.forward_mask(s)).reshape(64, 15, 256)
    empty = tokens < 0
    empty[1] = False  # terminal: no action
    np.testing.assert_array_equal(f, np.broadcast_to(empty[:, :, None], f.shape))
    np.testing.assert_array_equal(
        np.asarray(env.backward_mask(s)),
        (tokens >= 0) & (np.arange(64) != 0)[:, None],
        err_msg="backward = clear a filled slot",
    )
    # write word w into slot p with action p·256 + w; its backward action is p
    rows = np.arange(2, 64)
    slot = np.array([rng.choice(np.nonzero(tokens[r] < 0)[0]) for r in rows])
    word = rng.integers(0, 256, len(rows))
    sub = jax.tree.map(lambda v: v[2:], s)
    action = jnp.asarray(slot * 256 + word, jnp.int32)
    child = env.step(sub, action)
    want = tokens[2:].copy()
    want[np.arange(len(rows)), slot] = word
    np.testing.assert_array_equal(np.asarray(child.tokens), want)
    np.testing.assert_array_equal(np.asarray(env.to_backward_action(sub, action)), slot)
    back = env.backward_step(child, jnp.asarray(slot, jnp.int32))
    np.testing.assert_array_equal(np.asarray(back.tokens), tokens[2:])


def test_bitseq_ar_120_masks_and_dynamics():
    env = envs.make("bitseq_ar")
    rng = np.random.default_rng(2)
    length = np.array([0, 15, 1, 7, 14])
    tokens = np.where(np.arange(15)[None] < length[:, None], rng.integers(0, 256, (5, 15)), -1)
    s = seq_state(tokens)
    f = np.asarray(env.forward_mask(s))
    np.testing.assert_array_equal(f.all(1), length < 15)
    np.testing.assert_array_equal(f.any(1), length < 15, err_msg="append: every word or none")
    np.testing.assert_array_equal(np.asarray(env.backward_mask(s))[:, 0], length > 0)
    live = length < 15
    sub = jax.tree.map(lambda v: v[live], s)
    child = env.step(sub, jnp.full((live.sum(),), 99, jnp.int32))
    want = tokens[live].copy()
    want[np.arange(live.sum()), length[live]] = 99  # appended at position `length`
    np.testing.assert_array_equal(np.asarray(child.tokens), want)


# --- the generic sequence environment -------------------------------------------------------
def test_sequence_positional_reward_oracle():
    from gfnjax.envs.sequence import PositionalReward

    reward = PositionalReward(seq_length=5, vocab_size=3, beta=2.0, seed=4)
    env = envs.make("sequence", seq_length=5, vocab_size=3, reward=reward)
    x = env.enumerate_terminals()
    tokens = np.asarray(x.tokens)
    w = np.random.default_rng(4).standard_normal((5, 3))
    want = 2.0 * np.array([sum(w[i, t] for i, t in enumerate(row)) for row in tokens])
    np.testing.assert_allclose(
        np.asarray(env.log_reward(x)), want, rtol=1e-5, atol=1e-5, err_msg="β·Σ_i w_i[x_i]"
    )
    assert len(tokens) == 3**5 and len({r.tobytes() for r in tokens}) == 3**5


# --- QM9-string: the full table -------------------------------------------------------------------
@pytest.fixture(scope="module")
def qm9_oracle():
    env = envs.make("qm9str")
    x = env.enumerate_terminals()
    tokens = np.asarray(x.tokens)
    idx = np.ravel_multi_index(tuple(tokens.T), (11,) * 5)  # first block most significant
    y = np.asarray(load_proxy(), np.float64)[idx]
    log_y = 5.0 * np.log(np.maximum(y, 1e-3))
    log_r = math.log(100.0) + log_y - log_y.max()
    return env, x, tokens, log_r


@pytest.mark.parametrize("variant", ["prepend_append", "any_position"])
def test_qm9str_full_reward_table(qm9_oracle, variant):
    env, x, _, log_r = qm9_oracle
    env = envs.make("qm9str", variant=variant)
    assert len(log_r) == 161_051
    np.testing.assert_allclose(
        np.asarray(env.log_reward(x)),
        log_r,
        rtol=1e-5,
        atol=1e-4,
        err_msg="log R = log 100 + 5·(log max(y, 1e−3) − max_x' log max(y, 1e−3))",
    )


def test_qm9str_modes_are_the_top_half_percent(qm9_oracle):
    env, x, _, log_r = qm9_oracle
    assert env.num_modes == 805, "⌊0.005 · 161051⌋"
    order = np.argsort(-log_r, kind="stable")
    assert log_r[order[804]] > log_r[order[805]] + 1e-6  # no tie at the boundary
    rows = np.concatenate([order[:805], order[805:1200]])
    hits = np.asarray(env.mode_match(jax.tree.map(lambda v: v[rows], x)))
    assert np.all(hits[:805].sum(1) == 1) and not hits[805:].any(), "modes = 805 best strings"


def test_qm9str_masks_and_dynamics():
    rng = np.random.default_rng(3)
    pa = envs.make("qm9str")
    length = np.array([0, 1, 3, 4, 5])
    tokens = np.where(np.arange(5)[None] < length[:, None], rng.integers(0, 11, (5, 5)), -1)
    s = seq_state(tokens)
    np.testing.assert_array_equal(np.asarray(pa.forward_mask(s)).all(1), length < 5)
    np.testing.assert_array_equal(np.asarray(pa.backward_mask(s)).all(1), length > 0)
    live = np.nonzero(length < 5)[0]
    sub = jax.tree.map(lambda v: v[live], s)
    pre = np.asarray(pa.step(sub, jnp.full((len(live),), 7, jnp.int32)).tokens)
    app = np.asarray(pa.step(sub, jnp.full((len(live),), 11 + 7, jnp.int32)).tokens)
    for i, r in enumerate(live):
        body = list(tokens[r, : length[r]])
        assert list(pre[i, : length[r] + 1]) == [7] + body, "action a < 11 prepends block a"
        assert list(app[i, : length[r] + 1]) == body + [7], "action 11 + a appends block a"
    anyp = envs.make("qm9str", variant="any_position")
    tokens = np.where(rng.random((6, 5)) < 0.5, rng.integers(0, 11, (6, 5)), -1)
    tokens[0] = rng.integers(0, 11, 5)  # complete
    s = seq_state(tokens)
    f = np.asarray(anyp.forward_mask(s)).reshape(6, 5, 11)
    want = np.broadcast_to((tokens < 0)[:, :, None], f.shape)
    np.testing.assert_array_equal(f, want, err_msg="write block into an empty position")
    np.testing.assert_array_equal(
        np.asarray(anyp.backward_mask(s)), (tokens >= 0) & (tokens >= 0).any(1, keepdims=True)
    )
