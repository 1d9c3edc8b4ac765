"""RDKit side of the molecular environments: chemistry rules, molecules, scores, host caches.

Everything here runs on the host (numpy + RDKit). The molecular environments (`molgraph`,
`fragments`) reach it from inside jit through `jax.pure_callback`, one call per batch, never per
molecule.

Graph arrays (`molgraph`, one molecule): `atoms` int[N] with 0 = empty slot and k + 1 =
`elements[k]`, occupied slots first; `bonds` int[N, N] symmetric bond orders 0..3 (Kekulé form: no
aromatic bonds). Hydrogens are implicit: every atom is neutral and gets `VALENCE[element] − Σ bond
orders` hydrogens, which is why the environment's valence masks make every graph a valid molecule.

Chemistry rules (`chemistry="plausible"`, the default of both environments; "unrestricted" keeps
only the valence rule). Neutral closed-shell small organics at default valences; a graph is
plausible when
  B1  every bond's order is at most `max_bond_order(a, b)` of its two elements (0 = no bond):
        - a halogen (F, Cl, Br) bonds only to carbon, single (N–F, O–F, F–F, N–Cl, O–Cl, S–Cl,
          P–Cl: oxidising or hydrolysable N/O/S/P-halides, not drug-like organics);
        - no O–O (peroxides, dioxygen) and no O–S (sulfenic esters: unstable);
        - triple bonds only C≡C and C≡N (no N≡N dinitrogen, C≡P);
        - heteroatom–heteroatom multiple bonds only N=N (azo, and the Kekulé forms of azoles such
          as tetrazole); no N=O (nitroso), S=X or P=X double bonds, no C=P;
        - single N–N, N–O, N–S, N–P, O–P, S–S, S–P allowed (hydrazines, isoxazoles, oximes,
          isothiazoles, disulfides: real chemistry, flagged by the Brenk alerts of the
          "drug_like" score instead); no P–P.
  B2  no multiple bond in a three-membered ring (cyclopropenes, oxirenes, azirines: antiaromatic
      or highly strained);
  B3  no atom with two multiple bonds (cumulated double bonds: allenes, ketenes, ketenimines,
      isocyanates, carbodiimides);
  B4  no triple bond in a ring (sp centres are linear; the smallest isolable cycloalkyne has 8
      ring atoms, and every ring here is smaller or barely larger);
  B5  no heteroatom–heteroatom bond in a three- or four-membered ring (oxaziridines,
      diaziridines, triaziridines, 1,2-oxazetidines, 1,2-diazetidines: ring strain on a weak N–N or
      N–O bond; reactive reagents at best, never drug scaffolds).
Every rule is closed under removing a bond, lowering a bond order or removing a leaf atom, which is
what keeps the environments' backward actions exact inverses (docs/methods.md §4). RDKit
sanitisation itself rejects nothing of the valence-masked space. `bond_order_table` gives B1 to
the jnp masks; `rule_violations` is an independent host check (RDKit ring perception) used by the
tests, the reference sets and the top-sample images.

Scores (`SCORES`), all in [0, 1], higher is better, cached by canonical SMILES:
  qed        RDKit's QED (Bickerton et al. 2012), `rdkit.Chem.QED.qed`.
  sa         synthetic accessibility mapped to [0, 1]: (10 − SA)/9 with SA ∈ [1, 10] from RDKit's
             shipped contribution `rdkit/Contrib/SA_Score/sascorer.py` (Ertl & Schuffenhauer 2009).
  qed_sa     QED · (10 − SA)/9: drug-likeness with a synthetic-accessibility penalty.
  qed_alerts QED · ½^a, a = number of structural alerts (distinct PAINS A/B/C and Brenk entries of
             RDKit's FilterCatalog matching the molecule; Baell & Holloway 2010, Brenk et al. 2008).
  drug_like  QED · (10 − SA)/9 · ½^a: drug-like, synthesisable and free of structural alerts.
`register_score(name, fn, batched=...)` adds a user score (e.g. the sEH proxy of Bengio et al.
2021, which is not available offline); environments accept any registered name as `score`.

Caches (module level, so the environments stay immutable hashable configs): properties and scores
are cached keyed by canonical SMILES; environment-specific conversions of raw arrays to molecules
are cached by the environments keyed by the arrays' bytes. `STATS` accumulates the time spent
inside the callbacks (for the benchmarks' "share of time in RDKit") and the number of objects
RDKit rejected.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import os
import sys
import time
import zlib
from typing import Callable, Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import QED, RDConfig, rdFingerprintGenerator
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams

RDLogger.DisableLog("rdApp.*")

# Default (neutral) valences of the supported heavy atoms.
VALENCE = {"C": 4, "N": 3, "O": 2, "F": 1, "S": 2, "Cl": 1, "Br": 1, "P": 3}
HALOGENS = ("F", "Cl", "Br")
CHEMISTRY = ("plausible", "unrestricted")
BOND_TYPES = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
FP_BITS = 1024  # Morgan radius-2 fingerprint length (32 uint32 words)
FP_WORDS = FP_BITS // 32
ALERT_PENALTY = 0.5  # factor per structural alert in "qed_alerts" and "drug_like"


# --- statistics -------------------------------------------------------------------------------
class Stats:
    """Host-side counters: callback wall time, calls, objects seen, objects RDKit rejected."""

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


# --- chemistry rules ------------------------------------------------------------------------------
# B1 for pairs of non-halogen elements (unordered); halogens: single to C only.
_MAX_ORDER = {
    ("C", "C"): 3,
    ("C", "N"): 3,
    ("C", "O"): 2,
    ("C", "S"): 2,
    ("C", "P"): 1,
    ("N", "N"): 2,
    ("N", "O"): 1,
    ("N", "S"): 1,
    ("N", "P"): 1,
    ("O", "O"): 0,
    ("O", "S"): 0,
    ("O", "P"): 1,
    ("S", "S"): 1,
    ("P", "S"): 1,
    ("P", "P"): 0,
}


def check_chemistry(chemistry: str) -> None:
    if chemistry not in CHEMISTRY:
        raise ValueError(f"chemistry must be one of {CHEMISTRY}, got {chemistry!r}")


def max_bond_order(a: str, b: str, chemistry: str = "plausible") -> int:
    """Highest bond order allowed between elements a and b (rule B1; 3 when "unrestricted")."""
    check_chemistry(chemistry)
    if chemistry == "unrestricted":
        return 3
    if a in HALOGENS or b in HALOGENS:
        return 1 if "C" in (a, b) else 0
    return _MAX_ORDER[tuple(sorted((a, b)))]


def bond_order_table(elements: Sequence[str], chemistry: str) -> np.ndarray:
    """int32[K+1, K+1]: max_bond_order of (elements[a−1], elements[b−1]); row/column 0 (empty
    slot) is 0."""
    K = len(elements)
    t = np.zeros((K + 1, K + 1), np.int32)
    for a in range(K):
        for b in range(K):
            t[a + 1, b + 1] = max_bond_order(elements[a], elements[b], chemistry)
    return t


def rule_violations(mol: Chem.Mol, chemistry: str = "plausible") -> list[str]:
    """Names of the broken rules (B1–B5, module docstring) of a molecule, [] when plausible.

    Works on explicit Kekulé bond orders: aromatic molecules are kekulised on a copy (for neutral
    default-valence atoms the only heteroatom–heteroatom double bond a Kekulé form can contain is
    N=N, which B1 allows, so the verdict does not depend on the Kekulé form chosen). Ring
    membership (B4) comes from RDKit's ring perception and 3-/4-ring membership (B2, B5) from
    explicit neighbour checks, independently of the environments' jnp masks.
    """
    check_chemistry(chemistry)
    if chemistry == "unrestricted":
        return []
    mol = Chem.Mol(mol)
    if any(b.GetIsAromatic() for b in mol.GetBonds()):
        Chem.Kekulize(mol, clearAromaticFlags=True)
    mol.UpdatePropertyCache(strict=False)
    Chem.GetSymmSSSR(mol)
    out = []
    multiple = collections.Counter()
    nbrs = [{n.GetIdx() for n in a.GetNeighbors()} for a in mol.GetAtoms()]
    for b in mol.GetBonds():
        order = int(b.GetBondTypeAsDouble())
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        a1, a2 = b.GetBeginAtom().GetSymbol(), b.GetEndAtom().GetSymbol()
        ring3 = bool(nbrs[i] & nbrs[j])
        ring4 = any(nbrs[c] & (nbrs[j] - {i, c}) for c in nbrs[i] - {j})
        if order > max_bond_order(a1, a2):
            out.append(f"B1 {a1}{'-=#'[order - 1]}{a2}")
        if order >= 2:
            multiple[i] += 1
            multiple[j] += 1
            if ring3:
                out.append(f"B2 {a1}{'-=#'[order - 1]}{a2} in a 3-ring")
        if order == 3 and b.IsInRing():
            out.append(f"B4 {a1}#{a2} in a ring")
        if a1 != "C" and a2 != "C" and (ring3 or ring4):
            out.append(f"B5 {a1}{'-=#'[order - 1]}{a2} in a {3 if ring3 else 4}-ring")
    for idx, m in multiple.items():
        if m >= 2:
            out.append(f"B3 cumulated multiple bonds at {mol.GetAtomWithIdx(idx).GetSymbol()}")
    return out


# --- molgraph conversions -------------------------------------------------------------------------
def graph_to_rwmol(atoms: np.ndarray, bonds: np.ndarray, elements: Sequence[str]) -> Chem.RWMol:
    """Unsanitised molecule of one graph with the arrays' Kekulé bond orders (may be empty)."""
    n = int((np.asarray(atoms) > 0).sum())
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
    return rw


