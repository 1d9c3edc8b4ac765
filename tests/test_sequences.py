"""Sequence environments (bitseq, bitseq_ar, sequence, qm9str), transformer torso, sequence metrics.

Mathematics checked against independent oracles: numpy Hamming distances, brute-force
enumeration of every action sequence, incoming-edge counts of the enumerated DAG, scipy ranks,
the data file itself.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fast_compile import FAST_COMPILE
from scipy import stats

import gfnjax
from gfnjax import algos, envs
from gfnjax.algos import guides
from gfnjax.algos.base import StepInfo
from gfnjax.data import DataFileError
from gfnjax.envs.bitseq import BLOCKS, bitseq_test_set_bits, mode_bits
from gfnjax.envs.qm9str import load_proxy
from gfnjax.envs.sequence import SequenceState
from gfnjax.metrics import ExactDistribution
from gfnjax.metrics.exact import build_dag, policy_terminal_distribution
from gfnjax.metrics.sequence import ModesFound, TopKReward, estimate_log_prob
from gfnjax.metrics.stats import pearson, rankdata, spearman
from gfnjax.nets import PolicyNet, make_torso
from gfnjax.utils import masked_log_softmax

SMALL_ENVS = {
    "bitseq": lambda: envs.make("bitseq", n=8, k=2, num_modes=4, mode_threshold=2),
    "bitseq_ar": lambda: envs.make("bitseq_ar", n=8, k=4, num_modes=3),
    "sequence": lambda: envs.make("sequence", seq_length=3, vocab_size=3),
    "qm9str_pa": lambda: envs.make("qm9str", num_blocks=3, mode_fraction=0.02, test_size=64),
    "qm9str_any": lambda: envs.make(
        "qm9str", variant="any_position", num_blocks=2, mode_fraction=0.2, test_size=16
    ),
}


def _take(tree, idx):
    return jax.tree.map(lambda a: a[idx], tree)


def _table_logits(env, key):
    """A random tabular policy: logits[state_index(s)] for every enumerated state."""
    return jax.random.normal(key, (env.num_states, env.num_actions)) * 2.0


# --- environment dynamics --------------------------------------------------------------------
def _edges(env, states):
    """For every (state, action): arrays [A, S, ...] describing the forward edge and its inverse."""

    def one(a):
        act = jnp.full((states.length.shape[0],), a, jnp.int32)
        child = env.step(states, act)
        b = env.to_backward_action(states, act)
        bmask = env.backward_mask(child)
        parent = env.backward_step(child, b)
        term = env.is_terminal(child)
        safe = jax.tree.map(lambda x: jnp.maximum(x, 0), child)
        idx = jnp.where(term, env.terminal_index(safe), env.state_index(child))
        return dict(
            child_len=child.length,
            b_valid=jnp.take_along_axis(bmask, b[:, None], 1)[:, 0],
            parent=parent.tokens,
            back=env.to_forward_action(child, b),
            term=term,
            idx=idx,
        )

    return jax.jit(jax.vmap(one))(jnp.arange(env.num_actions))


@pytest.mark.parametrize("name", sorted(SMALL_ENVS))
def test_masks_agree_with_step_and_backward_step(name):
    """Every valid forward action leads to a state whose backward mask contains the inverse
    action, which leads back; and each state's number of valid backward actions equals its
    number of incoming edges in the enumerated DAG (counted from forward masks alone)."""
    env = SMALL_ENVS[name]()
    states = env.enumerate_states()
    S, A = env.num_states, env.num_actions
    tokens, length = np.asarray(states.tokens), np.asarray(states.length)
    fmask = np.asarray(env.forward_mask(states)).T  # [A, S]
    assert np.all(np.asarray(env.state_index(states)) == np.arange(S))
    e = jax.tree.map(np.asarray, _edges(env, states))
    v = fmask
    assert np.all(e["child_len"][v] == np.broadcast_to(length + 1, (A, S))[v])
    assert np.all(e["b_valid"][v])
    assert np.all((e["parent"] == tokens[None])[v])
    assert np.all(e["back"][v] == np.broadcast_to(np.arange(A)[:, None], (A, S))[v])
    if env.moves == "any_position":  # valid iff the written position is empty (plain oracle)
        pos = np.arange(A) // env.vocab_size
        np.testing.assert_array_equal(v, tokens[:, pos].T < 0)
    else:
        assert np.all(v)
    in_state = np.bincount(e["idx"][v & ~e["term"]], minlength=S)
    in_term = np.bincount(e["idx"][v & e["term"]], minlength=env.num_terminals)
    assert np.all(np.asarray(env.backward_mask(states)).sum(1) == in_state)
    terms = env.enumerate_terminals()
    assert np.all(np.asarray(env.backward_mask(terms)).sum(1) == in_term)
    assert not np.any(np.asarray(env.forward_mask(terms)))
    assert np.all(np.asarray(env.is_terminal(terms)))
    if env.moves == "append":  # a tree: exactly one parent
        assert np.all(in_state[1:] == 1) and np.all(in_term == 1)


def test_bitseq_default_sizes_and_mask_cost():
    env = envs.make("bitseq")
    assert (env.num_actions, env.num_backward_actions, env.max_steps) == (3840, 15, 15)
    assert env.obs_dim == 15 * 9 and not env.enumerable
    s = env.reset(2)
    assert env.forward_mask(s).shape == (2, 3840) and bool(env.forward_mask(s).all())


# --- modes, test set, rewards ---------------------------------------------------------------------
def test_mode_set_and_test_set_sizes_and_distances():
    env = envs.make("bitseq")
    modes = np.asarray(mode_bits(120, 60, env.mode_seed)).astype(int)
    assert modes.shape == (60, 120)
    assert len({m.tobytes() for m in modes}) == 60
    blocks = {tuple(int(c) for c in b) for b in BLOCKS}
    assert all(tuple(row) in blocks for row in modes.reshape(60 * 15, 8))
    bits, flips = bitseq_test_set_bits(120, 60, env.mode_seed, env.test_seed)
    bits = np.asarray(bits).astype(np.int32)
    modes = modes.astype(np.int32)
    assert bits.shape == (7200, 120) and len(flips) == 7200
    hamming = lambda a, b: a.sum(1)[:, None] + b.sum(1)[None, :] - 2 * a @ b.T  # 0/1 rows
    d_own = np.abs(bits.reshape(60, 120, 120) - modes[:, None, :]).sum(-1)
    assert np.all(d_own == np.arange(120)[None, :])  # copy c of mode m is exactly c bits away
    # env reward = −2·min Hamming distance (convention "hamming", β = 2), numpy oracle
    test = env.test_set()
    d_all = hamming(bits, modes)
    d_min = d_all.min(-1)
    np.testing.assert_allclose(np.asarray(env.log_reward(test)), -2.0 * d_min)
    env_n = envs.make("bitseq", reward="normalized_hamming")
    np.testing.assert_allclose(np.asarray(env_n.log_reward(test)), -3.0 * d_min / 120, rtol=1e-6)
    # words <-> bits: the observation of a complete sequence carries its bits as ±1
    obs = np.asarray(env.observe(_take(test, jnp.arange(5)))).reshape(5, 15, 9)
    np.testing.assert_array_equal(obs[..., 0], 1.0)
    np.testing.assert_array_equal(obs[..., 1:].reshape(5, 120), 2 * bits[:5] - 1)
    # mode found: exactly the sequences within n // 4 = 30 bits of some mode
    match = np.asarray(env.mode_match(test))
    np.testing.assert_array_equal(match, d_all <= 30)


def test_bitseq_invalid_config_raises():
    with pytest.raises(ValueError, match="n"):
        envs.make("bitseq", n=12, k=4)
    with pytest.raises(ValueError, match="num_modes"):
        envs.make("bitseq", n=8, k=2)  # only 5 distinct one-block modes
    with pytest.raises(ValueError, match="reward"):
        envs.make("bitseq", reward="linear")


def test_qm9str_table_lookup_matches_data_file():
    env = envs.make("qm9str")
    y = load_proxy()
    strings = ["00000", "11111", "0000a", "a0000", "73920", "aaaaa", "12345"]
    tokens = jnp.asarray([[int(c, 11) for c in s] for s in strings], jnp.int32)
    idx = [int(s, 11) for s in strings]
    np.testing.assert_array_equal(env.proxy(np.asarray(tokens)), y[idx])
    state = SequenceState(tokens=tokens, length=jnp.full((len(strings),), 5, jnp.int32))
    expect = np.log(100.0) + 5 * (
        np.log(np.maximum(y[idx], 1e-3)) - np.log(np.maximum(y, 1e-3).max())
    )
    np.testing.assert_allclose(np.asarray(env.log_reward(state)), expect, rtol=1e-5, atol=1e-5)
    assert float(jnp.max(env.log_reward(env.enumerate_terminals()))) == pytest.approx(
        np.log(100.0), abs=1e-5
    )
    assert env.smiles(np.asarray(tokens[:1]))[0] == "C.C.C.C.C"


def test_qm9str_missing_data_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GFNJAX_DATA", str(tmp_path))
    from gfnjax.envs import qm9str

    qm9str.log_reward_table.cache_clear()
    with pytest.raises(DataFileError) as e:
        envs.make("qm9str", reward_exponent=4.0)
    assert str(tmp_path) in str(e.value) and "maxwshen/gflownet" in str(e.value)
    (tmp_path / "qm9str_proxy_s5.npy").write_bytes(b"not a numpy file")
    with pytest.raises(DataFileError, match="corrupt"):
        envs.make("qm9str", reward_exponent=4.5)
    qm9str.log_reward_table.cache_clear()


@functools.partial(jax.jit, static_argnums=0)
def _brute_force_terminal_distribution(env, logits_table):
    """Sum of P_F over every action sequence of length L (invalid ones have probability 0)."""
    L, A = env.seq_length, env.num_actions
    seqs = jnp.asarray(list(itertools.product(range(A), repeat=L)), jnp.int32)
    n = seqs.shape[0]
    state = env.reset(n)
    logp = jnp.zeros(n)
    valid = jnp.ones(n, bool)
    for t in range(L):
        fm = env.forward_mask(state)
        a = seqs[:, t]
        lp = masked_log_softmax(logits_table[env.state_index(state)], fm)
        valid &= fm[jnp.arange(n), a]
        logp += jnp.take_along_axis(lp, a[:, None], 1)[:, 0]
        state = env.step(state, a)
    p = jnp.where(valid, jnp.exp(logp), 0.0)
    return jax.ops.segment_sum(p, env.terminal_index(state), num_segments=env.num_terminals)


@pytest.mark.parametrize("name", ["qm9str_pa", "qm9str_any"])
def test_dp_terminal_distribution_matches_brute_force(name):
    env = SMALL_ENVS[name]()
    logits = _table_logits(env, jax.random.PRNGKey(3))
    dag = build_dag(env)
    p_dp = policy_terminal_distribution(dag, logits)
    p_bf = _brute_force_terminal_distribution(env, logits)
    assert float(p_dp.sum()) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(np.asarray(p_dp), np.asarray(p_bf), atol=1e-6, rtol=1e-4)


def test_qm9str_full_dp_sums_to_one():
    env = envs.make("qm9str")
    assert envs.make("qm9str", variant="any_position").num_states == 87781
    dag = build_dag(env)
    assert dag.obs.shape[0] == 16105
    logits = jax.random.normal(jax.random.PRNGKey(0), (dag.obs.shape[0], env.num_actions))
    p = policy_terminal_distribution(dag, logits)
    assert p.shape == (161051,)
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-4) and float(p.min()) > 0
    assert float(jnp.exp(dag.true_log_probs).sum()) == pytest.approx(1.0, abs=1e-4)


# --- metrics --------------------------------------------------------------------------------------
def test_rank_correlations_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, 200).astype(np.float32)  # many ties
    y = (x + rng.normal(size=200)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(rankdata(jnp.asarray(x))), stats.rankdata(x) - 1)
    assert float(spearman(jnp.asarray(x), jnp.asarray(y))) == pytest.approx(
        stats.spearmanr(x, y)[0], abs=1e-5
    )
    assert float(pearson(jnp.asarray(x), jnp.asarray(y))) == pytest.approx(
        stats.pearsonr(x, y)[0], abs=1e-5
    )
    assert float(pearson(jnp.ones(5), jnp.arange(5.0))) == 0.0


def _tabular_bit_policy(env, logits):
    """policy_fn(obs) = logits[state_index(s)]: the state is decoded from the bit observation."""

    def policy_fn(obs):
        feats = obs.reshape(obs.shape[0], env.seq_length, env.k + 1)
        bits = (feats[..., 1:] > 0).astype(jnp.int32)
        words = (bits * (1 << jnp.arange(env.k - 1, -1, -1))).sum(-1)
        tokens = jnp.where(feats[..., 0] > 0, words, -1)
        state = SequenceState(tokens=tokens, length=(tokens >= 0).sum(-1))
        row = jnp.clip(env.state_index(state), 0, env.num_states - 1)  # terminal rows: unused
        return logits[row], None

    return policy_fn


def test_log_prob_estimate_is_unbiased_for_exact_probability():
    """E_{τ~P_B}[P_F(τ)/P_B(τ|x)] = P_T(x): compare the N-sample average with the exact DP value,
    tolerance 5 standard errors; on a tree (bitseq_ar) one trajectory is exact."""
    env = SMALL_ENVS["bitseq"]()
    logits = _table_logits(env, jax.random.PRNGKey(1))
    p_exact = policy_terminal_distribution(build_dag(env), logits)
    x = _take(env.enumerate_terminals(), jnp.arange(0, 256, 37))  # 7 terminals
    N = 2000  # one chunk: N copies of each x, one backward trajectory each
    xs = _take(x, jnp.tile(jnp.arange(7), N))
    log_w = jax.jit(
        lambda k: estimate_log_prob(
            env, k, xs, _tabular_bit_policy(env, logits), 1, chunk_size=7 * N
        )
    )(jax.random.PRNGKey(2))
    w = np.exp(np.asarray(log_w, np.float64)).reshape(N, 7)
    est, se = w.mean(0), w.std(0) / np.sqrt(N)
    exact = np.asarray(p_exact)[np.asarray(env.terminal_index(x))]
    assert np.all(np.abs(est - exact) <= 5 * se + 1e-7), (est, exact, se)
    assert np.all(se < 0.2 * exact)  # the test has power: errors of 20 % would be detected

    env_ar = SMALL_ENVS["bitseq_ar"]()
    logits_ar = _table_logits(env_ar, jax.random.PRNGKey(4))
    lp = jax.jit(
        lambda k: estimate_log_prob(
            env_ar,
            k,
            env_ar.enumerate_terminals(),
            _tabular_bit_policy(env_ar, logits_ar),
            1,
            chunk_size=256,
        )
    )(jax.random.PRNGKey(0))
    np.testing.assert_allclose(
        np.exp(np.asarray(lp)),
        np.asarray(policy_terminal_distribution(build_dag(env_ar), logits_ar)),
        rtol=1e-4,
        atol=1e-7,
    )


def test_modes_found_is_cumulative_and_topk_deduplicates():
    env = envs.make("bitseq", n=16, k=4, num_modes=6, mode_threshold=3)
    modes = np.asarray(mode_bits(16, 6, env.mode_seed)).astype(np.int8)

    def state_of(bits):
        from gfnjax.envs.bitseq import bits_to_words

        w = jnp.asarray(bits_to_words(np.asarray(bits), 4))
        return SequenceState(tokens=w, length=jnp.full((w.shape[0],), 4, jnp.int32))

    far = 1 - modes  # complement: 16 bits from its mode
    near = modes.copy()
    near[:, :3] ^= 1  # 3 flips: within threshold

    def info(bits):
        st = state_of(bits)
        return StepInfo(jnp.int32(len(bits)), jnp.int32(0), st, env.log_reward(st), {})

    mf = ModesFound(env.mode_match, env.num_modes)
    mf_update = jax.jit(mf.update)
    c = mf.init()
    c = mf_update(c, info(np.concatenate([near[:2], far[:4]])))
    expected = (
        np.abs(np.concatenate([near[:2], far[:4]])[:, None].astype(int) - modes[None]).sum(-1) <= 3
    )
    assert float(mf.compute(c, None, None, None)["modes"]) == expected.any(0).sum()
    c = mf_update(c, info(near[1:3]))
    expected = expected.any(0) | (
        np.abs(near[1:3, None].astype(int) - modes[None]).sum(-1) <= 3
    ).any(0)
    assert float(mf.compute(c, None, None, None)["modes"]) == expected.sum()

    top = TopKReward(env, 3)
    top_update = jax.jit(top.update)
    c = top.init()
    assert np.isnan(float(top.compute(c, None, None, None)["top_k_log_reward"]))
    batch = np.concatenate([modes[:1], modes[:1], near[:1], near[:1]])  # duplicates
    c = top_update(c, info(batch))
    c = top_update(c, info(np.concatenate([modes[:1], far[:1]])))
    out = top.compute(c, None, None, None)
    # distinct objects seen: mode (log R 0), near (−2·3), far (−2·d_min(far)) -> the top 3 of them
    lr = np.asarray(env.log_reward(state_of(np.concatenate([modes[:1], near[:1], far[:1]]))))
    assert float(out["top_k_log_reward"]) == pytest.approx(lr.mean())
    assert float(out["top_k_reward"]) == pytest.approx(np.exp(lr).mean(), rel=1e-5)


@pytest.mark.parametrize("name", sorted(SMALL_ENVS))
def test_token_ids_read_the_state_back_from_the_observation(name):
    """Env.token_ids(observe(s)) = 1 + token at every position (0 where empty), for states at
    every fill level; ids stay below token_vocab."""
    env = SMALL_ENVS[name]()
    states = env.enumerate_states()
    ids = np.asarray(env.token_ids(env.observe(states)))
    want = np.asarray(states.tokens) + 1  # empty (−1) -> 0
    np.testing.assert_array_equal(ids, want)
    assert ids.max() < env.token_vocab and (ids == 0).any() and (ids > 0).any()


def test_transformer_embeds_token_ids_by_a_lookup_table():
    """A table row per token id (Tiapkin et al.'s and gfnx's nn.Embedding), not a Dense layer on
    the ±bit features: words 00, 11 and 01 + 10 get independent embeddings."""
    env = envs.make("bitseq", n=8, k=2, num_modes=4)
    torso = make_torso("transformer", (32,), env)
    params = torso.init(jax.random.PRNGKey(0), env.observe(env.reset(1)))["params"]
    assert params["Embed_0"]["embedding"].shape == (env.token_vocab, 64)
    assert "Dense_0" not in params
    table = np.asarray(params["Embed_0"]["embedding"])
    # rank of the 4 word embeddings: 4 (a linear map of [1, ±b1, ±b2] would give at most 3)
    assert np.linalg.matrix_rank(table[1:5] - table[0]) == 4


def test_transformer_torso_shapes_and_position_sensitivity():
    env = envs.make("bitseq", n=16, k=4, num_modes=6)
    net = PolicyNet(
        env.num_actions, env.num_backward_actions, make_torso("transformer", (32,), env)
    )
    s = env.step(env.reset(2), jnp.asarray([0 * 16 + 5, 1 * 16 + 5]))  # same word, different slots
    obs = env.observe(s)
    params = jax.jit(net.init)(jax.random.PRNGKey(0), obs)
    h = jax.jit(net.torso.apply)({"params": params["params"]["torso"]}, obs)
    # bit sequences declare action_tokens: the torso returns its L = 4 token features (d = 64)
    assert h.shape == (2, 4 * 64) and bool(jnp.all(jnp.isfinite(h)))
    assert not np.allclose(np.asarray(h[0]), np.asarray(h[1]))
    out = jax.jit(net.apply)(params, obs)
    assert out.logits.shape == (2, env.num_actions)
    # flat read-out (autoregressive: no per-token actions) gives hidden[-1] features
    ar = envs.make("bitseq_ar", n=16, k=4, num_modes=6)
    torso = make_torso("transformer", (32,), ar)
    h_ar = torso.apply(
        torso.init(jax.random.PRNGKey(0), ar.observe(ar.reset(2))), ar.observe(ar.reset(2))
    )
    assert h_ar.shape == (2, 32)
    with pytest.raises(ValueError, match="token_shape"):
        make_torso("transformer", (32,), envs.make("hypergrid"))


# --- every algorithm trains on every sequence environment -----------------------------------------
SMOKE_ENVS = {
    "bitseq": lambda: envs.make("bitseq", n=16, k=4, num_modes=6),
    "qm9str": lambda: envs.make("qm9str", num_blocks=4, mode_fraction=0.005),
    "bitseq_ar": lambda: envs.make("bitseq_ar", n=16, k=4, num_modes=6),
}
# shrink replay buffers and the like when an algorithm has them (sizes only, not the method)
SMALL_OVERRIDES = {"buffer_capacity": 64, "replay_batch_size": 8, "learning_starts": 1}


@functools.lru_cache(maxsize=1)
def _smoke_run(algo_name):
    """Two jitted updates of `algo_name` on every smoke env, compiled as ONE program (one XLA
    compilation per algorithm instead of three: ~30 % less compile time) with LLVM -O0."""
    fields = set(algos.config_fields(algo_name))
    extra = {k: v for k, v in SMALL_OVERRIDES.items() if k in fields}
    names = sorted(SMOKE_ENVS)
    algs = [
        algos.make(
            algo_name,
            SMOKE_ENVS[n](),
            hidden=(32,),
            batch_size=4,
            torso="transformer" if (algo_name, n) == ("tb", "bitseq") else "mlp",
            **extra,
        )
        for n in names
    ]
    states = [a.init(jax.random.PRNGKey(0)) for a in algs]
    step = lambda ss, k: [a.update(s, k) for a, s in zip(algs, ss)]
    update = (
        jax.jit(step).lower(states, jax.random.PRNGKey(1)).compile(compiler_options=FAST_COMPILE)
    )
    for i in range(2):
        out = update(states, jax.random.PRNGKey(i + 1))
        states = [o[0] for o in out]
    return {n: (a.env, o[0], o[1]) for n, a, o in zip(names, algs, out)}


@pytest.mark.parametrize("env_name", sorted(SMOKE_ENVS))  # varies fastest: reuses the cached run
@pytest.mark.parametrize("algo_name", sorted(algos.REGISTRY))
def test_every_algorithm_updates_without_nan(env_name, algo_name):
    env, state, info = _smoke_run(algo_name)[env_name]
    leaves = jax.tree.leaves((state.params, info.scalars))
    for leaf in leaves:
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating):
            assert bool(jnp.all(jnp.isfinite(leaf))), algo_name
    assert bool(jnp.all(env.is_terminal(info.terminals)))


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,iters,torso",
    [
        ("tb", 1000, "mlp"),
        ("db", 1000, "mlp"),
        ("subtb", 2500, "mlp"),
        ("mdqn", 1000, "mlp"),
        ("ppo", 1000, "mlp"),
        ("tb", 1000, "transformer"),
    ],
)
def test_each_family_learns_a_small_bit_sequence_to_its_exact_target(name, iters, torso):
    """Bit sequences n = 8, k = 2 (369 states, 256 sequences, 4 modes; log R = −2·Hamming):
    the exact TV of the learned sampler (DP over the enumerated DAG) falls from 0.68 (uniform
    policy) below 0.2, and log Z (SubTB: log F(s0); PPO: V(s0)) comes within 0.3 of the exact
    one, in 1,000 iterations of 16 trajectories: the objectives that pass on hypergrid, on an
    environment with many orderings per sequence and a uniform P_B over filled slots. Seed 0
    measured TV 0.05–0.09 and log Z error 0.01–0.16 with the 2×64 MLP; SubTB's log F(s0) lags
    (0.79 at 1,000), so it gets 2,500. TB with the transformer of Tiapkin et al.'s preset: TV
    0.13, log Z error 0.14. Before the token table (a6fc455: a Dense embedding of the ±bit
    features) this case stayed at 0.42, the TV of the best product of per-position marginals."""
    env = SMALL_ENVS["bitseq"]()
    algo = algos.make(name, env, hidden=(64, 64), torso=torso)
    _, curves = gfnjax.train(
        algo, jax.random.PRNGKey(0), iters, iters // 2, metrics=[ExactDistribution(env)]
    )
    tv = np.asarray(curves["tv"])
    assert tv[0] > 0.6, tv
    assert tv[-1] < 0.2, tv
    assert float(curves["log_z_error"][-1]) < 0.3


def test_rl_g_guides_follow_the_mode_set_and_the_reward_table():
    env = envs.make("bitseq", n=16, k=4, num_modes=6)
    s0 = env.reset(1)
    cap = np.asarray(guides.get(env)(env, s0, jnp.zeros((1, env.num_actions))))[0].reshape(4, 16)
    modes = np.asarray(mode_bits(16, 6, env.mode_seed)).reshape(6, 4, 4)
    words = (modes * (1 << np.arange(3, -1, -1))).sum(-1)  # [6, 4]
    for slot in range(4):
        np.testing.assert_array_equal(cap[slot] == 0, np.isin(np.arange(16), words[:, slot]))
    assert np.all(cap[cap != 0] == pytest.approx(np.log(1e-5)))
    q = envs.make("qm9str", num_blocks=3, mode_fraction=0.02)
    prefix = np.array([[2, 1, 0, 0], [0, 1, 2, 2]])  # strings one step from completion
    s = SequenceState(
        tokens=jnp.asarray(np.pad(prefix, ((0, 0), (0, 1)), constant_values=-1)),
        length=jnp.full((2,), 4, jnp.int32),
    )
    cap = np.asarray(guides.get(q)(q, s, jnp.zeros((2, q.num_actions))))
    table = np.asarray(q.log_reward(q.enumerate_terminals()))  # base-3 order
    for a in range(q.num_actions):  # a < 3 prepends block a, else appends block a − 3
        child = [[a] + list(p) if a < 3 else list(p) + [a - 3] for p in prefix]
        low = table[[int("".join(map(str, c)), 3) for c in child]] < np.quantile(table, 0.9)
        np.testing.assert_array_equal(cap[:, a] < 0, low)
    s3 = SequenceState(tokens=jnp.asarray([[0, 1, 2, -1, -1]]), length=jnp.asarray([3]))
    assert np.all(
        np.asarray(guides.get(q)(q, s3, jnp.zeros((1, q.num_actions)))) == 0
    )  # no cap yet
