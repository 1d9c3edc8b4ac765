"""fragments: the shipped block library, exact enumeration vs an independent plain-Python oracle of
rooted block trees, exact inverse forward/backward actions (property test on the default
instance), assembly vs RDKit's molzip, junction chemistry, TB reaching the exact target, rewards
and the reward hook, training smoke tests."""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fast_compile import two_updates_are_finite
from rdkit import Chem
from rdkit.Chem import QED

from gfnjax import algos
from gfnjax.envs import blocks, chem
from gfnjax.envs.fragments import MAX_STEMS, Fragments, FragmentState, assemble
from gfnjax.metrics.exact import build_dag, distribution_metrics, policy_terminal_distribution
from gfnjax.trainer import make_trainer

SMALL = ("*c1ccccc1", "*O*", "*N(*)*", "*C(=O)C(*)C")
# the attach types (fragment, anchor stem) expected for SMALL: symmetric stems offered once
SMALL_TYPES = [(0, 0), (1, 0), (2, 0), (3, 0), (3, 1)]
SMALL_STEM_ELEMENTS = [["C"], ["O", "O"], ["N", "N", "N"], ["C", "C"]]


@pytest.fixture(scope="module")
def small():
    return Fragments(max_blocks=3, blocks=SMALL)


@pytest.fixture(scope="module")
def default_env():
    return Fragments()


def test_shipped_library_is_the_documented_filter_of_rdkit_data(default_env):
    """Every shipped block passes the documented filter, the counts are sorted as generated, and
    the library parses: ≤ 3 stems, types deduplicated by symmetry only."""
    assert len(blocks.BLOCKS) == blocks.NUM_BLOCKS == default_env.num_fragments
    counts = [c for _, c in blocks.BLOCKS]
    assert counts == sorted(counts, reverse=True)
    for smi, _ in blocks.BLOCKS:
        assert blocks.acceptable(smi), smi
    lib = default_env.library
    assert lib.num_stems.max() <= MAX_STEMS
    for f, smi in enumerate(lib.smiles):
        mol = Chem.MolFromSmiles(smi)
        dummies = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
        ranks = list(Chem.CanonicalRankAtoms(mol, breakTies=False))
        offered = [t for t in range(len(dummies)) if lib.type_of[f, t] >= 0]
        assert len(offered) == len({ranks[d] for d in dummies}), smi


def test_small_library_types_and_junctions(small):
    lib = small.library
    assert list(zip(lib.type_frag.tolist(), lib.type_anchor.tolist())) == SMALL_TYPES
    assert [list(e) for e in lib.stem_element] == SMALL_STEM_ELEMENTS
    with pytest.raises(ValueError, match="breaks the plausible chemistry rules"):
        Fragments(blocks=("*OO*",))
    with pytest.raises(ValueError, match="attachment points"):
        Fragments(blocks=("*C(*)(*)*",))


# --- an independent oracle: block trees as nested tuples ----------------------------------------
# node = (fragment, anchor stem (−1 at the root), children: tuple of (stem, node) sorted by stem)


def junction_ok(f, s, g, u, chemistry):
    a, b = SMALL_STEM_ELEMENTS[f][s], SMALL_STEM_ELEMENTS[g][u]
    return chemistry == "unrestricted" or "C" in (a, b)


def preorder(tree, path=()):
    """[(path, node)] in preorder with children by increasing stem."""
    out = [(path, tree)]
    for s, child in tree[2]:
        out += preorder(child, path + (s,))
    return out


def size(tree):
    return 0 if tree is None else len(preorder(tree))


def replace_at(tree, path, fn):
    if not path:
        return fn(tree)
    f, t, kids = tree
    kids = tuple((s, replace_at(c, path[1:], fn) if s == path[0] else c) for s, c in kids)
    return (f, t, kids)


def oracle_children(tree, done, M, chemistry):
    """{forward action: (tree, done)} from the module docstring's rules."""
    F, S, K = len(SMALL), MAX_STEMS, len(SMALL_TYPES)
    if done:
        return {}
    if tree is None:
        return {f: ((f, -1, ()), False) for f in range(F)}
    out = {F + M * S * K: (tree, True)}
    if size(tree) < M:
        for i, (path, (f, t, kids)) in enumerate(preorder(tree)):
            used = {s for s, _ in kids} | {t}
            for s in range(len(SMALL_STEM_ELEMENTS[f])):
                if s in used:
                    continue
                for k, (g, u) in enumerate(SMALL_TYPES):
                    if not junction_ok(f, s, g, u, chemistry):
                        continue

                    def add(node, s=s, g=g, u=u):
                        kids = tuple(sorted(node[2] + ((s, (g, u, ())),)))
                        return (node[0], node[1], kids)

                    out[F + (i * S + s) * K + k] = (replace_at(tree, path, add), False)
    return out


