"""Training-data readers (extended XYZ, ASE database, SPICE HDF5), the molecule split, batching."""

from __future__ import annotations

import numpy as np
import pytest

from pesprobe.data.structures import (Structure, StructureFormatError, read_ase_db, read_extxyz, read_spice_hdf5,
                                      read_structures, split_by_molecule, write_extxyz)


def _structures(n_molecules: int = 4, per_molecule: int = 3, seed: int = 0) -> list[Structure]:
    rng = np.random.default_rng(seed)
    out = []
    for m in range(n_molecules):
        n = 2 + m
        numbers = rng.choice([1, 6, 7, 8], size=n)
        for k in range(per_molecule):
            out.append(Structure(numbers=numbers, positions=rng.normal(size=(n, 3)) * 2, energy=rng.normal() * 10,
                                 forces=rng.normal(size=(n, 3)), molecule=f"mol{m}", source=f"gen#{m}/{k}"))
    return out


def test_extxyz_round_trip_keeps_labels_and_molecule(tmp_path):
    structures = _structures()
    path = write_extxyz(structures, tmp_path / "set.xyz")
    back = read_extxyz(path)
    assert len(back) == len(structures)
    for a, b in zip(structures, back, strict=True):
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)
        np.testing.assert_allclose(a.forces, b.forces, atol=1e-7)
        assert b.energy == pytest.approx(a.energy, abs=1e-7)
        assert b.molecule == a.molecule
    assert back[4].source == f"{path}#4"


def test_extxyz_custom_keys_and_formula_fallback(tmp_path):
    from ase import Atoms
    from ase.io import write

    atoms = Atoms("CH4", positions=np.random.default_rng(1).normal(size=(5, 3)))
    atoms.info["REF_energy"] = -12.5
    atoms.arrays["REF_forces"] = np.ones((5, 3))
    write(tmp_path / "a.extxyz", [atoms], format="extxyz")
    (s,) = read_structures(tmp_path / "a.extxyz", energy_key="REF_energy", forces_key="REF_forces")
    assert s.energy == -12.5
    np.testing.assert_array_equal(s.forces, np.ones((5, 3)))
    assert s.molecule == "CH4"  # no mol_id/smiles/name: the chemical formula


def test_extxyz_without_labels_is_an_error_naming_frame(tmp_path):
    from ase import Atoms
    from ase.io import write

    write(tmp_path / "bare.xyz", [Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]])], format="extxyz")
    with pytest.raises(StructureFormatError, match=r"bare\.xyz#0: no labels.*'energy'"):
        read_structures(tmp_path / "bare.xyz")


def test_malformed_extxyz_names_file(tmp_path):
    path = tmp_path / "bad.xyz"
    path.write_text("3\nenergy=1.0\nC 0 0 0\nH 0 0\n")
    with pytest.raises(StructureFormatError, match=r"bad\.xyz.*unreadable extended XYZ"):
        read_extxyz(path)


def test_ase_db_reader_uses_key_value_molecule_and_periodic_cell(tmp_path):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.db import connect

    db = connect(tmp_path / "set.db")
    cell = np.diag([5.0, 6.0, 7.0])
    for i in range(3):
        atoms = Atoms("NaCl", positions=[[0, 0, 0], [2.5 + 0.1 * i, 0, 0]], cell=cell, pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0 - i, forces=np.full((2, 3), 0.1 * i))
        db.write(atoms, smiles="[Na+].[Cl-]" if i < 2 else "other")
    structures = read_ase_db(tmp_path / "set.db")
    assert [s.energy for s in structures] == [-1.0, -2.0, -3.0]
    assert [s.molecule for s in structures] == ["[Na+].[Cl-]", "[Na+].[Cl-]", "other"]
    np.testing.assert_allclose(structures[2].forces, 0.2)
    np.testing.assert_allclose(structures[0].cell, cell)
    assert structures[0].pbc.all()
    assert structures[1].source.endswith("set.db#id=2")