def graph_to_mol(atoms: np.ndarray, bonds: np.ndarray, elements: Sequence[str]) -> Chem.Mol | None:
    """Sanitised RDKit molecule of one graph, or None when empty or rejected by RDKit."""
    if int((np.asarray(atoms) > 0).sum()) == 0:
        return None
    mol = graph_to_rwmol(atoms, bonds, elements).GetMol()
    try:
        Chem.SanitizeMol(mol)
    except Exception:  # noqa: BLE001 - RDKit raises several types; any rejection = invalid
        return None
    if len(Chem.GetMolFrags(mol)) != 1:
        return None
    return mol


def graph_violations(
    atoms: np.ndarray, bonds: np.ndarray, elements: Sequence[str], chemistry: str = "plausible"
) -> list[str]:
    """`rule_violations` of a graph state, on its own Kekulé bond orders."""
    return rule_violations(graph_to_rwmol(atoms, bonds, elements).GetMol(), chemistry)


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


# --- properties and scores ------------------------------------------------------------------------
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


@functools.lru_cache(maxsize=1)
def alert_catalog() -> FilterCatalog:
    """RDKit FilterCatalog with the PAINS (A, B, C) and Brenk structural alerts."""
    params = FilterCatalogParams()
    params.AddCatalog(FilterCatalogParams.FilterCatalogs.PAINS)
    params.AddCatalog(FilterCatalogParams.FilterCatalogs.BRENK)
    return FilterCatalog(params)


