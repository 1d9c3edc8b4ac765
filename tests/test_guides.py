"""The guides' worked examples, run and checked against mathematics.

docs/adding_an_environment.md builds `Subsets` (tests/guide_examples/subsets.py): one new module
and one registry line give an environment that the algorithms, the exact metrics, the loop and
the CLI all accept. docs/adding_an_algorithm.md builds VarGrad: a loss in the style of
gfnjax/losses/ (tests/guide_examples/log_variance.py), an algorithm module
(tests/guide_examples/vargrad.py) and one registry line. The guides show these files verbatim
(checked below), and docs/presets.md holds exactly the table `python -m gfnjax.algos.presets`
prints.
"""

from __future__ import annotations

import ast
import functools
import itertools
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from guide_examples import log_variance as lv
from guide_examples.subsets import Subsets
from guide_examples.vargrad import VarGrad

import gfnjax
from gfnjax import algos, envs, losses
from gfnjax.algos import presets
from gfnjax.bench.cli import main as bench_main
from gfnjax.metrics import Bounds, EmpiricalL1, ExactDistribution, MetricsConfig, default_metrics
from gfnjax.metrics.sequence import ModesFound

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = Path(__file__).resolve().parent / "guide_examples"
WEIGHTS = (1.0, -0.5, 2.0, 0.0)
SMALL_METRICS = MetricsConfig(eval_batch_size=64, l1_window=1000)


@pytest.fixture
def registries(monkeypatch):
    """Private copies of both registries, so the examples' registrations do not leak."""
    monkeypatch.setattr(envs, "REGISTRY", dict(envs.REGISTRY))
    monkeypatch.setattr(algos, "REGISTRY", dict(algos.REGISTRY))


