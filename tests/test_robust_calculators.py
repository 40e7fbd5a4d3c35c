"""Calculators that misbehave fail frames with a reason or stop with one clear line (issue 13, Calculators)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes

from pesprobe.bsct import evaluate
from pesprobe.data import ScanSet
from pesprobe.potentials.ase_adapter import AseCalculatorPotential, make_calculator
from pesprobe.potentials.base import PotentialError, Predictions

from conftest import make_scan


class Returns(Calculator):
    """Returns the given energy and forces whatever the geometry."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, energy, forces) -> None:
        super().__init__()
        self.fixed_energy, self.fixed_forces = energy, forces

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": self.fixed_energy, "forces": self.fixed_forces}


@pytest.mark.parametrize("energy, forces, reason", [
    (1.0, np.ones((1, 3)), "forces have shape (1, 3), expected (3, 3)"),
    (1.0, np.ones((3, 2)), "forces have shape (3, 2), expected (3, 3)"),
    (1.0, np.ones(9), "forces have shape (9,), expected (3, 3)"),
    (np.ones(2), np.ones((3, 3)), "energy must be one number, got shape (2,)"),
    (1.0, np.ones((3, 3)) * (1 + 1j), "forces must hold real numbers, got dtype complex128"),
    ("1.0", np.ones((3, 3)), "energy must hold real numbers"),
])
def test_results_of_the_wrong_shape_or_type_fail_the_frame(energy, forces, reason):
    scan = make_scan(n_frames=6)
    pred = AseCalculatorPotential(Returns(energy, forces)).predict(scan.numbers, scan.positions)
    assert pred.failed.all()
    assert all(reason in text for text in pred.errors.values()), pred.errors[0]


def test_one_atom_forces_are_not_broadcast_into_a_score():
    scan = make_scan(n_frames=6)
    result = evaluate(Returns(1.0, np.ones((1, 3))), ScanSet([scan]), progress=False)
    m = result.metrics[0]
    assert m.n_failed == scan.n_frames and m.flagged and np.isnan(m.values["full_smoothness"])


@pytest.mark.parametrize("energy, forces, reason", [
    (np.zeros(4), np.zeros((4, 3, 3)) + 0j, "forces must hold real numbers"),
    (np.array(["a"] * 4), np.zeros((4, 3, 3)), "energy must hold real numbers"),
    (np.zeros(4), np.zeros((4, 3)), "forces must have shape (n_frames, n_atoms, 3)"),
])
def test_batched_predictions_check_types_and_shapes(energy, forces, reason):
    with pytest.raises(PotentialError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        Predictions.from_arrays(energy, forces)


def needs_an_argument(model_path):
    raise AssertionError("never called")


def raises_on_creation():
    raise RuntimeError("licence server unreachable\ntraceback details here")


def test_a_factory_that_needs_an_argument_is_refused_in_one_line():
    with pytest.raises(PotentialError) as info:
        AseCalculatorPotential(needs_an_argument)
    text = str(info.value)
    assert "\n" not in text and "needs_an_argument(model_path)" in text and "must take none" in text
    assert isinstance(info.value, ValueError)  # the CLI prints ValueErrors as one 'error:' line


def test_a_factory_that_raises_gives_one_line_naming_it():
    with pytest.raises(PotentialError) as info:
        AseCalculatorPotential(raises_on_creation).identity()
    assert str(info.value) == ("calculator factory raises_on_creation raised RuntimeError: "
                               "licence server unreachable")
    with pytest.raises(PotentialError, match="raises_on_creation raised RuntimeError"):
        make_calculator(raises_on_creation)


USER_CALC = '''
import numpy as np
from ase.calculators.calculator import Calculator, all_changes

SCALE = {scale}


class Harmonic(Calculator):
    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        x = atoms.positions
        self.results = {{"energy": SCALE * float((x ** 2).sum()), "forces": -2 * SCALE * x}}


def make():
    return Harmonic()
'''


def _write_user_calc(path: Path, scale: float) -> None:
    path.write_text(USER_CALC.format(scale=scale))


def test_editing_a_user_calculator_invalidates_its_cached_predictions(tmp_path):
    source = tmp_path / "usercalc.py"
    scans = ScanSet([make_scan(n_frames=8)])
    _write_user_calc(source, 1.0)
    first = evaluate(f"{source}:make", scans, out=tmp_path / "out", progress=False)
    _write_user_calc(source, 2.0)
    second = evaluate(f"{source}:make", scans, out=tmp_path / "out", progress=False)
    assert first.identity != second.identity
    np.testing.assert_allclose(second.predictions["C-C/gen"].energy, 2 * first.predictions["C-C/gen"].energy)


def _import(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_default_identity_covers_the_factory_source(tmp_path, monkeypatch):
    source = tmp_path / "userfactory.py"
    source.write_text("from ase.calculators.morse import MorsePotential\n\n\ndef make():\n"
                      "    return MorsePotential()\n")
    monkeypatch.setitem(sys.modules, "userfactory", None)  # removed again after the test
    before = AseCalculatorPotential(_import(source, "userfactory").make).identity()
    source.write_text(source.read_text() + "\n# wraps it differently now\n")
    after = AseCalculatorPotential(_import(source, "userfactory").make).identity()
    assert before != after
    assert AseCalculatorPotential(_import(source, "userfactory").make).identity() == after
