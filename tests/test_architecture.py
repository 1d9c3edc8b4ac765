"""The architecture rules of docs/architecture.md, checked on the source and at run time.

(a) The module import graph of gfnjax/ (every `import`, also inside functions, and the lazy
    "module:Class" registry entries) has no cycle and no edge against the layer order
        bench → trainer → algos → {rollout, losses, nets, optim, replay} → envs,
        metrics → {rollout, envs}, utils and data are leaves, nothing imports bench;
    only the molecule modules import RDKit.
(b) In a fresh interpreter, `import gfnjax.losses` loads no environment, network or RDKit, and
    training on the hypergrid loads no other environment and no RDKit.
(c) Every registered algorithm's `update` and the loop's `Trainer.period` trace once under jit
    (a retrace on every call would recompile the whole program).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gfnjax import algos, envs
from gfnjax.metrics import MetricsConfig
from gfnjax.trainer import make_trainer

PACKAGE = Path(__file__).resolve().parents[1] / "gfnjax"

# Direct dependencies each layer may have; a layer may also depend on whatever those depend on
# (transitive closure). utils and data are leaves; every other layer may use them.
DIRECT = {
    "bench": {"trainer", "algos", "metrics", "envs"},
    "trainer": {"algos", "metrics"},
    "algos": {"rollout", "losses", "nets", "optim", "replay"},
    "rollout": {"envs"},
    "nets": {"envs"},
    "optim": {"envs"},
    "replay": {"envs"},
    "losses": set(),  # stricter than "→ envs": the pure losses import nothing but utils
    "metrics": {"rollout", "envs"},
    "envs": set(),
    "utils": set(),
    "data": set(),
}
LEAVES = {"utils", "data"}
# the only modules allowed to import RDKit (the molecule environment and its metrics)
RDKIT_MODULES = {"gfnjax.envs.chem", "gfnjax.envs.molgraph", "gfnjax.metrics.molecules"}
REGISTRY_ENTRY = re.compile(r"^(gfnjax(?:\.\w+)+):\w+$")


def allowed_layers() -> dict[str, set[str]]:
    out = {}
    for layer in DIRECT:
        seen, todo = set(), list(DIRECT[layer])
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo.extend(DIRECT[dep])
        out[layer] = seen | (set() if layer in LEAVES else LEAVES)
    return out


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """gfnjax.algos.tb -> "algos"; gfnjax.trainer -> "trainer"; the package root -> "root"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "root"


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> gfnjax modules it imports, module -> external top-level packages it imports).

    Every Import/ImportFrom node counts, wherever it stands (module level, function, class), and
    so does every registry string "gfnjax.x.y:Name" (the lazy registries import it on use).
    `from gfnjax.a import b` is an edge to gfnjax.a.b when that is a module, else to gfnjax.a.
    """
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in files}
    external: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import: resolve against this module's package
                    base = mod.split(".")[: len(mod.split(".")) - node.level + (1 if is_pkg else 0)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                targets = [
                    f"{source}.{a.name}" if f"{source}.{a.name}" in files else source
                    for a in node.names
                ]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = REGISTRY_ENTRY.match(node.value)
                targets = [match.group(1)] if match else []
            for t in targets:
                if t == "gfnjax" or t.startswith("gfnjax."):
                    while t not in files:  # import gfnjax.a.b.c where c is a name
                        t = t.rsplit(".", 1)[0]
                    if t != mod:
                        edges[mod].add(t)
                elif t:
                    external[mod].add(t.split(".")[0])
    return edges, external


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A directed cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (found := visit(m)):
            return found
    return None


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_graph_sees_every_kind_of_import(graph):
    """The parser must see module-level, function-level and registry-string imports, or the
    checks below would pass vacuously."""
    edges, external = graph
    assert (
        "gfnjax.algos.base" in edges["gfnjax.algos.tb"]
        or "gfnjax.algos.flow" in edges["gfnjax.algos.tb"]
    )
    assert "gfnjax.algos.presets" in edges["gfnjax.algos"]  # imported inside algos.make
    assert "gfnjax.envs.hypergrid" in edges["gfnjax.envs"]  # registry string
    assert "gfnjax.metrics.molecules" in edges["gfnjax.metrics"]  # inside default_metrics
    assert "rdkit" in external["gfnjax.envs.chem"]
    assert len(edges) >= 40 and sum(map(len, edges.values())) >= 80


def test_cycle_finder_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_has_no_cycle(graph):
    edges, _ = graph
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle (lazy imports included): " + " → ".join(cycle)


def test_no_import_against_the_layer_order(graph):
    """bench → trainer → algos → {rollout, losses, nets, optim, replay} → envs; metrics →
    {rollout, envs}; utils, data leaves; nothing imports bench; envs import no metrics, nets,
    rollout or algos."""
    edges, _ = graph
    allowed = allowed_layers()
    assert set(map(layer, edges)) - {"root"} <= set(DIRECT), "a module outside the known layers"
    bad = sorted(
        f"{a} → {b}  ({layer(a)} may import {sorted(allowed[layer(a)])})"
        for a, targets in edges.items()
        for b in targets
        if layer(a) != "root" and layer(b) != layer(a) and layer(b) not in allowed[layer(a)]
    )
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)
    assert not [a for a, t in edges.items() for b in t if layer(b) == "bench" != layer(a)]


def test_only_the_molecule_modules_import_rdkit(graph):
    _, external = graph
    users = {m for m, pkgs in external.items() if "rdkit" in pkgs}
    assert users <= RDKIT_MODULES, f"RDKit imported outside the molecule modules: {users}"


PROBE = r"""
import json, sys
def loaded():
    return sorted(m for m in sys.modules if m == "gfnjax" or m.startswith(("gfnjax.", "rdkit")))
