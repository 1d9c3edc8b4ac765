"""Molecules assembled from fragments ("blocks") at attachment points, in the style of the block MDP
of Bengio et al. 2021 used for the sEH task by Ent-PPO (Zykova-Myzina et al. 2026) and Tiapkin et
al. 2024 (docs/methods.md §4). RDKit assembles and scores the molecules on the host.

Block library (`blocks`, default `gfnjax.envs.blocks.BLOCKS`: the 40 most frequent acceptable
BRICS fragments of RDKit's NCI sample, see that module for how it was made): F fragments, each a
SMILES whose `*` atoms are its attachment points ("stems") 0..s_f−1, s_f ≤ S = 3. A block joined to
its parent uses one of its own stems, the anchor t, for the bond; its other stems stay free. Anchors
that a symmetry of the fragment maps onto each other give the same molecules, so only the first of
each symmetry class is offered: the K attach types are the pairs (f, t) with t the first stem of its
class (RDKit canonical ranks without tie breaking).

State (M = max_blocks; a rooted tree of blocks stored in a canonical order):
  frag   int32[B, M]  0 = empty, f + 1 = fragment f
  anchor int32[B, M]  own stem bonded to the parent (−1 at the root and empty slots)
  parent int32[B, M]  parent position (−1 at the root and empty slots)
  site   int32[B, M]  the parent's stem the block hangs on (−1 at the root and empty slots)
  done   bool[B]
The root is the first block placed. Positions are the preorder of the tree with children visited
by increasing site, so a tree has exactly one array form (parent < child always) and states are
trees, not insertion histories.

Forward actions (A = F + M·S·K + 1):
  f < F                     place fragment f as the root                        (empty state)
  F + (i·S + s)·K + k       attach type k = (f, t) with its stem t to stem s of the block at
                            position i: i < n < M, s < s_{frag i}, s ≠ anchor_i, no block already
                            on (i, s), and the junction rule J (below) holds for (frag_i, s, k)
  A − 1                     stop (n ≥ 1)
The new block is inserted at its preorder position
    i + 1 + Σ_{children c of i with site_c < s} |subtree(c)|
and later positions shift by one.
Backward actions (A_b = M + 1):
  j < M                     remove the block at position j: a leaf (no block hangs on it), and not
                            the root unless it is the only block; positions after j shift down
  M                         undo stop (terminal states only)
Removing leaf j and re-attaching it (type (frag_j, anchor_j) on (parent_j, site_j)) re-inserts it at
position j, so `to_forward_action`/`to_backward_action` are exact inverses; a state has one parent
per removable leaf (a DAG, not a tree: P_B is a real choice).

Junction rule J: a block's bond is a single bond between the stem atoms, each of which gave up a
hydrogen (every stem has its own), so every assembled molecule is valid. With
`chemistry="plausible"` (default) at least one of the two junction atoms must be carbon (no N–N,
N–O, O–O, N–S, O–S junctions made by joining blocks: hydrazines, hydroxylamines, peroxides,
sulfenamides, sulfenates); a fragment may contain such bonds only if it passes the library filter
(rules B1–B5 of `gfnjax.envs.chem`, no PAINS/Brenk alert). "unrestricted": any junction.
Every state's molecule then obeys B1–B5: junctions are single bonds in a tree of blocks (no new
ring, no new multiple bond). A molecule can be reached as several states (other roots, symmetric
stems, other decompositions into blocks); the target is over states, π(x) ∝ R(x), as in the
block MDP.

Reward: as `molgraph` — score s(x) ∈ [0, 1] of the assembled molecule (`score`: "qed", "sa",
"qed_sa", "qed_alerts", "drug_like", formulas in `gfnjax.envs.chem`), log R = β·s ("exp") or
β·log max(s, 1e−6) ("power"), one batched `jax.pure_callback` per batch with caches keyed by the
state arrays and by canonical SMILES. The sEH proxy of Bengio et al. 2021 (a graph network trained
on docking scores) is NOT available offline and not shipped; the reward is pluggable: register the
proxy with `gfnjax.envs.chem.register_score("seh", fn, batched=True)` (fn(mols) -> float[n], e.g.
proxy/8 as in their code) and build the environment with score="seh". The reward code is shared
with `molgraph` (`gfnjax.envs.molecule`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gfnjax.envs import chem
from gfnjax.envs.molecule import MoleculeEnv, enumerate_bfs
from gfnjax.utils import check_range

MAX_STEMS = 3  # S: attachment points per block at most


@struct.dataclass
class FragmentState:
    frag: jax.Array  # int32[B, M]
    anchor: jax.Array  # int32[B, M]
    parent: jax.Array  # int32[B, M]
    site: jax.Array  # int32[B, M]
    done: jax.Array  # bool[B]


@dataclasses.dataclass(frozen=True)
class Library:
    """Host-side tables of a block library (numpy; see the module docstring).

    smiles[F]; num_stems int32[F]; stem_atom int32[F, S] (index of the atom carrying stem s, −1
    beyond s_f); stem_dummy int32[F, S] (index of stem s's '*' atom); stem_element[F][S];
    type_frag, type_anchor int32[K]; type_of int32[F, S] (attach type of (f, t), −1 if t is not
    offered); junction bool[F, S, K].
    """

    smiles: tuple[str, ...]
    num_stems: np.ndarray
    stem_atom: np.ndarray
    stem_dummy: np.ndarray
    stem_element: tuple[tuple[str, ...], ...]
    type_frag: np.ndarray
    type_anchor: np.ndarray
    type_of: np.ndarray
    junction: np.ndarray
    mols: tuple  # RDKit Mol with dummies, per fragment


@functools.lru_cache(maxsize=16)
def load_library(blocks: tuple[str, ...], chemistry: str) -> Library:
    """Parse and check a block library; ValueError naming a bad block."""
    from rdkit import Chem

    F, S = len(blocks), MAX_STEMS
    num_stems = np.zeros((F,), np.int32)
    stem_atom = np.full((F, S), -1, np.int32)
    stem_dummy = np.full((F, S), -1, np.int32)
    stem_element, mols, types = [], [], []
    type_of = np.full((F, S), -1, np.int32)
    for f, smi in enumerate(blocks):
        mol = Chem.MolFromSmiles(smi)
        if mol is None:
            raise ValueError(f"fragments.blocks[{f}] = {smi!r} is not a valid SMILES")
        dummies = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
        if not 1 <= len(dummies) <= S or any(
            len(mol.GetAtomWithIdx(d).GetNeighbors()) != 1
            or mol.GetAtomWithIdx(d).GetNeighbors()[0].GetAtomicNum() == 0
            for d in dummies
        ):
            raise ValueError(
                f"fragments.blocks[{f}] = {smi!r} needs 1..{S} attachment points '*', each "
                "bonded to one heavy atom"
            )
        if any(a.GetSymbol() not in chem.VALENCE for a in mol.GetAtoms() if a.GetAtomicNum()):
            raise ValueError(
                f"fragments.blocks[{f}] = {smi!r}: elements must be among {sorted(chem.VALENCE)}"
            )
        capped = Chem.MolFromSmiles(smi.replace("*", "C"))
        bad = [] if capped is None else chem.rule_violations(capped, chemistry)
        if capped is None or bad:
            raise ValueError(
                f"fragments.blocks[{f}] = {smi!r} breaks the {chemistry} chemistry rules: {bad}"
            )
        num_stems[f] = len(dummies)
        nbrs = [mol.GetAtomWithIdx(d).GetNeighbors()[0] for d in dummies]
        stem_atom[f, : len(dummies)] = [a.GetIdx() for a in nbrs]
        stem_dummy[f, : len(dummies)] = dummies
        stem_element.append(tuple(a.GetSymbol() for a in nbrs))
        ranks = list(Chem.CanonicalRankAtoms(mol, breakTies=False))
        seen = set()
        for t, d in enumerate(dummies):
            if ranks[d] not in seen:
                seen.add(ranks[d])
                type_of[f, t] = len(types)
                types.append((f, t))
        mols.append(mol)
    K = len(types)
    type_frag = np.asarray([f for f, _ in types], np.int32)
    type_anchor = np.asarray([t for _, t in types], np.int32)
    junction = np.zeros((F, S, K), bool)
    for f in range(F):
        for s in range(num_stems[f]):
            for k, (g, t) in enumerate(types):
                a, b = stem_element[f][s], stem_element[g][t]
                junction[f, s, k] = chemistry == "unrestricted" or "C" in (a, b)
    return Library(
        tuple(blocks),
        num_stems,
        stem_atom,
        stem_dummy,
        tuple(stem_element),
        type_frag,
        type_anchor,
        type_of,
        junction,
        tuple(mols),
    )


def assemble(lib: Library, frag, anchor, parent, site):
    """Sanitised RDKit molecule of one state's block tree (numpy rows [M]), or None if empty or
    rejected by RDKit. Each used stem pair becomes a single bond between the stem atoms; each
    unused stem becomes a hydrogen."""
    from rdkit import Chem

    n = int((np.asarray(frag) > 0).sum())
    if n == 0:
        return None
    rw = Chem.RWMol()
    offset = []
    for j in range(n):
        offset.append(rw.GetNumAtoms())
        rw.InsertMol(lib.mols[int(frag[j]) - 1])

    def dummy(j, s):  # global index of the '*' atom of stem s of the block at position j
        return offset[j] + int(lib.stem_dummy[int(frag[j]) - 1, s])

    def stem(j, s):
        return offset[j] + int(lib.stem_atom[int(frag[j]) - 1, s])

    drop = []
    for j in range(1, n):
        p, s, t = int(parent[j]), int(site[j]), int(anchor[j])
        rw.AddBond(stem(p, s), stem(j, t), Chem.BondType.SINGLE)
        drop += [dummy(p, s), dummy(j, t)]
    for a in rw.GetAtoms():
        if a.GetAtomicNum() == 0:
            a.SetAtomicNum(1)  # unused stems: hydrogens (removed below)
            a.SetIsotope(0)
    for idx in sorted(drop, reverse=True):
        rw.RemoveAtom(idx)
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
        mol = Chem.RemoveHs(mol)
    except Exception:  # noqa: BLE001 - any RDKit rejection = invalid
        return None
    return mol


@dataclasses.dataclass(frozen=True)
class Fragments(MoleculeEnv):
    """Fragment (block) molecule environment; see the module docstring.

    Attributes (invalid_log_reward, mc_samples, top_k: see `gfnjax.envs.molecule.MoleculeEnv`):
      max_blocks: M blocks at most (1..12); 6 (the sEH task of Bengio et al. uses 9 blocks of a
        72/105-block library; 6 blocks of this library give drug-sized molecules, ≤ ~40 heavy
        atoms).
      blocks: block SMILES with '*' attachment points (≤ 3 each); () = the shipped library
        `gfnjax.envs.blocks.BLOCKS` (40 fragments).
      chemistry: "plausible" (default; junction rule J and rules B1–B5 for the blocks) or
        "unrestricted".
      score: "qed" (default), "sa", "qed_sa", "qed_alerts", "drug_like" or a name registered with
        `gfnjax.envs.chem.register_score` (e.g. the sEH proxy, not shipped).
      transform: "exp" (log R = β·s) or "power" (log R = β·log s; R = s^β as in the sEH setups).
      beta: reward exponent β > 0; 10.
      mode_threshold: score at or above which a molecule can count as a mode (0.85 for QED:
        ≈ the 98th percentile of the uniform random policy's molecules, whose median is 0.6).
      test_size: random test molecules for the correlation metric (128, see `test_set`).
    """

    max_blocks: int = 6
    blocks: tuple[str, ...] = ()
    mode_threshold: float = 0.85

    name: ClassVar[str] = "fragments"
    state_type: ClassVar[type] = FragmentState

    def __post_init__(self):
        check_range(self, "max_blocks", 1, 12, integer=True)
        if isinstance(self.blocks, str):
            object.__setattr__(self, "blocks", (self.blocks,))
        elif isinstance(self.blocks, list):
            object.__setattr__(self, "blocks", tuple(self.blocks))
        if len(set(self.blocks)) != len(self.blocks):
            raise ValueError(f"fragments.blocks must be distinct SMILES, got {self.blocks!r}")
        super().__post_init__()
        load_library(self.block_smiles, self.chemistry)  # a bad block fails at construction

    # --- library and sizes ---------------------------------------------------------------------
    @property
    def block_smiles(self) -> tuple[str, ...]:
        if self.blocks:
            return self.blocks
        from gfnjax.envs.blocks import BLOCKS

        return tuple(s for s, _ in BLOCKS)

    @property
    def library(self) -> Library:
        return load_library(self.block_smiles, self.chemistry)

    @property
    def num_fragments(self) -> int:
        return len(self.block_smiles)

    @property
    def num_types(self) -> int:
        return int(self.library.type_frag.shape[0])

    @property
    def num_actions(self) -> int:
        return self.num_fragments + self.max_blocks * MAX_STEMS * self.num_types + 1

    @property
    def num_backward_actions(self) -> int:
        return self.max_blocks + 1

    @property
    def max_steps(self) -> int:
        return self.max_blocks + 1

    @property
    def graph_layout(self) -> tuple[int, int, int, int]:
        """(nodes M, node features F + 2S, edge channels S, extra 2) of `observe`."""
        return self.max_blocks, self.num_fragments + 2 * MAX_STEMS, MAX_STEMS, 2

    def _tables(self):
        lib = self.library
        return (
            jnp.asarray(lib.num_stems),
            jnp.asarray(lib.type_frag),
            jnp.asarray(lib.type_anchor),
            jnp.asarray(lib.type_of),
            jnp.asarray(lib.junction),
        )

    # --- derived quantities -------------------------------------------------------------------
    def num_blocks(self, state) -> jax.Array:
        """int32[B]: n."""
        return (state.frag > 0).sum(-1).astype(jnp.int32)

    def _nonempty(self, state) -> jax.Array:
        return self.num_blocks(state) >= 1

    def _children(self, state) -> jax.Array:
        """bool[B, M, S]: a block hangs on stem s of the block at position i."""
        M, S = self.max_blocks, MAX_STEMS
        p = jax.nn.one_hot(state.parent, M, dtype=jnp.int32)  # −1 → zeros
        s = jax.nn.one_hot(state.site, S, dtype=jnp.int32)
        return jnp.einsum("bci,bcs->bis", p, s) > 0

    def free_stems(self, state) -> jax.Array:
        """bool[B, M, S]: stems of existing blocks that are neither the anchor nor taken."""
        num_stems, *_ = self._tables()
        f = jnp.maximum(state.frag - 1, 0)
        exists = state.frag > 0
        has = jnp.arange(MAX_STEMS)[None, None, :] < num_stems[f][..., None]
        own = jax.nn.one_hot(state.anchor, MAX_STEMS, dtype=bool)
        return has & exists[..., None] & ~own & ~self._children(state)

    def subtree_sizes(self, state) -> jax.Array:
        """int32[B, M]: blocks in the subtree of each position (0 for empty slots)."""
        M = self.max_blocks
        cur = jnp.broadcast_to(jnp.arange(M), state.parent.shape)
        anc = jax.nn.one_hot(cur, M, dtype=jnp.int32)  # anc[b, v, u]: u is v's ancestor-or-self
        for _ in range(M - 1):
            nxt = jnp.take_along_axis(state.parent, jnp.maximum(cur, 0), axis=1)
            cur = jnp.where(cur >= 0, nxt, -1)
            anc = anc + jax.nn.one_hot(cur, M, dtype=jnp.int32)
        anc = anc * (state.frag > 0)[:, :, None]
        return anc.sum(1).astype(jnp.int32)

    # --- dynamics ---------------------------------------------------------------------------
    def reset(self, batch_size: int) -> FragmentState:
        M = self.max_blocks
        empty = jnp.full((batch_size, M), -1, jnp.int32)
        return FragmentState(
            frag=jnp.zeros((batch_size, M), jnp.int32),
            anchor=empty,
            parent=empty,
            site=empty,
            done=jnp.zeros((batch_size,), bool),
        )

    def _decode(self, action):
        """(place, attach, stop, fragment or type, block position i, stem s)."""
        F, S, K = self.num_fragments, MAX_STEMS, self.num_types
        place = action < F
        stop = action == self.stop_action
        attach = ~place & ~stop
        rel = jnp.clip(action - F, 0, self.max_blocks * S * K - 1)
        return place, attach, stop, jnp.where(place, action, rel % K), rel // (S * K), rel // K % S

    def _insert_position(self, state, i, s):
        """int32[B]: preorder position of a new block on stem s of position i."""
        sizes = self.subtree_sizes(state)
        before = (state.parent == i[:, None]) & (state.site < s[:, None]) & (state.frag > 0)
        return (i + 1 + jnp.where(before, sizes, 0).sum(-1)).astype(jnp.int32)

    def _step(self, state, action):
        M = self.max_blocks
        _, type_frag, type_anchor, _, _ = self._tables()
        place, attach, stop, k, i, s = self._decode(action)
        pos = jnp.where(attach, self._insert_position(state, i, s), 0)
        q = jnp.arange(M)[None, :]
        src = jnp.clip(jnp.where(q > pos[:, None], q - 1, q), 0, M - 1)

        def shift(x):
            return jnp.take_along_axis(x, src, axis=1)

        new_frag = jnp.where(place, k, type_frag[k]) + 1
        new_anchor = jnp.where(place, -1, type_anchor[k])
        new_parent = jnp.where(place, -1, i)
        new_site = jnp.where(place, -1, s)
        parent = shift(state.parent)
        parent = jnp.where(parent >= pos[:, None], parent + 1, parent)
        at = q == pos[:, None]
        grown = FragmentState(
            frag=jnp.where(at, new_frag[:, None], shift(state.frag)),
            anchor=jnp.where(at, new_anchor[:, None], shift(state.anchor)),
            parent=jnp.where(at, new_parent[:, None], parent),
            site=jnp.where(at, new_site[:, None], shift(state.site)),
            done=state.done,
        )
        out = jax.tree.map(
            lambda g, o: jnp.where((place | attach).reshape((-1,) + (1,) * (g.ndim - 1)), g, o),
            grown,
            state,
        )
        return out.replace(done=state.done | stop)

    def _backward_step(self, state, backward_action):
        M = self.max_blocks
        remove = backward_action < M
        j = jnp.where(remove, backward_action, M)  # M: nothing removed
        q = jnp.arange(M)[None, :]
        src = jnp.where(q >= j[:, None], q + 1, q)
        valid = src < M
        src = jnp.minimum(src, M - 1)

        def shift(x, fill):
            return jnp.where(valid, jnp.take_along_axis(x, src, axis=1), fill)

        parent = shift(state.parent, -1)
        parent = jnp.where(parent > j[:, None], parent - 1, parent)
        return FragmentState(
            frag=shift(state.frag, 0),
            anchor=shift(state.anchor, -1),
            parent=parent,
            site=shift(state.site, -1),
            done=state.done & remove,
        )

    def _forward_mask(self, state):
        M, S, K, F = self.max_blocks, MAX_STEMS, self.num_types, self.num_fragments
        B = state.frag.shape[0]
        *_, junction = self._tables()
        n = self.num_blocks(state)
        place = jnp.broadcast_to((n == 0)[:, None], (B, F))
        free = self.free_stems(state) & (n < M)[:, None, None]  # [B, M, S]
        ok = junction[jnp.maximum(state.frag - 1, 0)]  # [B, M, S, K]
        attach = (free[..., None] & ok).reshape(B, M * S * K)
        stop = (n >= 1)[:, None]
        return jnp.concatenate([place, attach, stop], axis=-1)

    def _backward_mask(self, state):
        M = self.max_blocks
        n = self.num_blocks(state)
        leaf = ~jnp.any(self._children(state), -1)  # [B, M]
        q = jnp.arange(M)[None, :]
        remove = leaf & (q < n[:, None]) & ((q > 0) | (n == 1)[:, None]) & ~state.done[:, None]
        return jnp.concatenate([remove, state.done[:, None]], axis=-1)

    def to_backward_action(self, state, action):
        place, attach, stop, _, i, s = self._decode(action)
        pos = jnp.where(attach, self._insert_position(state, i, s), 0)
        return jnp.where(stop, self.max_blocks, pos).astype(jnp.int32)

    def to_forward_action(self, state, backward_action):
        M, S, K, F = self.max_blocks, MAX_STEMS, self.num_types, self.num_fragments
        _, _, _, type_of, _ = self._tables()
        j = jnp.clip(backward_action, 0, M - 1)[:, None]

        def at(x):
            return jnp.take_along_axis(x, j, axis=1)[:, 0]

        f = jnp.maximum(at(state.frag) - 1, 0)
        k = type_of[f, jnp.maximum(at(state.anchor), 0)]
        attach = F + (at(state.parent) * S + at(state.site)) * K + k
        a = jnp.where(at(state.parent) < 0, f, attach)
        return jnp.where(backward_action == M, self.stop_action, a).astype(jnp.int32)

    def observe(self, state):
        """float32[B, M·(F + 2S) + M·M·S + 2]: per block [fragment one-hot F | anchor one-hot S |
        free stems S], per (parent, child) pair both ways the one-hot of the parent's stem, then
        [done, n/M]."""
        M, S, F = self.max_blocks, MAX_STEMS, self.num_fragments
        B = state.frag.shape[0]
        frag = jax.nn.one_hot(state.frag - 1, F, dtype=jnp.float32)
        anchor = jax.nn.one_hot(state.anchor, S, dtype=jnp.float32)
        free = self.free_stems(state).astype(jnp.float32)
        nodes = jnp.concatenate([frag, anchor, free], -1).reshape(B, -1)
        pc = jax.nn.one_hot(state.parent, M, dtype=jnp.float32)  # [B, child, parent]
        site = jax.nn.one_hot(state.site, S, dtype=jnp.float32)  # [B, child, S]
        e = pc[..., None] * site[:, :, None, :]  # [B, child, parent, S]
        edges = (e + e.transpose(0, 2, 1, 3)).reshape(B, -1)
        extra = jnp.stack([state.done.astype(jnp.float32), self.num_blocks(state) / M], -1)
        return jnp.concatenate([nodes, edges, extra], axis=-1)

    # --- molecule capabilities (gfnjax.envs.base; reward: MoleculeEnv) ------------------------
    def molecule_arrays(self, state):
        return state.frag, state.anchor, state.parent, state.site

    def host_molecules(self, arrays):
        rows = [np.asarray(a, np.int32) for a in arrays]
        return [_tree_entry(self.library, *r) for r in zip(*rows)]

    def test_set(self):
        """`test_size` random terminal states (seed 0): a size n ~ U{1..M}, then uniformly random
        valid placements/attachments until n blocks (or no attachment is left). No published
        held-out set exists for block trees; this one covers every size evenly."""
        return _random_terminals(self, self.test_size)

    # --- enumeration (tiny instances) ---------------------------------------------------------
    @property
    def _key_base(self) -> int:
        return (self.num_fragments + 1) * (MAX_STEMS + 1) ** 2 * (self.max_blocks + 1)

    @property
    def enumerable(self) -> bool:
        return self.max_blocks <= 5 and self._key_base**self.max_blocks < 2**31

    def state_key(self, state) -> jax.Array:
        """int32[B]: injective code of (frag, anchor, parent, site) for enumerable instances."""
        S1, M1 = MAX_STEMS + 1, self.max_blocks + 1
        v = ((state.frag * S1 + state.anchor + 1) * M1 + state.parent + 1) * S1 + state.site + 1
        w = jnp.asarray([self._key_base**q for q in range(self.max_blocks)], jnp.int32)
        return (v * w).sum(-1)

    def _enumeration(self):
        if not self.enumerable:
            raise NotImplementedError(
                f"fragments with max_blocks={self.max_blocks} and {self.num_fragments} blocks is "
                "not enumerable"
            )
        return enumerate_bfs(self, 64)  # (keys, frag, anchor, parent, site); empty tree: key 0


# --- host side -------------------------------------------------------------------------------
_TREE_CACHE: dict[tuple, tuple | None] = {}


def _tree_entry(lib: Library, frag, anchor, parent, site):
    """(canonical SMILES, molecule) of one block tree, or None; cached by the arrays' bytes."""
    key = (lib.smiles, frag.tobytes(), anchor.tobytes(), parent.tobytes(), site.tobytes())
    if key not in _TREE_CACHE:
        mol = assemble(lib, frag, anchor, parent, site)
        _TREE_CACHE[key] = None if mol is None else (chem.canonical_smiles(mol), mol)
    return _TREE_CACHE[key]


def _random_terminals(env: Fragments, n: int, seed: int = 0) -> FragmentState:
    """The test set of `Fragments.test_set` (jitted sampling with the environment's own masks)."""

    @jax.jit
    def sample(key):
        k_size, k_act = jax.random.split(key)
        size = jax.random.randint(k_size, (n,), 1, env.max_blocks + 1)
        state = env.reset(n)
        for t in range(env.max_blocks):
            mask = env.forward_mask(state).at[:, env.stop_action].set(False)
            g = jax.random.gumbel(jax.random.fold_in(k_act, t), mask.shape)
            action = jnp.argmax(jnp.where(mask, g, -jnp.inf), -1)
            go = (env.num_blocks(state) < size) & jnp.any(mask, -1)
            action = jnp.where(go, action, env.stop_action)
            state = env.step(state, action)
        return env.step(state, jnp.full((n,), env.stop_action, jnp.int32))

    return jax.device_get(sample(jax.random.PRNGKey(seed)))


__all__ = ["Fragments", "FragmentState", "Library", "assemble", "load_library"]
