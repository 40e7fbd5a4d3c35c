"""Write src/pesprobe/resources/train_xtb_large.smi: the ``xtb-train-large`` preset's molecules.

Small substituted scaffolds (functional-group templates x substituents) enumerated with RDKit, plus the
hand-picked ``train_xtb.smi``; every entry sanitised, 3-40 atoms with hydrogens, only H/C/N/O/P/S,
deduplicated by canonical SMILES, and none of the held-out molecules (BSCT-xTB preset, MD test
molecules, embedded scans: :func:`pesprobe.data.presets.held_out_smiles`).

    python tools/make_train_smiles.py
"""

from __future__ import annotations

import itertools
from pathlib import Path

from rdkit import Chem, RDLogger

from pesprobe.data.presets import ALLOWED_ELEMENTS, MAX_ATOMS, MIN_ATOMS, held_out_smiles
from pesprobe.scan.inputs import packaged_smiles

OUT = Path(__file__).resolve().parents[1] / "src" / "pesprobe" / "resources" / "train_xtb_large.smi"

#: Substituents R (attached through their first atom).
ALKYL = ("C", "CC", "CCC", "C(C)C", "CCCC", "CC(C)C", "C(C)(C)C", "C1CC1", "CC=C", "CCO", "c1ccccc1")
SMALL = ("C", "CC", "CCC", "C(C)C", "C1CC1", "CC=C")

#: family -> (template with {a}/{b}/{c} slots, substituent set per slot, at most this many entries).
FAMILIES: dict[str, tuple[str, tuple[tuple[str, ...], ...], int]] = {
    # phosphorus
    "phosphine": ("P({a})({b}){c}", (SMALL, SMALL, SMALL), 12),
    "prim_phosphine": ("P{a}", (ALKYL,), 8),
    "phosphine_oxide": ("O=P({a})({b}){c}", (SMALL, SMALL, SMALL), 12),
    "phosphate": ("O=P(O{a})(O{b})O{c}", (SMALL, SMALL, SMALL), 12),
    "phosphate_acid": ("O=P(O)(O{a})O{b}", (ALKYL, SMALL), 10),
    "phosphonate": ("{a}P(=O)(O{b})O{c}", (ALKYL, SMALL, SMALL), 16),
    "phosphonic_acid": ("{a}P(=O)(O)O", (ALKYL,), 8),
    "phosphinate": ("{a}P(=O)({b})O{c}", (SMALL, SMALL, SMALL), 10),
    "phosphite": ("P(O{a})(O{b})O{c}", (SMALL, SMALL, SMALL), 8),
    "phosphoramide": ("O=P(N({a}){b})(O{c})OC", (SMALL, SMALL, SMALL), 10),
    "thiophosphate": ("S=P(O{a})(O{b})O{c}", (SMALL, SMALL, SMALL), 8),
    "aminophosphine": ("{a}P({b})N(C)C", (SMALL, SMALL), 6),
    # sulphur
    "thiol": ("S{a}", (ALKYL,), 10),
    "sulfide": ("{a}S{b}", (ALKYL, ALKYL), 14),
    "disulfide": ("{a}SS{b}", (SMALL, SMALL), 8),
    "sulfoxide": ("{a}S(=O){b}", (ALKYL, SMALL), 12),
    "sulfone": ("{a}S(=O)(=O){b}", (ALKYL, SMALL), 12),
    "sulfonamide": ("{a}S(=O)(=O)N{b}", (ALKYL, ("", "C", "CC")), 10),
    "sulfonate": ("{a}S(=O)(=O)O{b}", (ALKYL, SMALL), 8),
    "thioester": ("{a}C(=O)S{b}", (SMALL, SMALL), 8),
    "thioamide": ("{a}C(=S)N{b}", (SMALL, ("", "C", "CC")), 6),
    "thioether_alcohol": ("OC{a}S{b}", (("C", "CC", "C(C)"), SMALL), 6),
    # nitrogen, oxygen, carbon
    "alcohol": ("O{a}", (ALKYL,), 8),
    "ether": ("{a}O{b}", (ALKYL, SMALL), 12),
    "amine": ("N({a}){b}", (ALKYL, ("", "C", "CC")), 14),
    "tert_amine": ("N({a})({b}){c}", (SMALL, SMALL, SMALL), 8),
    "amide": ("{a}C(=O)N({b}){c}", (SMALL, ("", "C"), ("", "C", "CC")), 12),
    "ester": ("{a}C(=O)O{b}", (ALKYL, SMALL), 12),
    "acid": ("{a}C(=O)O", (ALKYL,), 8),
    "ketone": ("{a}C(=O){b}", (ALKYL, SMALL), 10),
    "aldehyde": ("{a}C=O", (ALKYL,), 6),
    "nitro": ("{a}[N+](=O)[O-]", (ALKYL,), 6),
    "oxime": ("{a}C({b})=NO", (SMALL, ("C", "[H]")), 6),
    "hydrazine": ("{a}NN{b}", (SMALL, ("", "C")), 6),
    "hydroxylamine": ("{a}N({b})O", (SMALL, ("[H]", "C")), 6),
    "urea": ("{a}NC(=O)N{b}", (SMALL, ("", "C")), 6),
    "carbamate": ("{a}OC(=O)N{b}", (SMALL, ("", "C")), 6),
    "aminoalcohol": ("NC{a}O", (("C", "CC", "C(C)", "CCC"),), 4),
    "alkane_alkene": ("C{a}{b}", (("C", "CC", "C=C", "C(C)"), ("C", "CC", "C=C", "C(C)C", "")), 10),
    # rings: substituted heterocycles
    "pyridine": ("{a}c1ccncc1", (("C", "CC", "O", "N", "OC", "S", "SC", "C=O"),), 8),
    "pyrrole": ("{a}n1cccc1", (("C", "CC", "CCC", "C(C)C"),), 4),
    "furan": ("{a}c1ccco1", (("C", "CC", "C=O", "CO", "SC", "P(C)C"),), 6),
    "thiophene": ("{a}c1cccs1", (("C", "CC", "C=O", "CO", "OC", "N", "P(C)C"),), 7),
    "thiazole": ("{a}c1nccs1", (("C", "CC", "N", "SC", "OC", "C(C)C"),), 6),
    "imidazole": ("{a}n1ccnc1", (("C", "CC", "CCC", "C(C)C", "C=C"),), 5),
    "oxazole": ("{a}c1ncco1", (("C", "CC", "N", "OC"),), 4),
    "saturated_ring": ("{a}{b}", (("C1CCNCC1", "C1CCOCC1", "C1CCSCC1", "C1CCCC1", "N1CCOCC1", "N1CCSCC1",
                                   "N1CCNCC1", "C1CCS(=O)(=O)C1", "C1CCOC1", "C1CSCN1"),
                                  ("", "C", "O", "N", "C=O")), 28),
    "benzene": ("{a}c1ccccc1{b}", (("C", "O", "N", "S", "P(C)C", "S(C)(=O)=O"), ("", "C", "O", "N")), 16),
}