def structural_alerts(mol: Chem.Mol) -> list[str]:
    """Descriptions of the PAINS and Brenk catalogue entries matching `mol` (one per entry)."""
    return [e.GetDescription() for e in alert_catalog().GetMatches(mol)]


PROPERTIES: dict[str, Callable[[Chem.Mol], float]] = {
    "qed": lambda m: float(QED.qed(m)),
    "sa": sa_score,
    "alerts": lambda m: float(len(structural_alerts(m))),
}
_PROP_CACHE: dict[str, dict[str, float]] = collections.defaultdict(dict)


def mol_property(name: str, smiles: str, mol: Chem.Mol | None = None) -> float:
    """Cached property ("qed", "sa" ∈ [1, 10], "alerts" = count) of a canonical SMILES."""
    cache = _PROP_CACHE[name]
    if smiles not in cache:
        cache[smiles] = PROPERTIES[name](mol if mol is not None else Chem.MolFromSmiles(smiles))
    return cache[smiles]


def _sa01(smiles, mol):
    return (10.0 - mol_property("sa", smiles, mol)) / 9.0


def _alert_factor(smiles, mol):
    return ALERT_PENALTY ** mol_property("alerts", smiles, mol)


@dataclasses.dataclass(frozen=True)
class Score:
    """fn(mols) -> float[n] when batched, else fn(mol) -> float; `builtin` fns get
    (smiles, mol) to share the property caches."""

    fn: Callable
    batched: bool = False
    builtin: bool = False


