"""Settings of an MD stability test: :class:`MDConfig`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pesprobe.scan.graph import BOND_SCALE

ENSEMBLES = ("nve", "nvt")
#: Settings that only change how a finished trajectory is measured: changing them re-measures
#: stored trajectories instead of re-running them.
ANALYSIS_ONLY = ("spike_window_fs", "spike_settle_fs")


@dataclass(frozen=True)
class MDConfig:
    """Integrator, initial conditions and failure criteria of a stability test.

    Attributes
    ----------
    temperature_K : float
        T0: Maxwell–Boltzmann temperature of the initial velocities (and the NVT bath), K.
    timestep_fs : float
        Integration time step, fs.
    length_ps : float
        Trajectory length, ps.
    seeds : tuple of int
        One trajectory per seed and molecule (seeds the initial velocities and the Langevin noise).
    ensemble : str
        ``"nve"`` (velocity Verlet) or ``"nvt"`` (Langevin). Energy drift is reported for NVE only.
    friction_per_fs : float
        Langevin friction, 1/fs (NVT only).
    log_every : int
        Record energies and temperature every this many steps.
    save_every : int
        Write a trajectory frame every this many steps (0: no trajectory file).
    break_factor : float
        A bond present at t = 0 (perceived as the scan builder does: d < 1.2 × (r_cov,i + r_cov,j))
        is broken once longer than this × (r_cov,i + r_cov,j); must exceed 1.2.
    form_hold_fs : float
        A pair not bonded at t = 0 that stays inside the bonding cutoff this long has formed a
        bond (at once if it takes the place of a bond broken at that step), fs.
    clash_factor, clash_floor_A : float
        Two atoms closer than max(clash_factor × (r_cov,i + r_cov,j), clash_floor_A) clash, -, Å.
    blowup_factor : float
        The instantaneous kinetic temperature above this × T0 is a blow-up (T0 > 0 only); > 1.
    blowup_settle_fs : float
        The blow-up criterion starts after this many fs, fs.
    fly_apart_A : float
        An atom whose nearest-neighbour distance grows by more than this over its t = 0 value
        has flown off: failure, Å.
    energy_tolerance_eV_atom : float
        NVE only: the total energy leaving E_tot(0) ± this × n_atoms fails the trajectory, eV/atom.
    spike_window_fs : float
        Window of the temperature-spike measure (largest rise or fall of the kinetic
        temperature within any window this long), fs.
    spike_settle_fs : float
        The temperature-spike and peak measures ignore the first this many fs, in which an NVE
        run started from a minimum with all energy kinetic settles to about T0/2 (equipartition),
        fs. A trajectory that fails sooner is measured over all its samples.
    """

    temperature_K: float = 500.0
    timestep_fs: float = 0.5
    length_ps: float = 10.0
    seeds: tuple[int, ...] = field(default=(0, 1, 2))
    ensemble: str = "nve"
    friction_per_fs: float = 0.01
    log_every: int = 1
    save_every: int = 100
    break_factor: float = 1.5
    form_hold_fs: float = 20.0
    clash_factor: float = 0.5
    clash_floor_A: float = 0.5
    blowup_factor: float = 5.0
    blowup_settle_fs: float = 50.0
    fly_apart_A: float = 3.0
    energy_tolerance_eV_atom: float = 0.05
    spike_window_fs: float = 5.0
    spike_settle_fs: float = 50.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "ensemble", self.ensemble.lower())
        problems = []
        if self.ensemble not in ENSEMBLES:
            problems.append(f"ensemble must be one of {ENSEMBLES}, got {self.ensemble!r}")
        for name in ("timestep_fs", "length_ps", "fly_apart_A", "energy_tolerance_eV_atom", "spike_window_fs"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("spike_settle_fs", "form_hold_fs", "clash_factor", "clash_floor_A", "blowup_settle_fs"):
            if not getattr(self, name) >= 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.break_factor > BOND_SCALE:
            problems.append(f"break_factor must exceed the bonding factor {BOND_SCALE}, got {self.break_factor}")
        if not self.blowup_factor > 1:
            problems.append(f"blowup_factor must be > 1, got {self.blowup_factor}")
        if self.temperature_K < 0:
            problems.append(f"temperature_K must be >= 0, got {self.temperature_K}")
        if self.ensemble == "nvt" and not self.friction_per_fs > 0:
            problems.append(f"friction_per_fs must be > 0 for NVT, got {self.friction_per_fs}")
        if self.log_every < 1:
            problems.append(f"log_every must be >= 1, got {self.log_every}")
        if self.save_every < 0:
            problems.append(f"save_every must be >= 0, got {self.save_every}")
        if not self.seeds:
            problems.append("seeds must not be empty")
        if len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds must be distinct, got {self.seeds}")
        if problems:
            raise ValueError("invalid MD settings: " + "; ".join(problems))
        if self.n_steps < 1:
            raise ValueError(f"invalid MD settings: length_ps={self.length_ps} is shorter than one "
                             f"time step ({self.timestep_fs} fs)")

    @property
    def n_steps(self) -> int:
        """Number of integration steps."""
        return int(round(self.length_ps * 1000.0 / self.timestep_fs))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        out = asdict(self)
        out["seeds"] = list(self.seeds)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MDConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MD setting(s): {', '.join(unknown)}")
        return cls(**data)

    def fingerprint(self, seed: int) -> str:
        """Hash of everything that shapes the trajectory of ``seed`` (other seeds and the
        :data:`ANALYSIS_ONLY` settings do not matter)."""
        data = self.to_dict()
        for name in ("seeds", *ANALYSIS_ONLY):
            data.pop(name)
        data["seed"] = int(seed)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