def _expand(template: str, slots: tuple[tuple[str, ...], ...]) -> list[str]:
    """Every filling of ``template``'s slots, unordered for identical slot sets."""
    keys = "abc"[:len(slots)]
    out = []
    for combo in itertools.product(*slots):
        out.append(template.format(**dict(zip(keys, combo))))
    return out


def _valid(smiles: str) -> str | None:
    """Canonical SMILES if ``smiles`` sanitises, has only allowed elements and 3-40 atoms with H."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    withh = Chem.AddHs(mol)
    if not MIN_ATOMS <= withh.GetNumAtoms() <= MAX_ATOMS:
        return None
    if {a.GetSymbol() for a in withh.GetAtoms()} - ALLOWED_ELEMENTS:
        return None
    if "#" in Chem.MolToSmiles(mol):  # "#" starts a comment in a SMILES list file
        return None
    if Chem.GetFormalCharge(mol) != 0 or len(Chem.GetMolFrags(mol)) != 1:
        return None
    return Chem.MolToSmiles(mol)


def main() -> None:
    RDLogger.DisableLog("rdApp.*")
    excluded = held_out_smiles()
    seen: set[str] = set()
    lines = []
    for smiles, name in packaged_smiles("train_xtb.smi"):
        canon = _valid(smiles)
        if canon and canon not in excluded and canon not in seen:
            seen.add(canon)
            lines.append(f"{canon} {name}")
    for family, (template, slots, limit) in FAMILIES.items():
        kept = 0
        for smiles in _expand(template, slots):
            canon = _valid(smiles)
            if canon is None or canon in excluded or canon in seen:
                continue
            seen.add(canon)
            kept += 1
            lines.append(f"{canon} {family}_{kept:02d}")
            if kept == limit:
                break
    header = ("# pesprobe training-data preset xtb-train-large (pesprobe data sample --preset xtb-train-large):\n"
              "# train_xtb.smi plus functional-group templates x substituents (tools/make_train_smiles.py),\n"
              "# H/C/N/O/P/S, 3-40 atoms with hydrogens, disjoint from the BSCT-xTB preset, the MD test\n"
              "# molecules and the embedded scans (tested). One \"SMILES name\" per line.\n")
    OUT.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(lines)} molecules")


if __name__ == "__main__":
    main()