SCORES: dict[str, Score] = {
    "qed": Score(lambda s, m: mol_property("qed", s, m), builtin=True),
    "sa": Score(_sa01, builtin=True),
    "qed_sa": Score(lambda s, m: mol_property("qed", s, m) * _sa01(s, m), builtin=True),
    "qed_alerts": Score(lambda s, m: mol_property("qed", s, m) * _alert_factor(s, m), builtin=True),
    "drug_like": Score(
        lambda s, m: mol_property("qed", s, m) * _sa01(s, m) * _alert_factor(s, m), builtin=True
    ),
}
_SCORE_CACHE: dict[str, dict[str, float]] = collections.defaultdict(dict)


def register_score(name: str, fn: Callable, batched: bool = False) -> None:
    """Make `name` a valid `score` of the molecular environments.

    fn(mol: rdkit Mol) -> float, or with batched=True fn(mols: list[Mol]) -> float[n] (e.g. a
    proxy network evaluated once per batch of new molecules). Scores should lie in [0, 1] (the
    "power" transform takes log max(s, 1e−6); "exp" uses β·s), e.g. the sEH proxy divided by 8 as
    in Bengio et al. 2021. Values are cached by canonical SMILES; re-registering a name clears its
    cache.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"score name must be a non-empty string, got {name!r}")
    SCORES[name] = Score(fn, batched=batched)
    _SCORE_CACHE.pop(name, None)


def check_score(score: str) -> None:
    if score not in SCORES:
        raise ValueError(
            f"score must be one of {sorted(SCORES)} (or a name added with "
            f"gfnjax.envs.chem.register_score), got {score!r}"
        )


def score_smiles(smiles: str, score: str, mol: Chem.Mol | None = None) -> float:
    """Cached score of one canonical SMILES."""
    return float(score_entries([(smiles, mol)], score)[0])


def score_entries(entries: Sequence[tuple[str, Chem.Mol | None] | None], score: str) -> np.ndarray:
    """float64[n] scores of (canonical SMILES, molecule) entries (NaN for None or a failing
    scorer); new molecules of a batched score are scored in one call."""
    spec = SCORES[score]
    cache = _SCORE_CACHE[score]
    todo = {}
    for e in entries:
        if e is not None and e[0] not in cache and e[0] not in todo:
            todo[e[0]] = e[1] if e[1] is not None else Chem.MolFromSmiles(e[0])
    if todo and spec.batched:
        try:
            vals = np.asarray(spec.fn(list(todo.values())), np.float64).reshape(-1)
        except Exception:  # noqa: BLE001 - a failing proxy marks the batch invalid, never a crash
            vals = np.full(len(todo), np.nan)
        for s, v in zip(todo, vals):
            cache[s] = float(v)
    else:
        for s, m in todo.items():
            try:
                cache[s] = float(spec.fn(s, m) if spec.builtin else spec.fn(m))
            except Exception:  # noqa: BLE001
                cache[s] = float("nan")
    return np.asarray([np.nan if e is None else cache[e[0]] for e in entries], np.float64)


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
    return zlib.crc32(smiles.encode()) & 0x7FFFFFFF


# --- batch descriptions for the molecule metrics --------------------------------------------------
def score_rows(entries, score: str):
    """(score float32[n], ok bool[n]) of environment rows; rejected rows (None) and failing
    scores are not ok (counted in STATS.invalid) and get score 0."""
    STATS.graphs += len(entries)
    s = score_entries(entries, score)
    ok = np.isfinite(s)
    STATS.invalid += int((~ok).sum())
    return np.where(ok, s, 0.0).astype(np.float32), ok


def describe_entries(entries, score: str, full: bool, reference: frozenset):
    """Metric description of molecules ((SMILES, mol) or None per row, n rows).

    Returns ok bool[n], score float32[n], hash int32[n] (of the canonical SMILES, −1 if not ok),
    fingerprint uint32[n, 32], and when `full`: novel bool[n] (SMILES not in `reference`),
    sa float32[n] (SA ∈ [1, 10]), clean bool[n] (no PAINS/Brenk alert); else zeros.
    """
    n = len(entries)
    sc, ok = score_rows(entries, score)
    h = np.full((n,), -1, np.int32)
    fp = np.zeros((n, FP_WORDS), np.uint32)
    novel = np.zeros((n,), bool)
    sa = np.zeros((n,), np.float32)
    clean = np.zeros((n,), bool)
    for b in np.nonzero(ok)[0]:
        smiles, mol = entries[b]
        try:
            fp[b] = fingerprint_words(smiles, mol)
            if full:
                sa[b] = mol_property("sa", smiles, mol)
                clean[b] = mol_property("alerts", smiles, mol) == 0
        except Exception:  # noqa: BLE001 - an RDKit failure is an invalid molecule, never a crash
            ok[b] = False
            continue
        h[b] = smiles_hash(smiles)
        novel[b] = smiles not in reference
    return ok, sc, h, fp, novel, sa, clean


# --- data: molecules shipped with RDKit ----------------------------------------------------------
def nci_path() -> str:
    return os.path.join(RDConfig.RDDataDir, "NCI", "first_5K.smi")


@functools.lru_cache(maxsize=1)
def nci_molecules() -> tuple[str, ...]:
    """Canonical SMILES of every parsable molecule of RDKit's shipped NCI sample
    (`rdkit/Data/NCI/first_5K.smi`, ~5000 molecules): the novelty reference."""
    path = nci_path()
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"RDKit's NCI sample is expected at {path} (it ships with the rdkit pip wheel); "
            "reinstall rdkit"
        )
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            mol = Chem.MolFromSmiles(parts[0]) if parts else None
            if mol is not None:
                out.add(Chem.MolToSmiles(mol))
    return tuple(sorted(out))


@functools.lru_cache(maxsize=None)
def reference_molecules(
    elements: tuple[str, ...], max_atoms: int, chemistry: str = "plausible"
) -> tuple[str, ...]:
    """The NCI molecules (`nci_molecules`) in molgraph's state space: ≤ max_atoms heavy atoms of
    `elements`, neutral, default valences, connected and, with chemistry="plausible", free of
    rule violations; sorted (~400 for 9 atoms of C, N, O, F)."""
    out = []
    for s in nci_molecules():
        mol = Chem.MolFromSmiles(s)
        g = mol_to_graph(mol, elements, max_atoms)
        if g is not None and not graph_violations(*g, elements, chemistry):
            out.append(s)
    return tuple(out)


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


def log_count(atoms: np.ndarray, bonds: np.ndarray) -> float:
    """log c(G) (`count_labelled_graphs`), cached keyed by the raw arrays."""
    key = (atoms.tobytes(), bonds.tobytes())
    if key not in _COUNT_CACHE:
        _COUNT_CACHE[key] = math.log(count_labelled_graphs(atoms, bonds))
    return _COUNT_CACHE[key]


_COUNT_CACHE: dict[tuple, float] = {}