def _write_spice(path, groups):
    import h5py

    with h5py.File(path, "w") as fh:
        for name, arrays in groups.items():
            g = fh.create_group(name)
            for key, value in arrays.items():
                g.create_dataset(key, data=value)


def test_spice_hdf5_units_are_converted(tmp_path):
    from ase.units import Bohr, Hartree

    conf = np.array([[[0.0, 0.0, 0.0], [0.0, 0.0, 2.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 2.2]]])  # bohr
    grad = np.array([[[0.0, 0.0, 0.1], [0.0, 0.0, -0.1]], [[0.0, 0.0, -0.05], [0.0, 0.0, 0.05]]])  # Ha/bohr
    _write_spice(tmp_path / "spice.hdf5", {
        "[H][H]": {"atomic_numbers": np.array([1, 1]), "conformations": conf,
                   "dft_total_energy": np.array([-1.1, -1.0]), "dft_total_gradient": grad},
        "O": {"atomic_numbers": np.array([8]), "conformations": np.zeros((1, 1, 3)),
              "dft_total_energy": np.array([-75.0]), "dft_total_gradient": np.zeros((1, 1, 3))}})
    structures = read_structures(tmp_path / "spice.hdf5")
    assert sorted(s.molecule for s in structures) == ["O", "[H][H]", "[H][H]"]  # the group is the molecule
    h2 = [s for s in structures if s.molecule == "[H][H]"][1]
    assert h2.positions[1, 2] == pytest.approx(2.2 * Bohr)
    assert h2.positions[1, 2] == pytest.approx(1.16417, abs=1e-4)  # Å
    assert h2.energy == pytest.approx(-1.0 * Hartree)
    assert h2.energy == pytest.approx(-27.2114, abs=1e-3)  # eV
    # forces are minus the gradient, in eV/Å
    assert h2.forces[0, 2] == pytest.approx(0.05 * Hartree / Bohr)
    assert h2.forces[0, 2] == pytest.approx(2.5711, abs=1e-3)


def test_spice_hdf5_missing_or_misshaped_field_is_named(tmp_path):
    _write_spice(tmp_path / "missing.h5", {"mol": {"atomic_numbers": np.array([1, 1]),
                                                   "conformations": np.zeros((1, 2, 3)),
                                                   "dft_total_energy": np.zeros(1)}})
    with pytest.raises(StructureFormatError, match=r"missing\.h5#mol: missing field 'dft_total_gradient'"):
        read_spice_hdf5(tmp_path / "missing.h5")
    _write_spice(tmp_path / "shape.h5", {"mol": {"atomic_numbers": np.array([1, 1]),
                                                 "conformations": np.zeros((2, 2, 3)),
                                                 "dft_total_energy": np.zeros(3),
                                                 "dft_total_gradient": np.zeros((2, 2, 3))}})
    with pytest.raises(StructureFormatError, match=r"shape\.h5#mol: field 'dft_total_energy' has shape \(3,\)"):
        read_spice_hdf5(tmp_path / "shape.h5")


def test_read_structures_rejects_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "data.csv").write_text("x")
    with pytest.raises(StructureFormatError, match=r"data\.csv: unknown training-data suffix '\.csv'"):
        read_structures(tmp_path / "data.csv")
    with pytest.raises(FileNotFoundError, match="nothere.xyz"):
        read_structures(tmp_path / "nothere.xyz")


