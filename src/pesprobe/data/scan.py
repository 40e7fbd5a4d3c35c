"""The one data model: a :class:`Scan` is a 1-D deformation of one structure."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCAN_KINDS = ("bond", "angle", "torsion")
#: ``Scan.meta`` key listing the data problems that touch a scan's scored frames (missing or skipped
#: frames, missing or non-finite reference values); a scan with any is flagged in the results.
DATA_PROBLEMS = "data_problems"


@dataclass
class Scan:
    """One 1-D deformation (bond stretch, angle bend or torsion) of one molecule or crystal.

    Attributes
    ----------
    id : str
        Unique key inside a scan set, ``"<bond>/<id>"`` for the published layout (e.g. ``"C-C/220"``).
    kind : str
        ``"bond"`` (coordinate in Å), ``"angle"`` or ``"torsion"`` (coordinate in rad).
    numbers : ndarray, shape (n_atoms,), int
        Atomic numbers.
    positions : ndarray, shape (n_frames, n_atoms, 3), float64
        Cartesian positions in Å.
    coordinate : ndarray, shape (n_frames,), float64
        The scanned coordinate of each frame (Å for bonds, rad for angles and torsions).
    ref_energy : ndarray, shape (n_frames,), float64
        Reference energies in eV; NaN marks a frame without a reference value.
    ref_forces : ndarray, shape (n_frames, n_atoms, 3), float64
        Reference forces in eV/Å (NaN where missing).
    cell : ndarray, shape (3, 3), optional
        Cell vectors in Å (rows), for periodic structures.
    pbc : ndarray, shape (3,), bool
        Periodic boundary conditions.
    meta : dict
        Free-form metadata: ``bond`` ("C-C"), ``bond_index`` (2 ints, 0-based), ``labels``
        (fragment 0/1 of each atom), ``unit_vec``, ``rotation``, ``smiles``, ``source``,
        ``data_problems`` (see :data:`DATA_PROBLEMS`) ...
    """

    id: str
    kind: str
    numbers: np.ndarray
    positions: np.ndarray
    coordinate: np.ndarray
    ref_energy: np.ndarray
    ref_forces: np.ndarray
    cell: np.ndarray | None = None
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in SCAN_KINDS:
            raise ValueError(f"scan {self.id}: kind must be one of {SCAN_KINDS}, got {self.kind!r}")
        self.numbers = np.asarray(self.numbers, dtype=np.int64)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.coordinate = np.asarray(self.coordinate, dtype=np.float64)
        self.ref_energy = np.asarray(self.ref_energy, dtype=np.float64)
        self.ref_forces = np.asarray(self.ref_forces, dtype=np.float64)
        self.pbc = np.asarray(self.pbc, dtype=bool).reshape(3)
        if self.cell is not None:
            self.cell = np.asarray(self.cell, dtype=np.float64).reshape(3, 3)
        n_frames, n_atoms = self.positions.shape[:2]
        expected = {
            "numbers": ((n_atoms,), self.numbers.shape),
            "positions": ((n_frames, n_atoms, 3), self.positions.shape),
            "coordinate": ((n_frames,), self.coordinate.shape),
            "ref_energy": ((n_frames,), self.ref_energy.shape),
            "ref_forces": ((n_frames, n_atoms, 3), self.ref_forces.shape),
        }
        for name, (want, got) in expected.items():
            if want != got:
                raise ValueError(f"scan {self.id}: field {name!r} has shape {got}, expected {want}")

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.positions.shape[0])

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return int(self.positions.shape[1])

    @property
    def group(self) -> str:
        """Grouping label for aggregates: the bond type for bond scans (``"C-C"``), else the kind."""
        if self.meta.get("bond"):
            return str(self.meta["bond"])
        return self.id.split("/")[0] if "/" in self.id else self.kind

    @property
    def data_problems(self) -> list[str]:
        """Data problems touching this scan's scored frames (``meta["data_problems"]``); any flags the scan."""
        return list(self.meta.get(DATA_PROBLEMS, []))

    @property
    def valid(self) -> np.ndarray:
        """Boolean mask (n_frames,) of frames with a finite reference energy."""
        return np.isfinite(self.ref_energy)

    def content_hash(self) -> str:
        """SHA-256 of the geometry (numbers, positions, cell, pbc): the key for model-result caches."""
        h = hashlib.sha256()
        for arr in (self.numbers, self.positions, self.pbc):
            h.update(np.ascontiguousarray(arr).tobytes())
        if self.cell is not None:
            h.update(np.ascontiguousarray(self.cell).tobytes())
        return h.hexdigest()

    def to_atoms(self, frame: int):
        """Return frame ``frame`` as an :class:`ase.Atoms` (reference results attached)."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms = Atoms(numbers=self.numbers, positions=self.positions[frame],
                      cell=self.cell, pbc=self.pbc)
        atoms.calc = SinglePointCalculator(atoms, energy=float(self.ref_energy[frame]),
                                           forces=self.ref_forces[frame].copy())
        return atoms


@dataclass
class LoadProblem:
    """A problem met while loading data: the offending path and what was wrong with it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ScanSet:
    """An ordered collection of scans, where they came from, and the problems met loading them.

    Attributes
    ----------
    scans : list of Scan
        Scans in a deterministic order (sorted by id for directory layouts).
    source : str
        Path or description of the origin.
    problems : list of LoadProblem
        Files or scans that could not be loaded (they are not in ``scans``).
    """

    scans: list[Scan]
    source: str = ""
    problems: list[LoadProblem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.scans)

    def __iter__(self):
        return iter(self.scans)

    def __getitem__(self, key: int | str) -> Scan:
        if isinstance(key, str):
            for scan in self.scans:
                if scan.id == key:
                    return scan
            raise KeyError(key)
        return self.scans[key]

    def ids(self) -> list[str]:
        """Scan ids in order."""
        return [s.id for s in self.scans]

    def shard(self, index: int, count: int) -> ScanSet:
        """The ``index``-th (0-based) of ``count`` deterministic, disjoint slices (round robin by order)."""
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"shard must satisfy 0 <= index < count, got {index}/{count}")
        return ScanSet(self.scans[index::count], source=self.source, problems=list(self.problems))
