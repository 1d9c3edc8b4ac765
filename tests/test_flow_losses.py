"""Flow objectives: zero at the analytic optimum (true flows of a small grid), positive elsewhere,
and equal to direct loop implementations of their formulas on random inputs."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import algos, envs, losses
from gfnjax.rollout import evaluate, sample_forward

DIM, SIDE = 2, 4


@pytest.fixture(scope="module")
def env():
    return envs.make("hypergrid", dim=DIM, side=SIDE, r0=0.1)


@pytest.fixture(scope="module")
def flows(env):
    """True flows with uniform P_B, computed in numpy from the reward formula."""
    coords = np.asarray(env.enumerate_states().coords)
    reward = np.exp(np.asarray(env.log_reward(env.enumerate_terminals()), np.float64))
    idx = lambda c: int(c[0] * SIDE + c[1])
    n_par = lambda c: max(sum(v > 0 for v in c), 1)
    F = np.zeros(len(coords))
    edge = np.zeros((len(coords), DIM + 1))
    for c in sorted(coords.tolist(), key=lambda c: -sum(c)):
        i = idx(c)
        edge[i, DIM] = reward[i]
        for j in range(DIM):
            if c[j] < SIDE - 1:
                nc = list(c)
                nc[j] += 1
                edge[i, j] = F[idx(nc)] / n_par(nc)
        F[i] = edge[i].sum()
    log_edge = np.where(edge > 0, np.log(np.maximum(edge, 1e-300)), -1e9)
    return dict(log_F=np.log(F), log_edge=log_edge, log_z=np.log(F[0]))


def table_apply(table_logits, table_flow):
    def fn(obs):
        c = jnp.argmax(obs.reshape(obs.shape[0], DIM, SIDE), axis=-1)
        i = c[:, 0] * SIDE + c[:, 1]
        return table_logits[i], None, table_flow[i]

    return fn


@pytest.fixture(scope="module")
def batch(env, flows):
    apply = table_apply(
        jnp.asarray(flows["log_edge"], jnp.float32), jnp.asarray(flows["log_F"], jnp.float32)
    )
    traj = sample_forward(env, jax.random.PRNGKey(0), lambda o: apply(o)[:2], 64)
    return traj, evaluate(apply, traj), apply


def test_log_z_of_true_flows_is_exact(env, flows):
    np.testing.assert_allclose(flows["log_z"], float(env.log_partition()), rtol=1e-6)


def test_tb_zero_at_optimum_positive_elsewhere(batch, flows):
    traj, ev, _ = batch
    tb = lambda lz, lpf: losses.trajectory_balance(lpf, ev.log_pb, traj.log_reward, lz, traj.mask)
    assert float(tb(flows["log_z"], ev.log_pf)) < 1e-8
    np.testing.assert_allclose(float(tb(flows["log_z"] + 0.5, ev.log_pf)), 0.25, rtol=1e-4)
    assert float(tb(flows["log_z"], ev.log_pf * 1.1)) > 1e-4


def test_db_and_subtb_zero_at_optimum_positive_elsewhere(batch):
    traj, ev, _ = batch
    args = (ev.log_pf, ev.log_pb, ev.log_flow, traj.log_reward, traj.mask, traj.done)
    assert float(losses.detailed_balance(*args)) < 1e-8
    for lam in (0.5, 0.9, 2.0):
        assert float(losses.subtrajectory_balance(*args, lam)) < 1e-8
    bad_flow = ev.log_flow + 0.3 * jnp.sin(jnp.arange(ev.log_flow.shape[1]))[None]
    bad = (ev.log_pf, ev.log_pb, bad_flow, traj.log_reward, traj.mask, traj.done)
    assert float(losses.detailed_balance(*bad)) > 1e-3
    assert float(losses.subtrajectory_balance(*bad, 0.9)) > 1e-3


def test_fm_zero_at_true_edge_flows(env, flows, batch):
    """The FM algorithm's loss (parents via backward_step) vanishes at the true edge flows."""
    traj, _, _ = batch

    @dataclasses.dataclass(frozen=True)
    class TableFM(algos.get_class("fm")):
        def apply_net(self, net_params, obs):
            out = table_apply(net_params, jnp.zeros(env.num_states))(obs.reshape(-1, obs.shape[-1]))
            return type("O", (), {"logits": out[0].reshape(obs.shape[:-1] + (-1,))})

    fm = TableFM(env=env, config=algos.get_class("fm").Config())
    good = jnp.asarray(flows["log_edge"], jnp.float32)
    loss_good, _ = fm.loss({"net": good}, traj, None)
    assert float(loss_good) < 1e-8
    loss_bad, _ = fm.loss({"net": good.at[:, 0].add(0.5)}, traj, None)
    assert float(loss_bad) > 1e-3