def gfnjax_imports(path: Path) -> set[str]:
    """The gfnjax modules a file imports (anywhere in it)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gfnjax"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("gfnjax")}
    return out


def package_mentions(word: str) -> list[str]:
    return [str(p) for p in (ROOT / "gfnjax").rglob("*.py") if word in p.read_text()]


# --- the environment -------------------------------------------------------------------------


def rows_equal(a, b) -> jax.Array:
    """bool[B]: row i of state a equals row i of state b in every leaf."""
    eq = jax.tree.map(lambda x, y: (x == y).reshape(x.shape[0], -1).all(-1), a, b)
    return jnp.all(jnp.stack(jax.tree.leaves(eq)), axis=0)


@functools.partial(jax.jit, static_argnums=0)
def contract_arrays(env) -> dict[str, jax.Array]:
    """Everything `assert_env_contract` checks, computed in one compiled program."""
    S, X = env.enumerate_states(), env.enumerate_terminals()
    s0 = env.reset(1)

    def undone(a):  # s' = step(s, a), b = to_backward_action(s, a): b valid at s', returns to s
        act = jnp.full((env.num_states,), a, jnp.int32)
        child = env.step(S, act)
        b = env.to_backward_action(S, act)
        valid = jnp.take_along_axis(env.backward_mask(child), b[:, None], axis=1)[:, 0]
        back = rows_equal(env.backward_step(child, b), S)
        return valid & back & (env.to_forward_action(child, b) == act)

    return dict(
        state_index=env.state_index(S),
        terminal_index=env.terminal_index(X),
        s0_initial=env.is_initial(s0)[0],
        s0_backward=env.backward_mask(s0).any(),
        num_initial=env.is_initial(S).sum(),
        terminals_terminal=env.is_terminal(X).all(),
        states_terminal=env.is_terminal(S).any(),
        terminals_forward=env.forward_mask(X).any(),
        obs=env.observe(S),
        log_reward_finite=jnp.isfinite(env.log_reward(X)).all(),
        forward_mask=env.forward_mask(S),
        undone=jax.vmap(undone)(jnp.arange(env.num_actions)),  # [A, S]
        num_backward=env.backward_mask(S).sum() + env.backward_mask(X).sum(),
    )


def assert_env_contract(env) -> None:
    """The contract of gfnjax/envs/base.py, exhaustively on an enumerable environment:
    indices are bijections onto [0, S) and [0, X); s0 is the one initial state and has no
    backward action; terminals have no forward action; every valid forward edge s →a s' has
    a valid backward action b = to_backward_action(s, a) at s' with backward_step(s', b) = s and
    to_forward_action(s', b) = a; and there are as many backward edges as forward edges, so the
    two edge sets are in bijection."""
    c = jax.device_get(contract_arrays(env))
    np.testing.assert_array_equal(c["state_index"], np.arange(env.num_states))
    np.testing.assert_array_equal(c["terminal_index"], np.arange(env.num_terminals))
    assert c["s0_initial"] and not c["s0_backward"] and c["num_initial"] == 1
    assert c["terminals_terminal"] and not c["states_terminal"] and not c["terminals_forward"]
    assert c["obs"].shape == (env.num_states, env.obs_dim) and c["log_reward_finite"]
    bad = np.argwhere(c["forward_mask"].T & ~c["undone"])
    assert bad.size == 0, f"(forward action, state) pairs not undone: {bad[:5].tolist()}"
    assert c["forward_mask"].sum() == c["num_backward"], "forward and backward edge counts differ"


def test_subsets_enumeration_and_partition_function_match_brute_force():
    """log R(x) = Σ_{i∈x} w_i over all 2^n subsets by itertools; log Z = logsumexp of them
    = Σ_i log(1 + e^{w_i}); π's marginal P(i ∈ x) = sigmoid(w_i)."""
    env = Subsets(weights=WEIGHTS)
    n = len(WEIGHTS)
    subsets = list(itertools.product([0, 1], repeat=n))
    brute = {s: sum(w for w, bit in zip(WEIGHTS, s) if bit) for s in subsets}
    X = env.enumerate_terminals()
    member = np.asarray(X.member).astype(int)
    assert sorted(map(tuple, member)) == sorted(subsets)  # every subset exactly once
    np.testing.assert_allclose(env.log_reward(X), [brute[tuple(m)] for m in member], rtol=1e-6)
    log_z = np.log(np.sum(np.exp(list(brute.values()))))
    np.testing.assert_allclose(float(env.log_partition()), log_z, rtol=1e-6)
    np.testing.assert_allclose(log_z, np.log1p(np.exp(WEIGHTS)).sum(), rtol=1e-12)
    marginal = np.exp(np.asarray(env.true_log_probs(), np.float64)) @ member
    np.testing.assert_allclose(marginal, 1 / (1 + np.exp(-np.array(WEIGHTS))), rtol=1e-5)


@pytest.mark.parametrize("name", ["subsets", "hypergrid"])
def test_environment_contract(name):
    """The guide's checklist, on Subsets and (as a control) a small hypergrid."""
    env = Subsets(weights=WEIGHTS) if name == "subsets" else envs.make("hypergrid", dim=2, side=3)
    assert_env_contract(env)


def test_bad_subsets_weights_name_the_field():
    with pytest.raises(ValueError, match="Subsets.weights"):
        Subsets(weights=())
    with pytest.raises(ValueError, match="Subsets.weights"):
        Subsets(weights=(1.0, float("nan")))


def test_adding_the_environment_is_one_module_and_one_registry_line(registries, capsys):
    """After `envs.register(...)` (one line) the new module is all gfnjax needs: it imports only
    the environment contract, no file of the package names it, and yet `envs.make`, the metrics
    chosen from its declarations and the CLI all accept it."""
    before = dict(envs.REGISTRY)
    envs.register("subsets", Subsets)  # the one registry line
    assert {k: v for k, v in envs.REGISTRY.items() if k not in before} == {
        "subsets": "guide_examples.subsets:Subsets"
    }
    assert gfnjax_imports(EXAMPLES / "subsets.py") == {"gfnjax.envs.base"}
    for word in ("Subsets", '"subsets"', "'subsets'", "guide_examples"):
        assert package_mentions(word) == [], word
    env = envs.make("subsets", weights=WEIGHTS)
    chosen = {type(m) for m in default_metrics(env, SMALL_METRICS)}
    assert chosen == {ExactDistribution, EmpiricalL1, Bounds, ModesFound}  # from declarations
    with pytest.raises(ValueError, match="valid options: \\['weights'\\]"):
        envs.make("subsets", size=3)
    assert bench_main(["--env", "subsets", "--algo", "tb", "--show-config"]) == 0
    shown = capsys.readouterr().out
    assert "500 iterations, evaluation every 100" in shown  # Subsets.bench_defaults
    assert "preset 'defaults'" in shown  # no published preset for this pair


def test_tb_learns_the_subsets_target(registries):
    """TB on Subsets, 200 iterations: exact TV (DP over the 16-subset DAG) falls from the
    uniform policy's ≈ 0.46 below 0.1, |log Z − log Z*| < 0.1, and the mode {0, 2} is found."""
    envs.register("subsets", Subsets)
    env = envs.make("subsets", weights=WEIGHTS)
    algo = algos.make("tb", env, hidden=(32, 32))
    metrics = [ExactDistribution(env), ModesFound(env.mode_match, env.num_modes)]
    _, curves = gfnjax.train(algo, jax.random.PRNGKey(0), 200, 100, metrics=metrics)
    tv = np.asarray(curves["tv"])
    assert tv[0] > 0.3 and tv[-1] < 0.1, tv
    assert float(curves["log_z_error"][-1]) < 0.1, curves["log_z_error"]
    assert float(curves["modes"][-1]) == 1.0


# --- the algorithm ---------------------------------------------------------------------------


def random_batch(seed: int = 0, B: int = 6, T: int = 5):
    rng = np.random.default_rng(seed)
    length = rng.integers(1, T + 1, size=B)
    mask = np.arange(T)[None] < length[:, None]
    lpf = -rng.uniform(0.1, 2.0, (B, T)).astype(np.float32)
    lpb = -rng.uniform(0.1, 2.0, (B, T)).astype(np.float32)
    lr = rng.normal(size=B).astype(np.float32)
    return lpf, lpb, lr, mask, length


def test_log_variance_matches_numpy_loop_and_does_not_depend_on_log_z():
    """L = mean_b (ζ_b − ζ̄)², ζ_b = log R + Σ_{t<L_b} (log P_B − log P_F), by a direct loop;
    shifting every log R by c (i.e. rescaling R, hence Z) leaves it unchanged."""
    lpf, lpb, lr, mask, length = random_batch()
    zeta = np.array(
        [lr[b] + lpb[b, :L].astype(float).sum() - lpf[b, :L].sum() for b, L in enumerate(length)]
    )
    want = np.mean((zeta - zeta.mean()) ** 2)
    np.testing.assert_allclose(lv.log_partition_estimates(lpf, lpb, lr, mask), zeta, rtol=1e-5)
    np.testing.assert_allclose(lv.log_variance(lpf, lpb, lr, mask), want, rtol=1e-5)
    per = lv.log_variance(lpf, lpb, lr, mask, reduce="none")
    np.testing.assert_allclose(per, (zeta - zeta.mean()) ** 2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lv.log_variance(lpf, lpb, lr + 3.7, mask), want, rtol=1e-4)
    ignoring_mask = lv.log_variance(lpf, lpb, lr, np.ones_like(mask))
    assert not np.isclose(float(ignoring_mask), want, rtol=1e-3)  # the padding matters
    with pytest.raises(ValueError, match="reduce"):
        lv.log_variance(lpf, lpb, lr, mask, reduce="sum")


def test_log_variance_gradient_is_tb_gradient_at_the_batch_log_z():
    """∂/∂(log P_F, log P_B) of mean (ζ − ζ̄)² equals that of TB, mean (log Z − ζ)², at the fixed
    log Z = ζ̄ (Σ_b (ζ_b − ζ̄) = 0 removes the ζ̄ term)."""
    lpf, lpb, lr, mask, _ = random_batch(seed=1)
    log_z = float(lv.log_partition_estimates(lpf, lpb, lr, mask).mean())
    g_var = jax.grad(lv.log_variance, argnums=(0, 1))(lpf, lpb, lr, mask)
    tb = lambda f, b: losses.trajectory_balance(f, b, lr, log_z, mask)
    g_tb = jax.grad(tb, argnums=(0, 1))(lpf, lpb)
    for a, b in zip(g_var, g_tb):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert float(jnp.abs(g_var[0]).sum()) > 1e-3  # not trivially zero


def test_adding_the_algorithm_is_one_module_and_one_registry_line(registries, monkeypatch):
    """After `algos.register(...)` (one line) VarGrad is built by `algos.make` with validated,
    preset-aware configs, and trains on Subsets through `gfnjax.train`: exact TV below 0.1 and
    its running log Z estimate within 0.2 of log Z* after 300 iterations."""
    envs.register("subsets", Subsets)
    before = dict(algos.REGISTRY)
    algos.register("vargrad", VarGrad)  # the one registry line
    assert set(algos.REGISTRY) - set(before) == {"vargrad"}
    assert gfnjax_imports(EXAMPLES / "vargrad.py") == {"gfnjax.algos.base", "gfnjax.utils"}
    assert gfnjax_imports(EXAMPLES / "log_variance.py") == set()
    env = envs.make("subsets", weights=WEIGHTS)
    assert "log_z_decay" in algos.config_fields("vargrad")
    assert "pb_steps" not in algos.config_fields("vargrad")  # INACTIVE
    with pytest.raises(ValueError, match="pb"):
        algos.make("vargrad", env, pb="tlm")
    with pytest.raises(ValueError, match="log_z_decay"):
        algos.make("vargrad", env, log_z_decay=1.0)
    assert algos.make("vargrad", env).preset.name == "defaults"
    # a published setting is one entry of gfnjax/algos/presets.py
    example = presets.Preset("example", {"lr": 3e-3}, "docs/adding_an_algorithm.md")
    monkeypatch.setitem(presets.PRESETS, ("vargrad", "subsets"), [example])
    assert algos.make("vargrad", env).config.lr == 3e-3
    assert algos.make("vargrad", env, lr=2e-3).config.lr == 2e-3  # overrides win
    assert algos.make("vargrad", env, preset=None).config.lr == 1e-3
    algo = algos.make("vargrad", env, hidden=(32, 32), preset=None)
    _, curves = gfnjax.train(
        algo, jax.random.PRNGKey(0), 300, 150, metrics=[ExactDistribution(env)]
    )
    tv = np.asarray(curves["tv"])
    assert tv[0] > 0.3 and tv[-1] < 0.1, tv
    assert float(curves["log_z_error"][-1]) < 0.2, curves["log_z_error"]
    assert np.isfinite(np.asarray(curves["train_batch_log_z"][1:])).all()


# --- the documents show the tested code ------------------------------------------------------


def shown_blocks(doc: Path) -> dict[str, list[str]]:
    """file -> the code blocks the document shows from it, in order. A block is a ```python
    fence right after a `<!-- from: tests/guide_examples/x.py -->` line."""
    blocks: dict[str, list[str]] = {}
    for path, code in re.findall(
        r"<!-- from: (\S+) -->\n```python\n(.*?)```", doc.read_text(), re.S
    ):
        blocks.setdefault(path, []).append(code)
    return blocks


@pytest.mark.parametrize(
    "doc,files",
    [
        ("adding_an_environment.md", ["subsets.py"]),
        ("adding_an_algorithm.md", ["log_variance.py", "vargrad.py"]),
    ],
)
def test_guide_shows_the_whole_tested_example(doc, files):
    """The guide's code blocks, in order, are the example file verbatim: only blank lines may
    lie between them, so the guide cannot drift from the code these tests run."""
    blocks = shown_blocks(ROOT / "docs" / doc)
    assert sorted(blocks) == sorted(f"tests/guide_examples/{f}" for f in files), sorted(blocks)
    for name, codes in blocks.items():
        text, pos, gaps = (ROOT / name).read_text(), 0, []
        for code in codes:
            at = text.find(code, pos)
            assert at >= 0, f"{doc} shows a block that is not (in order) in {name}:\n{code}"
            gaps.append(text[pos:at])
            pos = at + len(code)
        gaps.append(text[pos:])
        missing = [g for g in gaps if g.strip()]
        assert not missing, f"{doc} leaves out parts of {name}:\n" + "\n---\n".join(missing)


def test_presets_doc_holds_the_generated_table():
    """docs/presets.md contains exactly `python -m gfnjax.algos.presets` between its markers."""
    text = (ROOT / "docs" / "presets.md").read_text()
    match = re.search(r"<!-- BEGIN generated.*?-->\n(.*?)\n<!-- END generated -->", text, re.S)
    assert match, "docs/presets.md lost its <!-- BEGIN generated ... --> / <!-- END --> markers"
    assert match.group(1).strip() == presets.table().strip(), (
        "docs/presets.md is out of date: paste the output of `python -m gfnjax.algos.presets` "
        "between its markers"
    )
