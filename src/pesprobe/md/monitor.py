"""Failure criteria of the stability test, checked on many systems at once (NumPy, no I/O).

Bonds are perceived at t = 0 exactly as the scan builder does (:func:`pesprobe.scan.graph.bond_graph`):
atoms i and j are bonded when ``d_ij < BOND_SCALE × R_ij`` with ``R_ij = r_cov(i) + r_cov(j)``
(ASE covalent radii, Å; ``BOND_SCALE`` = 1.2), X–H bonds included. Every pair of atoms of a
molecule is checked at every step. A trajectory fails at the first step where any of these holds;
all criteria that hold at that step are reported, the first in this order being the failure:

``nonfinite``
    NaN or inf in the potential energy, the kinetic energy, any force or position.
``clash``
    Two atoms closer than ``max(clash_factor × R_ij, clash_floor_A)`` (defaults 0.5 × R_ij, at
    least 0.5 Å: C–H 0.54 Å, C–C 0.76 Å, H–H 0.5 Å).
``bond_broken``
    A bond present at t = 0 longer than ``break_factor × R_ij`` (default 1.5 × R_ij, i.e. 1.25 ×
    the bonding cutoff: C–H 1.61 Å, O–H 1.46 Å, C–C 2.28 Å, C–S 2.72 Å). A bond vibrating at
    1,000 K stays far below (reaching it costs > 1 eV in one bond).
``bond_formed``
    A pair not bonded at t = 0 inside the bonding cutoff ``BOND_SCALE × R_ij`` for ``form_hold_fs``
    without a break (default 20 fs, about two X–H vibrations); or, at the step one of its atoms
    loses a t = 0 bond, a pair nearer than the break length (the atom that left is closer to its
    new partner than a bond may stretch: an exchange, so an H transfer is a broken and a formed
    bond at once).
    Hydrogen bonds never come inside the cutoff (O–H···O: H···O 1.8–2.0 Å > 1.16 Å).
``temperature``
    The instantaneous kinetic temperature above ``blowup_factor × T0`` (default 5 × T0) once
    ``blowup_settle_fs`` have passed (not checked for T0 = 0).
``fly_apart``
    An atom's nearest-neighbour distance exceeds its t = 0 value by more than ``fly_apart_A``
    (checked every :data:`FLY_APART_EVERY` steps: flying off takes hundreds of fs).
``energy_band``
    NVE only: |E_tot(t) − E_tot(0)| > ``energy_tolerance_eV_atom`` × n_atoms.

A calculator exception is a further criterion, ``calculator_error``, raised by the engines.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pesprobe.md.config import MDConfig
from pesprobe.scan.graph import BOND_SCALE, bond_graph

CRITERIA = ("nonfinite", "calculator_error", "clash", "bond_broken", "bond_formed", "temperature", "fly_apart",
            "energy_band")
#: Steps between two fly-apart checks.
FLY_APART_EVERY = 10
#: Boltzmann constant, eV/K.
_KB_EV = 8.617333262e-5


@dataclass
class Event:
    """One criterion that held at a failing step.

    Attributes
    ----------
    criterion : str
        One of :data:`CRITERIA`.
    detail : str
        Human-readable specifics (distances in Å, temperatures in K, energies in eV/atom).
    atoms : list of int
        0-based indices of the atoms involved (empty for whole-system criteria).
    symbols : list of str
        Their element symbols.
    """

    criterion: str
    detail: str
    atoms: list[int] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.atoms = [int(a) for a in self.atoms]
        self.symbols = [str(s) for s in self.symbols]


@dataclass
class Failure:
    """Why and when a trajectory failed.

    Attributes
    ----------
    step : int
        MD step at which the criterion fired (0 = the starting structure).
    criterion : str
        One of :data:`CRITERIA` (records of engine version 2 and older may hold ``"bond"``).
    detail : str
        Human-readable specifics (which bond, by how much, the error text ...).
    time_fs : float or None
        Simulated time of ``step``, fs (None in records of engine version 2 and older).
    atoms, symbols : list of int, list of str
        Atoms involved (0-based indices) and their element symbols.
    also : list of Event
        The other criteria that held at the same step (e.g. the bond formed in an H transfer).
    """

    step: int
    criterion: str
    detail: str
    time_fs: float | None = None
    atoms: list[int] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    also: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.step = int(self.step)
        self.atoms = [int(a) for a in self.atoms]
        self.symbols = [str(s) for s in self.symbols]
        self.also = [e if isinstance(e, Event) else Event(**e) for e in self.also]

    @property
    def events(self) -> list[Event]:
        """Every criterion that held at ``step``, this failure's first."""
        return [Event(self.criterion, self.detail, self.atoms, self.symbols), *self.also]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; ``Failure(**data)`` is its inverse."""
        return asdict(self)

    @classmethod
    def from_events(cls, step: int, time_fs: float | None, events: list[Event]) -> Failure:
        """The failure of ``events`` (all at ``step``): the first in :data:`CRITERIA` order leads."""
        ordered = sorted(events, key=lambda e: CRITERIA.index(e.criterion))
        first = ordered[0]
        return cls(step, first.criterion, first.detail, time_fs, first.atoms, first.symbols, ordered[1:])


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]


def covalent_bonds(numbers: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Bonded pairs as the scan builder perceives them (:func:`pesprobe.scan.graph.bond_graph`).

    Parameters
    ----------
    numbers : (n_atoms,) int
    positions : (n_atoms, 3) Å

    Returns
    -------
    ndarray, shape (n_bonds, 2), int
        Pairs ``i < j``, sorted: ``d_ij < BOND_SCALE × (r_cov(i) + r_cov(j))``.
    """
    from ase import Atoms

    edges = bond_graph(Atoms(numbers=numbers, positions=positions)).edges()
    return np.array(edges, dtype=np.int64).reshape(-1, 2)


