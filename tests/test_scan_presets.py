"""Packaged SMILES lists and presets: parseable, sized, covering the nine bond types, disjoint."""

from __future__ import annotations

from rdkit import Chem

from pesprobe.scan.graph import PUBLISHED_BOND_TYPES
from pesprobe.scan.inputs import canonical_smiles, packaged_smiles
from pesprobe.scan.presets import SAMPLE_PRESETS, SCAN_PRESETS, sample_preset, scan_preset


def _acyclic_bond_types(smiles: str) -> set[str]:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    return {"-".join(sorted((b.GetBeginAtom().GetSymbol(), b.GetEndAtom().GetSymbol())))
            for b in mol.GetBonds() if not b.IsInRing()}


def test_bsct_list_covers_every_published_bond_type():
    preset = scan_preset("xtb-organic")
    entries = packaged_smiles(preset.smiles_file)
    assert len(entries) >= 50 and len({n for _, n in entries}) == len(entries)
    molecules_with = {t: 0 for t in PUBLISHED_BOND_TYPES}
    for smiles, name in entries:
        n_atoms = Chem.AddHs(Chem.MolFromSmiles(smiles)).GetNumAtoms()
        assert 5 <= n_atoms <= 40, name
        for kind in _acyclic_bond_types(smiles) & set(PUBLISHED_BOND_TYPES):
            molecules_with[kind] += 1
    # every type can get its per_type scans from distinct molecules: >= 60 scans over the nine types
    assert all(count >= preset.per_type for count in molecules_with.values()), molecules_with
    assert preset.per_type * len(preset.bond_types) >= 60


def test_training_list_is_disjoint_from_bsct_list():
    bsct = {canonical_smiles(s) for s, _ in packaged_smiles(scan_preset("xtb-organic").smiles_file)}
    train = {canonical_smiles(s) for s, _ in packaged_smiles(sample_preset("xtb-train").smiles_file)}
    assert len(train) >= 50
    assert not bsct & train


def test_training_preset_is_large_enough():
    p = sample_preset("xtb-train")
    n_molecules = len(packaged_smiles(p.smiles_file))
    per_molecule = 1 + len(p.temperatures) * p.snapshots + p.stretches
    assert n_molecules * per_molecule >= 5000


def test_unknown_presets_are_named():
    for lookup, known in ((scan_preset, SCAN_PRESETS), (sample_preset, SAMPLE_PRESETS)):
        try:
            lookup("nope")
        except ValueError as exc:
            assert all(name in str(exc) for name in known)
        else:
            raise AssertionError("unknown preset accepted")
