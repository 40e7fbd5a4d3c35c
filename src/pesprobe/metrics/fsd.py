"""Force Smoothness Deviation (FSD) and the published BSCT metrics: pure functions, no I/O.

Definitions (one scan, frames i = 0..n-1 at coordinate ℓ_i, reference E_i, F_i, model Ê_i, F̂_i):

1. frames whose reference energy is NaN are dropped;
2. the equilibrium frame is q = argmin_i E_i;
3. ΔF̂_i = F̂_i − F_q and ΔF_i = F_i − F_q (both relative to the *reference* forces at q);
   m_i = Σ (ΔF̂_i)², g_i = Σ (ΔF_i)² over atoms and components, in (eV/Å)²;
4. r_i = log max(m_i, ε²) − log max(g_i, ε²), ε = 1 eV/Å;
5. FSD = max_i |r_{i+1} − r_i| / (ℓ_{i+1} − ℓ_i), in 1/Å (1/rad for angle and torsion scans),
   over ``full`` (all frames), ``compress`` (0..q) and ``stretch`` (q..end), both inclusive;
6. energy and force MAEs (plain means of absolute differences; energies not shifted) over the
   same ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Floor of the force-deviation norm, eV/Å (its square floors m_i and g_i).
EPSILON = 1.0
RANGES = ("full", "compress", "stretch")


@dataclass
class Curves:
    """Per-frame quantities behind FSD for the frames used (valid reference, model succeeded).

    Attributes
    ----------
    frames : ndarray (n,), int
        Indices into the scan's frames.
    coordinate : ndarray (n,)
        ℓ_i, Å (or rad).
    eq : int
        Position of the equilibrium frame q within ``frames``.
    model_dev, ref_dev : ndarray (n,)
        m_i and g_i, (eV/Å)².
    log_ratio : ndarray (n,)
        r_i (dimensionless).
    """

    frames: np.ndarray
    coordinate: np.ndarray
    eq: int
    model_dev: np.ndarray
    ref_dev: np.ndarray
    log_ratio: np.ndarray

    def range_slice(self, name: str) -> slice:
        """Frames of range ``name`` ("full", "compress", "stretch") as a slice into the curves."""
        if name == "full":
            return slice(None)
        if name == "compress":
            return slice(0, self.eq + 1)
        if name == "stretch":
            return slice(self.eq, None)
        raise ValueError(f"unknown range {name!r}; expected one of {RANGES}")


def deviation_curves(coordinate: np.ndarray, ref_energy: np.ndarray, ref_forces: np.ndarray,
                     model_forces: np.ndarray, usable: np.ndarray | None = None) -> Curves:
    """Compute m_i, g_i and r_i (steps 1–4 above).

    Parameters
    ----------
    coordinate : (n_frames,) Å or rad
    ref_energy : (n_frames,) eV; NaN frames are dropped
    ref_forces, model_forces : (n_frames, n_atoms, 3) eV/Å
    usable : (n_frames,) bool, optional
        Extra mask (e.g. frames where the model did not fail). The equilibrium frame is chosen
        among the frames with a reference energy, before this mask is applied, so that a model
        failure cannot move q; if the model failed at q itself, q's reference forces are still used.
    """
    valid = np.isfinite(ref_energy)
    if valid.sum() == 0:
        raise ValueError("no frame has a reference energy")
    q_scan = int(np.flatnonzero(valid)[np.argmin(ref_energy[valid])])
    keep = valid if usable is None else valid & usable
    keep = keep.copy()
    keep[q_scan] = True
    frames = np.flatnonzero(keep)
    f_q = ref_forces[q_scan]
    model_dev = np.sum((model_forces[frames] - f_q) ** 2, axis=(1, 2))
    ref_dev = np.sum((ref_forces[frames] - f_q) ** 2, axis=(1, 2))
    floor = EPSILON ** 2
    with np.errstate(invalid="ignore"):
        log_ratio = np.log(np.maximum(model_dev, floor)) - np.log(np.maximum(ref_dev, floor))
    return Curves(frames=frames, coordinate=coordinate[frames], eq=int(np.searchsorted(frames, q_scan)),
                  model_dev=model_dev, ref_dev=ref_dev, log_ratio=log_ratio)


def smoothness(log_ratio: np.ndarray, coordinate: np.ndarray) -> float:
    """FSD of one range: max |Δr / Δℓ| over consecutive frames (NaN if fewer than two frames)."""
    finite = np.isfinite(log_ratio)
    r, x = log_ratio[finite], coordinate[finite]
    if len(r) < 2:
        return float("nan")
    return float(np.max(np.abs(np.diff(r) / np.diff(x))))


def published_metrics(curves: Curves, ref_energy: np.ndarray, ref_forces: np.ndarray,
                      model_energy: np.ndarray, model_forces: np.ndarray) -> dict[str, float]:
    """The nine published numbers: ``{full,compress,stretch}_{smoothness,energy_mae,forces_mae}``.

    Energy and force arrays are over all scan frames; ``curves.frames`` selects the frames used.
    The MAEs average over the frames of the range where the model's value is finite (the
    equilibrium frame is in every range even where the model failed on it); energy MAE is NaN
    when the model gives no energies.
    """
    out: dict[str, float] = {}
    idx = curves.frames
    for name in RANGES:
        sl = curves.range_slice(name)
        frames = idx[sl]
        out[f"{name}_smoothness"] = smoothness(curves.log_ratio[sl], curves.coordinate[sl])
        e_frames = frames[np.isfinite(model_energy[frames])]
        f_frames = frames[np.isfinite(model_forces[frames]).all(axis=(1, 2))]
        out[f"{name}_energy_mae"] = _mae(model_energy[e_frames], ref_energy[e_frames])
        out[f"{name}_forces_mae"] = _mae(model_forces[f_frames], ref_forces[f_frames])
    return out


def _mae(model: np.ndarray, reference: np.ndarray) -> float:
    """Mean absolute difference (NaN for no frames)."""
    return float(np.mean(np.abs(model - reference))) if model.size else float("nan")


def integrated_potential(positions: np.ndarray, forces: np.ndarray, eq: int) -> np.ndarray:
    """U_i = −Σ_{k<i} ½(F_k + F_{k+1})·(x_{k+1} − x_k), shifted so that U_eq = 0 (eV).

    The work integral of the forces along the scan path (trapezoid rule): for a conservative
    model it equals Ê_i − Ê_eq up to discretisation error; it is what the scan plots show for
    models whose forces are not gradients of an energy.

    Parameters
    ----------
    positions, forces : (n, n_atoms, 3) Å and eV/Å, for consecutive frames of the path.
    eq : int
        Index (into these frames) where U is zero.
    """
    steps = -np.sum(0.5 * (forces[1:] + forces[:-1]) * np.diff(positions, axis=0), axis=(1, 2))
    u = np.concatenate([[0.0], np.cumsum(steps)])
    return u - u[eq]