class FailureMonitor:
    """Checks the failure criteria for a batch of systems, given as flat atom arrays.

    Parameters
    ----------
    numbers : list of (n_atoms_s,) int arrays
        Atomic numbers of each system.
    positions : list of (n_atoms_s, 3) arrays
        Positions at t = 0, Å (they define the bonds and reference distances).
    config : MDConfig
        Thresholds, time step, T0, and whether the energy band applies (NVE only).

    Notes
    -----
    State carried from step to step: E_tot(0) (:attr:`etot0`, eV, per system) and, for every pair
    not bonded at t = 0, the step since which it has been inside the bonding cutoff
    (:attr:`inside_since`, −1 when outside). :meth:`state` and :meth:`restore` save and load both.
    """

    def __init__(self, numbers: list[np.ndarray], positions: list[np.ndarray], config: MDConfig) -> None:
        from ase.data import covalent_radii

        self.numbers = [np.asarray(z, dtype=np.int64) for z in numbers]
        self.positions0 = [np.asarray(p, dtype=np.float64) for p in positions]
        self.config = config
        self.sizes = np.array([len(z) for z in self.numbers], dtype=np.int64)
        self.n_systems = len(self.sizes)
        offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.system_index = np.repeat(np.arange(self.n_systems), self.sizes)
        self.flat_numbers = np.concatenate(self.numbers)
        # every intra-system pair i < j (flat atom indices), system by system
        first, second, owner, bonded = [], [], [], []
        for s, (z, p) in enumerate(zip(self.numbers, self.positions0)):
            i, j = np.triu_indices(len(z), k=1)
            is_bond = np.zeros((len(z), len(z)), dtype=bool)
            b = covalent_bonds(z, p)
            is_bond[b[:, 0], b[:, 1]] = True
            first.append(i + offsets[s])
            second.append(j + offsets[s])
            owner.append(np.full(len(i), s, dtype=np.int64))
            bonded.append(is_bond[i, j])
        self.pair_i = np.concatenate(first).astype(np.int64)
        self.pair_j = np.concatenate(second).astype(np.int64)
        self.pair_system = np.concatenate(owner)
        self.bonded0 = np.concatenate(bonded)
        radii = covalent_radii[self.flat_numbers]
        r_sum = radii[self.pair_i] + radii[self.pair_j]
        self.bond_cutoff = BOND_SCALE * r_sum
        self.break_length = config.break_factor * r_sum
        self.clash_length = np.maximum(config.clash_factor * r_sum, config.clash_floor_A)
        self.offsets = offsets
        flat0 = np.concatenate(self.positions0)
        self.d0 = np.linalg.norm(flat0[self.pair_i] - flat0[self.pair_j], axis=1)
        self.nn0 = self._nearest(self.d0)
        self.hold_steps = int(math.ceil(config.form_hold_fs / config.timestep_fs - 1e-9))
        self.inside_since = np.full(len(self.pair_i), -1, dtype=np.int64)
        self.etot0: np.ndarray | None = None
        dof = np.maximum(3 * self.sizes - (3 if config.ensemble == "nve" else 0), 1)
        self._kelvin_per_eV = 2.0 / (dof * _KB_EV)

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, np.ndarray]:
        """The step-to-step state as plain arrays (see the class notes)."""
        etot0 = np.full(self.n_systems, np.nan) if self.etot0 is None else self.etot0
        return {"etot0": np.asarray(etot0, dtype=np.float64), "inside_since": self.inside_since.copy(),
                "etot0_set": np.array(self.etot0 is not None)}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Load a :meth:`state` of a monitor over the same systems.

        Raises
        ------
        ValueError
            If the arrays do not fit these systems.
        """
        etot0, inside = np.asarray(state["etot0"], dtype=np.float64), np.asarray(state["inside_since"])
        if etot0.shape != (self.n_systems,) or inside.shape != self.inside_since.shape:
            raise ValueError(f"monitor state of {etot0.shape[0]} systems / {inside.shape[0]} pairs does not fit "
                             f"{self.n_systems} systems / {len(self.inside_since)} pairs")
        self.etot0 = etot0.copy() if bool(state["etot0_set"]) else None
        self.inside_since = inside.astype(np.int64).copy()

    def subset(self, keep: np.ndarray) -> FailureMonitor:
        """A monitor for systems ``keep`` only (same t = 0 references and state)."""
        keep = np.asarray(keep, dtype=np.int64)
        sub = FailureMonitor([self.numbers[s] for s in keep], [self.positions0[s] for s in keep], self.config)
        pairs = np.concatenate([np.flatnonzero(self.pair_system == s) for s in keep]).astype(np.int64)
        sub.inside_since = self.inside_since[pairs].copy()
        if self.etot0 is not None:
            sub.etot0 = self.etot0[keep]
        return sub

    # ------------------------------------------------------------------ checks
    def _nearest(self, d: np.ndarray) -> np.ndarray:
        """Nearest-neighbour distance of every atom (flat), Å (inf for an atom without partner)."""
        out = np.full(len(self.system_index), np.inf)
        np.minimum.at(out, self.pair_i, d)
        np.minimum.at(out, self.pair_j, d)
        return out

    def check(self, step: int, positions: np.ndarray, energy: np.ndarray, kinetic: np.ndarray,
              forces: np.ndarray) -> dict[int, Failure]:
        """Failures at ``step``; call it at every step, in order (formation times are counted in steps).

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
        cfg = self.config
        events: dict[int, list[Event]] = {}
        etot = energy + kinetic
        if self.etot0 is None:
            self.etot0 = etot.copy()
        bad_atoms = ~np.isfinite(forces).all(axis=1) | ~np.isfinite(positions).all(axis=1)
        bad_forces = np.bincount(self.system_index, weights=bad_atoms, minlength=self.n_systems) > 0
        nonfinite = bad_forces | ~np.isfinite(etot)
        for s in np.flatnonzero(nonfinite):
            what = [name for name, bad in (("potential energy", not np.isfinite(energy[s])),
                                           ("kinetic energy", not np.isfinite(kinetic[s])),
                                           ("forces or positions", bad_forces[s])) if bad]
            events[int(s)] = [Event("nonfinite", "non-finite " + ", ".join(what))]
        with np.errstate(invalid="ignore"):
            d = np.linalg.norm(positions[self.pair_i] - positions[self.pair_j], axis=1)
        live = ~nonfinite[self.pair_system]
        for k in np.flatnonzero(live & (d < self.clash_length)):
            self._add(events, k, "clash", f"atoms {self._atoms_text(k)} are {d[k]:.2f} Å apart, closer than the "
                      f"clash distance {self.clash_length[k]:.2f} Å")
        broken = live & self.bonded0 & (d > self.break_length)
        for k in np.flatnonzero(broken):
            self._add(events, k, "bond_broken", f"bond {self._atoms_text(k)} is {d[k]:.2f} Å, beyond the break "
                      f"length {self.break_length[k]:.2f} Å ({self.config.break_factor:g} × covalent radii; "
                      f"{self.d0[k]:.2f} Å at t=0)")
        self._formed(events, step, d, live, broken)
        if cfg.temperature_K > 0 and step * cfg.timestep_fs >= cfg.blowup_settle_fs:
            temperature = kinetic * self._kelvin_per_eV
            limit = cfg.blowup_factor * cfg.temperature_K
            for s in np.flatnonzero(~nonfinite & (temperature > limit)):
                events.setdefault(int(s), []).append(Event(
                    "temperature", f"kinetic temperature {temperature[s]:.0f} K exceeds {cfg.blowup_factor:g} × T0 "
                    f"= {limit:.0f} K"))
        if step % FLY_APART_EVERY == 0:
            with np.errstate(invalid="ignore"):  # atoms without partner: inf - inf
                grown = self._nearest(np.where(live, d, np.inf)) - self.nn0
            for a in np.flatnonzero(grown > cfg.fly_apart_A):
                s = int(self.system_index[a])
                local = int(a - self.offsets[s])
                events.setdefault(s, []).append(Event(
                    "fly_apart", f"atom {local} ({_symbol(self.flat_numbers[a])}) is {grown[a] + self.nn0[a]:.2f} Å "
                    f"from its nearest neighbour ({self.nn0[a]:.2f} Å at t=0)", [local],
                    [_symbol(self.flat_numbers[a])]))
        if cfg.ensemble == "nve":
            per_atom = np.abs(etot - self.etot0) / self.sizes
            for s in np.flatnonzero(~nonfinite & (per_atom > cfg.energy_tolerance_eV_atom)):
                events.setdefault(int(s), []).append(Event(
                    "energy_band", f"total energy moved {per_atom[s]:.4f} eV/atom from its t=0 value (tolerance "
                    f"{cfg.energy_tolerance_eV_atom} eV/atom)"))
        time_fs = step * cfg.timestep_fs
        return {s: Failure.from_events(step, time_fs, found) for s, found in events.items()}

    def _formed(self, events: dict[int, list[Event]], step: int, d: np.ndarray, live: np.ndarray,
                broken: np.ndarray) -> None:
        """Track pairs not bonded at t = 0 inside the bonding cutoff; report those held long enough and
        the exchanges of a bond broken at this step (see the module doc)."""
        inside = live & ~self.bonded0 & (d < self.bond_cutoff)
        self.inside_since[~inside] = -1
        self.inside_since[inside & (self.inside_since < 0)] = step
        released = np.zeros(len(self.system_index), dtype=bool)
        released[self.pair_i[broken]] = True
        released[self.pair_j[broken]] = True
        held = inside & (step - self.inside_since >= self.hold_steps)
        exchange = live & ~self.bonded0 & (released[self.pair_i] | released[self.pair_j]) & (d < self.break_length)
        for k in np.flatnonzero(held | exchange):
            if held[k]:
                why = (f"inside the bonding cutoff {self.bond_cutoff[k]:.2f} Å since "
                       f"t={self.inside_since[k] * self.config.timestep_fs:g} fs")
            else:
                why = f"within the break length {self.break_length[k]:.2f} Å as a bond of theirs broke (an exchange)"
            self._add(events, k, "bond_formed", f"atoms {self._atoms_text(k)}, not bonded at t=0 ({self.d0[k]:.2f} Å), "
                      f"are {d[k]:.2f} Å apart, {why}")

    def _local(self, k: int) -> tuple[int, int, int]:
        s = int(self.pair_system[k])
        return s, int(self.pair_i[k] - self.offsets[s]), int(self.pair_j[k] - self.offsets[s])

    def _atoms_text(self, k: int) -> str:
        _, i, j = self._local(k)
        zi, zj = self.flat_numbers[self.pair_i[k]], self.flat_numbers[self.pair_j[k]]
        return f"{i}-{j} ({_symbol(zi)}-{_symbol(zj)})"

    def _add(self, events: dict[int, list[Event]], k: int, criterion: str, detail: str) -> None:
        s, i, j = self._local(k)
        symbols = [_symbol(self.flat_numbers[self.pair_i[k]]), _symbol(self.flat_numbers[self.pair_j[k]])]
        events.setdefault(s, []).append(Event(criterion, detail, [i, j], symbols))