def test_structure_validation_names_field():
    with pytest.raises(StructureFormatError, match=r"src#1: field 'forces' has shape \(3, 3\), expected \(2, 3\)"):
        Structure(numbers=[1, 1], positions=np.zeros((2, 3)), energy=0.0, forces=np.zeros((3, 3)),
                  molecule="m", source="src#1")
    with pytest.raises(StructureFormatError, match="atomic numbers outside"):
        Structure(numbers=[0, 1], positions=np.zeros((2, 3)), energy=0.0, forces=np.zeros((2, 3)),
                  molecule="m", source="src#2")


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5, 0.9])
def test_split_by_molecule_is_disjoint_and_complete(fraction):
    structures = _structures(n_molecules=10, per_molecule=3)
    train, valid = split_by_molecule(structures, fraction, seed=3)
    assert len(train) + len(valid) == len(structures)
    assert not {s.molecule for s in train} & {s.molecule for s in valid}
    assert train, "at least one molecule is always left for training"
    if fraction == 0.0:
        assert not valid
    else:
        assert len(valid) >= min(fraction * len(structures), len(structures) - 3)
    again = split_by_molecule(structures, fraction, seed=3)
    assert [s.source for s in again[1]] == [s.source for s in valid]


def test_collate_concatenates_and_rotates():
    import torch

    from pesprobe.models import random_rotation_matrices
    from pesprobe.train.batch import collate

    structures = _structures(n_molecules=3, per_molecule=1)
    structures[1].forces[:] = np.nan
    batch = collate(structures, torch.float64)
    assert batch.positions.shape == (2 + 3 + 4, 3)
    assert batch.system_index.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert batch.forces_mask.tolist() == [True] * 2 + [False] * 3 + [True] * 4
    assert batch.cell is None
    rots = random_rotation_matrices(3, torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    rotated = collate(structures, torch.float64, rotations=rots)
    np.testing.assert_allclose(rotated.positions[:2].numpy(), structures[0].positions @ rots[0].T)
    np.testing.assert_allclose(rotated.forces[5:].numpy(), structures[2].forces @ rots[2].T)
    # distances are unchanged by the rotation
    np.testing.assert_allclose(torch.cdist(rotated.positions[5:], rotated.positions[5:]).numpy(),
                               torch.cdist(batch.positions[5:], batch.positions[5:]).numpy(), atol=1e-12)


def test_step_sampler_ranks_partition_the_global_batch():
    from pesprobe.train.batch import StepSampler

    single = StepSampler(23, 6, seed=5)
    ranks = [StepSampler(23, 6, seed=5, rank=r, world_size=3) for r in range(3)]
    seen = []
    for step in range(single.batches_per_epoch):
        whole = single.indices(step)
        parts = [s.indices(step) for s in ranks]
        assert sorted(np.concatenate(parts).tolist()) == sorted(whole.tolist())
        seen.extend(whole.tolist())
    assert len(set(seen)) == len(seen) == 18  # one epoch: no repeats, incomplete batch dropped
    assert single.indices(3).tolist() != single.indices(3 + single.batches_per_epoch).tolist()
    with pytest.raises(ValueError, match="multiple of the number of ranks"):
        StepSampler(23, 5, world_size=2)
    with pytest.raises(ValueError, match="exceeds the 4 training structures"):
        StepSampler(4, 8)


def test_element_references_reproduce_additive_energies():
    from pesprobe.train.references import energy_statistics, fit_element_references

    eps = {1: -13.6, 6: -1029.0, 8: -2040.0}
    structures = []
    rng = np.random.default_rng(0)
    for i in range(12):
        numbers = rng.choice([1, 6, 8], size=rng.integers(2, 7))
        energy = sum(eps[int(z)] for z in numbers)
        structures.append(Structure(numbers=numbers, positions=rng.normal(size=(len(numbers), 3)), energy=energy,
                                    forces=np.zeros((len(numbers), 3)), molecule=str(i), source=str(i)))
    refs = fit_element_references(structures)
    assert set(refs) <= set(eps)
    for s in structures:
        assert sum(refs[int(z)] for z in s.numbers) == pytest.approx(s.energy, abs=1e-6)
    stats = energy_statistics(structures, refs)
    assert stats.shift == pytest.approx(0.0, abs=1e-6)
    assert stats.scale == 1.0
