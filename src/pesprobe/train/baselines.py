"""Validation error split by molecule, and the two trivial baselines a model must beat.

Energy errors of an MLIP on held-out molecules are mostly a constant offset per molecule (a wrong
atomisation energy) on top of a smaller error in the shape of the surface. :func:`energy_breakdown`
separates the two: the *offset* of molecule m is the mean signed per-atom error over its structures,
the *within-molecule* error is what remains.

Baselines on the validation set:

- **linear**: the per-element reference energies ``E ≈ Σ_Z n_Z ε_Z`` fitted by least squares on the
  training split (:func:`pesprobe.train.references.fit_element_references`);
- **zero force**: predicting F = 0 (its force MAE is the mean |F| of the labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pesprobe.data.structures import Structure
from pesprobe.train.references import fit_element_references


@dataclass
class EnergyBreakdown:
    """Per-atom energy errors summarised over structures and molecules.

    Attributes
    ----------
    mae, rmse : float
        Over structures, eV/atom.
    offset_mae : float
        Mean over molecules of |mean signed per-atom error of the molecule|, eV/atom.
    within_mae : float
        Mean over structures of |error − its molecule's offset|, eV/atom.
    n_molecules : int
        Distinct molecules with an energy label.
    """

    mae: float
    rmse: float
    offset_mae: float
    within_mae: float
    n_molecules: int


def energy_breakdown(errors: np.ndarray, molecules: Sequence[str]) -> EnergyBreakdown:
    """Summarise per-atom energy errors (eV/atom) of structures belonging to ``molecules``.

    Parameters
    ----------
    errors : ndarray, shape (n,)
        Predicted minus reference energy per atom, eV/atom; NaN for unlabelled structures (skipped).
    molecules : sequence of str, length n
        Molecule of each structure.
    """
    errors = np.asarray(errors, dtype=float)
    if len(errors) != len(molecules):
        raise ValueError(f"{len(errors)} errors for {len(molecules)} molecule names")
    keep = np.isfinite(errors)
    errors = errors[keep]
    names = np.asarray(list(molecules), dtype=object)[keep]
    if not len(errors):
        nan = float("nan")
        return EnergyBreakdown(nan, nan, nan, nan, 0)
    _, group = np.unique(names.astype(str), return_inverse=True)
    counts = np.bincount(group)
    offsets = np.bincount(group, weights=errors) / counts
    return EnergyBreakdown(mae=float(np.mean(np.abs(errors))), rmse=float(np.sqrt(np.mean(errors**2))),
                           offset_mae=float(np.mean(np.abs(offsets))),
                           within_mae=float(np.mean(np.abs(errors - offsets[group]))), n_molecules=len(counts))


@dataclass
class Baselines:
    """The trivial baselines on the validation set.

    Attributes
    ----------
    linear : EnergyBreakdown
        Per-element linear fit (trained on the training split), eV/atom.
    zero_forces_mae, zero_forces_rmse : float
        Mean and root-mean-square |F| component of the validation labels, eV/Å.
    n_molecules : int
        Validation molecules.
    """

    linear: EnergyBreakdown
    zero_forces_mae: float
    zero_forces_rmse: float
    n_molecules: int

    def as_record(self) -> dict[str, float]:
        """Flat ``baseline_*`` metrics for the training log."""
        return {"baseline_linear_energy_mae": self.linear.mae, "baseline_linear_energy_rmse": self.linear.rmse,
                "baseline_linear_energy_offset_mae": self.linear.offset_mae,
                "baseline_linear_energy_within_mae": self.linear.within_mae,
                "baseline_zero_forces_mae": self.zero_forces_mae, "baseline_zero_forces_rmse": self.zero_forces_rmse,
                "valid_molecules": self.n_molecules}


def linear_errors(train: Sequence[Structure], valid: Sequence[Structure]) -> np.ndarray:
    """Per-atom errors (eV/atom) of the per-element linear fit on ``train`` over ``valid`` (NaN: no label).

    Elements absent from the training split get reference energy 0.
    """
    references = fit_element_references(train)
    return np.array([(sum(references.get(int(z), 0.0) for z in s.numbers) - s.energy) / s.n_atoms
                     if s.has_energy else np.nan for s in valid])


def validation_baselines(train: Sequence[Structure], valid: Sequence[Structure]) -> Baselines:
    """Linear and zero-force baselines of ``valid`` (training split ``train`` for the linear fit)."""
    forces = np.concatenate([s.forces.reshape(-1) for s in valid if s.has_forces] or [np.zeros(0)])
    nan = float("nan")
    return Baselines(linear=energy_breakdown(linear_errors(train, valid), [s.molecule for s in valid]),
                     zero_forces_mae=float(np.mean(np.abs(forces))) if len(forces) else nan,
                     zero_forces_rmse=float(np.sqrt(np.mean(forces**2))) if len(forces) else nan,
                     n_molecules=len({s.molecule for s in valid}))


def validation_score(energy_mae: float, forces_mae: float, baselines: Baselines) -> float:
    """Dimensionless selection score: each MAE relative to its trivial baseline, summed.

    ``energy_mae / linear MAE + forces_mae / zero-force MAE``; a term whose baseline is zero or
    undefined (no such labels) is left out. 2 means "no better than the baselines"; lower is better.
    """
    terms = [(energy_mae, baselines.linear.mae), (forces_mae, baselines.zero_forces_mae)]
    used = [value / base for value, base in terms if np.isfinite(base) and base > 0 and np.isfinite(value)]
    return float(sum(used)) if used else float("nan")