def oracle_arrays(tree, M):
    """The canonical arrays (frag + 1, anchor, parent position, site) of a tree."""
    frag, anchor, parent, site = [0] * M, [-1] * M, [-1] * M, [-1] * M
    if tree is None:
        return frag, anchor, parent, site
    nodes = preorder(tree)
    pos = {path: j for j, (path, _) in enumerate(nodes)}
    for j, (path, node) in enumerate(nodes):
        frag[j], anchor[j] = node[0] + 1, node[1]
        if path:
            parent[j], site[j] = pos[path[:-1]], path[-1]
    return frag, anchor, parent, site


def tree_of(frag, anchor, parent, site):
    """Nested-tuple tree of one state's arrays (None when empty)."""
    n = int((np.asarray(frag) > 0).sum())
    if n == 0:
        return None

    def build(j):
        kids = tuple(sorted((int(site[c]), build(c)) for c in range(n) if parent[c] == j))
        return (int(frag[j]) - 1, int(anchor[j]), kids)

    return build(0)


def keys_of(state):
    s = jax.device_get(state)
    return [
        (tree_of(f, a, p, t), bool(d))
        for f, a, p, t, d in zip(s.frag, s.anchor, s.parent, s.site, s.done)
    ]


@pytest.mark.parametrize("chemistry", ["plausible", "unrestricted"])
def test_enumeration_and_masks_match_oracle(chemistry):
    """Every state of a 3-block instance: the canonical arrays equal the oracle's preorder; the
    forward mask/step equal the oracle's children (free stems, junction rule); the backward
    mask/backward_step equal the oracle's parents (remove any leaf but a non-lone root) with
    to_forward_action giving the forward action; to_backward_action inverts step."""
    env = Fragments(max_blocks=3, blocks=SMALL, chemistry=chemistry)
    M, A, Ab = env.max_blocks, env.num_actions, env.num_backward_actions
    allst = jax.tree.map(
        lambda a, b: jnp.concatenate([a, b]), env.enumerate_states(), env.enumerate_terminals()
    )
    keys = keys_of(allst)
    # oracle closure from the empty tree equals the enumeration
    seen, frontier, edges, children = (
        {(None, False)},
        [(None, False)],
        collections.defaultdict(set),
        {},
    )
    while frontier:
        nxt = []
        for s in frontier:
            children[s] = oracle_children(*s, M, chemistry)
            for a, c in children[s].items():
                edges[c].add((s, a))
                if c not in seen:
                    seen.add(c)
                    nxt.append(c)
        frontier = nxt
    assert seen == set(keys) and len(keys) == len(seen)
    arrays = jax.device_get(allst)
    for m, (tree, _) in enumerate(keys):
        got = [arrays.frag[m], arrays.anchor[m], arrays.parent[m], arrays.site[m]]
        assert [list(x) for x in got] == list(oracle_arrays(tree, M)), tree

    step, bstep = jax.jit(env.step), jax.jit(env.backward_step)
    fmask = np.asarray(jax.jit(env.forward_mask)(allst))
    rep = jax.tree.map(lambda x: jnp.repeat(x, A, axis=0), allst)
    act = jnp.tile(jnp.arange(A), len(keys))
    child = keys_of(step(rep, act))
    back = np.asarray(jax.jit(env.to_backward_action)(rep, act))
    for m, s in enumerate(keys):
        oc = children[s]
        assert set(np.nonzero(fmask[m])[0]) == set(oc), s
        for a, c in oc.items():
            assert child[m * A + a] == c, (s, a)
    bmask = np.asarray(jax.jit(env.backward_mask)(allst))
    rows = np.nonzero(bmask.reshape(-1))[0]  # invalid backward actions give garbage arrays
    rep_b = jax.tree.map(lambda x: jnp.repeat(x, Ab, axis=0)[rows], allst)
    bact = jnp.tile(jnp.arange(Ab), len(keys))[rows]
    parent = dict(zip(rows.tolist(), keys_of(bstep(rep_b, bact))))
    fwd = dict(zip(rows.tolist(), np.asarray(jax.jit(env.to_forward_action)(rep_b, bact))))
    for m, s in enumerate(keys):
        got = {(parent[m * Ab + b], int(fwd[m * Ab + b])) for b in np.nonzero(bmask[m])[0]}
        assert got == edges[s], s
    valid = np.nonzero(fmask.reshape(-1))[0]
    cm = jax.tree.map(lambda x: x[valid], step(rep, act))
    assert np.all(np.asarray(jax.jit(env.backward_mask)(cm))[np.arange(len(valid)), back[valid]])
    par = keys_of(bstep(cm, jnp.asarray(back[valid])))
    assert all(par[r] == keys[i // A] for r, i in enumerate(valid))


def molzip_smiles(tree):
    """Independent assembly with RDKit's molzip: paired stems share an atom-map number, unused
    stems become hydrogens."""
    parts, label = [], [0]

    def visit(node, incoming):
        f, t, kids = node
        mol = Chem.RWMol(Chem.MolFromSmiles(SMALL[f]))
        dummies = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
        by_stem = dict(kids)
        for s, d in enumerate(dummies):
            atom = mol.GetAtomWithIdx(d)
            if s == t:
                atom.SetAtomMapNum(incoming)
            elif s in by_stem:
                label[0] += 1
                atom.SetAtomMapNum(label[0])
                visit(by_stem[s], label[0])
            else:
                atom.SetAtomicNum(1)
        parts.append(mol.GetMol())

    visit(tree, 0)
    combined = parts[0]
    for p in parts[1:]:
        combined = Chem.CombineMols(combined, p)
    mol = Chem.molzip(combined)
    Chem.SanitizeMol(mol)
    return Chem.MolToSmiles(Chem.RemoveHs(mol))


def test_every_terminal_assembles_like_molzip_and_obeys_the_junction_rule(small):
    """Exhaustive on the 3-block instance: every terminal's molecule sanitises and equals RDKit's
    molzip of the same tree; plausible junctions never join two heteroatoms, the unrestricted
    mode does (O–O, N–N, N–O), so the check can fail."""
    hetero = Chem.MolFromSmarts("[!#6;!#1]-[!#6;!#1]")
    for chemistry, env in [("plausible", small), ("unrestricted", None)]:
        env = env or Fragments(max_blocks=3, blocks=SMALL, chemistry=chemistry)
        t = jax.device_get(env.enumerate_terminals())
        found = 0
        for f, a, p, s in zip(t.frag, t.anchor, t.parent, t.site):
            mol = assemble(env.library, f, a, p, s)
            assert mol is not None
            assert Chem.MolToSmiles(mol) == molzip_smiles(tree_of(f, a, p, s))
            found += mol.HasSubstructMatch(hetero)
            if chemistry == "plausible":
                assert not chem.rule_violations(mol)
        assert (found == 0) == (chemistry == "plausible"), (chemistry, found)


def uniform_rollout(env, key, batch):
    """States [T+1, B] and actions [T, B] of the uniform policy over valid actions."""

    def body(state, k):
        mask = env.forward_mask(state)
        action = jnp.argmax(jnp.where(mask, jax.random.gumbel(k, mask.shape), -jnp.inf), -1)
        action = jnp.where(jnp.any(mask, -1), action, env.stop_action)
        return env.step(state, action), (state, action)

    keys = jax.random.split(key, env.max_steps)
    final, (states, actions) = jax.lax.scan(body, env.reset(batch), keys)
    return states, actions, final


def test_forward_and_backward_are_exact_inverses_on_the_default_instance(default_env):
    """Property test on 256 uniform trajectories of the 40-block, 6-block instance: for every
    transition s → s' = step(s, a), b = to_backward_action(s, a) is valid at s' and
    backward_step(s', b) = s, to_forward_action(s', b) = a; for a random valid backward action b'
    at s', the parent p satisfies step(p, to_forward_action(s', b')) = s' and
    to_backward_action(p, ·) = b'. Every state's arrays are the canonical preorder of its tree."""
    env = default_env
    M = env.max_blocks

    @jax.jit
    def check(key):
        states, actions, _ = uniform_rollout(env, key, 256)
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), states)
        a = actions.reshape(-1)
        live = ~env.is_terminal(flat)
        child = env.step(flat, a)
        b = env.to_backward_action(flat, a)
        ok_b = jnp.take_along_axis(env.backward_mask(child), b[:, None], 1)[:, 0]
        back = env.backward_step(child, b)
        same = jax.tree.map(lambda x, y: jnp.all((x == y).reshape(x.shape[0], -1), -1), back, flat)
        inv1 = ok_b & jnp.all(jnp.stack(jax.tree.leaves(same)), 0)
        inv1 &= env.to_forward_action(child, b) == a
        bmask = env.backward_mask(child)
        g = jax.random.gumbel(jax.random.fold_in(key, 1), bmask.shape)
        b2 = jnp.argmax(jnp.where(bmask, g, -jnp.inf), -1)
        par = env.backward_step(child, b2)
        a2 = env.to_forward_action(child, b2)
        ok_a = jnp.take_along_axis(env.forward_mask(par), a2[:, None], 1)[:, 0]
        again = env.step(par, a2)
        same2 = jax.tree.map(
            lambda x, y: jnp.all((x == y).reshape(x.shape[0], -1), -1), again, child
        )
        inv2 = ok_a & jnp.all(jnp.stack(jax.tree.leaves(same2)), 0)
        inv2 &= env.to_backward_action(par, a2) == b2
        return live, inv1, inv2, child

    live, inv1, inv2, child = jax.device_get(check(jax.random.PRNGKey(0)))
    assert live.sum() > 1000
    assert np.all(inv1[live]) and np.all(inv2[live])
    sizes = (child.frag > 0).sum(-1)
    assert sizes.max() == M and len(set(sizes.tolist())) >= 3
    for r in np.nonzero(live)[0][:2000]:
        tree = tree_of(child.frag[r], child.anchor[r], child.parent[r], child.site[r])
        got = [list(x[r]) for x in (child.frag, child.anchor, child.parent, child.site)]
        assert got == [list(v) for v in oracle_arrays(tree, M)]


