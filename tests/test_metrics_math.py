"""Metrics against exact enumeration, calling the metrics themselves (never recomputing them).

On the 3×3 hypergrid every complete trajectory is enumerated in plain Python, which gives the
exact P_T, the exact ELBO = E_{P_F}[G] and EUBO = E_{π, P_B}[G] with G = log R + log P_B − log P_F,
and their variances; the `Bounds` metric's Monte-Carlo estimates must match them within 4.5
standard errors and satisfy ELBO ≤ log Z ≤ EUBO. `ExactDistribution` is checked against numpy
divergences of the enumerated P_T, `EmpiricalL1` on partly filled and wrapped windows,
`TopKReward` with unfilled slots, `TestSetCorrelation` against scipy on the exact log P_T of a tree,
and `default_metrics` against each environment's declared capabilities.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from gfnjax import envs
from gfnjax.algos.base import StepInfo
from gfnjax.envs.hypergrid import Hypergrid, HypergridState
from gfnjax.envs.sequence import SequenceState
from gfnjax.metrics import (
    Bounds,
    EmpiricalL1,
    ExactDistribution,
    MetricsConfig,
    default_metrics,
    distribution_metrics,
)
from gfnjax.metrics.exact import build_dag, policy_terminal_distribution
from gfnjax.metrics.sequence import ModesFound, TestSetCorrelation, TopKReward

ENV = Hypergrid(dim=2, side=3, r0=0.1)
S, A = ENV.num_states, ENV.num_actions
Z_SCORE = 4.5


def np_log_softmax(x, valid):
    x = np.where(valid, x, -np.inf)
    return x - np.logaddexp.reduce(x[valid])


def np_log_reward(c):
    r0, r1, r2 = ENV.reward_constants
    a = np.abs(np.asarray(c) / (ENV.side - 1) - 0.5)
    return math.log(r0 + r1 * np.all(a > 0.25) + r2 * np.all((a > 0.3) & (a < 0.4)))


def enumerate_trajectories(pf, pb):
    """Every complete trajectory: (x index, log P_F(τ), log P_B(τ|x), log R(x)); P_B uniform over
    parents when pb is None, else softmax of the pb table over valid parents (stop undone with
    probability 1)."""
    out = []

    def rec(c, lpf, lpb):
        i = c[0] * ENV.side + c[1]
        fvalid = np.array([c[0] < ENV.side - 1, c[1] < ENV.side - 1, True])
        lp = np_log_softmax(pf[i], fvalid)
        out.append((i, lpf + lp[ENV.dim], lpb, np_log_reward(c)))
        for j in range(ENV.dim):
            if fvalid[j]:
                n = list(c)
                n[j] += 1
                k = n[0] * ENV.side + n[1]
                bvalid = np.array([n[0] > 0, n[1] > 0, False])
                row = np.zeros(3) if pb is None else pb[k]
                rec(n, lpf + lp[j], lpb + np_log_softmax(row, bvalid)[j])

    rec([0, 0], 0.0, 0.0)
    return out


def exact_quantities(pf, pb):
    trajs = enumerate_trajectories(pf, pb)
    x = np.array([t[0] for t in trajs])
    lpf, lpb, lr = (np.array([t[k] for t in trajs]) for k in (1, 2, 3))
    g = lr + lpb - lpf
    p_f = np.exp(lpf)
    p_t = np.bincount(x, weights=p_f, minlength=S)
    log_r = np.array([np_log_reward([i // ENV.side, i % ENV.side]) for i in range(S)])
    log_z = np.logaddexp.reduce(log_r)
    pi = np.exp(log_r - log_z)
    w_eubo = pi[x] * np.exp(lpb)  # x ~ π, τ ~ P_B(·|x)
    elbo, eubo = (p_f * g).sum(), (w_eubo * g).sum()
    return dict(
        p_t=p_t,
        pi=pi,
        log_z=log_z,
        elbo=elbo,
        eubo=eubo,
        var_elbo=(p_f * (g - elbo) ** 2).sum(),
        var_eubo=(w_eubo * (g - eubo) ** 2).sum(),
    )


def tables(seed):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    pf = np.asarray(jax.random.normal(k1, (S, A)) * 1.5, np.float64)
    pb = np.asarray(jax.random.normal(k2, (S, ENV.num_backward_actions)) * 1.5, np.float64)
    return pf, pb


class TableAlgo:
    """The two members a metric reads: policy_fn(state) and log_z(state)."""

    def __init__(self, pf, pb=None, log_z=None):
        self.pf = jnp.asarray(pf, jnp.float32)
        self.pb = None if pb is None else jnp.asarray(pb, jnp.float32)
        self._log_z = log_z

    def policy_fn(self, state):
        def fn(obs):
            coords = jnp.argmax(obs.reshape(obs.shape[0], ENV.dim, ENV.side), -1)
            i = coords[:, 0] * ENV.side + coords[:, 1]
            return self.pf[i], None if self.pb is None else self.pb[i]

        return fn

    def log_z(self, state):
        return self._log_z


def terminals(idx):
    idx = np.asarray(idx)
    coords = np.stack([idx // ENV.side, idx % ENV.side], -1)
    return HypergridState(coords=jnp.asarray(coords, jnp.int32), done=jnp.ones(len(idx), bool))


def step_info(idx):
    x = terminals(idx)
    return StepInfo(jnp.int32(len(idx)), jnp.int32(0), x, ENV.log_reward(x), {})


# --- ELBO ≤ log Z ≤ EUBO ----------------------------------------------------------------------
def test_bounds_metric_matches_exact_elbo_and_eubo():
    """With a learned P_B (the uniform one is the same code path in `Bounds`; both samplers'
    log-probabilities are checked in tests/test_rollout_math.py)."""
    pf, pb = tables(0)
    ex = exact_quantities(pf, pb)
    assert ex["elbo"] < ex["log_z"] < ex["eubo"], "exact ELBO < log Z < EUBO off the optimum"
    n = 8192
    metric = Bounds(ENV, n, build_dag(ENV).true_log_probs)
    out = jax.jit(lambda k: metric.compute((), TableAlgo(pf, pb), None, k))(jax.random.PRNGKey(1))
    for name in ("elbo", "eubo"):
        se = math.sqrt(ex[f"var_{name}"] / n)
        got = float(out[name])
        assert abs(got - ex[name]) < Z_SCORE * se, (
            f"{name} metric {got:.4f} vs exact E[log R + log P_B − log P_F] = {ex[name]:.4f} "
            f"(se {se:.4f})"
        )
        # power: the gap to log Z is many standard errors, so a sign error cannot pass
        assert abs(ex[name] - ex["log_z"]) > 3 * Z_SCORE * se
    assert float(out["elbo"]) < ex["log_z"] < float(out["eubo"]), "ELBO ≤ log Z ≤ EUBO"
    no_eubo = Bounds(ENV, 16).compute((), TableAlgo(pf, pb), None, jax.random.PRNGKey(2))
    assert set(no_eubo) == {"elbo"}, "EUBO needs exact samples of π (enumerable environments)"


def test_exact_distribution_metric_against_enumeration():
    pf, _ = tables(3)
    ex = exact_quantities(pf, None)
    p, q = ex["p_t"], ex["pi"]
    m = 0.5 * (p + q)
    want = dict(
        tv=0.5 * np.abs(p - q).sum(),
        kl=(q * np.log(q / p)).sum(),  # KL(π ‖ P_T)
        kl_reverse=(p * np.log(p / q)).sum(),  # KL(P_T ‖ π)
        jsd=0.5 * (q * np.log(q / m)).sum() + 0.5 * (p * np.log(p / m)).sum(),
    )
    metric = ExactDistribution(ENV)
    np.testing.assert_allclose(float(metric.dag.log_z), ex["log_z"], rtol=1e-6)
    compute = jax.jit(lambda log_z: metric.compute((), TableAlgo(pf, log_z=log_z), None, None))
    out = compute(jnp.float32(1.25))
    for k, v in want.items():
        np.testing.assert_allclose(float(out[k]), v, rtol=1e-4, err_msg=f"exact {k} of P_T vs π")
    assert abs(want["kl"] - want["kl_reverse"]) > 1e-2  # the two directions differ here
    assert float(out["log_z"]) == pytest.approx(1.25)
    for log_z in (1.25, 0.5):  # above and below log Z* = log 2.9
        assert float(compute(jnp.float32(log_z))["log_z_error"]) == pytest.approx(
            abs(log_z - ex["log_z"]), abs=1e-5
        ), "log_z_error = |log Z_θ − log Z*|"
    assert "log_z_error" not in jax.eval_shape(compute, None), "no log Z, no log Z error"


def test_distribution_metrics_formulas_with_zero_model_mass():
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.1, 0.2, 0.3, 0.4])
    out = distribution_metrics(jnp.asarray(p, jnp.float32), jnp.log(jnp.asarray(q, jnp.float32)))
    nz = p > 0
    m = 0.5 * (p + q)
    want = dict(
        tv=0.5 * np.abs(p - q).sum(),
        kl=(q * (np.log(q) - np.log(np.maximum(p, 1e-30)))).sum(),
        kl_reverse=(p[nz] * np.log(p[nz] / q[nz])).sum(),
        jsd=0.5 * (q * np.log(q / m)).sum() + 0.5 * (p[nz] * np.log(p[nz] / m[nz])).sum(),
    )
    for k, v in want.items():
        np.testing.assert_allclose(float(out[k]), v, rtol=1e-5, err_msg=f"distribution_metrics {k}")


# --- empirical L1 ---------------------------------------------------------------------------------
def test_empirical_l1_divides_by_terminals_seen_in_partly_filled_and_wrapped_windows():
    """π̂ = counts of the last min(seen, window) terminals / min(seen, window)."""
    pi = np.exp(np.asarray(ENV.true_log_probs(), np.float64))
    window = 10
    metric = EmpiricalL1(ENV, window, ENV.true_log_probs())
    update = jax.jit(metric.update)
    carry = metric.init()
    seen = []
    for batch in ([0, 4, 4, 8], [1, 2, 8, 3], [3, 5, 6, 7]):  # 4, 8, then 12 > window seen
        carry = update(carry, step_info(batch))
        seen += batch
        kept = seen[-window:]
        p_hat = np.bincount(kept, minlength=S) / len(kept)
        got = float(metric.compute(carry, None, None, None)["l1"])
        np.testing.assert_allclose(
            got,
            np.abs(p_hat - pi).mean(),
            rtol=1e-5,
            err_msg=f"L1 = mean_x |π̂ − π| with π̂ over the last {len(kept)} terminals",
        )


# --- top-k and modes ------------------------------------------------------------------------------
def test_top_k_reward_counts_unfilled_slots_as_zero_reward():
    k = 5
    metric = TopKReward(ENV, k, key_fn=lambda s: s.coords)
    carry = jax.jit(metric.update)(metric.init(), step_info([0, 4, 0, 8, 4]))  # 3 distinct
    out = metric.compute(carry, None, None, None)
    lr = np.asarray(ENV.log_reward(terminals([0, 4, 8])), np.float64)
    np.testing.assert_allclose(
        float(out["top_k_reward"]), np.exp(lr).sum() / k, rtol=1e-5, err_msg="(1/k) Σ_top-k R"
    )
    np.testing.assert_allclose(float(out["top_k_log_reward"]), lr.mean(), rtol=1e-5)


def test_modes_found_on_the_hypergrid_counts_each_mode_once():
    env = Hypergrid(dim=2, side=8)
    modes = ModesFound(env.mode_match, env.num_modes)
    mode_cells = np.nonzero(np.asarray(env.log_reward(env.enumerate_terminals())) > -0.5)[0]
    assert len(mode_cells) == env.num_modes == 4  # R0 + R1 + R2 > e^−0.5 only in the top band

    def info(coords):
        x = HypergridState(coords=jnp.asarray(coords, jnp.int32), done=jnp.ones(3, bool))
        return StepInfo(jnp.int32(3), jnp.int32(0), x, env.log_reward(x), {})

    found = np.stack([mode_cells // 8, mode_cells % 8], -1)[[0, 0, 3]]  # two modes, one twice
    carry = modes.update(modes.init(), info(found))
    assert float(modes.compute(carry, None, None, None)["modes"]) == 2.0
    carry = modes.update(carry, info(np.zeros((3, 2))))  # the origin is no mode
    assert float(modes.compute(carry, None, None, None)["modes"]) == 2.0, "cumulative over training"


# --- test-set correlation -------------------------------------------------------------------------
def test_test_set_correlation_equals_scipy_on_the_exact_log_probabilities():
    """On the autoregressive tree one backward trajectory gives log P_T(x) exactly, so the metric
    must equal scipy's Pearson/Spearman of the DP's log P_T against log R on the test set."""
    env = envs.make("bitseq_ar", n=8, k=4, num_modes=3)
    logits = np.asarray(jax.random.normal(jax.random.PRNGKey(5), (env.num_states, 16)) * 2.0)

    def policy_fn(obs):
        feats = obs.reshape(obs.shape[0], env.seq_length, env.k + 1)
        bits = (feats[..., 1:] > 0).astype(jnp.int32)
        words = (bits * (1 << jnp.arange(env.k - 1, -1, -1))).sum(-1)
        tokens = jnp.where(feats[..., 0] > 0, words, -1)
        st = SequenceState(tokens=tokens, length=(tokens >= 0).sum(-1))
        return jnp.asarray(logits)[jnp.clip(env.state_index(st), 0, env.num_states - 1)], None

    class Algo:
        def policy_fn(self, state):
            return policy_fn

    test = env.test_set()
    metric = TestSetCorrelation(env, test, 1)
    out = jax.jit(lambda k: metric.compute((), Algo(), None, k))(jax.random.PRNGKey(0))
    p_t = np.asarray(policy_terminal_distribution(build_dag(env), jnp.asarray(logits)))
    log_p = np.log(p_t[np.asarray(env.terminal_index(test))])
    log_r = np.asarray(env.log_reward(test))
    assert float(out["pearson"]) == pytest.approx(stats.pearsonr(log_p, log_r)[0], abs=1e-4)
    assert float(out["spearman"]) == pytest.approx(stats.spearmanr(log_p, log_r)[0], abs=1e-4)
    assert float(out["test_log_prob"]) == pytest.approx(log_p.mean(), rel=1e-4)


# --- which metrics an environment gets ------------------------------------------------------------
def test_default_metrics_follow_the_declared_capabilities():
    names = lambda ms: [type(m).__name__ for m in ms]
    cfg = MetricsConfig(eval_batch_size=32, l1_window=77)
    env8 = Hypergrid(dim=2, side=8)  # 4 modes (the 3×3 grid has none)
    hg = default_metrics(env8, cfg)
    assert names(hg) == ["ExactDistribution", "EmpiricalL1", "Bounds", "ModesFound"]
    assert hg[1].window == 77 and hg[2].batch_size == 32 and hg[2].true_log_probs is not None
    assert names(default_metrics(ENV, cfg)) == ["ExactDistribution", "EmpiricalL1", "Bounds"]
    hg_noexact = default_metrics(env8, MetricsConfig(exact=False))
    assert names(hg_noexact) == ["Bounds", "ModesFound"] and hg_noexact[0].true_log_probs is None
    bit = default_metrics(envs.make("bitseq", n=24, k=8, num_modes=4), cfg)  # not enumerable
    assert names(bit) == ["Bounds", "TestSetCorrelation", "ModesFound", "TopKReward"]
    assert bit[1].num_trajectories == 10 and bit[3].k == 100
    with pytest.raises(ValueError, match="l1_window"):
        MetricsConfig(l1_window=0)


def test_exact_metrics_refuse_environments_too_large_to_enumerate():
    big = Hypergrid(dim=4, side=48)  # 48^4 = 5,308,416 states > MAX_EXACT_STATES = 5,000,000
    with pytest.raises(ValueError, match="metrics.exact"):
        default_metrics(big)
