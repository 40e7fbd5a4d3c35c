"""Optional third-party adapters: missing-extra errors, the molecule-in-a-box and child-process wrappers,
and (where the extras are installed) the real SevenNet, CHGNet and GFN-FF calculators."""

import os
import signal
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import CalculationFailed, all_changes
from ase.calculators.morse import MorsePotential
from typer.testing import CliRunner

from pesprobe.cli import app
from pesprobe.potentials.ase_adapter import AseCalculatorPotential
from pesprobe.potentials.boxed import MoleculeInBox, boxed_copy
from pesprobe.potentials.isolated import IsolatedCalculator
from pesprobe.potentials.optional import MissingExtra, require
from pesprobe.potentials.registry import SpecError, resolve

MORSE = dict(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5)


def molecule(shift: float = 0.0) -> Atoms:
    return Atoms("CCH", positions=[[0.0, 0.0, 0.0], [1.5 + shift, 0.0, 0.0], [2.2, 1.0, 0.3]])


class PeriodicOnlyMorse(MorsePotential):
    """Morse that refuses structures without a full periodic cell, and remembers the last cell."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if not atoms.pbc.all() or atoms.cell.volume <= 0:
            raise ValueError("needs a periodic cell")
        self.last_atoms = atoms.copy()
        super().calculate(atoms, properties, system_changes)


class Troublesome(MorsePotential):
    """Morse that talks on stdout, writes into its working folder, raises, or kills its process."""

    def __init__(self):
        super().__init__(**MORSE)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        print("BANNER from the calculator")
        with open("topology_file", "w") as fh:
            fh.write("x")
        x = atoms.positions[1, 0]
        if x > 2.9:
            os.kill(os.getpid(), signal.SIGKILL)  # a native crash: no Python exception to catch
        if x < 1.0:
            raise RuntimeError("SCF did not converge")
        super().calculate(atoms, properties, system_changes)


def test_require_names_the_extra(tmp_path, monkeypatch):
    assert require("json", "none").dumps([]) == "[]"
    monkeypatch.setitem(sys.modules, "sevenn", None)
    with pytest.raises(MissingExtra, match=r"sevenn is not usable \(not installed\); install it with: "
                                           r"pip install 'pesprobe\[sevenn\]'") as info:
        require("sevenn.calculator", "sevenn")
    assert info.value.package == "sevenn" and info.value.extra == "sevenn" and isinstance(info.value, SpecError)
    (tmp_path / "brokenpkg.py").write_text("raise RuntimeError('needs libfoo.so')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(MissingExtra, match=r"brokenpkg is not usable \(RuntimeError: needs libfoo.so\).*"
                                           r"pesprobe\[xtb\]"):
        require("brokenpkg", "xtb")


@pytest.mark.parametrize("spec,module,extra", [("7net-0", "sevenn", "sevenn"), ("chgnet", "chgnet", "chgnet"),
                                               ("gfn-ff", "xtb", "xtb")])
def test_specs_without_their_extra_fail_clearly(spec, module, extra, monkeypatch, small_copy, tmp_path):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra, match=rf"pesprobe\[{extra}\]"):
        resolve(spec)
    res = CliRunner().invoke(app, ["bsct", "--data", str(small_copy), "--calc", spec, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and f"pip install 'pesprobe[{extra}]'" in res.output


def test_boxed_copy_centres_molecule_in_cubic_cell():
    atoms = molecule()
    boxed = boxed_copy(atoms, vacuum=20.0)
    extent = np.ptp(atoms.positions, axis=0).max()
    assert boxed.pbc.all() and np.allclose(boxed.cell, np.eye(3) * (extent + 20.0))
    pos = boxed.positions
    assert np.allclose((pos.min(0) + pos.max(0)) / 2, (extent + 20.0) / 2)
    assert np.allclose(pos - pos[0], atoms.positions - atoms.positions[0]) and not atoms.pbc.any()


def test_molecule_in_box_gives_the_molecule_result():
    inner = PeriodicOnlyMorse(**MORSE)
    boxed = MoleculeInBox(inner, vacuum=12.0)
    with pytest.raises(ValueError, match="needs a periodic cell"):
        atoms = molecule()
        atoms.calc = inner
        atoms.get_potential_energy()
    for shift in (0.0, 0.4):
        ref = molecule(shift)
        ref.calc = MorsePotential(**MORSE)
        atoms = molecule(shift)
        atoms.calc = boxed
        assert atoms.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-12)
        assert np.allclose(atoms.get_forces(), ref.get_forces(), atol=1e-12)
    assert inner.last_atoms.pbc.all() and inner.last_atoms.cell[0, 0] == pytest.approx(2.2 + 12.0)
    crystal = molecule()
    crystal.set_cell(np.eye(3) * 9.0)
    crystal.pbc = True
    crystal.calc = boxed
    crystal.get_potential_energy()
    assert np.allclose(inner.last_atoms.cell, np.eye(3) * 9.0)  # periodic input passed as it is
    boxed.reset()
    assert inner.results == {} and boxed.parameters["vacuum"] == 12.0
    with pytest.raises(ValueError, match="vacuum must be positive"):
        MoleculeInBox(inner, vacuum=0)


def test_isolated_calculator_survives_crashes_and_keeps_the_caller_clean(tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    n = 8
    numbers = np.array([6, 6, 1])
    positions = np.repeat(molecule().positions[None], n, axis=0)
    positions[:, 1, 0] = np.linspace(0.9, 3.0, n)  # frame 0 raises, frame 7 kills the process
    isolated = AseCalculatorPotential(lambda: IsolatedCalculator(Troublesome, name="troublesome"))
    pred = isolated.predict(numbers, positions)
    plain = AseCalculatorPotential(lambda: MorsePotential(**MORSE)).predict(numbers, positions)
    assert pred.failed.tolist() == [True] + [False] * 6 + [True]
    assert "RuntimeError: SCF did not converge" in pred.errors[0]
    assert "troublesome process died (exit status -9)" in pred.errors[7]
    assert np.allclose(pred.forces[1:7], plain.forces[1:7]) and np.allclose(pred.energy[1:7], plain.energy[1:7])
    assert not (tmp_path / "topology_file").exists()
    assert "BANNER" not in capfd.readouterr().out
    # after the crash, a later frame starts a new child
    calc = IsolatedCalculator(Troublesome)
    atoms = Atoms(numbers=numbers, positions=positions[7])
    atoms.calc = calc
    with pytest.raises(CalculationFailed, match="process died"):
        atoms.get_potential_energy()
    atoms.positions = positions[3]
    assert atoms.get_potential_energy() == pytest.approx(plain.energy[3])
    calc.reset()
    assert calc._child is None


def _short_scan(sample_dir):
    from pesprobe.data import load_scans

    return load_scans(sample_dir)["N-O/4583"]


@pytest.mark.parametrize("spec,module", [("7net-0", "sevenn"), ("chgnet", "chgnet"), ("gfn-ff", "xtb")])
def test_installed_adapters_give_sensible_forces(spec, module, sample_dir, tmp_path, monkeypatch):
    pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    scan = _short_scan(sample_dir)
    frames = slice(28, 40)  # around the DFT minimum (frame 32)
    pred = resolve(spec).predict(scan.numbers, scan.positions[frames])
    assert pred.n_failed == 0 and np.isfinite(pred.energy).all()
    mae = np.abs(pred.forces - scan.ref_forces[frames]).mean()
    assert mae < 2.0, f"{spec}: force MAE {mae:.2f} eV/Å near the minimum"
    assert not list(tmp_path.iterdir())  # nothing written into the working folder
