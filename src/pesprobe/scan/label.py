"""Reference labels: energies and forces from an ASE calculator, with an SCF retry, and relaxation.

The retry of a failed frame (:func:`retry_calculator`): a calculator with a ``for_retry(factor)``
method makes its own (PySCF: second-order SCF from the previous frame's density matrix, more cycles);
any other is replaced by a fresh one with :data:`RETRY_ITERATION_FACTOR` times its iteration limit.

The reference is named by a SPEC string (``gfn2-xtb`` ...) and built by
:func:`pesprobe.potentials.registry.calculator_factory`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

#: Highest atomic number each tight-binding SPEC supports (tblite: H-Rn).
MAX_Z = {"gfn2-xtb": 86, "gfn1-xtb": 86}
#: On a retry the SCF iteration limit is multiplied by this factor.
RETRY_ITERATION_FACTOR = 4
_ITERATION_KEYS = ("max_iterations", "max_cycle", "maxiter")


class UnsupportedElementError(ValueError):
    """A structure holds an element the reference method does not support."""


def check_elements(numbers: np.ndarray, spec: str) -> None:
    """Raise :class:`UnsupportedElementError` if ``spec`` is known not to support an element of ``numbers``."""
    limit = MAX_Z.get(spec.strip().lower())
    if limit is None:
        return
    bad = sorted({int(z) for z in numbers if z > limit or z < 1})
    if bad:
        names = ", ".join(chemical_symbols[z] if z < len(chemical_symbols) else f"Z={z}" for z in bad)
        raise UnsupportedElementError(f"element(s) {names} not supported by {spec} (supports H-Rn, Z=1-{limit})")


def with_more_iterations(calc: Any) -> Any:
    """Raise the SCF iteration limit of ``calc`` by :data:`RETRY_ITERATION_FACTOR` if it has a known one."""
    params = getattr(calc, "parameters", None) or {}
    for key in _ITERATION_KEYS:
        if key in params and hasattr(calc, "set"):
            calc.set(**{key: int(params[key]) * RETRY_ITERATION_FACTOR})
            break
    return calc


def retry_calculator(calc: Any, factory: Callable[[], Any]) -> Any:
    """The calculator for the second try of a frame on which ``calc`` failed: ``calc.for_retry(factor)``
    if ``calc`` has it (it may carry state over, such as the last converged SCF solution), else a
    fresh calculator from ``factory`` with :data:`RETRY_ITERATION_FACTOR` times the iteration limit."""
    hook = getattr(calc, "for_retry", None)
    if callable(hook):
        return hook(RETRY_ITERATION_FACTOR)
    return with_more_iterations(factory())


@dataclass
class Labels:
    """Reference results for the frames of one structure.

    Attributes
    ----------
    energy : ndarray, shape (n_frames,)
        Energies in eV (NaN where failed).
    forces : ndarray, shape (n_frames, n_atoms, 3)
        Forces in eV/Å (NaN where failed).
    errors : dict[int, str]
        Reason for each failed frame.
    retried : int
        Frames that needed the retry (and then succeeded or failed).
    """

    energy: np.ndarray
    forces: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)
    retried: int = 0

    @property
    def failed_fraction(self) -> float:
        """Fraction of frames without a label."""
        return len(self.errors) / max(len(self.energy), 1)


def _single_point(atoms: Atoms, calc: Any) -> tuple[float, np.ndarray]:
    atoms.calc = calc
    energy = float(atoms.get_potential_energy())
    forces = np.asarray(atoms.get_forces(), dtype=float)
    if not (np.isfinite(energy) and np.isfinite(forces).all()):
        raise FloatingPointError("non-finite energy or forces")
    return energy, forces


def label_frames(factory: Callable[[], Any], numbers: np.ndarray, frames: np.ndarray,
                 cell: np.ndarray | None = None, pbc: np.ndarray | None = None) -> Labels:
    """Energies and forces of ``frames`` (n_frames, n_atoms, 3; Å) from calculators made by ``factory``.

    Frames are computed in order with one calculator, so an SCF can start from the previous frame's
    solution (tblite keeps it; PySCF starts from the last converged density matrix). A frame on which
    the calculator raises is retried once with :func:`retry_calculator`; if that fails too the frame is
    NaN and the reason is kept in :attr:`Labels.errors`. After a failure, a calculator with a
    ``for_retry`` method carries on (its state is the last converged frame's, or the retry's); any
    other is replaced by a fresh one.
    """
    n_frames, n_atoms = frames.shape[:2]
    energy = np.full(n_frames, np.nan)
    forces = np.full((n_frames, n_atoms, 3), np.nan)
    errors: dict[int, str] = {}
    retried = 0
    atoms = Atoms(numbers=numbers, positions=frames[0], cell=cell, pbc=False if pbc is None else pbc)
    calc = factory()
    for k in range(n_frames):
        atoms.positions = frames[k]
        try:
            energy[k], forces[k] = _single_point(atoms, calc)
            continue
        except Exception as first:  # noqa: BLE001 - any SCF or calculator failure
            reason = f"{type(first).__name__}: {first}"
        retried += 1
        retry = retry_calculator(calc, factory)
        how = getattr(retry, "retry_description", "retry with more iterations")
        if not callable(getattr(calc, "for_retry", None)):
            calc = factory()
        try:
            energy[k], forces[k] = _single_point(atoms, retry)
        except Exception as second:  # noqa: BLE001
            errors[k] = f"{reason}; {how}: {type(second).__name__}: {second}"
    return Labels(energy=energy, forces=forces, errors=errors, retried=retried)


@dataclass
class Relaxation:
    """Result of :func:`relax`: positions (n_atoms, 3) in Å, final max force in eV/Å, steps, convergence."""

    positions: np.ndarray
    fmax: float
    steps: int
    converged: bool


def relax(atoms: Atoms, factory: Callable[[], Any], fmax: float = 0.05, max_step: float = 0.2,
          steps: int = 500) -> Relaxation:
    """Relax ``atoms`` (not modified) with BFGS on the reference; ``max_step`` caps each step (Å).

    Raises
    ------
    Exception
        Whatever the calculator raises on the starting geometry (e.g. an unsupported element).
    """
    from ase.optimize import BFGS

    work = atoms.copy()
    work.calc = factory()
    opt = BFGS(work, maxstep=max_step, logfile=None)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    final = float(np.linalg.norm(work.get_forces(), axis=1).max())
    return Relaxation(positions=work.positions.copy(), fmax=final, steps=int(opt.nsteps), converged=converged)
