"""Stability measures of one trajectory from its energy log (pure NumPy, no I/O)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from pesprobe.md.config import MDConfig

#: Boltzmann constant, eV/K.
KB_EV = 8.617333262e-5

#: Per-molecule stability measures (means over seeds; ``failure_fraction`` is the mean of the
#: per-trajectory ``failed``) in which larger means less stable: what :func:`pesprobe.md.correlate` ranks.
INSTABILITY_MEASURES = ("failure_fraction", "early_failure", "abs_energy_drift_meV_atom_ps",
                        "energy_excursion_meV_atom", "temperature_jump_K", "temperature_peak_ratio")


@dataclass
class EnergyLog:
    """Energies of one trajectory, sampled every ``log_every`` steps up to failure or the end.

    Attributes
    ----------
    step : (n_samples,) int
        MD step of each sample.
    time_fs : (n_samples,)
        Simulated time, fs.
    potential, kinetic : (n_samples,)
        Potential and kinetic energy, eV.
    temperature_K : (n_samples,)
        Kinetic temperature, K (see :func:`kinetic_temperature`).
    """

    step: np.ndarray
    time_fs: np.ndarray
    potential: np.ndarray
    kinetic: np.ndarray
    temperature_K: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Total energy, eV."""
        return self.potential + self.kinetic

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for an ``.npz`` file."""
        return {"step": self.step, "time_fs": self.time_fs, "potential": self.potential,
                "kinetic": self.kinetic, "temperature_K": self.temperature_K}

    @classmethod
    def from_arrays(cls, data) -> EnergyLog:
        """Inverse of :meth:`to_arrays` (accepts an open ``np.load`` result)."""
        return cls(**{k: np.asarray(data[k]) for k in ("step", "time_fs", "potential", "kinetic", "temperature_K")})


def degrees_of_freedom(n_atoms: int, ensemble: str) -> int:
    """3N − 3 for NVE (centre-of-mass motion removed and conserved), 3N for Langevin NVT."""
    return max(3 * n_atoms - (3 if ensemble == "nve" else 0), 1)


def kinetic_temperature(kinetic_eV: np.ndarray, n_atoms: int, ensemble: str) -> np.ndarray:
    """T = 2 E_kin / (n_dof k_B), K, with :func:`degrees_of_freedom`."""
    return 2.0 * np.asarray(kinetic_eV) / (degrees_of_freedom(n_atoms, ensemble) * KB_EV)


def energy_drift(time_fs: np.ndarray, total_eV: np.ndarray, n_atoms: int) -> float:
    """Slope of a least-squares line through E_tot(t), meV/atom/ps (NaN with < 3 finite samples)."""
    ok = np.isfinite(total_eV) & np.isfinite(time_fs)
    if ok.sum() < 3:
        return float("nan")
    slope = np.polyfit(time_fs[ok] / 1000.0, total_eV[ok] * 1000.0 / n_atoms, 1)[0]
    return float(slope)


def temperature_jump(temperature_K: np.ndarray, window: int) -> float:
    """Largest max − min of the kinetic temperature within any ``window + 1`` consecutive samples, K."""
    t = temperature_K[np.isfinite(temperature_K)]
    if len(t) < 2:
        return float("nan")
    w = min(max(window, 1) + 1, len(t))
    view = sliding_window_view(t, w)
    return float(np.max(view.max(axis=1) - view.min(axis=1)))


def stability_measures(log: EnergyLog, n_atoms: int, config: MDConfig, failed: bool,
                       failure_time_fs: float | None) -> dict[str, float]:
    """All stability measures of one trajectory.

    Returns
    -------
    dict
        ``time_to_failure_ps`` (the full length if it survived), ``early_failure``
        (1 − time_to_failure / length: 0 if it survived), ``failed`` (0/1),
        ``energy_drift_meV_atom_ps`` and its absolute value, ``energy_excursion_meV_atom``
        (largest |E_tot − E_tot(0)|, +inf if the energy went non-finite; both NaN for NVT),
        ``temperature_jump_K`` (see :func:`temperature_jump`, window ``spike_window_fs``),
        ``temperature_peak_K``, ``temperature_peak_ratio`` (peak / T0), ``mean_temperature_K``.
        Measures use the samples up to and including the failing step. The jump and the peak
        leave out the first ``spike_settle_fs`` (all samples if fewer than two come after it).
        A failed trajectory too short for a measure (e.g. a drift from fewer than three samples)
        gets +inf there, not NaN: it is the least stable, never left out of a statistic (the
        energy measures stay NaN for NVT, where they do not apply).
    """
    length_ps = config.n_steps * config.timestep_fs / 1000.0
    ttf = length_ps if not failed or failure_time_fs is None else failure_time_fs / 1000.0
    total = log.total
    nve = config.ensemble == "nve"
    if nve and len(total) and np.isfinite(total[0]):
        deviation = np.abs(total - total[0])
        excursion = math.inf if not np.isfinite(deviation).all() else float(deviation.max() * 1000.0 / n_atoms)
    else:
        excursion = float("nan")
    drift = energy_drift(log.time_fs, total, n_atoms) if nve else float("nan")
    window = int(round(config.spike_window_fs / (config.timestep_fs * config.log_every)))
    settled = log.temperature_K[log.time_fs >= config.spike_settle_fs]
    spike_temps = settled if np.isfinite(settled).sum() >= 2 else log.temperature_K
    temps = log.temperature_K[np.isfinite(log.temperature_K)]
    finite_spike = spike_temps[np.isfinite(spike_temps)]
    peak = float(finite_spike.max()) if len(finite_spike) >= 2 else float("nan")  # one sample is no peak
    out = {
        "failed": float(failed),
        "time_to_failure_ps": float(ttf),
        "early_failure": float(1.0 - ttf / length_ps),
        "energy_drift_meV_atom_ps": drift,
        "abs_energy_drift_meV_atom_ps": abs(drift),
        "energy_excursion_meV_atom": excursion,
        "temperature_jump_K": temperature_jump(spike_temps, window),
        "temperature_peak_K": peak,
        "temperature_peak_ratio": peak / config.temperature_K if config.temperature_K > 0 else float("nan"),
        "mean_temperature_K": float(temps.mean()) if len(temps) else float("nan"),
    }
    if failed:
        applicable = [m for m in WORST_IF_FAILED if nve or not m.startswith(("abs_energy", "energy"))]
        out.update({m: math.inf for m in applicable if math.isnan(out[m])})
    return out


#: Instability measures a failed trajectory too short to measure gets as +inf (see :func:`stability_measures`).
WORST_IF_FAILED = ("abs_energy_drift_meV_atom_ps", "energy_excursion_meV_atom", "temperature_jump_K",
                   "temperature_peak_ratio")


class LogBuffer:
    """Collects :class:`EnergyLog` samples of one trajectory (every ``log_every`` steps, plus the
    failing step).

    Parameters
    ----------
    config : MDConfig
    n_atoms : int
    """

    def __init__(self, config: MDConfig, n_atoms: int) -> None:
        self.config = config
        self.n_atoms = n_atoms
        size = config.n_steps // config.log_every + 2
        self._step = np.zeros(size, dtype=np.int64)
        self._values = np.full((size, 2), np.nan)
        self._n = 0

    def wants(self, step: int) -> bool:
        """True if ``step`` is a logging step."""
        return step % self.config.log_every == 0

    def add(self, step: int, potential_eV: float, kinetic_eV: float) -> None:
        """Record one sample."""
        if self._n and self._step[self._n - 1] == step:
            return
        self._step[self._n] = step
        self._values[self._n] = potential_eV, kinetic_eV
        self._n += 1

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """The samples so far: steps (n,) and (potential, kinetic) energies (n, 2), eV."""
        return self._step[: self._n].copy(), self._values[: self._n].copy()

    def restore(self, steps: np.ndarray, values: np.ndarray) -> None:
        """Replace the samples by those of :meth:`samples`."""
        n = len(steps)
        self._step[:n], self._values[:n], self._n = steps, values, n

    def log(self) -> EnergyLog:
        """The samples so far."""
        step = self._step[: self._n].copy()
        pot, kin = self._values[: self._n].T.copy()
        return EnergyLog(step=step, time_fs=step * self.config.timestep_fs, potential=pot, kinetic=kin,
                         temperature_K=kinetic_temperature(kin, self.n_atoms, self.config.ensemble))
