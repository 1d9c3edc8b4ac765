"""Molecular graphs built atom by atom, scored with RDKit (docs/methods.md §4).

State (fixed-size arrays, N = max_atoms, K = len(elements)):
  atoms int32[B, N]     0 = empty slot, k + 1 = elements[k]; occupied slots are 0..n−1
  bonds int32[B, N, N]  symmetric bond orders 0..3 (Kekulé: single, double, triple)
  done  bool[B]
Hydrogens are implicit, every atom is neutral with the default valence v(e) (C 4, N 3, O 2, F 1).
Free valence of atom i: f_i = v(e_i) − Σ_j bonds[i, j].

Forward actions (A = K + N·K + P + 1, P = N(N−1)/2 atom pairs i < j):
  [0, K)            place the first atom, element k                (only at the empty graph)
  K + i·K + k       add a new atom of element k at slot n, single-bonded to atom i
                    (i < n < N, f_i ≥ 1)
  K + N·K + p       raise the bond order of pair p = (i, j) by one: a ring closure (0 → 1) or a
                    multiple bond (i < j < n, f_i ≥ 1, f_j ≥ 1, order < 3)
  A − 1             stop (n ≥ 1)
With `chemistry="plausible"` (default) an action is also valid only if its child obeys the
chemistry rules B1–B5 of `gfnjax.envs.chem` (no halogen bonded to anything but carbon, no O–O,
no N=O, no N≡N, heteroatom multiple bonds only N=N, no multiple bond in a 3-ring, no cumulated
multiple bonds, no triple bond in a ring, no heteroatom–heteroatom bond in a 3- or 4-ring), all
checked in jnp:
  add (i, k)        bond_order_table[e_i, k] ≥ 1                                            (B1)
  close (i, j)      table ≥ 1; no common neighbour c of i, j with a multiple bond to i or j (B2);
                    no triple bond on a path i ⇝ j, i.e. no triple edge separating i and j (B4:
                    reachability in the graph minus that edge, by repeated boolean squaring);
                    the new 3- and 4-rings (walks i–c–j, i–c–d–j: counts from A², A³ of the
                    adjacency A) hold no heteroatom–heteroatom bond, including (i, j) (B5)
  1 → 2 on (i, j)   table ≥ 2; (i, j) in no 3-ring (B2); neither i nor j has a multiple bond (B3)
  2 → 3 on (i, j)   table ≥ 3; (i, j) is a bridge (B4)
Every rule is closed under the backward moves (removing a bond or a leaf, lowering an order), so
the valid states form a down-closed set, the forward mask is exactly "the child is valid", and
the backward mask needs no change: backward actions stay exact inverses and every valid state is
reachable. `chemistry="unrestricted"` keeps the whole valence-masked labelled-graph space.
Backward actions (A_b = P + 2):
  p < P             lower the order of pair p by one; lowering 1 → 0 is valid only if atom j
                    keeps an earlier neighbour (below)
  P                 remove the newest atom n − 1, valid when it is a leaf (exactly one bond, of
                    order 1) or the only atom
  P + 1             undo stop (terminal states only)

Graph identity — states are *labelled* graphs. Slots are labelled in insertion order and the
invariant of every state is: each atom j ≥ 1 has a neighbour i < j ("prefix-connected"; it
implies that the graph is connected). Forward actions keep it; the backward connectivity check is
this invariant in jnp (lowering a single bond (i, j), i < j, needs another earlier neighbour of
j), and only the newest atom can be removed, so `to_forward_action`/`to_backward_action` are exact
inverses without any re-indexing. Every prefix-connected labelled graph is reachable (remove the
newest atom when it is a leaf, otherwise lower one of its bonds).
Consequence for the target: one molecule M (one bond-order graph G) is encoded by c(G) distinct
terminal states, c(G) = #prefix-connected orderings of G's atoms / |Aut(G)|
(`gfnjax.chem.count_labelled_graphs`). With `graph_identity="labelled"` (default) the target is
π(x) ∝ R(x) over labelled graphs, so over molecules π(M) ∝ Σ_{G of M} c(G)·R(M): larger and less
symmetric molecules are favoured by their multiplicity. With `graph_identity="molecule"` the
reward is divided by c(G), log R(x) = log R_score(x) − log c(G), so π(M) ∝ k(M)·R(M) with k(M) the
number of non-isomorphic Kekulé bond-order graphs of M (1 unless M is aromatic with inequivalent
Kekulé structures). Metrics are reported over canonical SMILES.

Reward (host RDKit via one `jax.pure_callback` per batch, cached by canonical SMILES, see
`gfnjax.envs.chem`): score s(x) ∈ [0, 1] (`score`: "qed" default; "sa" = (10 − SA)/9;
"qed_sa" = QED·(10 − SA)/9; "qed_alerts" = QED·½^a; "drug_like" = QED·(10 − SA)/9·½^a with a the
number of PAINS/Brenk alerts; or any name added with `chem.register_score`), tempered as
log R = β·s ("exp", R = exp(β·score) as in docs/methods.md §4) or β·log max(s, 1e−6) ("power",
R = s^β). β = 10 by default (seed papers use β ∈ {4, 8, 10, 16}); β is static (a field of the
env), so a β sweep is one program per value. The mask makes every graph a valid molecule;
anything RDKit still rejects gets log R = `invalid_log_reward` (−100) and is counted in
`chem.STATS.invalid`. The reward code is shared with `fragments` (`gfnjax.envs.molecule`).
`log_reward(s)` is defined for every non-empty state (the reward of stopping there).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gfnjax.envs import chem
from gfnjax.envs.molecule import MoleculeEnv, enumerate_bfs
from gfnjax.utils import check_choice, check_range

MAX_ORDER = 3


@struct.dataclass
class MolGraphState:
    atoms: jax.Array  # int32[B, N]
    bonds: jax.Array  # int32[B, N, N]
    done: jax.Array  # bool[B]


@dataclasses.dataclass(frozen=True)
class MolGraph(MoleculeEnv):
    """Atom-level molecular graph environment; see the module docstring.

    Attributes (score, transform, beta, invalid_log_reward, mc_samples, top_k: see
    `gfnjax.envs.molecule.MoleculeEnv`):
      max_atoms: N heavy atoms at most (2..12); 9 = QM9-like.
      elements: element symbols (from `chem.VALENCE`); C, N, O, F as in QM9.
      chemistry: "plausible" (default: masks enforce the rules B1–B5 of `gfnjax.envs.chem`) or
        "unrestricted" (valence rule only: every neutral labelled graph).
      graph_identity: "labelled" (π over labelled graphs) or "molecule" (reward / c(G)).
      mode_threshold: score at or above which a molecule can count as a mode (0.55 ≈ the top
        15% of QED in the filtered NCI test set).
      test_size: held-out test molecules for the correlation metric (≤ available; 128).
    """

    max_atoms: int = 9
    elements: tuple[str, ...] = ("C", "N", "O", "F")
    graph_identity: str = "labelled"
    mode_threshold: float = 0.55

    name: ClassVar[str] = "molgraph"
    state_type: ClassVar[type] = MolGraphState
    _num_extras: ClassVar[int] = 1  # log c(G)

    def __post_init__(self):
        check_range(self, "max_atoms", 2, 12, integer=True)
        if isinstance(self.elements, list):
            object.__setattr__(self, "elements", tuple(self.elements))
        if not isinstance(self.elements, tuple):  # a string would be split into characters
            raise ValueError(
                f"MolGraph.elements must be a tuple of element symbols, e.g. ('C', 'N', 'O'), "
                f"got {self.elements!r}"
            )
        if (
            not self.elements
            or len(set(self.elements)) != len(self.elements)
            or any(e not in chem.VALENCE for e in self.elements)
        ):
            raise ValueError(
                f"MolGraph.elements must be distinct symbols from {sorted(chem.VALENCE)}, "
                f"got {self.elements!r}"
            )
        super().__post_init__()
        check_choice(self, "graph_identity", ("labelled", "molecule"))

    # --- static sizes --------------------------------------------------------------------
    @property
    def num_elements(self) -> int:
        return len(self.elements)

    @property
    def num_pairs(self) -> int:
        return self.max_atoms * (self.max_atoms - 1) // 2

    @property
    def max_valence(self) -> int:
        return max(chem.VALENCE[e] for e in self.elements)

    @property
    def num_actions(self) -> int:
        N, K = self.max_atoms, self.num_elements
        return K + N * K + self.num_pairs + 1

    @property
    def num_backward_actions(self) -> int:
        return self.num_pairs + 2

    @property
    def max_steps(self) -> int:
        # place + (total bond order) + stop; total bond order ≤ ⌊N·v_max/2⌋ and ≤ 3P
        return 2 + min(self.max_atoms * self.max_valence // 2, MAX_ORDER * self.num_pairs)

    @property
    def graph_layout(self) -> tuple[int, int, int, int]:
        """(num_nodes N, node features F, edge features E, extra features) of `observe`."""
        return self.max_atoms, self.num_elements + self.max_valence + 1, MAX_ORDER, 2

    def _pairs(self):
        i, j = np.triu_indices(self.max_atoms, k=1)
        return jnp.asarray(i, jnp.int32), jnp.asarray(j, jnp.int32)

    def _valence_table(self):
        return jnp.asarray([0] + [chem.VALENCE[e] for e in self.elements], jnp.int32)

    # --- derived quantities -----------------------------------------------------------------
    def num_atoms(self, state) -> jax.Array:
        """int32[B]: n."""
        return (state.atoms > 0).sum(-1).astype(jnp.int32)

    def _nonempty(self, state) -> jax.Array:
        return self.num_atoms(state) >= 1

    def free_valence(self, state) -> jax.Array:
        """int32[B, N]: v(e_i) − Σ_j bonds[i, j] (0 on empty slots)."""
        return self._valence_table()[state.atoms] - state.bonds.sum(-1)

    # --- dynamics ---------------------------------------------------------------------------
    def reset(self, batch_size: int) -> MolGraphState:
        N = self.max_atoms
        return MolGraphState(
            atoms=jnp.zeros((batch_size, N), jnp.int32),
            bonds=jnp.zeros((batch_size, N, N), jnp.int32),
            done=jnp.zeros((batch_size,), bool),
        )

    def _decode(self, action):
        """Split a forward action into (kind masks, atom i, element k, pair p)."""
        N, K = self.max_atoms, self.num_elements
        place = action < K
        add = (action >= K) & (action < K + N * K)
        p = action - K - N * K
        raise_ = (p >= 0) & (p < self.num_pairs)
        stop = action == self.stop_action
        rel = jnp.clip(action - K, 0, N * K - 1)
        return place, add, raise_, stop, rel // K, rel % K, jnp.clip(p, 0, self.num_pairs - 1)

    def _step(self, state, action):
        N = self.max_atoms
        pi, pj = self._pairs()
        place, add, raise_, stop, i, k, p = self._decode(action)
        n = self.num_atoms(state)
        elem = jnp.where(place, action, k)
        pos = jnp.where(place, 0, n)
        new_atom = jax.nn.one_hot(pos, N, dtype=jnp.int32) * ((elem + 1) * (place | add))[:, None]
        u = jax.nn.one_hot(jnp.where(add, i, pi[p]), N, dtype=jnp.int32)
        v = jax.nn.one_hot(jnp.where(add, n, pj[p]), N, dtype=jnp.int32)
        inc = (u[:, :, None] * v[:, None, :] + v[:, :, None] * u[:, None, :]) * (add | raise_)[
            :, None, None
        ]
        return MolGraphState(
            atoms=state.atoms + new_atom, bonds=state.bonds + inc, done=state.done | stop
        )

    def _backward_step(self, state, backward_action):
        N, P = self.max_atoms, self.num_pairs
        pi, pj = self._pairs()
        lower = backward_action < P
        remove = backward_action == P
        unstop = backward_action == P + 1
        p = jnp.clip(backward_action, 0, P - 1)
        u = jax.nn.one_hot(pi[p], N, dtype=jnp.int32)
        v = jax.nn.one_hot(pj[p], N, dtype=jnp.int32)
        dec = (u[:, :, None] * v[:, None, :] + v[:, :, None] * u[:, None, :]) * lower[:, None, None]
        last = jax.nn.one_hot(self.num_atoms(state) - 1, N, dtype=bool) & remove[:, None]
        keep = ~(last[:, :, None] | last[:, None, :])
        return MolGraphState(
            atoms=jnp.where(last, 0, state.atoms),
            bonds=jnp.where(keep, state.bonds - dec, 0),
            done=state.done & ~unstop,
        )

    def _order_table(self) -> jax.Array:
        """int32[K+1, K+1]: highest bond order per element pair (rule B1; 3 if unrestricted)."""
        return jnp.asarray(chem.bond_order_table(self.elements, self.chemistry))

    def _forward_mask(self, state):
        N, K = self.max_atoms, self.num_elements
        B = state.atoms.shape[0]
        pi, pj = self._pairs()
        n = self.num_atoms(state)
        free = self.free_valence(state)
        table = self._order_table()
        idx = jnp.arange(N)
        place = jnp.broadcast_to((n == 0)[:, None], (B, K))
        add_at = (idx[None, :] < n[:, None]) & (n < N)[:, None] & (free >= 1)
        add = (add_at[:, :, None] & (table[state.atoms][:, :, 1:] >= 1)).reshape(B, N * K)
        order = state.bonds[:, pi, pj]
        max_order = jnp.minimum(table[state.atoms[:, pi], state.atoms[:, pj]], MAX_ORDER)
        raise_ = (
            (pj[None, :] < n[:, None])
            & (free[:, pi] >= 1)
            & (free[:, pj] >= 1)
            & (order < max_order)
        )
        if self.chemistry == "plausible":
            raise_ = raise_ & self._ring_rules(state, order)
        stop = (n >= 1)[:, None]
        return jnp.concatenate([place, add, raise_, stop], axis=-1)

    def _ring_rules(self, state, order):
        """bool[B, P]: raising pair p keeps rules B2–B5 (module docstring), given a valid state.

        B3 makes the multiple bonds of a valid state a matching, so there are at most ⌊N/2⌋ of
        them; for each, reachability in the graph minus that edge ([B, ⌊N/2⌋, N, N], repeated
        boolean squaring) tells whether it is a bridge and which pairs it separates.
        """
        N, P = self.max_atoms, self.num_pairs
        pi, pj = self._pairs()
        bonds = state.bonds
        bi, bj = bonds[:, pi, :], bonds[:, pj, :]  # [B, P, N]: bonds of i and of j to every c
        common = (bi > 0) & (bj > 0)
        close_ok = ~jnp.any(common & ((bi >= 2) | (bj >= 2)), -1)  # B2 for a new 3-ring
        has_multiple = jnp.any(bonds >= 2, -1)  # [B, N]
        double_ok = ~jnp.any(common, -1) & ~has_multiple[:, pi] & ~has_multiple[:, pj]  # B2, B3
        # B4: the (≤ N/2) multiple edges, each removed in turn
        Q = max(N // 2, 1)
        _, q = jax.lax.top_k((order >= 2).astype(jnp.int32), Q)  # [B, Q] pair indices
        q_order = jnp.take_along_axis(order, q, axis=1)
        qi, qj = pi[q], pj[q]
        ui = jax.nn.one_hot(qi, N, dtype=bool)
        uj = jax.nn.one_hot(qj, N, dtype=bool)
        cut = (ui[..., :, None] & uj[..., None, :]) | (uj[..., :, None] & ui[..., None, :])
        g = ((bonds > 0)[:, None] & ~cut) | jnp.eye(N, dtype=bool)
        reach = g.astype(jnp.float32)
        for _ in range(max(1, math.ceil(math.log2(max(N - 1, 1))))):
            reach = (reach @ reach > 0).astype(jnp.float32)
        conn = reach > 0  # [B, Q, N, N]: connected in the graph minus edge q
        bridge = ~jnp.take_along_axis(
            jnp.take_along_axis(conn, qi[..., None, None], axis=2)[:, :, 0], qj[..., None], axis=2
        )[..., 0]  # [B, Q]
        separated = ~conn[:, :, pi, pj]  # [B, Q, P]
        close_ok = close_ok & ~jnp.any((q_order == 3)[..., None] & separated, axis=1)
        # B5: walks of length 2 and 3 from i to j (simple paths, as i, j are not yet bonded) are
        # the new 3- and 4-rings; compare counts over all bonds A and over bonds C that do not
        # join two heteroatoms
        hetero = jnp.asarray([False] + [e != "C" for e in self.elements])[state.atoms]  # [B, N]
        A = (bonds > 0).astype(jnp.float32)
        C = A * ~(hetero[:, :, None] & hetero[:, None, :])
        A2, C2 = A @ A, C @ C
        A3, C3 = A2 @ A, C2 @ C

        def at(m):
            return m[:, pi, pj]

        small_ring = (at(A2) + at(A3)) > 0
        both = hetero[:, pi] & hetero[:, pj]
        b5_ok = ~(both & small_ring) & (at(A2) == at(C2)) & (at(A3) == at(C3))
        close_ok = close_ok & b5_ok
        is_q = (q[..., None] == jnp.arange(P)) & (q_order >= 2)[..., None]  # [B, Q, P]
        triple_ok = jnp.any(is_q & bridge[..., None], axis=1)
        return jnp.where(order == 0, close_ok, jnp.where(order == 1, double_ok, triple_ok))

    def _backward_mask(self, state):
        N = self.max_atoms
        pi, pj = self._pairs()
        n = self.num_atoms(state)
        live = ~state.done[:, None]
        order = state.bonds[:, pi, pj]
        # earlier neighbours of each atom j: #{i < j : bonds[i, j] ≥ 1}
        earlier = jnp.triu(jnp.ones((N, N), bool), k=1)
        n_earlier = ((state.bonds > 0) & earlier[None]).sum(1)
        lower = (order >= 1) & ((order >= 2) | (n_earlier[:, pj] >= 2)) & live
        last_row = jnp.take_along_axis(state.bonds, jnp.maximum(n - 1, 0)[:, None, None], axis=1)[
            :, 0
        ]
        remove = ((n == 1) | ((n >= 2) & (last_row.sum(-1) == 1)))[:, None] & live
        unstop = state.done[:, None]
        return jnp.concatenate([lower, remove, unstop], axis=-1)

    def to_backward_action(self, state, action):
        N, K, P = self.max_atoms, self.num_elements, self.num_pairs
        b = jnp.where(action < K + N * K, P, action - K - N * K)
        return jnp.where(action == self.stop_action, P + 1, b).astype(jnp.int32)

    def to_forward_action(self, state, backward_action):
        N, K, P = self.max_atoms, self.num_elements, self.num_pairs
        n = self.num_atoms(state)
        last = jnp.maximum(n - 1, 0)
        elem = jnp.take_along_axis(state.atoms, last[:, None], axis=1)[:, 0] - 1
        row = jnp.take_along_axis(state.bonds, last[:, None, None], axis=1)[:, 0]
        nbr = jnp.argmax(row > 0, axis=-1)
        remove = jnp.where(n == 1, elem, K + nbr * K + elem)
        a = jnp.where(backward_action == P, remove, K + N * K + backward_action)
        return jnp.where(backward_action == P + 1, self.stop_action, a).astype(jnp.int32)

    def observe(self, state):
        """float32[B, N·F + N·N·3 + 2]: per atom [element one-hot K | free-valence one-hot
        (v_max + 1)], per pair bond-order one-hot (1, 2, 3), then [done, n/N]."""
        N, F, E, _ = self.graph_layout
        B = state.atoms.shape[0]
        elem = jax.nn.one_hot(state.atoms - 1, self.num_elements, dtype=jnp.float32)
        free = jax.nn.one_hot(self.free_valence(state), self.max_valence + 1, dtype=jnp.float32)
        free = free * (state.atoms > 0)[..., None]
        nodes = jnp.concatenate([elem, free], axis=-1).reshape(B, N * F)
        edges = jax.nn.one_hot(state.bonds - 1, E, dtype=jnp.float32).reshape(B, N * N * E)
        extra = jnp.stack([state.done.astype(jnp.float32), self.num_atoms(state) / N], axis=-1)
        return jnp.concatenate([nodes, edges, extra], axis=-1)

    # --- reward (score_states gives (score, ok, log c(G)), see MoleculeEnv) ---------------------
    def _host_extras(self, arrays, valid):
        """(log c(G) float32[n],) for graph_identity="molecule", else zeros."""
        atoms, bonds = arrays
        log_c = np.zeros(atoms.shape[:1], np.float32)
        if self.graph_identity == "molecule":
            for b in valid:
                log_c[b] = chem.log_count(atoms[b], bonds[b])
        return (log_c,)

    def _log_reward(self, score, log_c):
        log_r = self.log_reward_from_score(score)
        return log_r - log_c if self.graph_identity == "molecule" else log_r

    # --- molecule capabilities (gfnjax.envs.base) ----------------------------------------------
    def molecule_arrays(self, state):
        return state.atoms, state.bonds

    def host_molecules(self, arrays):
        atoms, bonds = (np.asarray(a, np.int32) for a in arrays)
        return [_graph_entry(a, b, self.elements) for a, b in zip(atoms, bonds)]

    def test_set(self):
        """The first `test_size` reference molecules (RDKit's NCI sample within this state space,
        `chem.reference_molecules`) in a seeded random order, as terminal states; None when fewer
        than 3 exist."""
        smiles = held_out_smiles(self)
        return state_from_smiles(self, smiles) if len(smiles) >= 3 else None

    # --- enumeration (tiny instances) ------------------------------------------------------------
    @property
    def _key_bases(self) -> tuple[int, int]:
        return self.num_elements + 1, MAX_ORDER + 1

    @property
    def enumerable(self) -> bool:
        a, b = self._key_bases
        return self.max_atoms <= 5 and a**self.max_atoms * b**self.num_pairs < 2**31

    def state_key(self, state) -> jax.Array:
        """int32[B]: injective code of (atoms, bonds) for enumerable instances."""
        a, b = self._key_bases
        N = self.max_atoms
        pi, pj = self._pairs()
        wa = jnp.asarray([a**i for i in range(N)], jnp.int32)
        wb = jnp.asarray([a**N * b**p for p in range(self.num_pairs)], jnp.int32)
        return (state.atoms * wa).sum(-1) + (state.bonds[:, pi, pj] * wb).sum(-1)

    def _enumeration(self):
        if not self.enumerable:
            raise NotImplementedError(
                f"molgraph with max_atoms={self.max_atoms}, "
                f"{len(self.elements)} elements is not enumerable"
            )
        return enumerate_bfs(self, 256)  # (keys, atoms, bonds); the empty graph has key 0


# Raw graph bytes -> (canonical SMILES, molecule) or None (empty or rejected by RDKit).
_GRAPH_CACHE: dict[tuple, tuple | None] = {}


def _graph_entry(atoms: np.ndarray, bonds: np.ndarray, elements: tuple[str, ...]):
    key = (elements, atoms.tobytes(), bonds.tobytes())
    if key not in _GRAPH_CACHE:
        mol = chem.graph_to_mol(atoms, bonds, elements)
        _GRAPH_CACHE[key] = None if mol is None else (chem.canonical_smiles(mol), mol)
    return _GRAPH_CACHE[key]


def held_out_smiles(env: MolGraph) -> tuple[str, ...]:
    """The fixed held-out test set: env.test_size reference molecules in a seeded order."""
    ref = list(chem.reference_molecules(env.elements, env.max_atoms, env.chemistry))
    order = np.random.default_rng(0).permutation(len(ref))
    return tuple(ref[i] for i in order[: env.test_size])


def state_from_smiles(env: MolGraph, smiles) -> MolGraphState:
    """Terminal states of molecules given as SMILES (must be in the state space, including the
    chemistry rules of `env.chemistry`)."""
    from rdkit import Chem

    atoms, bonds = [], []
    for s in smiles:
        g = chem.mol_to_graph(Chem.MolFromSmiles(s), env.elements, env.max_atoms)
        bad = [] if g is None else chem.graph_violations(*g, env.elements, env.chemistry)
        if g is None or bad:
            raise ValueError(
                f"{s!r} is not in the molgraph state space (elements {env.elements}, "
                f"max_atoms {env.max_atoms}, chemistry {env.chemistry!r}{': ' if bad else ''}"
                f"{', '.join(bad)})"
            )
        atoms.append(g[0])
        bonds.append(g[1])
    return MolGraphState(
        atoms=jnp.asarray(np.stack(atoms)),
        bonds=jnp.asarray(np.stack(bonds)),
        done=jnp.ones((len(atoms),), bool),
    )


__all__ = ["MolGraph", "MolGraphState", "state_from_smiles"]