def test_tb_matches_target_on_a_small_instance(small):
    """TB-trained policy on the 3-block instance (203 states): exact DP TV to π(x) ∝ exp(10·QED(x))
    < 0.03 (0.005 measured after 1500 iterations of 32 trajectories, seed 0)."""
    env = small
    algo = algos.make("tb", env, hidden=(64, 64), batch_size=32, lr=3e-3, torso="mlp")
    dag = build_dag(env)
    assert env.num_terminals == env.num_states - 1 and dag.child.shape[0] == env.num_states
    trainer = make_trainer(algo, 1500, 1500, metrics=[])
    carry, _ = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    logits, _ = algo.policy_fn(carry.state)(dag.obs)
    p = policy_terminal_distribution(dag, logits)
    tv = float(distribution_metrics(p, dag.true_log_probs)["tv"])
    assert tv < 0.03, tv
    # the exact target is exp(10·QED) of each state's molecule (RDKit, independent of the env)
    t = jax.device_get(env.enumerate_terminals())
    log_r = np.array(
        [
            10 * QED.qed(Chem.MolFromSmiles(molzip_smiles(tree_of(*r))))
            for r in zip(t.frag, t.anchor, t.parent, t.site)
        ]
    )
    want = log_r - np.log(np.exp(log_r - log_r.max()).sum()) - log_r.max()
    np.testing.assert_allclose(np.asarray(dag.true_log_probs), want, atol=1e-4)


