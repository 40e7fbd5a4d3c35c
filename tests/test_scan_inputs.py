"""Input readers: SMILES lists, SDF, SPICE-layout HDF5, crystals."""

from __future__ import annotations

import h5py
import numpy as np
from ase.units import Bohr

from pesprobe.scan.inputs import Structure, from_smiles, read_smiles_list, read_structures, unique_names


def test_smiles_list_and_embedding_are_deterministic(tmp_path):
    entries = read_smiles_list("# comment\nCCO ethanol\n\nCOC  # dimethyl ether\n", "mols.smi")
    assert entries == [("CCO", "ethanol"), ("COC", "mols_4")]
    a, b = from_smiles("CCO", "x", seed=3), from_smiles("CCO", "x", seed=3)
    np.testing.assert_array_equal(a.positions, b.positions)
    assert a.needs_relax and len(a.numbers) == 9
    (tmp_path / "m.smi").write_text("CCO ethanol\nC1CC( broken\n")
    structures, problems = read_structures(tmp_path / "m.smi")
    assert [s.name for s in structures] == ["ethanol"]
    assert len(problems) == 1 and "broken" in str(problems[0]) and "could not be parsed" in str(problems[0])


def test_sdf_and_spice_hdf5(tmp_path):
    from rdkit import Chem

    mol = Chem.AddHs(Chem.MolFromSmiles("CS"))
    from rdkit.Chem import AllChem

    AllChem.EmbedMolecule(mol, randomSeed=1)
    mol.SetProp("_Name", "methanethiol")
    with Chem.SDWriter(str(tmp_path / "m.sdf")) as writer:
        writer.write(mol)
    structures, problems = read_structures(tmp_path / "m.sdf")
    assert not problems and structures[0].name == "methanethiol"
    np.testing.assert_allclose(structures[0].positions, mol.GetConformer().GetPositions(), atol=1e-4)  # 4 decimals

    positions_bohr = np.random.default_rng(0).normal(size=(2, 3, 3))
    with h5py.File(tmp_path / "spice.h5", "w") as fh:
        group = fh.create_group("water 1")
        group["atomic_numbers"] = np.array([8, 1, 1])
        group["conformations"] = positions_bohr
        group["smiles"] = np.array([b"[O:1]([H:2])[H:3]"])
        bad = fh.create_group("broken")
        bad["atomic_numbers"] = np.array([8, 1, 1])
        bad["conformations"] = np.zeros((1, 2, 3))
    structures, problems = read_structures(tmp_path / "spice.h5")
    assert [s.name for s in structures] == ["water_1"] and structures[0].smiles == "[O:1]([H:2])[H:3]"
    np.testing.assert_allclose(structures[0].positions, positions_bohr[0] * Bohr)
    assert "broken" in problems[0].path and "conformations" in problems[0].message


def test_unique_names():
    def s(name):
        return Structure(name, np.array([1]), np.zeros((1, 3)))

    names = [x.name for x in unique_names([s("a"), s("a"), s("a_2"), s("a")])]
    assert len(set(names)) == 4 and names[0] == "a" and names[2] == "a_2"
