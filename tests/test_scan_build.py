"""The scan builder end to end: published layout and BSCT round trips, resume, bad input, SCF failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.morse import MorsePotential
from ase.io import read as ase_read_frame
from ase.io import write

from pesprobe.data import ScanSet, load_scans, read_compact
from pesprobe.scan.build import build_scans
from pesprobe.scan.generate import ScanSettings
from pesprobe.scan.inputs import embed_all, read_structures

HERE = Path(__file__).resolve()


class PickyMorse(MorsePotential):
    """A Morse potential that raises (like an unconverged SCF) whenever two atoms are closer than
    ``fail_below`` Å, unless its ``max_iterations`` parameter reaches ``need``."""

    def __init__(self, fail_below: float, need: int, max_iterations: int = 10) -> None:
        super().__init__(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5)
        self.parameters["max_iterations"] = max_iterations
        self.fail_below, self.need = fail_below, need

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        d = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)].min()
        if d < self.fail_below and self.parameters["max_iterations"] < self.need:
            raise RuntimeError(f"SCF not converged in {self.parameters['max_iterations']} cycles (test)")
        super().calculate(atoms, properties, system_changes or ["positions", "numbers", "cell", "pbc"])


def retry_factory():
    return PickyMorse(fail_below=0.9, need=40)  # the builder's retry uses 4 x 10 iterations


def one_bad_frame_factory():
    return PickyMorse(fail_below=0.75, need=10**9)


def many_bad_frames_factory():
    return PickyMorse(fail_below=0.9, need=10**9)


def _min_distance(frame: np.ndarray) -> float:
    d = np.linalg.norm(frame[:, None] - frame[None], axis=-1)
    return float(d[np.triu_indices(len(frame), 1)].min())


@pytest.fixture
def molecules_file(tmp_path) -> Path:
    path = tmp_path / "mols.xyz"
    frames = []
    for name in ("CH3CH2OH", "H3CNH2"):
        atoms = molecule(name)
        atoms.info["name"] = name
        frames.append(atoms)
    write(path, frames, format="extxyz")
    return path


def test_bond_scans_round_trip_published_layout_and_bsct(tmp_path, molecules_file):
    from pesprobe.evaluate import evaluate

    structures, problems = read_structures(molecules_file)
    assert not problems and [s.name for s in structures] == ["CH3CH2OH", "H3CNH2"]
    out = tmp_path / "set"
    report = build_scans(structures, out, ScanSettings(n_points=20), bond_types=("C-C", "C-O", "C-N"),
                         progress=False)
    ids = report.scans.ids()
    assert ids == ["C-C/CH3CH2OH_0-1", "C-N/H3CNH2_0-1", "C-O/CH3CH2OH_1-2"]
    assert not report.dropped and report.n_labelled == 60
    published = load_scans(out, cache=False)
    assert published.ids() == ids and not published.problems
    for mine, theirs in zip(report.scans, published):
        np.testing.assert_array_equal(theirs.ref_energy, mine.ref_energy)
        np.testing.assert_allclose(theirs.positions, mine.positions, atol=1e-8)
        np.testing.assert_allclose(theirs.coordinate, mine.coordinate, atol=1e-12)
        i, j = theirs.meta["bond_index"]
        np.testing.assert_allclose(np.linalg.norm(theirs.positions[:, j] - theirs.positions[:, i], axis=1),
                                   theirs.coordinate, atol=2e-8)
        assert theirs.meta["bond"] == mine.meta["bond"] and len(theirs.meta["labels"]) == theirs.n_atoms
        assert np.all(np.isfinite(mine.ref_energy)) and mine.ref_energy.argmin() not in (0, 19)
    start = ase_read_frame(out / "C-O" / "CH3CH2OH_1-2" / "unperturbed.xyz")
    assert np.isfinite(start.get_potential_energy()) and np.abs(start.get_forces()).max() > 1e-4
    np.testing.assert_allclose(start.positions, report.scans["C-O/CH3CH2OH_1-2"].meta["unperturbed"], atol=1e-8)
    compact = read_compact(tmp_path / "set.npz")
    assert compact.ids() == ids and compact["C-O/CH3CH2OH_1-2"].meta["method"] == "gfn2-xtb"

    result = evaluate("gfn1-xtb", published, progress=False)
    assert set(result.systems) == set(ids)
    assert all(np.isfinite(v["full_smoothness"]) for v in result.systems.values())

    again = build_scans(structures, out, ScanSettings(n_points=20), bond_types=("C-C", "C-O", "C-N"),
                        progress=False)
    assert again.reused == 3 and again.n_labelled == 0 and again.scans.ids() == ids
    for work_file in (tmp_path / "set.build" / "scans").glob("C-N__H3CNH2_0-1-*.npz"):
        work_file.unlink()
    third = build_scans(structures, out, ScanSettings(n_points=20), bond_types=("C-C", "C-O", "C-N"),
                        progress=False)
    assert third.reused == 2 and third.n_labelled == 20


def test_rebuild_with_other_settings_or_molecules_reuses_nothing_stale(tmp_path, molecules_file):
    structures, _ = read_structures(molecules_file)
    out = tmp_path / "set"
    first = build_scans(structures, out, ScanSettings(n_points=8), bond_types=("C-C", "C-O"), progress=False)
    assert first.scans.ids() == ["C-C/CH3CH2OH_0-1", "C-O/CH3CH2OH_1-2"]
    # other settings: labelled again, and the folder holds exactly the new build
    second = build_scans(structures, out, ScanSettings(n_points=6), bond_types=("C-O",), progress=False)
    assert second.reused == 0 and second.n_labelled == 6
    on_disk = load_scans(out, cache=False)
    assert on_disk.ids() == ["C-O/CH3CH2OH_1-2"] and not on_disk.problems
    assert on_disk["C-O/CH3CH2OH_1-2"].n_frames == 6
    # another molecule under the same name is not mistaken for the old one
    moved = [s for s in structures if s.name == "CH3CH2OH"][0]
    moved.positions = moved.positions.copy()
    moved.positions[0] += 0.02
    third = build_scans([moved], out, ScanSettings(n_points=6), bond_types=("C-O",), progress=False)
    assert third.reused == 0 and third.n_labelled == 6


def test_angle_and_torsion_scans_are_made_and_scored(tmp_path):
    from pesprobe.evaluate import evaluate

    path = tmp_path / "propanol.xyz"
    write(path, molecule("CH3CH2OH"))
    structures, _ = read_structures(path)
    report = build_scans(structures, tmp_path / "set", ScanSettings(n_points=15), kinds=("angle", "torsion"),
                         per_type=1, progress=False)
    kinds = sorted(s.kind for s in report.scans)
    assert kinds == ["angle", "torsion"]
    for scan in report.scans:
        assert scan.meta["labels"].sum() >= 1 and len(scan.meta["atoms"]) == {"angle": 3, "torsion": 4}[scan.kind]
        assert np.isfinite(scan.ref_energy).all()
    torsion = next(s for s in report.scans if s.kind == "torsion")
    assert np.isclose(torsion.coordinate[-1] - torsion.coordinate[0], 2 * np.pi * 14 / 15)
    stored = read_compact(tmp_path / "set.npz")
    result = evaluate("gfn1-xtb", stored, progress=False)
    assert len(result.systems) == 2
    assert all(np.isfinite(v["full_smoothness"]) for v in result.systems.values())


def test_bad_inputs_are_reported_and_the_batch_goes_on(tmp_path):
    write(tmp_path / "ethanol.xyz", molecule("CH3CH2OH"))
    write(tmp_path / "benzene.xyz", molecule("C6H6"))
    write(tmp_path / "heavy.xyz", Atoms("OgC", positions=[[0, 0, 0], [0, 0, 2.0]]))
    (tmp_path / "nocell.extxyz").write_text('2\nProperties=species:S:1:pos:R:3 pbc="T T T"\n'
                                            'Si 0 0 0\nSi 1.3 1.3 1.3\n')
    structures, problems = embed_all([("C1CC(", "broken")])
    for name in ("ethanol.xyz", "benzene.xyz", "heavy.xyz", "nocell.extxyz"):
        found, bad = read_structures(tmp_path / name)
        structures += found
        problems += bad
    report = build_scans(structures, tmp_path / "set", ScanSettings(n_points=10), bond_types=("C-C", "C-O"),
                         problems=problems, progress=False)
    assert report.scans.ids() == ["C-C/ethanol_0-1", "C-O/ethanol_1-2"]
    text = "\n".join(str(p) for p in report.scans.problems)
    assert "broken" in text and "could not be parsed" in text
    assert "benzene: no scannable bond of type C-C/C-O" in text
    assert "element(s) Og not supported by gfn2-xtb" in text
    assert "nocell.extxyz" in text and "crystal without a cell" in text


def test_scf_failures_retry_nan_frames_and_dropped_scans(tmp_path, molecules_file):
    structures, _ = read_structures(molecules_file)
    ethanol = [s for s in structures if s.name == "CH3CH2OH"]

    def run(factory: str, name: str):
        settings = ScanSettings(reference=f"{HERE}:{factory}", n_points=30)
        return build_scans(ethanol, tmp_path / name, settings, bond_types=("C-O",), progress=False)

    retried = run("retry_factory", "retry")
    scan = retried.scans["C-O/CH3CH2OH_1-2"]
    assert np.isfinite(scan.ref_energy).all() and scan.meta["retried_frames"] >= 1

    kept = run("one_bad_frame_factory", "kept")
    scan = kept.scans["C-O/CH3CH2OH_1-2"]
    bad = [k for k in range(scan.n_frames) if _min_distance(scan.positions[k]) < 0.75]
    assert 1 <= len(bad) <= 0.05 * scan.n_frames
    assert sorted(int(k) for k in scan.meta["failures"]) == bad
    assert "SCF not converged" in scan.meta["failures"][str(bad[0])]
    assert np.isnan(scan.ref_energy[bad]).all() and np.isfinite(np.delete(scan.ref_energy, bad)).all()
    assert "C-O/CH3CH2OH_1-2" in kept.notes
    reread = load_scans(tmp_path / "kept", cache=False)["C-O/CH3CH2OH_1-2"]
    assert np.isnan(reread.ref_energy[bad]).all()

    dropped = run("many_bad_frames_factory", "dropped")
    assert len(dropped.scans) == 0
    assert "frames failed (limit 5%)" in dropped.dropped["C-O/CH3CH2OH_1-2"]


def test_crystal_bond_scan(tmp_path):
    path = tmp_path / "Cu.cif"
    write(path, bulk("Cu", "fcc", a=3.6, cubic=True))
    structures, problems = read_structures(path)
    assert not problems and structures[0].periodic
    settings = ScanSettings(reference="ase.calculators.emt:EMT", n_points=6, cutoff=3.0)
    report = build_scans(structures, tmp_path / "set", settings, per_type=1, progress=False)
    scan = report.scans.scans[0]
    assert scan.id.startswith("Cu-Cu/") and scan.cell is not None and scan.pbc.all()
    assert scan.n_atoms == 4 * 4 ** 3  # 14.4 Å > 2 x 5.28 Å + 0.5 Å (the longest Cu-Cu distance scanned)
    i, j = scan.meta["bond_index"]
    atoms = Atoms(numbers=scan.numbers, cell=scan.cell, pbc=True)
    for k in range(6):
        atoms.positions = scan.positions[k]
        assert np.isclose(atoms.get_distance(i, j, mic=True), scan.coordinate[k], atol=1e-8)
    moved = np.flatnonzero(np.any(scan.positions[-1] != scan.positions[0], axis=1))
    assert moved.tolist() == [j]
    assert np.isfinite(scan.ref_energy).all()
    # the published layout keeps the cell: BSCT must score the crystal, not a cluster cut from it
    reread = load_scans(tmp_path / "set", cache=False)[scan.id]
    np.testing.assert_allclose(reread.cell, scan.cell, atol=1e-9)
    assert reread.pbc.all()
    from pesprobe.evaluate import evaluate

    result = evaluate("ase.calculators.emt:EMT", ScanSetOf(reread), progress=False)
    assert result.metrics[0].values["full_energy_mae"] < 1e-4  # the reference reproduces itself (8-decimal files)


def ScanSetOf(scan):  # noqa: N802 - reads as a constructor
    return ScanSet([scan])


def test_published_strings_are_quoted_for_extxyz_readers(tmp_path):
    from ase.io import read as ase_read

    from pesprobe.data import Scan, write_published

    scan = Scan(id="N-C/alanine", kind="bond", numbers=[7, 6], positions=np.zeros((3, 2, 3)) + [[0, 0, 0], [1.4, 0, 0]],
                coordinate=np.array([1.3, 1.4, 1.5]), ref_energy=np.array([-1.0, -2.0, -1.5]),
                ref_forces=np.zeros((3, 2, 3)), meta={"bond": "N-C", "smiles": "N[C@@H](C)C(=O)O"})
    write_published([scan], tmp_path)
    atoms = ase_read(tmp_path / "N-C" / "alanine" / "atoms_1.xyz")
    assert atoms.info["smiles"] == "N[C@@H](C)C(=O)O" and atoms.get_potential_energy() == -2.0
    assert load_scans(tmp_path, cache=False)["N-C/alanine"].meta["smiles"] == "N[C@@H](C)C(=O)O"


def test_cli_scan_build(tmp_path):
    from typer.testing import CliRunner

    from pesprobe.cli import app

    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["scan", "build", "--smiles", "CCO", "--smiles", "not_a_smiles(",
                                      "--bonds", "C-O", "--points", "10", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1 scans (C-O 1)" in result.output
    assert (out / "build.json").exists() and (tmp_path / "cli.npz").exists()
    assert load_scans(out, cache=False).ids() == ["C-O/smiles_1_1-2"]
    bad = CliRunner().invoke(app, ["scan", "build", "--smiles", "CCO", "--reference", "nonsense",
                                   "--out", str(out)])
    assert bad.exit_code == 2 and "unknown SPEC" in bad.output
