"""Bond detection, fragment splits and scan geometries (no reference calculations)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

from pesprobe.scan.generate import supercell_repeats
from pesprobe.scan.geometry import (angle, angle_scan, bond_grid, bond_scan, crystal_bond_scan, dihedral,
                                    torsion_scan)
from pesprobe.scan.graph import bond_graph, normalize_bond_type, scannable_bonds
from pesprobe.scan.inputs import Structure, from_smiles
from pesprobe.scan.plan import angle_plans, bond_plans, crystal_plans, select, torsion_plans


def _pairwise(x: np.ndarray) -> np.ndarray:
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


def test_ethanol_bonds_and_fragments():
    atoms = molecule("CH3CH2OH")  # C0 C1 O2 H3 ...
    graph = bond_graph(atoms)
    assert len(graph.edges()) == 8
    found = {c.bond: c for c in scannable_bonds(graph, ("C-C", "O-C"))}
    assert set(found) == {"C-C", "C-O"}
    co = found["C-O"]
    symbols = np.array(atoms.get_chemical_symbols())
    oxygen_side = co.labels == co.labels[2]
    assert sorted(symbols[oxygen_side]) == ["H", "O"]
    assert co.index == (1, 2) and co.labels[2] == 1
    cc = found["C-C"]
    assert cc.labels.sum() in (4, 5) and cc.labels[cc.index[0]] == 0 and cc.labels[cc.index[1]] == 1


def test_benzene_ring_bonds_rejected_but_ch_scannable():
    graph = bond_graph(molecule("C6H6"))
    assert scannable_bonds(graph, ("C-C",)) == []
    assert len(scannable_bonds(graph, ("C-H",))) == 6
    assert scannable_bonds(graph) == []  # default: no bonds with hydrogen


def test_phosphate_bonds():
    s = from_smiles("COP(=O)(OC)OC", "tmp")
    graph = bond_graph(s.to_atoms())
    op = scannable_bonds(graph, ("P-O",))
    assert len(op) == 4 and {c.bond for c in op} == {"O-P"}
    sizes = sorted(int(min(c.labels.sum(), len(c.labels) - c.labels.sum())) for c in op)
    assert sizes == [1, 5, 5, 5]  # P=O oxygen alone; each methoxy group OCH3


def test_normalize_bond_type():
    assert normalize_bond_type("o-c") == "C-O"
    assert normalize_bond_type("P-O") == "O-P"
    with pytest.raises(ValueError, match="not an element"):
        normalize_bond_type("C-Xx")
    with pytest.raises(ValueError, match="two element"):
        normalize_bond_type("C-C-C")


def test_bond_scan_hits_grid_and_moves_fragments_rigidly():
    s = from_smiles("CCOP(=O)(O)O", "ep")
    plan = next(p for p in bond_plans(s, ("C-O",)))
    i, j = plan.atoms
    start, end, n = bond_grid(s.numbers[i], s.numbers[j], 100)
    grid = np.linspace(start, end, n)
    frames, unit = bond_scan(s.positions, i, j, plan.labels, grid)
    dist = np.linalg.norm(frames[:, j] - frames[:, i], axis=1)
    np.testing.assert_allclose(dist, grid, atol=1e-8, rtol=0)
    assert np.isclose(start, 0.5 * 2 * 0.0 + 0.5 * (0.76 + 0.66)) and np.isclose(end, 2.0 * (0.76 + 0.66))
    for fragment in (0, 1):
        members = plan.labels == fragment
        ref = _pairwise(s.positions[members])
        for frame in frames[[0, 37, 99]]:
            np.testing.assert_allclose(_pairwise(frame[members]), ref, atol=1e-10)
    shift = frames[:, plan.labels == 1] - s.positions[plan.labels == 1]
    r0 = np.linalg.norm(s.positions[j] - s.positions[i])
    np.testing.assert_allclose(shift, np.broadcast_to(((grid - r0) / 2)[:, None, None] * unit, shift.shape),
                               atol=1e-10)


def test_angle_and_torsion_geometry():
    s = from_smiles("CCCO", "propanol")
    aplan = angle_plans(s)[0]
    a, b, c = aplan.atoms
    frames, grid = angle_scan(s.positions, a, b, c, aplan.labels.astype(bool), np.radians(60), 50)
    measured = [angle(f, a, b, c) for f in frames]
    np.testing.assert_allclose(measured, grid, atol=1e-10)
    assert grid[-1] - grid[0] > np.radians(100)
    fixed = ~aplan.labels.astype(bool)
    np.testing.assert_allclose(frames[:, fixed], np.broadcast_to(s.positions[fixed], frames[:, fixed].shape))
    moving = aplan.labels.astype(bool)
    np.testing.assert_allclose(_pairwise(frames[-1][moving]), _pairwise(s.positions[moving]), atol=1e-10)

    tplan = torsion_plans(s)[0]
    frames, phis = torsion_scan(s.positions, *tplan.atoms, tplan.labels.astype(bool), 36)
    measured = np.array([dihedral(f, *tplan.atoms) for f in frames])
    np.testing.assert_allclose(np.angle(np.exp(1j * (measured - phis))), 0.0, atol=1e-10)
    np.testing.assert_allclose(np.diff(phis), 2 * np.pi / 36)
    bonded = bond_graph(s.to_atoms()).edges()
    for frame in frames:  # rigid rotation keeps every bond length
        for p, q in bonded:
            assert np.isclose(np.linalg.norm(frame[p] - frame[q]), np.linalg.norm(s.positions[p] - s.positions[q]))


def test_crystal_supercell_and_single_atom_scan():
    cu = bulk("Cu", "fcc", a=3.6)
    reps = supercell_repeats(np.asarray(cu.cell[:]), 2 * 4.0)
    big = cu.repeat(reps)
    widths = big.cell.volume / np.linalg.norm(np.cross(big.cell[[1, 2, 0]], big.cell[[2, 0, 1]]), axis=1)
    assert (widths >= 8.0 - 1e-9).all()
    s = Structure("cu", big.numbers, big.positions, cell=np.asarray(big.cell[:]), pbc=np.ones(3, bool))
    plans = crystal_plans(s, ("Cu-Cu",), n_primitive=1)
    assert len(plans) == 1
    plan = plans[0]
    grid = np.linspace(*bond_grid(29, 29, 30))
    frames, unit = crystal_bond_scan(plan.structure.positions, plan.atoms[1], plan.anchor, grid)
    np.testing.assert_allclose(np.linalg.norm(frames[:, plan.atoms[1]] - plan.anchor, axis=1), grid, atol=1e-10)
    np.testing.assert_allclose(plan.anchor, plan.structure.positions[plan.atoms[0]])  # the pair is adjacent
    assert plan.max_length == pytest.approx(3.6 / np.sqrt(2))  # fcc: the nearest-neighbour distance
    others = np.arange(len(big)) != plan.atoms[1]
    assert np.array_equal(frames[:, others], np.broadcast_to(s.positions[others], frames[:, others].shape))


def test_select_is_seeded_and_spreads_over_molecules():
    structures = [from_smiles(smi, name) for smi, name in
                  [("CCOCC", "ether"), ("CCCO", "propanol"), ("COC", "dme"), ("CCOC(C)=O", "ethylacetate")]]
    plans = [p for s in structures for p in bond_plans(s, ("C-O",))]
    chosen, available = select(plans, 3, seed=1)
    assert available["C-O"] == len(plans) and len(chosen) == 3
    assert len({p.structure.name for p in chosen}) == 3
    again, _ = select(list(reversed(plans)), 3, seed=1)
    assert [p.id for p in again] == [p.id for p in chosen]
    everything, _ = select(plans, None, seed=0)
    assert len(everything) == len(plans)
