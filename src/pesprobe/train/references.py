"""Per-element reference energies (least squares) and the energy/force normalisation statistics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pesprobe.data.structures import Structure


def fit_element_references(structures: Sequence[Structure]) -> dict[int, float]:
    """Per-element energies ε_Z (eV) minimising Σ_s (E_s − Σ_Z n_sZ ε_Z)² over labelled structures.

    Elements whose counts are linearly dependent across the set (e.g. only CH4) get the
    minimum-norm solution, which still reproduces the fitted energies.

    Raises
    ------
    ValueError
        If no structure has an energy label.
    """
    labelled = [s for s in structures if s.has_energy]
    if not labelled:
        raise ValueError("no training structure has an energy label: cannot fit element references")
    elements = sorted({int(z) for s in labelled for z in s.numbers})
    column = {z: i for i, z in enumerate(elements)}
    counts = np.zeros((len(labelled), len(elements)))
    for row, s in enumerate(labelled):
        for z, n in zip(*np.unique(s.numbers, return_counts=True), strict=True):
            counts[row, column[int(z)]] = n
    energies = np.array([s.energy for s in labelled])
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return {z: float(solution[column[z]]) for z in elements}


@dataclass
class EnergyStatistics:
    """Statistics of the training labels after removing the element references.

    Attributes
    ----------
    shift : float
        Mean residual energy per atom, eV/atom.
    scale : float
        Root-mean-square force component, eV/Å (the per-atom energy residual's standard
        deviation, eV/atom, when there are no forces; 1 if both vanish).
    """

    shift: float
    scale: float


def energy_statistics(structures: Sequence[Structure], references: dict[int, float]) -> EnergyStatistics:
    """Shift and scale of the training labels for the model's normalisation."""
    residual = np.array([(s.energy - sum(references.get(int(z), 0.0) for z in s.numbers)) / s.n_atoms
                         for s in structures if s.has_energy])
    forces = np.concatenate([s.forces.reshape(-1) for s in structures if s.has_forces] or [np.zeros(0)])
    shift = float(residual.mean()) if len(residual) else 0.0
    if len(forces) and np.sqrt(np.mean(forces**2)) > 1e-6:
        scale = float(np.sqrt(np.mean(forces**2)))
    elif len(residual) > 1 and residual.std() > 1e-6:
        scale = float(residual.std())
    else:
        scale = 1.0
    return EnergyStatistics(shift=shift, scale=scale)
