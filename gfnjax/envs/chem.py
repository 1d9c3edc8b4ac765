"""RDKit side of the molecular environments: graph arrays <-> molecules, scores, host caches.

Everything here runs on the host (numpy + RDKit). `gfnjax.envs.molgraph` reaches it from inside
jit through `jax.pure_callback`, one call per batch, never per molecule.

Graph arrays (one molecule): `atoms` int[N] with 0 = empty slot and k + 1 = `elements[k]`,
occupied slots first; `bonds` int[N, N] symmetric bond orders 0..3 (Kekulé form: no aromatic
bonds). Hydrogens are implicit: every atom is neutral and gets `VALENCE[element] − Σ bond orders`
hydrogens, which is why the environment's valence masks make every graph a valid molecule.

Scores (`SCORES`), all in [0, 1], higher is better:
  qed     RDKit's QED (Bickerton et al. 2012), `rdkit.Chem.QED.qed`.
  sa      synthetic accessibility mapped to [0, 1]: (10 − SA)/9 with SA ∈ [1, 10] from RDKit's
          shipped contribution `rdkit/Contrib/SA_Score/sascorer.py` (Ertl & Schuffenhauer 2009).
  qed_sa  composite QED · (10 − SA)/9: drug-likeness with a synthetic-accessibility penalty.

Caches (module level, so the environment object stays an immutable hashable config): scores are
cached per score name keyed by canonical SMILES (`score_smiles`), and the conversion of raw graph
arrays to (SMILES, validity, labelled-graph count) is cached keyed by the arrays' bytes. `STATS`
accumulates the time spent inside the callbacks (for the benchmark's "share of time in RDKit")
and the number of graphs RDKit rejected.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import sys
import time
from typing import Callable, Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import QED, RDConfig, rdFingerprintGenerator

RDLogger.DisableLog("rdApp.*")

# Default (neutral) valences of the supported heavy atoms.
VALENCE = {"C": 4, "N": 3, "O": 2, "F": 1, "S": 2, "Cl": 1, "Br": 1, "P": 3}
BOND_TYPES = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
FP_BITS = 1024  # Morgan radius-2 fingerprint length (32 uint32 words)
FP_WORDS = FP_BITS // 32


# --- statistics -------------------------------------------------------------------------------
class Stats:
    """Host-side counters: callback wall time, calls, graphs seen, graphs RDKit rejected."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.graphs = 0
        self.invalid = 0

    def as_dict(self) -> dict:
        return dict(
            seconds=self.seconds, calls=self.calls, graphs=self.graphs, invalid=self.invalid
        )


STATS = Stats()


