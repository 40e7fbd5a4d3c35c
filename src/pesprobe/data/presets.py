"""Composition and hold-out checks of the packaged SMILES lists used for training.

A training list must share no molecule with what the model is later judged on: the BSCT-xTB scan
preset (``resources/bsct_xtb.smi``; the MD test molecules of :func:`pesprobe.md.systems.preset_molecules`
and ``benchmarks/md_monitor_false_alarms.py`` are drawn from it) and the embedded BSCT-SPICE scans.
Molecules are compared by RDKit canonical SMILES and by InChIKey.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

#: Elements a training list may contain.
ALLOWED_ELEMENTS = frozenset({"H", "C", "N", "O", "P", "S"})
#: Atom-count bounds (hydrogens included) of a training molecule.
MIN_ATOMS, MAX_ATOMS = 3, 40
#: Packaged lists whose molecules are held out from training.
HELD_OUT_LISTS = ("bsct_xtb.smi",)


def _mol(smiles: str):
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"SMILES {smiles!r}: could not be parsed")
    for atom in mol.GetAtoms():
        atom.SetAtomMapNum(0)
    return Chem.RemoveHs(mol)


def molecule_keys(smiles: str) -> tuple[str, str]:
    """Canonical SMILES (heavy atoms, atom maps dropped) and InChIKey of ``smiles``.

    Raises
    ------
    ValueError
        If RDKit cannot parse ``smiles``.
    """
    from rdkit import Chem

    mol = _mol(smiles)
    return Chem.MolToSmiles(mol), Chem.MolToInchiKey(mol)


def held_out_smiles() -> set[str]:
    """Canonical SMILES and InChIKeys of every held-out molecule (see the module docstring)."""
    from pesprobe.data.embedded import embedded_scans_path
    from pesprobe.data.loader import load_scans
    from pesprobe.scan.inputs import packaged_smiles

    smiles = [s for name in HELD_OUT_LISTS for s, _ in packaged_smiles(name)]
    smiles += [str(scan.meta["smiles"]) for scan in load_scans(str(embedded_scans_path()))
               if scan.meta.get("smiles")]
    return {key for s in smiles for key in molecule_keys(s)}


@dataclass
class Composition:
    """What a SMILES list holds.

    Attributes
    ----------
    n_molecules : int
        Entries.
    n_distinct : int
        Distinct canonical SMILES.
    with_element : Counter
        Molecules containing each element (symbol -> count).
    atom_range : tuple of int
        Smallest and largest atom count, hydrogens included.
    bad_elements : list of str
        Names of entries with an element outside :data:`ALLOWED_ELEMENTS`.
    bad_size : list of str
        Names of entries outside ``MIN_ATOMS..MAX_ATOMS`` atoms.
    held_out : list of str
        Names of entries that are held-out molecules.
    """

    n_molecules: int
    n_distinct: int
    with_element: Counter = field(default_factory=Counter)
    atom_range: tuple[int, int] = (0, 0)
    bad_elements: list[str] = field(default_factory=list)
    bad_size: list[str] = field(default_factory=list)
    held_out: list[str] = field(default_factory=list)


def composition(entries: list[tuple[str, str]], held_out: set[str] | None = None) -> Composition:
    """Composition of ``(smiles, name)`` entries and their overlap with ``held_out`` keys.

    Parameters
    ----------
    entries : list of (str, str)
        As returned by :func:`pesprobe.scan.inputs.packaged_smiles`.
    held_out : set of str, optional
        Canonical SMILES/InChIKeys to flag (default :func:`held_out_smiles`).
    """
    from rdkit import Chem

    held_out = held_out_smiles() if held_out is None else held_out
    report = Composition(n_molecules=len(entries), n_distinct=0)
    canon, sizes = set(), []
    for smiles, name in entries:
        keys = molecule_keys(smiles)
        canon.add(keys[0])
        mol = Chem.AddHs(_mol(smiles))
        elements = {a.GetSymbol() for a in mol.GetAtoms()}
        report.with_element.update(elements)
        sizes.append(mol.GetNumAtoms())
        if elements - ALLOWED_ELEMENTS:
            report.bad_elements.append(name)
        if not MIN_ATOMS <= mol.GetNumAtoms() <= MAX_ATOMS:
            report.bad_size.append(name)
        if set(keys) & held_out:
            report.held_out.append(name)
    report.n_distinct = len(canon)
    report.atom_range = (min(sizes), max(sizes)) if sizes else (0, 0)
    return report
