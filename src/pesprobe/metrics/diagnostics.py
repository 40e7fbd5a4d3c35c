"""Diagnostics beyond the published metrics (pure functions of the curves of one scan).

All are computed over the frames used for FSD (valid reference, model did not fail):

``aligned_energy_mae`` (eV)
    mean_i |(Ê_i − Ê_q) − (E_i − E_q)|: the energy error once both curves share their zero at the
    equilibrium frame q (the published energy MAE also counts a constant offset).
``spurious_minima`` (count)
    interior local minima of the model's energy curve (its integrated potential U when the model
    gives no energy) with no reference local minimum within ±``MINIMUM_TOLERANCE`` frames.
``energy_jump_ratio``, ``force_jump_ratio`` (dimensionless)
    max_i |Ê_{i+1} − Ê_i| / max_i |E_{i+1} − E_i|, and the same for the total force norm ‖F_i‖
    (Frobenius norm over atoms and components): > 1 means the model has a steeper single step
    than the reference anywhere along the scan.
``energy_force_consistency`` (eV)
    max_i |Ê_i − Ê_q − U_i|, U the integrated model potential: ~0 (trapezoid error) for
    conservative models; large for direct-force heads whose energy and forces disagree. NaN when
    the model gives no energy.
"""

from __future__ import annotations

import numpy as np

MINIMUM_TOLERANCE = 2


def local_minima(values: np.ndarray) -> np.ndarray:
    """Indices of strict interior local minima of a 1-D curve (plateaus count once, at their start)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 3:
        return np.zeros(0, dtype=int)
    keep = np.concatenate([[True], np.diff(v) != 0])  # collapse plateaus
    idx = np.flatnonzero(keep)
    w = v[idx]
    inner = np.flatnonzero((w[1:-1] < w[:-2]) & (w[1:-1] < w[2:])) + 1
    return idx[inner]


def spurious_minima(model_curve: np.ndarray, ref_curve: np.ndarray, tolerance: int = MINIMUM_TOLERANCE) -> int:
    """Number of model minima farther than ``tolerance`` frames from every reference minimum."""
    model_min = local_minima(model_curve)
    ref_min = local_minima(ref_curve)
    if len(ref_min) == 0:
        return int(len(model_min))
    distance = np.abs(model_min[:, None] - ref_min[None, :]).min(axis=1)
    return int(np.sum(distance > tolerance))


def jump_ratio(model: np.ndarray, reference: np.ndarray) -> float:
    """max |Δ model| / max |Δ reference| over consecutive points (NaN if undefined)."""
    dm, dr = np.abs(np.diff(model)), np.abs(np.diff(reference))
    if len(dm) == 0 or not np.isfinite(dm).all() or dr.max() == 0:
        return float("nan")
    return float(dm.max() / dr.max())


def diagnostics(ref_energy: np.ndarray, ref_forces: np.ndarray, model_energy: np.ndarray,
                model_forces: np.ndarray, integrated: np.ndarray, eq: int) -> dict[str, float]:
    """All diagnostics for the frames used (arrays already restricted to those frames).

    Parameters
    ----------
    ref_energy, model_energy : (n,) eV
    ref_forces, model_forces : (n, n_atoms, 3) eV/Å
    integrated : (n,) eV, the model's integrated potential U (zero at ``eq``)
    eq : int, position of the equilibrium frame
    """
    has_energy = bool(np.isfinite(model_energy).all())
    model_rel = model_energy - model_energy[eq] if has_energy else integrated
    ref_rel = ref_energy - ref_energy[eq]
    ref_norm = np.linalg.norm(ref_forces.reshape(len(ref_forces), -1), axis=1)
    model_norm = np.linalg.norm(model_forces.reshape(len(model_forces), -1), axis=1)
    return {
        "aligned_energy_mae": float(np.mean(np.abs(model_rel - ref_rel))) if has_energy else float("nan"),
        "spurious_minima": float(spurious_minima(model_rel, ref_rel)),
        "energy_jump_ratio": jump_ratio(model_rel, ref_rel),
        "force_jump_ratio": jump_ratio(model_norm, ref_norm),
        "energy_force_consistency": float(np.max(np.abs(model_rel - integrated))) if has_energy else float("nan"),
    }