def timed(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            STATS.seconds += time.perf_counter() - t0
            STATS.calls += 1

    return wrapper


# --- conversions --------------------------------------------------------------------------------
def graph_to_mol(atoms: np.ndarray, bonds: np.ndarray, elements: Sequence[str]) -> Chem.Mol | None:
    """Sanitised RDKit molecule of one graph, or None when empty or rejected by RDKit."""
    n = int((np.asarray(atoms) > 0).sum())
    if n == 0:
        return None
    rw = Chem.RWMol()
    for i in range(n):
        atom = Chem.Atom(elements[int(atoms[i]) - 1])
        atom.SetNoImplicit(False)
        rw.AddAtom(atom)
    for i in range(n):
        for j in range(i + 1, n):
            order = int(bonds[i, j])
            if order:
                rw.AddBond(i, j, BOND_TYPES[order])
    mol = rw.GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # noqa: BLE001 - RDKit raises several types; any rejection = invalid
        return None
    if len(Chem.GetMolFrags(mol)) != 1:
        return None
    return mol


def canonical_smiles(mol: Chem.Mol) -> str:
    return Chem.MolToSmiles(mol)


def mol_to_graph(mol: Chem.Mol, elements: Sequence[str], max_atoms: int):
    """(atoms int32[N], bonds int32[N, N]) of a molecule in the environment's state space, or None.

    The molecule must be connected, neutral, radical-free, at most `max_atoms` heavy atoms of
    `elements` at their default valence. Atoms are ordered breadth-first from RDKit's canonical
    rank 0, so every atom after the first has an earlier neighbour (the environment's invariant);
    bonds are Kekulé orders.
    """
    if mol is None or mol.GetNumAtoms() == 0 or mol.GetNumAtoms() > max_atoms:
        return None
    if len(Chem.GetMolFrags(mol)) != 1:
        return None
    mol = Chem.Mol(mol)
    try:
        Chem.Kekulize(mol, clearAromaticFlags=True)
    except Exception:  # noqa: BLE001
        return None
    index = {e: k for k, e in enumerate(elements)}
    for a in mol.GetAtoms():
        if a.GetSymbol() not in index or a.GetFormalCharge() or a.GetNumRadicalElectrons():
            return None
        heavy = sum(int(b.GetBondTypeAsDouble()) for b in a.GetBonds())
        if heavy + a.GetTotalNumHs() != VALENCE[a.GetSymbol()]:
            return None
    ranks = list(Chem.CanonicalRankAtoms(mol))
    start = int(np.argmin(ranks))
    order, seen = [start], {start}
    k = 0
    while k < len(order):
        nbrs = sorted(
            (n.GetIdx() for n in mol.GetAtomWithIdx(order[k]).GetNeighbors()),
            key=lambda i: ranks[i],
        )
        for j in nbrs:
            if j not in seen:
                seen.add(j)
                order.append(j)
        k += 1
    pos = {old: new for new, old in enumerate(order)}
    atoms = np.zeros((max_atoms,), np.int32)
    bonds = np.zeros((max_atoms, max_atoms), np.int32)
    for old, new in pos.items():
        atoms[new] = index[mol.GetAtomWithIdx(old).GetSymbol()] + 1
    for b in mol.GetBonds():
        i, j = pos[b.GetBeginAtomIdx()], pos[b.GetEndAtomIdx()]
        bonds[i, j] = bonds[j, i] = int(b.GetBondTypeAsDouble())
    return atoms, bonds


# --- labelled-graph multiplicity ---------------------------------------------------------------
def count_labelled_graphs(atoms: np.ndarray, bonds: np.ndarray) -> int:
    """c(G): how many distinct state arrays of the environment encode the bond-order graph G.

    States label atoms in insertion order, and every atom after the first must have an earlier
    neighbour. The number of such labellings is (#orderings of G's atoms whose every prefix is
    connected) / |Aut(G)|, with Aut(G) the automorphisms preserving elements and bond orders
    (distinct orderings related by an automorphism give the same arrays).
    Orderings are counted by dynamic programming over atom subsets: f({v}) = 1,
    f(S) = Σ_{v ∈ S, S∖v connected-orderable, v adjacent to S∖v} f(S∖v).
    """
    n = int((np.asarray(atoms) > 0).sum())
    adj = np.asarray(bonds)[:n, :n] > 0
    nbr = [sum(1 << j for j in range(n) if adj[i, j]) for i in range(n)]
    f = [0] * (1 << n)
    for v in range(n):
        f[1 << v] = 1
    for s in range(1, 1 << n):
        if f[s] or (s & (s - 1)) == 0:
            continue
        total = 0
        rest_bits = s
        while rest_bits:
            low = rest_bits & -rest_bits
            v = low.bit_length() - 1
            rest_bits ^= low
            prev = s ^ low
            if f[prev] and nbr[v] & prev:
                total += f[prev]
        f[s] = total
    orderings = f[(1 << n) - 1]
    return orderings // _num_automorphisms(atoms[:n], np.asarray(bonds)[:n, :n])


def _num_automorphisms(atoms: np.ndarray, bonds: np.ndarray) -> int:
    """|Aut| of a small vertex- and edge-coloured graph by backtracking (n ≤ ~12)."""
    n = len(atoms)
    # refine by (element, sorted incident bond orders) to prune the search
    colour = [(int(atoms[i]), tuple(sorted(int(b) for b in bonds[i] if b))) for i in range(n)]
    count = 0
    perm = [-1] * n
    used = [False] * n

    def extend(i):
        nonlocal count
        if i == n:
            count += 1
            return
        for j in range(n):
            if used[j] or colour[j] != colour[i]:
                continue
            if all(bonds[i, k] == bonds[j, perm[k]] for k in range(i)):
                perm[i], used[j] = j, True
                extend(i + 1)
                used[j] = False
        perm[i] = -1

    extend(0)
    return count


# --- scores -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _sascorer():
    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer  # shipped with the RDKit wheel (rdkit/Contrib/SA_Score)

    return sascorer


def sa_score(mol: Chem.Mol) -> float:
    """Synthetic accessibility in [1, 10] (1 = easy), RDKit Contrib SA_Score."""
    return float(_sascorer().calculateScore(mol))


SCORES: dict[str, Callable[[Chem.Mol], float]] = {
    "qed": lambda m: float(QED.qed(m)),
    "sa": lambda m: (10.0 - sa_score(m)) / 9.0,
    "qed_sa": lambda m: float(QED.qed(m)) * (10.0 - sa_score(m)) / 9.0,
}

_SCORE_CACHE: dict[str, dict[str, float]] = collections.defaultdict(dict)


def score_smiles(smiles: str, score: str, mol: Chem.Mol | None = None) -> float:
    """Cached score of a canonical SMILES."""
    cache = _SCORE_CACHE[score]
    if smiles not in cache:
        cache[smiles] = SCORES[score](mol if mol is not None else Chem.MolFromSmiles(smiles))
    return cache[smiles]


# Raw graph bytes -> (canonical SMILES or None, molecule or None); and -> log c(G) when needed.
_GRAPH_CACHE: dict[tuple, tuple] = {}
_COUNT_CACHE: dict[tuple, float] = {}


def _graph_entry(atoms: np.ndarray, bonds: np.ndarray, elements: tuple[str, ...]):
    key = (elements, atoms.tobytes(), bonds.tobytes())
    hit = _GRAPH_CACHE.get(key)
    if hit is None:
        mol = graph_to_mol(atoms, bonds, elements)
        hit = (None, None) if mol is None else (canonical_smiles(mol), mol)
        _GRAPH_CACHE[key] = hit
    return hit


def log_count(atoms: np.ndarray, bonds: np.ndarray) -> float:
    """Cached log c(G) (`count_labelled_graphs`), keyed by the raw arrays."""
    key = (atoms.tobytes(), bonds.tobytes())
    if key not in _COUNT_CACHE:
        _COUNT_CACHE[key] = math.log(count_labelled_graphs(atoms, bonds))
    return _COUNT_CACHE[key]


def score_graphs(
    atoms: np.ndarray,
    bonds: np.ndarray,
    compute: np.ndarray,
    elements: tuple[str, ...],
    score: str,
    with_count: bool = False,
):
    """Host batch scorer: atoms int[..., N], bonds int[..., N, N], compute bool[...].

    Returns (score float32[...], ok bool[...], log_count float32[...]); rows with compute False
    or rejected by RDKit get score 0, ok False (rejections are counted in STATS.invalid).
    log_count = log c(G) is computed only when `with_count` (graph_identity="molecule"), else 0.
    """
    shape = compute.shape
    N = atoms.shape[-1]
    atoms = np.asarray(atoms, np.int32).reshape(-1, N)
    bonds = np.asarray(bonds, np.int32).reshape(-1, N, N)
    compute = np.asarray(compute, bool).reshape(-1)
    out = np.zeros(compute.shape, np.float32)
    ok = np.zeros(compute.shape, bool)
    log_c = np.zeros(compute.shape, np.float32)
    for b in np.nonzero(compute)[0]:
        smiles, mol = _graph_entry(atoms[b], bonds[b], elements)
        STATS.graphs += 1
        if smiles is None:
            STATS.invalid += 1
            continue
        try:
            out[b] = score_smiles(smiles, score, mol)
            ok[b] = np.isfinite(out[b])
        except Exception:  # noqa: BLE001 - a scorer failure is an invalid molecule, never a crash
            STATS.invalid += 1
            continue
        if with_count:
            log_c[b] = log_count(atoms[b], bonds[b])
    return out.reshape(shape), ok.reshape(shape), log_c.reshape(shape)


# --- fingerprints, SMILES hashes ----------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _morgan():
    return rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=FP_BITS)