out = {}
import gfnjax
out["root"] = loaded()
import gfnjax.losses
out["losses"] = loaded()
import gfnjax.envs, gfnjax.algos, gfnjax.trainer
out["registries"] = loaded()
from gfnjax import algos, envs, metrics
env = envs.make("hypergrid", dim=2, side=3)
algo = algos.make("tb", env, hidden=(8,))
metrics.default_metrics(env)
out["hypergrid"] = loaded()
print(json.dumps(out))
"""


def test_lazy_imports_load_no_environment_and_no_rdkit():
    """`import gfnjax.losses` must not load gfnjax.envs.*, gfnjax.nets.* or RDKit (the notebook
    promise); the registries load no environment until one is made; a hypergrid run loads
    neither the other environments nor RDKit."""
    res = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["root"] == ["gfnjax"], out["root"]
    forbidden = ("gfnjax.envs", "gfnjax.nets", "gfnjax.algos", "gfnjax.metrics", "rdkit")
    bad = [m for m in out["losses"] if m.startswith(forbidden)]
    assert not bad, f"import gfnjax.losses loaded {bad}"
    assert set(out["losses"]) <= {"gfnjax", "gfnjax.utils"} | {
        m for m in out["losses"] if m.startswith("gfnjax.losses")
    }, out["losses"]
    env_modules = {m for m in out["registries"] if m.startswith("gfnjax.envs.")}
    assert env_modules <= {"gfnjax.envs.base"}, f"the registries imported {env_modules}"
    others = {
        "gfnjax.envs.molgraph",
        "gfnjax.envs.chem",
        "gfnjax.envs.qm9str",
        "gfnjax.envs.bitseq",
    }
    assert not others & set(out["hypergrid"]), out["hypergrid"]
    assert not [m for m in out["hypergrid"] if m.startswith("rdkit")], out["hypergrid"]


# --- (c) traces once ---------------------------------------------------------------------------

TINY = envs.make("hypergrid", dim=2, side=3)
SMALL_FIELDS = dict(
    hidden=(8,),
    value_hidden=(8,),
    batch_size=4,
    buffer_capacity=64,
    replay_batch_size=8,
    learning_starts=1,
)


def tiny_algo(name: str):
    fields = set(algos.config_fields(name))
    return algos.make(name, TINY, **{k: v for k, v in SMALL_FIELDS.items() if k in fields})


@pytest.mark.parametrize("name", algos.names())
def test_update_traces_once_and_reports_a_step_info(name):
    """jit(update) called three times, feeding its state back: one trace (`assert_max_traces`
    raises on a second one, e.g. when an output dtype or weak type differs from the input's).
    The StepInfo it returns describes the sampled batch: `batch_size` trajectories, terminal
    states, and their log R(x) as the environment computes it."""
    chex.clear_trace_counter()
    algo = tiny_algo(name)
    update = jax.jit(chex.assert_max_traces(algo.update, n=1))
    state = algo.init(jax.random.PRNGKey(0))
    for i in range(3):
        state, info = update(state, jax.random.PRNGKey(i + 1))
    assert int(state.step) == 3
    assert int(info.num_trajectories) == algo.config.batch_size
    assert bool(jnp.all(TINY.is_terminal(info.terminals)))
    np.testing.assert_allclose(info.log_reward, TINY.log_reward(info.terminals), rtol=1e-6)
    assert int(info.num_transitions) >= algo.config.batch_size  # ≥ 1 transition per trajectory
    assert all(jnp.ndim(v) == 0 for v in info.scalars.values()), info.scalars


def test_trainer_period_traces_once():
    chex.clear_trace_counter()
    small = MetricsConfig(eval_batch_size=8, l1_window=64)
    trainer = make_trainer(tiny_algo("tb"), num_iterations=6, eval_every=2, metrics_config=small)
    period = jax.jit(chex.assert_max_traces(trainer.period, n=1))
    carry = trainer.init(jax.random.PRNGKey(0))
    for _ in range(3):
        carry, out = period(carry)
    assert int(carry.iteration) == 6
    assert np.isfinite(float(out["tv"]))
