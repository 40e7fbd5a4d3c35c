"""Failure criteria of the stability test, checked on many systems at once (NumPy, no I/O).

A trajectory fails at the first step where any of these holds (checked in this order):

``nonfinite``
    NaN or inf in the potential energy, the kinetic energy or any force.
``bond``
    A covalent bond present at t = 0 (ASE natural cutoffs: d < r_cov(i) + r_cov(j)) deviates
    from its t = 0 length by more than ``bond_tolerance_A``.
``fly_apart``
    An atom's nearest-neighbour distance exceeds its t = 0 value by more than ``fly_apart_A``
    (checked every :data:`FLY_APART_EVERY` steps: flying off takes hundreds of fs).
``energy_band``
    NVE only: |E_tot(t) − E_tot(0)| > ``energy_tolerance_eV_atom`` × n_atoms.

A calculator exception is a fifth criterion, ``calculator_error``, raised by the engines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pesprobe.md.config import MDConfig

CRITERIA = ("nonfinite", "calculator_error", "bond", "fly_apart", "energy_band")
#: Steps between two fly-apart checks.
FLY_APART_EVERY = 10


@dataclass
class Failure:
    """Why and when a trajectory failed.

    Attributes
    ----------
    step : int
        MD step at which the criterion fired (0 = the starting structure).
    criterion : str
        One of :data:`CRITERIA`.
    detail : str
        Human-readable specifics (which bond, by how much, the error text ...).
    """

    step: int
    criterion: str
    detail: str


def covalent_bonds(numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Bonded pairs by ASE's natural cutoffs: ``d_ij < r_cov(Z_i) + r_cov(Z_j)``.

    Parameters
    ----------
    numbers : (n_atoms,) int
    positions : (n_atoms, 3) Å

    Returns
    -------
    ndarray, shape (n_bonds, 2), int
        Pairs ``i < j``.
    """
    from ase.data import covalent_radii

    radii = covalent_radii[numbers]
    d = _distances(positions)
    i, j = np.nonzero(np.triu(d < radii[:, None] + radii[None, :], k=1))
    return np.stack([i, j], axis=1)


def _distances(positions: np.ndarray) -> np.ndarray:
    diff = positions[..., :, None, :] - positions[..., None, :, :]
    return np.sqrt(np.einsum("...k,...k->...", diff, diff))