_FP_CACHE: dict[str, np.ndarray] = {}


def fingerprint_words(smiles: str, mol: Chem.Mol | None = None) -> np.ndarray:
    """Morgan radius-2, 1024-bit fingerprint packed into uint32[32] (cached by SMILES)."""
    if smiles not in _FP_CACHE:
        mol = mol if mol is not None else Chem.MolFromSmiles(smiles)
        bits = np.asarray(_morgan().GetFingerprintAsNumPy(mol), np.uint8)
        _FP_CACHE[smiles] = np.packbits(bits, bitorder="little").view(np.uint32).copy()
    return _FP_CACHE[smiles]


def smiles_hash(smiles: str) -> int:
    """Stable non-negative int31 hash of a SMILES (Python's hash() is salted per process)."""
    import zlib

    return zlib.crc32(smiles.encode()) & 0x7FFFFFFF


def describe_graphs(
    atoms: np.ndarray,
    bonds: np.ndarray,
    compute: np.ndarray,
    elements: tuple[str, ...],
    score: str,
    reference: frozenset,
):
    """Host batch description for the molecule metrics.

    Returns ok bool[...], score float32[...], hash int32[...] (of the canonical SMILES, −1 if not
    ok), fingerprint uint32[..., 32], novel bool[...] (SMILES not in `reference`).
    """
    shape = compute.shape
    N = atoms.shape[-1]
    atoms = np.asarray(atoms, np.int32).reshape(-1, N)
    bonds = np.asarray(bonds, np.int32).reshape(-1, N, N)
    compute = np.asarray(compute, bool).reshape(-1)
    M = compute.shape[0]
    ok = np.zeros((M,), bool)
    sc = np.zeros((M,), np.float32)
    h = np.full((M,), -1, np.int32)
    fp = np.zeros((M, FP_WORDS), np.uint32)
    novel = np.zeros((M,), bool)
    for b in np.nonzero(compute)[0]:
        smiles, mol = _graph_entry(atoms[b], bonds[b], elements)
        if smiles is None:
            continue
        try:
            sc[b] = score_smiles(smiles, score, mol)
            fp[b] = fingerprint_words(smiles, mol)
        except Exception:  # noqa: BLE001
            continue
        ok[b] = True
        h[b] = smiles_hash(smiles)
        novel[b] = smiles not in reference
    return (
        ok.reshape(shape),
        sc.reshape(shape),
        h.reshape(shape),
        fp.reshape(shape + (FP_WORDS,)),
        novel.reshape(shape),
    )