def test_rewards_and_the_proxy_hook(default_env):
    """log R = β·QED of the assembled molecule (RDKit); a registered batched score (the hook a
    user fills with the sEH proxy) replaces it; bad options fail early."""
    env = default_env
    x = env.test_set()
    got = np.asarray(env.log_reward(x))
    mols = [assemble(env.library, *r) for r in zip(x.frag, x.anchor, x.parent, x.site)]
    np.testing.assert_allclose(got, [10 * QED.qed(m) for m in mols], rtol=1e-5)
    chem.register_score("test_proxy", lambda ms: [m.GetNumHeavyAtoms() / 50 for m in ms], True)
    proxy = Fragments(score="test_proxy", transform="power", beta=2.0)
    np.testing.assert_allclose(
        np.asarray(proxy.log_reward(x)),
        [2 * np.log(m.GetNumHeavyAtoms() / 50) for m in mols],
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="chemistry"):
        Fragments(chemistry="wild")
    with pytest.raises(ValueError, match="max_blocks"):
        Fragments(max_blocks=0)


def test_10k_sampled_molecules_are_valid_and_plausible(default_env):
    """10^4 uniform random trees of the default instance: every molecule sanitises, breaks no rule
    B1–B5, and every bond between two heteroatoms is aromatic (from a block, never a junction)."""
    env = default_env
    _, _, final = jax.jit(uniform_rollout, static_argnums=(0, 2))(
        env, jax.random.PRNGKey(1), 10_000
    )
    final = jax.device_get(final)
    assert np.all(final.done)
    hetero = Chem.MolFromSmarts("[!#6;!#1]!:[!#6;!#1]")
    entries = env.host_molecules(env.molecule_arrays(final))
    seen = set()
    for e in entries:
        assert e is not None
        if e[0] in seen:
            continue
        seen.add(e[0])
        assert not chem.rule_violations(e[1]), e[0]
        assert not e[1].HasSubstructMatch(hetero), e[0]
    assert len(seen) > 5000


@pytest.mark.parametrize("name,torso", [("tb", "graph"), ("rl_g", "mlp")])
def test_algorithms_run_without_nan(name, torso, small):
    info = two_updates_are_finite(name, small, torso)
    assert np.all(np.asarray(small.num_blocks(info.terminals)) >= 1)


def test_state_is_a_pytree_of_the_documented_shapes(small):
    s = small.reset(5)
    assert isinstance(s, FragmentState)
    assert s.frag.shape == (5, 3) and small.observe(s).shape == (5, small.obs_dim)
