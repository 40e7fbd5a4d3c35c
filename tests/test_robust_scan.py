"""Scan generation that stays physical and readable (issue 13, "Scan generation"):

- crystal stretches stop where another atom would come closer to the moving atom than its partner;
- crystal scans store the moving atom next to its partner (raw distance = scanned coordinate);
- the work folder sits beside the output (``<out>.build``), not inside the published layout;
- PySCF starts each frame from the previous frame's density and retries with second-order SCF.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.io import read as ase_read
from ase.io import write

from pesprobe.data import load_scans
from pesprobe.scan.build import build_scans
from pesprobe.scan.generate import ScanSettings
from pesprobe.scan.inputs import read_structures
from pesprobe.scan.label import label_frames

EMT = "ase.calculators.emt:EMT"


def _crystal(tmp_path: Path, element: str, a: float):
    path = tmp_path / f"{element}.cif"
    write(path, bulk(element, "fcc", a=a, cubic=True))
    structures, problems = read_structures(path)
    assert not problems
    return structures


@pytest.fixture(scope="module")
def crystal_sets(tmp_path_factory):
    """fcc Al and Cu bond scans labelled by EMT (built once for this module)."""
    root = tmp_path_factory.mktemp("crystals")
    sets = {}
    for element, a in (("Al", 4.05), ("Cu", 3.6)):
        out = root / f"{element}_set"
        report = build_scans(_crystal(root, element, a), out,
                             ScanSettings(reference=EMT, n_points=12, cutoff=3.0), per_type=1, progress=False)
        assert len(report.scans) == 1, report.dropped
        sets[element] = (report.scans.scans[0], out, a)
    return sets


@pytest.mark.parametrize("element", ["Al", "Cu"])
def test_crystal_stretch_never_brings_another_atom_closer_than_the_scanned_pair(crystal_sets, element):
    scan, _, a = crystal_sets[element]
    i, j = (int(x) for x in scan.meta["bond_index"])
    nearest = a / np.sqrt(2.0)
    # the documented rule: the grid ends where the partner stops being the moving atom's nearest atom;
    # in an fcc metal that is the nearest-neighbour distance (the moving atom's lattice site)
    assert scan.coordinate[0] == pytest.approx(0.5 * 2 * {"Al": 1.21, "Cu": 1.32}[element])
    assert scan.coordinate[-1] == pytest.approx(nearest, abs=1e-5) and scan.coordinate[-1] <= nearest
    np.testing.assert_allclose(scan.meta["perturb_range"], [scan.coordinate[0], scan.coordinate[-1], 12])
    atoms = Atoms(numbers=scan.numbers, cell=scan.cell, pbc=True)
    pairs = np.triu_indices(scan.n_atoms, 1)
    scanned = (pairs[0] == min(i, j)) & (pairs[1] == max(i, j))
    for k, length in enumerate(scan.coordinate):
        atoms.positions = scan.positions[k]
        d = atoms.get_all_distances(mic=True)
        assert d[i, j] == pytest.approx(length, abs=1e-8)
        # no other pair of the crystal (with or without the moving atom) is closer than the scanned one
        assert d[pairs][~scanned].min() >= length - 1e-8, f"frame {k}"
    # and so no +878 eV frames: the stretched end is the crystal itself
    assert abs(scan.ref_energy[-1] - scan.meta["unperturbed_energy"]) < 1e-3


@pytest.mark.parametrize("element", ["Al", "Cu"])
def test_crystal_scans_store_the_scanned_pair_adjacent(crystal_sets, element):
    scan, out, _ = crystal_sets[element]
    i, j = (int(x) for x in scan.meta["bond_index"])
    raw = np.linalg.norm(scan.positions[:, j] - scan.positions[:, i], axis=1)
    np.testing.assert_allclose(raw, scan.coordinate, atol=1e-9)
    nearest = crystal_sets[element][2] / np.sqrt(2.0)
    assert np.linalg.norm(scan.meta["unperturbed"][j] - scan.meta["unperturbed"][i]) == pytest.approx(nearest)
    # any BSCT reader: plain ASE on the published files, raw positions, no minimum image
    folder = out / scan.group / scan.id.split("/")[-1]
    part = np.load(folder / "partition.npz")
    grid = np.linspace(*part["perturb_range"][:2], int(part["perturb_range"][2]))
    p, q = (int(x) for x in part["bond_index"])
    for k, length in enumerate(grid):
        frame = ase_read(folder / f"atoms_{k}.xyz")
        assert np.linalg.norm(frame.positions[q] - frame.positions[p]) == pytest.approx(length, abs=1e-6)
    start = ase_read(folder / "unperturbed.xyz")
    assert np.linalg.norm(start.positions[q] - start.positions[p]) == pytest.approx(nearest, abs=1e-6)
    reread = load_scans(out, cache=False)[scan.id]
    np.testing.assert_allclose(np.linalg.norm(reread.positions[:, q] - reread.positions[:, p], axis=1),
                               reread.coordinate, atol=2e-8)


def _molecule_file(tmp_path: Path) -> Path:
    path = tmp_path / "mols.xyz"
    atoms = molecule("CH3CH2OH")
    atoms.info["name"] = "ethanol"
    write(path, [atoms], format="extxyz")
    return path


def test_work_folder_sits_beside_the_output_and_resume_still_works(tmp_path):
    from pesprobe.scan.build import work_folder_path

    structures, _ = read_structures(_molecule_file(tmp_path))
    settings = ScanSettings(reference=EMT, n_points=5)
    out = tmp_path / "set"
    first = build_scans(structures, out, settings, bond_types=("C-O",), progress=False)
    assert first.scans.ids() == ["C-O/ethanol_1-2"] and first.n_labelled == 5
    # the output holds the published layout only: every folder in it is a bond type of scan folders
    assert sorted(p.name for p in out.iterdir()) == ["C-O", "build.json"]
    assert all((scan_dir / "partition.npz").exists() for scan_dir in (out / "C-O").iterdir())
    work = tmp_path / "set.build"
    assert work_folder_path(out) == work and (work / "scans").is_dir()
    again = build_scans(structures, out, settings, bond_types=("C-O",), progress=False)
    assert again.reused == 1 and again.n_labelled == 0
    # a work folder left inside the output by an earlier pesprobe is adopted: resumed from, then moved out
    work.rename(out / ".build")
    old = build_scans(structures, out, settings, bond_types=("C-O",), progress=False)
    assert old.reused == 1 and old.n_labelled == 0
    assert not (out / ".build").exists() and (work / "scans").is_dir()
    assert sorted(p.name for p in out.iterdir()) == ["C-O", "build.json"]


# --- PySCF: warm start from the previous frame, second-order retry -------------------------------------------

class _FakeSCF:
    """Stand-in PySCF mean field: first-order SCF converges only from a guess (``dm0``) and not at the
    ``hard`` geometry; second-order (``newton()``) always converges. Every kernel call is logged."""

    log: list = []
    hard_x: float = 2.0

    def __init__(self, mol):
        self.mol, self.converged, self.second_order, self.max_cycle = mol, False, False, 0

    def newton(self):
        self.second_order = True
        return self

    def kernel(self, dm0=None):
        x = self.mol["x"]
        ok = self.second_order or (dm0 is not None and not np.isclose(x, self.hard_x))
        self.log.append((x, self.second_order, None if dm0 is None else float(dm0[0, 0]), ok))
        self.converged = ok
        return -1.0 - 0.01 * x

    def make_rdm1(self):
        return np.full((2, 2), self.mol["x"])  # the density "of" this geometry

    def nuc_grad_method(self):
        return types.SimpleNamespace(kernel=lambda: np.zeros((self.mol["n_atoms"], 3)))


@pytest.fixture
def fake_pyscf(monkeypatch):
    root = types.ModuleType("pyscf")
    gto = types.ModuleType("pyscf.gto")
    gto.M = lambda atom, **kw: {"n_atoms": len(atom), "x": round(float(atom[1][1][0]), 6), **kw}
    dft = types.ModuleType("pyscf.dft")
    dft.RKS = dft.UKS = _FakeSCF
    scf = types.ModuleType("pyscf.scf")
    scf.RHF = scf.UHF = _FakeSCF
    for name, module in (("pyscf", root), ("pyscf.gto", gto), ("pyscf.dft", dft), ("pyscf.scf", scf)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(_FakeSCF, "log", [])
    return _FakeSCF


def test_pyscf_frames_start_from_the_previous_density_and_retry_with_newton(fake_pyscf):
    from pesprobe.potentials.registry import calculator_factory

    factory = calculator_factory("pyscf:pbe/def2-svp")
    xs = [1.0, 1.5, 2.0, 2.5]
    frames = np.array([[[0.0, 0.0, 0.0], [x, 0.0, 0.0]] for x in xs])
    labels = label_frames(factory, np.array([1, 1]), frames)
    assert not labels.errors and np.isfinite(labels.energy).all()
    assert labels.retried == 2  # frame 0 (no previous frame) and the hard frame 2
    assert fake_pyscf.log == [
        (1.0, False, None, False), (1.0, True, None, True),  # from scratch: first-order fails, newton converges
        (1.5, False, 1.0, True),                               # guess: frame 0's density (from the retry)
        (2.0, False, 1.5, False), (2.0, True, 1.5, True),      # newton retry from the previous frame's density
        (2.5, False, 2.0, True),                               # the retry's density seeds the next frame
    ]


def test_pyscf_retry_failure_names_the_second_order_retry(fake_pyscf, monkeypatch):
    from pesprobe.potentials.registry import calculator_factory

    monkeypatch.setattr(fake_pyscf, "newton", lambda self: self)  # second order never converges here
    frames = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]])
    labels = label_frames(calculator_factory("pyscf:pbe/def2-svp"), np.array([1, 1]), frames)
    assert labels.retried == 1 and np.isnan(labels.energy[0])
    assert "second-order SCF (newton)" in labels.errors[0] and "not converged" in labels.errors[0]


def test_pyscf_warm_start_and_newton_retry_on_a_real_scan():
    pytest.importorskip("pyscf", reason="PySCF is an optional extra (pip install pesprobe[pyscf])")
    from pesprobe.potentials.pyscf_calc import PySCFCalculator
    from pesprobe.scan.geometry import bond_scan

    water = molecule("H2O")
    frames, _ = bond_scan(water.positions, 0, 1, np.array([0, 1, 0]), np.linspace(0.6, 1.8, 8))
    made = []

    def factory(**extra):
        def make():
            made.append(PySCFCalculator(xc="hf", basis="sto-3g", **extra))
            return made[-1]
        return make

    cold = label_frames(factory(warm_start=False), water.numbers, frames)
    cold_cycles = made[-1].cycles_total
    warm = label_frames(factory(), water.numbers, frames)
    assert not cold.errors and not warm.errors and warm.retried == 0
    np.testing.assert_allclose(warm.energy, cold.energy, atol=1e-5)  # the same SCF solutions
    np.testing.assert_allclose(warm.forces, cold.forces, atol=1e-4)
    assert made[-1].cycles_total < cold_cycles
    # two cycles are too few for plain SCF; the second-order retry (8 cycles) converges every frame
    few = label_frames(factory(max_cycle=2), water.numbers, frames)
    assert not few.errors and few.retried >= 1
    np.testing.assert_allclose(few.energy, cold.energy, atol=1e-5)
