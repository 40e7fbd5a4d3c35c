"""Per-trajectory results and their files: one JSON (written last: the completion mark), one
``.npz`` energy log and one extended-XYZ trajectory per (molecule, seed), each written atomically,
so an interrupted study resumes trajectory by trajectory."""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pesprobe.data.atomic import atomic_write, atomic_write_json
from pesprobe.md.analysis import EnergyLog, stability_measures
from pesprobe.md.config import MDConfig
from pesprobe.md.monitor import Failure
from pesprobe.md.systems import Molecule


@dataclass
class RawTrajectory:
    """What an engine hands back for one trajectory.

    Attributes
    ----------
    log : EnergyLog
        Energies up to (and including) the failing step.
    failure : Failure or None
        None if the trajectory ran to the end.
    steps_done : int
        Steps integrated (the failing step included).
    frames : list of ase.Atoms
        Saved snapshots (positions Å, momenta; ``info``: step, time_fs, energy_eV, kinetic_eV).
    wall_seconds : float
        Wall time, s (for batched runs, the batch's time divided evenly among its trajectories).
    """

    log: EnergyLog
    failure: Failure | None
    steps_done: int
    frames: list = field(default_factory=list)
    wall_seconds: float = 0.0


@dataclass
class TrajectoryResult:
    """Outcome of one trajectory: identity, failure, stability measures and cost.

    Attributes
    ----------
    molecule, key : str
        Molecule id and the file-name stem of this trajectory's files.
    seed, n_atoms, steps_done, n_steps : int
    potential, engine : str
        Potential name; ``"ase"`` or ``"batched"``.
    failure : Failure or None
    measures : dict
        See :func:`pesprobe.md.analysis.stability_measures`.
    wall_seconds : float
        Wall time, s.
    fingerprint : str
        Hash of settings, seed, potential identity and starting structure (resume key).
    """

    molecule: str
    key: str
    seed: int
    n_atoms: int
    potential: str
    engine: str
    steps_done: int
    n_steps: int
    failure: Failure | None
    measures: dict[str, float]
    wall_seconds: float
    fingerprint: str

    @property
    def failed(self) -> bool:
        """True if a failure criterion fired."""
        return self.failure is not None

    def row(self) -> dict[str, Any]:
        """Flat dict for tables (CSV/JSON)."""
        out = {"molecule": self.molecule, "seed": self.seed, "potential": self.potential, "engine": self.engine,
               "n_atoms": self.n_atoms, "steps_done": self.steps_done, "n_steps": self.n_steps,
               "criterion": self.failure.criterion if self.failure else "",
               "failure_step": self.failure.step if self.failure else "",
               "failure_time_fs": self.failure.time_fs if self.failure else "",
               "failure_atoms": _atoms_text(self.failure) if self.failure else "",
               "failure_detail": self.failure.detail if self.failure else "",
               "failure_also": "; ".join(e.detail for e in self.failure.also) if self.failure else ""}
        out.update(self.measures)
        out["wall_seconds"] = self.wall_seconds
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; inverse of :meth:`from_json`.

        NaN measures are written as None, infinite ones as the strings ``"inf"`` / ``"-inf"``.
        """
        data = {k: getattr(self, k) for k in ("molecule", "key", "seed", "n_atoms", "potential", "engine",
                                               "steps_done", "n_steps", "wall_seconds", "fingerprint")}
        data["failure"] = None if self.failure is None else self.failure.to_json()
        data["measures"] = {k: (v if math.isfinite(v) else None if math.isnan(v) else str(v))
                            for k, v in self.measures.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrajectoryResult:
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        data["failure"] = None if data["failure"] is None else Failure(**data["failure"])
        data["measures"] = {k: (float("nan") if v is None else float(v)) for k, v in data["measures"].items()}
        return cls(**data)


#: Bumped whenever a code change alters trajectories for the same settings (2: initial momenta no
#: longer rescaled after removing the centre-of-mass motion; 3: the failure monitor perceives bonds as the
#: scan builder does and checks clashes, bond breaking and formation, temperature blow-up), so stored runs
#: of older code are not reused.
ENGINE_VERSION = "3"


def _atoms_text(failure: Failure) -> str:
    """``"1:C 5:H"``: the failure's atoms as index:symbol."""
    return " ".join(f"{a}:{sym}" for a, sym in zip(failure.atoms, failure.symbols))