class FailureMonitor:
    """Checks the failure criteria for a batch of systems, given as flat atom arrays.

    Parameters
    ----------
    numbers : list of (n_atoms_s,) int arrays
        Atomic numbers of each system.
    positions : list of (n_atoms_s, 3) arrays
        Positions at t = 0, Å (they define the bonds and reference distances).
    config : MDConfig
        Tolerances, and whether the energy band applies (NVE only).
    """

    def __init__(self, numbers: list[np.ndarray], positions: list[np.ndarray], config: MDConfig) -> None:
        self.numbers = [np.asarray(z, dtype=np.int64) for z in numbers]
        self.positions0 = [np.asarray(p, dtype=np.float64) for p in positions]
        self.config = config
        sizes = np.array([len(z) for z in self.numbers])
        self.n_systems, self.max_atoms = len(sizes), int(sizes.max())
        self.sizes = sizes
        self.system_index = np.repeat(np.arange(self.n_systems), sizes)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.local_index = np.concatenate([np.arange(n) for n in sizes])
        # padded t=0 data: nearest-neighbour distances (S, M) and bonds (s, i, j, d0)
        d0 = self._padded_distances(np.concatenate(self.positions0))
        self.nn0 = d0.min(axis=2)
        bonds = [covalent_bonds(z, p) for z, p in zip(self.numbers, self.positions0)]
        self.bond_system = np.concatenate([np.full(len(b), s) for s, b in enumerate(bonds)]).astype(np.int64)
        pairs = np.concatenate([b.reshape(-1, 2) for b in bonds]).astype(np.int64)
        self.bond_i, self.bond_j = pairs[:, 0], pairs[:, 1]
        self.bond_d0 = d0[self.bond_system, self.bond_i, self.bond_j]
        self.etot0: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> FailureMonitor:
        """A monitor for systems ``keep`` only (same t = 0 references, energy band included)."""
        keep = np.asarray(keep, dtype=np.int64)
        sub = FailureMonitor([self.numbers[s] for s in keep], [self.positions0[s] for s in keep], self.config)
        if self.etot0 is not None:
            sub.etot0 = self.etot0[keep]
        return sub

    def _padded_distances(self, positions: np.ndarray) -> np.ndarray:
        padded = np.zeros((self.n_systems, self.max_atoms, 3))
        padded[self.system_index, self.local_index] = positions
        d = _distances(padded)
        real = np.zeros((self.n_systems, self.max_atoms), dtype=bool)
        real[self.system_index, self.local_index] = True
        d[~(real[:, :, None] & real[:, None, :])] = np.inf
        idx = np.arange(self.max_atoms)
        d[:, idx, idx] = np.inf
        return d

    def check(self, step: int, positions: np.ndarray, energy: np.ndarray, kinetic: np.ndarray,
              forces: np.ndarray) -> dict[int, Failure]:
        """Failures at ``step``.

        Parameters
        ----------
        step : int
            Current MD step (the first call, at step 0, also records E_tot(0)).
        positions, forces : (n_atoms_total, 3)
            Flat positions (Å) and forces (eV/Å) of all systems, system after system.
        energy, kinetic : (n_systems,)
            Potential and kinetic energy, eV.

        Returns
        -------
        dict
            ``{system index: Failure}`` for the systems failing at this step (empty if none).
        """
        out: dict[int, Failure] = {}
        etot = energy + kinetic
        if self.etot0 is None:
            self.etot0 = etot.copy()
        bad_atoms = ~np.isfinite(forces).all(axis=1) | ~np.isfinite(positions).all(axis=1)
        bad_forces = np.bincount(self.system_index, weights=bad_atoms, minlength=self.n_systems) > 0
        for s in np.flatnonzero(bad_forces | ~np.isfinite(etot)):
            what = [name for name, bad in (("potential energy", not np.isfinite(energy[s])),
                                           ("kinetic energy", not np.isfinite(kinetic[s])),
                                           ("forces or positions", bad_forces[s])) if bad]
            out[int(s)] = Failure(step, "nonfinite", "non-finite " + ", ".join(what))
        if len(out) == self.n_systems:
            return out
        if len(self.bond_i):
            pos_i = positions[self._flat(self.bond_system, self.bond_i)]
            pos_j = positions[self._flat(self.bond_system, self.bond_j)]
            dev = np.abs(np.linalg.norm(pos_i - pos_j, axis=1) - self.bond_d0)
            for k in np.flatnonzero(dev > self.config.bond_tolerance_A):
                s = int(self.bond_system[k])
                if s not in out:
                    out[s] = Failure(step, "bond", self._bond_text(s, k, dev[k]))
        if step % FLY_APART_EVERY == 0:
            with np.errstate(invalid="ignore"):  # padding: inf - inf
                grown = self._padded_distances(positions).min(axis=2) - self.nn0
            for s, a in zip(*np.nonzero(grown > self.config.fly_apart_A)):
                if int(s) not in out:
                    out[int(s)] = Failure(step, "fly_apart", f"atom {a} ({self._symbol(s, a)}) is "
                                          f"{grown[s, a] + self.nn0[s, a]:.2f} Å from its nearest neighbour "
                                          f"({self.nn0[s, a]:.2f} Å at t=0)")
        if self.config.ensemble == "nve":
            per_atom = np.abs(etot - self.etot0) / self.sizes
            for s in np.flatnonzero(per_atom > self.config.energy_tolerance_eV_atom):
                if int(s) not in out:
                    out[int(s)] = Failure(step, "energy_band", f"total energy moved {per_atom[s]:.4f} eV/atom from "
                                          f"its t=0 value (tolerance {self.config.energy_tolerance_eV_atom} eV/atom)")
        return out

    def _flat(self, system: np.ndarray, local: np.ndarray) -> np.ndarray:
        return self.offsets[system] + local

    def _symbol(self, s: int, a: int) -> str:
        from ase.data import chemical_symbols

        return chemical_symbols[self.numbers[s][a]]

    def _pair(self, s: int, i: int, j: int) -> str:
        return f"{self._symbol(s, i)}-{self._symbol(s, j)}"

    def _bond_text(self, s: int, k: int, dev: float) -> str:
        i, j = int(self.bond_i[k]), int(self.bond_j[k])
        return (f"bond {i}-{j} ({self._pair(s, i, j)}) deviates {dev:.3f} Å from its t=0 length "
                f"{self.bond_d0[k]:.3f} Å (tolerance {self.config.bond_tolerance_A} Å)")