# --- every flow loss against direct numpy loops, eager and under jit∘vmap --------------------
#
# N independent problems, each B trajectories of different lengths padded to T with random
# (non-zero) garbage, random log R, log Z and λ per problem: an implementation that ignored the
# mask, log_reward, log_z or done would give other numbers (test_ignoring_an_input_is_detected).

N, B, T, M, A, AB = 3, 5, 7, 4, 3, 2


def random_problems(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    length = rng.integers(1, T + 1, size=(N, B))
    length[:, 0], length[:, 1] = T, 1  # a full and a one-step trajectory in every problem
    steps = np.arange(T)
    in_mask = rng.random((N, B, M, AB)) < 0.6
    in_mask[:, 0, 0] = False  # a state without parents: not in the FM loss
    out_mask = rng.random((N, B, M, A)) < 0.6
    return dict(
        log_pf=-rng.uniform(0.1, 2.0, (N, B, T)).astype(np.float32),
        log_pb=-rng.uniform(0.1, 2.0, (N, B, T)).astype(np.float32),
        log_flow=rng.normal(size=(N, B, T + 1)).astype(np.float32),
        log_reward=rng.normal(size=(N, B)).astype(np.float32),
        log_z=rng.normal(size=N).astype(np.float32),
        lam=rng.uniform(0.5, 1.5, N).astype(np.float32),
        mask=steps[None, None] < length[..., None],
        done=steps[None, None] == length[..., None] - 1,
        length=length,
        # flow matching: M visited states per trajectory
        log_in=rng.normal(size=(N, B, M, AB)).astype(np.float32),
        in_mask=in_mask,
        log_out=rng.normal(size=(N, B, M, A)).astype(np.float32),
        out_mask=out_mask,
        state_log_reward=rng.normal(size=(N, B, M)).astype(np.float32),
        is_terminal=rng.random((N, B, M)) < 0.3,
        state_mask=rng.random((N, B, M)) < 0.8,
    )


def f64(p: dict, n: int) -> dict:
    return {
        k: np.asarray(v[n], np.float64 if v.dtype == np.float32 else v.dtype) for k, v in p.items()
    }


def log_f(p, b: int, i: int) -> float:
    """log F(s_i) of trajectory b, with log F(x) := log R(x) at its last state s_L."""
    return p["log_reward"][b] if i == p["length"][b] else p["log_flow"][b, i]


def ref_tb_residual(p):
    """δ_b = log Z + Σ_{t<L} log P_F − log R − Σ_{t<L} log P_B."""
    return np.array(
        [
            p["log_z"] + p["log_pf"][b, :L].sum() - p["log_reward"][b] - p["log_pb"][b, :L].sum()
            for b, L in enumerate(p["length"])
        ]
    )


def ref_db_residual(p):
    """δ_t = log F(s_t) + log P_F − log F(s_{t+1}) − log P_B with log F(s_L) := log R; 0 past L."""
    out = np.zeros((B, T))
    for b, L in enumerate(p["length"]):
        for t in range(L):
            out[b, t] = log_f(p, b, t) + p["log_pf"][b, t] - log_f(p, b, t + 1) - p["log_pb"][b, t]
    return out


def ref_subtb(p):
    """Per trajectory Σ_{i<j≤L} λ^{j−i} δ_{ij}² / Σ_{i<j≤L} λ^{j−i}."""
    lam, per = p["lam"], []
    for b, L in enumerate(p["length"]):
        num = den = 0.0
        for i in range(L):
            for j in range(i + 1, L + 1):
                r = log_f(p, b, i) + p["log_pf"][b, i:j].sum() - log_f(p, b, j)
                r -= p["log_pb"][b, i:j].sum()
                num += lam ** (j - i) * r**2
                den += lam ** (j - i)
        per.append(num / den)
    return np.array(per)


def ref_fm(p):
    """(log Σ_parents F(p→s) − [log R(s) if terminal else log Σ_a F(s→a)])² per valid state."""
    out, valid = np.zeros((B, M)), np.zeros((B, M), bool)
    for b in range(B):
        for s in range(M):
            ins, outs = p["in_mask"][b, s], p["out_mask"][b, s]
            term = p["is_terminal"][b, s]
            if not (p["state_mask"][b, s] and ins.any() and (term or outs.any())):
                continue
            log_in = np.log(np.exp(p["log_in"][b, s][ins]).sum())
            target = (
                p["state_log_reward"][b, s]
                if term
                else np.log(np.exp(p["log_out"][b, s][outs]).sum())
            )
            out[b, s], valid[b, s] = (log_in - target) ** 2, True
    return out, valid


def ref_tlm(p):
    return np.array([-p["log_pb"][b, :L].sum() for b, L in enumerate(p["length"])])


def ref_db_mean(p, reduce):
    sq = ref_db_residual(p) ** 2
    if reduce == "transitions":  # the authors' flat mean over every valid transition
        return sq.sum() / p["length"].sum()
    return np.mean(sq.sum(1) / p["length"])


def fm_mean(p):
    sq, valid = ref_fm(p)
    return sq.sum() / valid.sum()


TRAJ = ("log_pf", "log_pb", "log_reward", "log_z", "mask")
FLOW = ("log_pf", "log_pb", "log_flow", "log_reward", "mask", "done")
FM_ARGS = ("log_in", "in_mask", "log_out", "out_mask", "state_log_reward", "is_terminal")
FM_ARGS += ("state_mask",)
# name: (loss with its keyword options fixed, argument names, numpy reference of one problem)
CASES = {
    "tb_residual": (losses.trajectory_balance_residual, TRAJ, ref_tb_residual),
    "tb": (losses.trajectory_balance, TRAJ, lambda p: np.mean(ref_tb_residual(p) ** 2)),
    "tb_none": (
        functools.partial(losses.trajectory_balance, reduce="none"),
        TRAJ,
        lambda p: ref_tb_residual(p) ** 2,
    ),
    "db_residual": (losses.detailed_balance_residual, FLOW, ref_db_residual),
    "db_transitions": (losses.detailed_balance, FLOW, lambda p: ref_db_mean(p, "transitions")),
    "db_trajectories": (
        functools.partial(losses.detailed_balance, reduce="trajectories"),
        FLOW,
        lambda p: ref_db_mean(p, "trajectories"),
    ),
    "db_none": (
        functools.partial(losses.detailed_balance, reduce="none"),
        FLOW,
        lambda p: ref_db_residual(p) ** 2,
    ),
    "subtb": (losses.subtrajectory_balance, FLOW + ("lam",), lambda p: np.mean(ref_subtb(p))),
    "subtb_none": (
        functools.partial(losses.subtrajectory_balance, reduce="none"),
        FLOW + ("lam",),
        ref_subtb,
    ),
    "fm": (losses.flow_matching, FM_ARGS, fm_mean),
    "fm_none": (
        functools.partial(losses.flow_matching, reduce="none"),
        FM_ARGS,
        lambda p: ref_fm(p)[0],
    ),
    "tlm": (losses.backward_maximum_likelihood, ("log_pb", "mask"), lambda p: ref_tlm(p).mean()),
    "tlm_none": (
        functools.partial(losses.backward_maximum_likelihood, reduce="none"),
        ("log_pb", "mask"),
        ref_tlm,
    ),
}


@functools.cache
def jit_vmap(case: str):
    return jax.jit(jax.vmap(CASES[case][0]))  # one compile per case for the whole module


def apply(case: str, problems: dict, transform: str) -> np.ndarray:
    """The loss on every problem: a Python loop of eager calls, or one jit(vmap(loss)) call."""
    fn, names, _ = CASES[case]
    args = [jnp.asarray(problems[k]) for k in names]
    if transform == "jit_vmap":
        return np.asarray(jit_vmap(case)(*args))
    return np.stack([np.asarray(fn(*[a[n] for a in args])) for n in range(N)])


def reference(case: str, problems: dict) -> np.ndarray:
    return np.stack([CASES[case][2](f64(problems, n)) for n in range(N)])


@pytest.fixture(scope="module")
def problems():
    return random_problems()


@pytest.mark.parametrize("transform", ["eager", "jit_vmap"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_flow_loss_matches_numpy_loop(problems, case, transform):
    """Each flow objective equals the direct loop of its formula (module docstrings of
    gfnjax/losses/flow.py) on random padded batches, called eagerly or as jit(vmap(loss)) over
    N problems with different masks, log R, log Z and λ."""
    got, want = apply(case, problems, transform), reference(case, problems)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5, err_msg=f"{case} ({transform})")


# an implementation that ignores an input computes the true loss with that input neutralised
NEUTRAL = {
    "mask": lambda p: np.ones_like(p["mask"]),
    "done": lambda p: np.zeros_like(p["done"]),
    "log_reward": lambda p: np.zeros_like(p["log_reward"]),
    "log_z": lambda p: np.zeros_like(p["log_z"]),
    "in_mask": lambda p: np.ones_like(p["in_mask"]),
    "out_mask": lambda p: np.ones_like(p["out_mask"]),
    "state_log_reward": lambda p: np.zeros_like(p["state_log_reward"]),
    "is_terminal": lambda p: np.zeros_like(p["is_terminal"]),
    "state_mask": lambda p: np.ones_like(p["state_mask"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ignoring_an_input_is_detected(problems, case):
    """The check above has power: the loss computed with the mask, done, log_reward, log_z (or
    FM's masks and rewards) replaced by a neutral value differs from the reference."""
    want = reference(case, problems)
    names = CASES[case][1]
    for name in [k for k in names if k in NEUTRAL]:
        wrong = apply(case, dict(problems, **{name: NEUTRAL[name](problems)}), "jit_vmap")
        assert not np.allclose(wrong, want, rtol=2e-5, atol=1e-5), f"{case} ignores {name}?"