def trajectory_fingerprint(config: MDConfig, seed: int, identity: str, molecule: Molecule) -> str:
    """Resume key of one trajectory (settings, seed, potential identity, molecule, :data:`ENGINE_VERSION`)."""
    h = hashlib.sha256()
    for part in (ENGINE_VERSION, config.fingerprint(seed), identity, molecule.id):
        h.update(part.encode())
        h.update(b"\0")
    h.update(molecule.numbers.tobytes())
    h.update(molecule.positions.tobytes())
    return h.hexdigest()[:20]


class RunStore:
    """Files of a study under ``root``: ``runs/<key>.json``, ``runs/<key>.npz``, ``traj/<key>.xyz``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key(molecule: Molecule, seed: int) -> str:
        """File-name stem of one trajectory."""
        return f"{molecule.key}__seed{seed}"

    def json_path(self, key: str) -> Path:
        """Result file of trajectory ``key``."""
        return self.root / "runs" / f"{key}.json"

    def log_path(self, key: str) -> Path:
        """Energy-log file of trajectory ``key``."""
        return self.root / "runs" / f"{key}.npz"

    def traj_path(self, key: str) -> Path:
        """Trajectory file of trajectory ``key``."""
        return self.root / "traj" / f"{key}.xyz"

    def checkpoint_path(self, batch_key: str) -> Path:
        """State file of an unfinished batched run (see :class:`pesprobe.md.batched.BatchedIntegrator`)."""
        return self.root / "runs" / f"_batch_{batch_key}.state"

    def clear_checkpoints(self) -> None:
        """Remove the state files of batched runs (once every result is saved), old pickled ones too."""
        for pattern in ("_batch_*.state", "_batch_*.pt"):
            for path in (self.root / "runs").glob(pattern):
                path.unlink(missing_ok=True)

    def load(self, key: str, fingerprint: str) -> TrajectoryResult | None:
        """The stored result of ``key`` if it exists, is readable and has this fingerprint."""
        path = self.json_path(key)
        if not path.exists() or not self.log_path(key).exists():
            return None
        try:
            result = TrajectoryResult.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError):
            return None
        return result if result.fingerprint == fingerprint else None

    def load_log(self, key: str) -> EnergyLog:
        """The stored energy log of ``key``."""
        with np.load(self.log_path(key)) as data:
            return EnergyLog.from_arrays(data)

    def save(self, result: TrajectoryResult, raw: RawTrajectory) -> None:
        """Write log, trajectory and (last) the result JSON, each atomically."""
        atomic_write(self.log_path(result.key), raw.log.to_arrays())
        if raw.frames:
            from ase.io import write

            buffer = io.StringIO()
            write(buffer, raw.frames, format="extxyz")
            atomic_write(self.traj_path(result.key), buffer.getvalue())
        atomic_write_json(self.json_path(result.key), result.to_json())


def measure(log: EnergyLog, n_atoms: int, config: MDConfig, failure: Failure | None) -> dict[str, float]:
    """Stability measures of one trajectory (see :func:`pesprobe.md.analysis.stability_measures`)."""
    failure_time = None if failure is None else failure.step * config.timestep_fs
    return stability_measures(log, n_atoms, config, failure is not None, failure_time)


def finish(raw: RawTrajectory, molecule: Molecule, seed: int, config: MDConfig, potential: str, engine: str,
           fingerprint: str) -> TrajectoryResult:
    """Turn an engine's raw output into a :class:`TrajectoryResult` (measures computed here)."""
    measures = measure(raw.log, molecule.n_atoms, config, raw.failure)
    return TrajectoryResult(molecule=molecule.id, key=RunStore.key(molecule, seed), seed=seed,
                            n_atoms=molecule.n_atoms, potential=potential, engine=engine,
                            steps_done=raw.steps_done, n_steps=config.n_steps, failure=raw.failure,
                            measures=measures, wall_seconds=raw.wall_seconds, fingerprint=fingerprint)
