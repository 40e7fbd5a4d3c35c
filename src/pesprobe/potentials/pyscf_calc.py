"""PySCF DFT (or Hartree-Fock) as an ASE calculator: reference labels for ``pyscf:<xc>/<basis>`` SPECs.

PySCF is an optional extra (``pip install pesprobe[pyscf]``); it is imported only when a factory is made.
Molecules only (no periodic boundary conditions).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, CalculationFailed, all_changes
from ase.units import Bohr, Hartree

MISSING = "PySCF is not installed; install the optional extra with `pip install pesprobe[pyscf]`"


def _import_pyscf() -> Any:
    try:
        return importlib.import_module("pyscf")
    except ImportError as exc:
        raise ImportError(MISSING) from exc


class PySCFCalculator(Calculator):
    """Energy (eV) and forces (eV/Å) from a PySCF SCF calculation.

    Parameters
    ----------
    xc : str
        Exchange-correlation functional (``pbe``, ``b3lyp``, ``wb97x-d`` ...), or ``hf`` for Hartree-Fock.
    basis : str
        Basis set (``def2-svp``, ``6-31g*`` ...).
    charge : int
        Total charge.
    spin : int
        2S (number of unpaired electrons); restricted when 0, unrestricted otherwise.
    max_cycle : int
        SCF iteration limit; an SCF that does not converge raises ``CalculationFailed``.
    conv_tol : float
        SCF energy convergence threshold in hartree.
    """

    implemented_properties = ["energy", "forces"]
    default_parameters = {"xc": "pbe", "basis": "def2-svp", "charge": 0, "spin": 0, "max_cycle": 100,
                          "conv_tol": 1e-9}

    def __init__(self, **kwargs: Any) -> None:
        self._pyscf = _import_pyscf()
        super().__init__(**kwargs)

    def calculate(self, atoms=None, properties=("energy", "forces"), system_changes=all_changes) -> None:
        """Run the SCF and the nuclear gradient for ``atoms``."""
        super().calculate(atoms, properties, system_changes)
        if self.atoms.pbc.any():
            raise CalculationFailed("PySCFCalculator handles molecules only (pbc must be False)")
        gto, scf, dft = (importlib.import_module(f"pyscf.{m}") for m in ("gto", "scf", "dft"))
        p = self.parameters
        mol = gto.M(atom=[(s, tuple(xyz)) for s, xyz in zip(self.atoms.get_chemical_symbols(),
                                                               self.atoms.positions)],
                    basis=p.basis, charge=int(p.charge), spin=int(p.spin), unit="Angstrom", verbose=0)
        if str(p.xc).lower() == "hf":
            mf = scf.RHF(mol) if int(p.spin) == 0 else scf.UHF(mol)
        else:
            mf = dft.RKS(mol) if int(p.spin) == 0 else dft.UKS(mol)
            mf.xc = p.xc
        mf.max_cycle = int(p.max_cycle)
        mf.conv_tol = float(p.conv_tol)
        energy = mf.kernel()
        if not mf.converged:
            raise CalculationFailed(f"PySCF SCF ({p.xc}/{p.basis}) not converged in {p.max_cycle} cycles")
        gradient = np.asarray(mf.nuc_grad_method().kernel(), dtype=float)
        self.results = {"energy": float(energy) * Hartree, "forces": -gradient * Hartree / Bohr}


def pyscf_factory(xc: str, basis: str, **kwargs: Any) -> Callable[[], PySCFCalculator]:
    """A zero-argument callable returning a fresh :class:`PySCFCalculator` for ``xc``/``basis``.

    Raises
    ------
    ImportError
        Right away, if PySCF is not installed (the message says ``pip install pesprobe[pyscf]``).
    """
    _import_pyscf()

    def factory() -> PySCFCalculator:
        return PySCFCalculator(xc=xc, basis=basis, **kwargs)

    factory.__name__ = f"pyscf_{xc}_{basis}"
    return factory
