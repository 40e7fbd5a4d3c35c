"""The PySCF adapter: a clear error without PySCF, unit conversion and SCF failures with a stand-in module."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import CalculationFailed
from ase.units import Bohr, Hartree

from pesprobe.potentials.registry import calculator_factory


def test_missing_pyscf_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyscf", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"pip install pesprobe\[pyscf\]"):
        calculator_factory("pyscf:pbe/def2-svp")


class _FakeSCF:
    converge = True

    def __init__(self, mol):
        self.mol = mol
        self.converged = False

    def kernel(self, dm0=None):
        self.converged = self.converge
        return -1.5  # hartree

    def newton(self):
        return self

    def make_rdm1(self):
        return np.eye(2)

    def nuc_grad_method(self):
        n = self.mol["n_atoms"]
        return types.SimpleNamespace(kernel=lambda: np.tile([0.0, 0.0, 0.1], (n, 1)))  # hartree/bohr


@pytest.fixture
def fake_pyscf(monkeypatch):
    root = types.ModuleType("pyscf")
    gto = types.ModuleType("pyscf.gto")
    gto.M = lambda atom, **kw: {"n_atoms": len(atom), **kw}
    dft = types.ModuleType("pyscf.dft")
    dft.RKS = dft.UKS = _FakeSCF
    scf = types.ModuleType("pyscf.scf")
    scf.RHF = scf.UHF = _FakeSCF
    for name, module in (("pyscf", root), ("pyscf.gto", gto), ("pyscf.dft", dft), ("pyscf.scf", scf)):
        monkeypatch.setitem(sys.modules, name, module)
    return _FakeSCF


def test_units_and_unconverged_scf(fake_pyscf, monkeypatch):
    factory = calculator_factory("pyscf:b3lyp/def2-svp")
    calc = factory()
    assert calc.parameters["xc"] == "b3lyp" and calc.parameters["basis"] == "def2-svp"
    atoms = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    atoms.calc = calc
    assert np.isclose(atoms.get_potential_energy(), -1.5 * Hartree)
    np.testing.assert_allclose(atoms.get_forces(), np.tile([0, 0, -0.1 * Hartree / Bohr], (3, 1)))
    monkeypatch.setattr(fake_pyscf, "converge", False)
    with pytest.raises(CalculationFailed, match="not converged"):
        factory().get_potential_energy(atoms.copy())