# --- data: held-out molecules shipped with RDKit -----------------------------------------------
def nci_path() -> str:
    return os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")


@functools.lru_cache(maxsize=None)
def reference_molecules(elements: tuple[str, ...], max_atoms: int) -> tuple[str, ...]:
    """Canonical SMILES of the molecules of RDKit's shipped NCI sample (`rdkit/Data/NCI/
    first_5K.smi`) that lie in the environment's state space (≤ max_atoms heavy atoms of
    `elements`, neutral, default valences, connected), sorted; ~400 for 9 atoms of C, N, O, F."""
    path = nci_path()
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"RDKit's NCI sample is expected at {path} (it ships with the rdkit pip wheel); "
            "reinstall rdkit or pass an explicit test set"
        )
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            mol = Chem.MolFromSmiles(parts[0])
            if mol is None or mol_to_graph(mol, elements, max_atoms) is None:
                continue
            out.add(Chem.MolToSmiles(mol))
    return tuple(sorted(out))


def draw_grid(
    smiles: Sequence[str], legends: Sequence[str], path: str, per_row: int = 4, size: int = 220
) -> str:
    """Write an RDKit grid image (PNG) of molecules with legends; returns the path."""
    from rdkit.Chem import Draw

    mols = [Chem.MolFromSmiles(s) for s in smiles]
    img = Draw.MolsToGridImage(
        mols, molsPerRow=per_row, subImgSize=(size, size), legends=list(legends)
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if hasattr(img, "save"):
        img.save(path)
    else:  # IPython image object
        with open(path, "wb") as f:
            f.write(img.data)
    return path
