"""PySCF DFT (or Hartree-Fock) as an ASE calculator: reference labels for ``pyscf:<xc>/<basis>`` SPECs.

PySCF is an optional extra (``pip install pesprobe[pyscf]``); it is imported only when a factory is made.
Molecules only (no periodic boundary conditions).

Along a scan (one calculator, frames in order, as :func:`pesprobe.scan.label.label_frames` runs them)
each SCF starts from the density matrix of the last converged frame instead of PySCF's atomic guess:
neighbouring frames differ by a small displacement, so this converges in fewer cycles and follows the
same electronic state. A frame that still fails is retried by :meth:`PySCFCalculator.for_retry`:
second-order SCF (``mf.newton()``) from that same density, with more cycles.
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
    warm_start : bool
        Start each SCF from the density matrix of the last converged calculation of this calculator
        (same elements, basis, charge and spin), else from PySCF's default guess.
    newton : bool
        Second-order SCF (``mf.newton()``): slower per cycle, but converges where plain DIIS
        oscillates; :meth:`for_retry` turns it on.
    """

    implemented_properties = ["energy", "forces"]
    default_parameters = {"xc": "pbe", "basis": "def2-svp", "charge": 0, "spin": 0, "max_cycle": 100,
                          "conv_tol": 1e-9, "warm_start": True, "newton": False}

    def __init__(self, guess: dict | None = None, **kwargs: Any) -> None:
        self._pyscf = _import_pyscf()
        super().__init__(**kwargs)
        #: The last converged density matrix (``"dm"``) and what it belongs to (``"key"``); shared with
        #: the calculators :meth:`for_retry` makes, so a converged retry seeds the next frame.
        self.guess = guess if guess is not None else {"dm": None, "key": None}
        #: Whether the last SCF started from :attr:`guess` (False: PySCF's default guess).
        self.used_guess = False
        #: SCF cycles run by this calculator so far (as PySCF counts them; first-order SCF only).
        self.cycles_total = 0

    def for_retry(self, iteration_factor: int = 4) -> "PySCFCalculator":
        """A calculator for the retry of a failed frame: second-order SCF (``newton``) with
        ``iteration_factor`` times the cycle limit, starting from the last converged density of this
        calculator (the previous frame's along a scan); what it converges seeds the next frame."""
        params = dict(self.parameters)
        params.update(newton=True, max_cycle=int(params["max_cycle"]) * int(iteration_factor))
        return PySCFCalculator(guess=self.guess, **params)

    @property
    def retry_description(self) -> str:
        """How :meth:`for_retry` retries (for error messages)."""
        return "retry with second-order SCF (newton) from the previous frame's density"

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
        if p.get("newton"):
            mf = mf.newton()
        mf.max_cycle = int(p.max_cycle)
        mf.conv_tol = float(p.conv_tol)
        key = (tuple(self.atoms.numbers.tolist()), str(p.basis).lower(), int(p.charge), int(p.spin),
               str(p.xc).lower() == "hf")
        dm0 = self.guess["dm"] if p.get("warm_start", True) and self.guess["key"] == key else None
        self.used_guess = dm0 is not None
        energy = mf.kernel(dm0=dm0)
        self.cycles_total += int(getattr(mf, "cycles", 0) or 0)
        if not mf.converged:
            how = "second-order SCF" if p.get("newton") else "SCF"
            start = "previous frame's density" if self.used_guess else "default guess"
            raise CalculationFailed(f"PySCF {how} ({p.xc}/{p.basis}) not converged in {p.max_cycle} cycles "
                                    f"(from the {start})")
        self.guess.update(dm=np.asarray(mf.make_rdm1()), key=key)
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
