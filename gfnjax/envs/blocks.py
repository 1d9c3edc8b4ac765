"""Block library of the `fragments` environment, generated from RDKit's own data.

How it was made (`python -m gfnjax.envs.blocks` prints the table below; `--write` rewrites it):
every molecule of RDKit's shipped NCI sample (`rdkit/Data/NCI/first_5K.smi`) is cut into BRICS
fragments (`rdkit.Chem.BRICS.BRICSDecompose`, Degen et al. 2008, leaves only); the BRICS dummy
labels are dropped, so each `*` is an attachment point ("stem", as in the block MDP of Bengio
et al. 2021). A fragment is kept when it has 1–3 attachment points and 1–10 heavy atoms, only C,
N, O, S, F, Cl, no charge or radical, and its methyl-capped form (each `*` → C) parses, breaks
none of the chemistry rules B1–B5 (`gfnjax.envs.chem`) and matches no PAINS or Brenk alert (so
alerts can only come from how blocks are joined). BLOCKS lists the NUM_BLOCKS most frequent kept
fragments (count = number of NCI molecules containing it; ties by SMILES), each a SMILES whose
`*` atoms are the attachment points in SMILES order.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

NUM_BLOCKS = 40
ELEMENTS = ("C", "N", "O", "S", "F", "Cl")

# --- generated table: do not edit by hand (python -m gfnjax.envs.blocks --write) -----------------
# rdkit 2026.09.1, NCI first_5K.smi
BLOCKS: tuple[tuple[str, int], ...] = (
    ("*O*", 815),
    ("*c1ccccc1", 799),
    ("*N*", 557),
    ("*CC", 455),
    ("*C*", 362),
    ("*C(*)=O", 354),
    ("*OC", 345),
    ("*C(C)=O", 290),
    ("*C(=O)O", 204),
    ("*c1ccc(*)cc1", 185),
    ("*N(*)*", 175),
    ("*CC*", 172),
    ("*CC(*)=O", 117),
    ("*CCCC", 115),
    ("*C(C)C", 109),
    ("*N(C)C", 108),
    ("*c1ccc(Cl)cc1", 102),
    ("*CC(=O)O", 89),
    ("*S*", 87),
    ("*c1ccccc1*", 83),
    ("*CCO", 76),
    ("*CCC", 64),
    ("*CO", 60),
    ("*C(*)*", 52),
    ("*c1ccc(C)cc1", 45),
    ("*C(C)(C)C", 41),
    ("*C1CCCCC1", 40),
    ("*C(N)=O", 38),
    ("*c1ccc(O)cc1", 37),
    ("*c1ccccn1", 37),
    ("*C(=O)C(*)C", 35),
    ("*c1ccccc1O", 33),
    ("*CCC*", 28),
    ("*NC", 28),
    ("*c1ccccc1Cl", 28),
    ("*N1CCOCC1", 27),
    ("*CCC#N", 25),
    ("*c1ccco1", 24),
    ("*c1ncnc2c1cnn2*", 24),
    ("*C1OC(*)C(O)C(O)C1O", 23),
)
# --- end of generated table ----------------------------------------------------------------------


def generate(num_blocks: int = NUM_BLOCKS) -> list[tuple[str, int]]:
    """The most frequent acceptable BRICS fragments of RDKit's NCI sample (module docstring)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import BRICS

    from gfnjax.envs import chem

    RDLogger.DisableLog("rdApp.*")
    counts: collections.Counter = collections.Counter()
    with open(chem.nci_path(), encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            mol = Chem.MolFromSmiles(parts[0]) if parts else None
            if mol is None:
                continue
            try:
                frags = BRICS.BRICSDecompose(mol, keepNonLeafNodes=False)
            except Exception:  # noqa: BLE001 - a molecule BRICS cannot cut contributes nothing
                continue
            seen = set()
            for smi in frags:
                fm = Chem.MolFromSmiles(smi)
                if fm is None:
                    continue
                for a in fm.GetAtoms():
                    if a.GetAtomicNum() == 0:
                        a.SetIsotope(0)
                seen.add(Chem.MolToSmiles(fm))
            counts.update(seen)
    kept = [(s, c) for s, c in counts.items() if acceptable(s)]
    kept.sort(key=lambda sc: (-sc[1], sc[0]))
    return kept[:num_blocks]


def acceptable(smiles: str) -> bool:
    """The library filter of the module docstring."""
    from rdkit import Chem

    from gfnjax.envs import chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return False
    stems = [a for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    heavy = [a for a in mol.GetAtoms() if a.GetAtomicNum() > 0]
    if not (1 <= len(stems) <= 3 and 1 <= len(heavy) <= 10):
        return False
    if any(a.GetSymbol() not in ELEMENTS for a in heavy):
        return False
    if any(a.GetFormalCharge() or a.GetNumRadicalElectrons() for a in mol.GetAtoms()):
        return False
    if any(len(a.GetNeighbors()) != 1 for a in stems):
        return False
    capped = Chem.MolFromSmiles(smiles.replace("*", "C"))
    if capped is None:
        return False
    return not chem.rule_violations(capped) and not chem.structural_alerts(capped)


def table_source(blocks: list[tuple[str, int]]) -> str:
    from rdkit import rdBase

    lines = [
        f"# rdkit {rdBase.rdkitVersion}, NCI first_5K.smi",
        "BLOCKS: tuple[tuple[str, int], ...] = (",
    ]
    lines += [f'    ("{s}", {c}),' for s, c in blocks]
    return "\n".join(lines + [")"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--write", action="store_true", help="rewrite the table in this file")
    args = p.parse_args(argv)
    src = table_source(generate())
    if not args.write:
        print(src)
        return 0
    path = os.path.abspath(__file__)
    text = open(path, encoding="utf-8").read()
    begin = text.index("# --- generated table")
    begin = text.index("\n", begin) + 1
    end = text.index("# --- end of generated table")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text[:begin] + src + "\n" + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
