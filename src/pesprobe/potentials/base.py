"""The one interface every potential meets, and the result type it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


class PotentialError(ValueError):
    """A potential that cannot be built or called as pesprobe needs (a factory that raises or wants
    arguments, results of the wrong shape or type). The message is one line naming the culprit;
    the command line prints it as ``error: ...``."""


def real_array(name: str, value: object) -> np.ndarray:
    """``value`` as a float64 array, if it holds real numbers (bool, int or float dtype).

    Raises
    ------
    PotentialError
        If ``value`` is complex, text, an object array or not array-like; the message names ``name``.
    """
    try:
        array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any unconvertible object
        raise PotentialError(f"{name} is not array-like ({type(exc).__name__}: {exc})") from None
    if array.dtype.kind not in "biuf":
        raise PotentialError(f"{name} must hold real numbers, got dtype {array.dtype} ({type(value).__name__})")
    return array.astype(np.float64)


@dataclass
class Predictions:
    """Model results for the frames of one structure batch (typically one scan).

    Attributes
    ----------
    energy : ndarray, shape (n_frames,)
        Model energies in eV; NaN for failed frames or for models that give no energy.
    forces : ndarray, shape (n_frames, n_atoms, 3)
        Model forces in eV/Å; NaN for failed frames.
    failed : ndarray, shape (n_frames,), bool
        True where the model raised or returned non-finite forces.
    errors : dict[int, str]
        Error text for each failed frame index.
    seconds : float
        Wall time spent in the model for these frames.
    """

    energy: np.ndarray
    forces: np.ndarray
    failed: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0

    @classmethod
    def from_arrays(cls, energy: np.ndarray, forces: np.ndarray, seconds: float = 0.0) -> Predictions:
        """Wrap raw arrays, marking as failed the frames with non-finite forces, an infinite energy, or a
        NaN energy where other frames have one (a model may give no energy at all: all NaN).

        Parameters
        ----------
        energy : array-like, shape (n_frames,) (or any shape of n_frames values)
            Energies in eV (real numbers).
        forces : array-like, shape (n_frames, n_atoms, 3)
            Forces in eV/Å (real numbers).
        seconds : float
            Wall time, s.

        Raises
        ------
        PotentialError
            If either array is not real-valued or has the wrong shape.
        """
        energy = real_array("energy", energy).reshape(-1)
        forces = real_array("forces", forces)
        if forces.ndim != 3 or forces.shape[0] != energy.shape[0] or forces.shape[2] != 3:
            raise PotentialError(f"forces must have shape (n_frames, n_atoms, 3) with n_frames={energy.shape[0]}, "
                                 f"got {forces.shape}")
        bad_forces = ~np.isfinite(forces).all(axis=(1, 2))
        bad_energy = np.isinf(energy) | (np.isnan(energy) & np.isfinite(energy).any())
        bad = bad_forces | bad_energy
        errors = {int(i): "non-finite " + ("forces" if bad_forces[i] else "energy") for i in np.flatnonzero(bad)}
        forces = forces.copy()
        energy = energy.copy()
        forces[bad] = np.nan
        energy[bad] = np.nan
        return cls(energy=energy, forces=forces, failed=bad, errors=errors, seconds=seconds)

    @property
    def n_failed(self) -> int:
        """Number of failed frames."""
        return int(self.failed.sum())

    @property
    def has_energy(self) -> bool:
        """True if the model gave an energy for every successful frame."""
        ok = ~self.failed
        return bool(ok.any() and np.isfinite(self.energy[ok]).all())


@runtime_checkable
class Potential(Protocol):
    """A potential that evaluates many geometries of one set of atoms in one call.

    Implementations: :class:`~pesprobe.potentials.ase_adapter.AseCalculatorPotential` (wraps any
    ASE calculator, frame by frame) and the pesprobe torch models (natively batched). Any object
    with these members works; nothing needs to subclass this protocol.

    Attributes
    ----------
    name : str
        Short human-readable name (``"gfn2-xtb"``).
    """

    name: str

    def identity(self) -> str:
        """A string that changes whenever the potential's results could change (cache key)."""
        ...

    def predict(self, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray | None = None,
                pbc: np.ndarray | None = None) -> Predictions:
        """Energies and forces of ``n_frames`` geometries of the same atoms.

        Parameters
        ----------
        numbers : ndarray, shape (n_atoms,)
            Atomic numbers.
        positions : ndarray, shape (n_frames, n_atoms, 3)
            Positions in Å. Must not be modified.
        cell : ndarray, shape (3, 3), optional
            Cell in Å for periodic systems.
        pbc : ndarray, shape (3,), optional
            Periodic boundary conditions (default: none).

        Returns
        -------
        Predictions
            Energies (eV) and forces (eV/Å), with a per-frame failure mask. A failure on one
            frame must mark that frame failed, never raise.
        """
        ...
