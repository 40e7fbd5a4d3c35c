"""Labelled structures for training: readers for extended XYZ, ASE databases and SPICE-layout HDF5.

Every reader returns a list of :class:`Structure` in eV and Å, each tagged with a *molecule
identity* (for splitting train/validation by molecule) and a *source* (``file#frame``, for error
messages). Bad input raises :class:`StructureFormatError` naming the file, the frame and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Info keys (in order) that name a structure's molecule; the chemical formula is the fallback.
MOLECULE_KEYS = ("mol_id", "smiles", "name")
EXTXYZ_SUFFIXES = (".xyz", ".extxyz")
ASE_DB_SUFFIXES = (".db", ".json", ".aselmdb")
HDF5_SUFFIXES = (".h5", ".hdf5")


class StructureFormatError(ValueError):
    """A training-data file (or one frame or field of it) that cannot be used."""


@dataclass
class Structure:
    """One labelled structure.

    Attributes
    ----------
    numbers : ndarray, shape (n_atoms,), int64
        Atomic numbers.
    positions : ndarray, shape (n_atoms, 3), float64
        Cartesian positions, Å.
    energy : float
        Total reference energy, eV (NaN if the structure has no energy label).
    forces : ndarray, shape (n_atoms, 3), float64
        Reference forces, eV/Å (all NaN if the structure has no force labels).
    molecule : str
        Molecule identity used to split train/validation (``mol_id``, ``smiles``, ``name``, the
        HDF5 group, else the chemical formula).
    source : str
        Where it came from, ``"<file>#<frame>"`` (or ``"<file>#<group>/<conformation>"``).
    cell : ndarray, shape (3, 3), optional
        Cell vectors (rows), Å, for periodic structures.
    pbc : ndarray, shape (3,), bool
        Periodic boundary conditions.
    """

    numbers: np.ndarray
    positions: np.ndarray
    energy: float
    forces: np.ndarray
    molecule: str
    source: str
    cell: np.ndarray | None = None
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.forces = np.asarray(self.forces, dtype=np.float64)
        self.energy = float(self.energy)
        self.pbc = np.asarray(self.pbc, dtype=bool).reshape(3)
        n = len(self.numbers)
        if n == 0:
            raise StructureFormatError(f"{self.source}: structure has no atoms")
        if self.positions.shape != (n, 3):
            raise StructureFormatError(f"{self.source}: field 'positions' has shape {self.positions.shape}, "
                                       f"expected ({n}, 3)")
        if self.forces.shape != (n, 3):
            raise StructureFormatError(f"{self.source}: field 'forces' has shape {self.forces.shape}, "
                                       f"expected ({n}, 3)")
        if not np.isfinite(self.positions).all():
            raise StructureFormatError(f"{self.source}: field 'positions' holds non-finite values")
        if np.isinf(self.energy):
            raise StructureFormatError(f"{self.source}: field 'energy' is infinite")
        if (self.numbers < 1).any() or (self.numbers > 118).any():
            raise StructureFormatError(f"{self.source}: field 'numbers' holds atomic numbers outside 1..118: "
                                       f"{sorted(set(self.numbers.tolist()))}")
        if self.cell is not None:
            self.cell = np.asarray(self.cell, dtype=np.float64).reshape(3, 3)
            if self.pbc.any() and abs(np.linalg.det(self.cell)) < 1e-8:
                raise StructureFormatError(f"{self.source}: field 'cell' is singular but pbc={self.pbc.tolist()}")
        elif self.pbc.any():
            raise StructureFormatError(f"{self.source}: periodic structure without a cell")

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.numbers)

    @property
    def has_energy(self) -> bool:
        """True if the energy label is finite."""
        return bool(np.isfinite(self.energy))

    @property
    def has_forces(self) -> bool:
        """True if every force component is finite."""
        return bool(np.isfinite(self.forces).all())

    def to_atoms(self):
        """This structure as an :class:`ase.Atoms` with its labels in a single-point calculator and
        its molecule identity in ``info["mol_id"]``."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)
        atoms.info["mol_id"] = self.molecule
        results = {}
        if self.has_energy:
            results["energy"] = self.energy
        if self.has_forces:
            results["forces"] = self.forces.copy()
        atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms


def _formula(numbers: np.ndarray) -> str:
    from ase.symbols import Symbols

    return Symbols(numbers).get_chemical_formula()


def _molecule(info: dict[str, Any], numbers: np.ndarray) -> str:
    for key in MOLECULE_KEYS:
        value = info.get(key)
        if value is not None and str(value) != "":
            return str(value)
    return _formula(numbers)


def _from_atoms(atoms: Any, info: dict[str, Any], source: str, energy_key: str, forces_key: str) -> Structure:
    """A :class:`Structure` from an :class:`ase.Atoms` whose labels sit in its calculator, ``info`` or ``arrays``."""
    results = atoms.calc.results if atoms.calc is not None else {}
    n = len(atoms)
    energy = results.get(energy_key, info.get(energy_key, atoms.info.get(energy_key, np.nan)))
    forces = results.get(forces_key, atoms.arrays.get(forces_key))
    try:
        energy = float(np.asarray(energy).reshape(()))
    except (TypeError, ValueError):
        raise StructureFormatError(f"{source}: field {energy_key!r} must be one number, got {energy!r}") from None
    forces = np.full((n, 3), np.nan) if forces is None else np.asarray(forces, dtype=np.float64)
    if not np.isfinite(energy) and not np.isfinite(forces).all():
        raise StructureFormatError(f"{source}: no labels: neither field {energy_key!r} nor field {forces_key!r} "
                                   "is present and finite")
    cell = np.asarray(atoms.cell.array) if atoms.pbc.any() or atoms.cell.rank == 3 else None
    numbers = np.asarray(atoms.numbers)
    return Structure(numbers=numbers, positions=np.asarray(atoms.positions), energy=energy, forces=forces,
                     molecule=_molecule({**atoms.info, **info}, numbers), source=source,
                     cell=cell, pbc=np.asarray(atoms.pbc))


def read_extxyz(path: str | Path, energy_key: str = "energy", forces_key: str = "forces") -> list[Structure]:
    """Read every frame of an extended-XYZ file.

    Parameters
    ----------
    path : str or Path
        The file.
    energy_key, forces_key : str
        Names of the energy (eV) and per-atom force (eV/Å) labels, looked up in the frame's
        results (ASE stores ``energy``/``forces`` there), its info line and its per-atom arrays.

    Returns
    -------
    list of Structure
    """
    from ase.io import iread

    path = Path(path)
    out: list[Structure] = []
    try:
        for frame, atoms in enumerate(iread(path, index=":", format="extxyz")):
            out.append(_from_atoms(atoms, {}, f"{path}#{frame}", energy_key, forces_key))
    except StructureFormatError:
        raise
    except Exception as exc:  # ase raises many types for malformed text
        raise StructureFormatError(f"{path}#{len(out)}: unreadable extended XYZ ({type(exc).__name__}: {exc})"
                                   ) from None
    if not out:
        raise StructureFormatError(f"{path}: no frames")
    return out


def read_ase_db(path: str | Path, energy_key: str = "energy", forces_key: str = "forces") -> list[Structure]:
    """Read every row of an ASE database (SQLite ``.db``, ``.json`` or ``.aselmdb``).

    The molecule identity comes from the row's key-value pairs (``mol_id``, ``smiles``, ``name``).
    Labels are read from the row's stored results, else from its key-value pairs / data.
    """
    from ase.db import connect

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training data not found: {path}")
    out: list[Structure] = []
    try:
        rows = list(connect(str(path)).select())
    except Exception as exc:
        raise StructureFormatError(f"{path}: unreadable ASE database ({type(exc).__name__}: {exc})") from None
    for row in rows:
        source = f"{path}#id={row.id}"
        try:
            atoms = row.toatoms(add_additional_information=False)
        except Exception as exc:
            raise StructureFormatError(f"{source}: unreadable row ({type(exc).__name__}: {exc})") from None
        info = dict(row.key_value_pairs)
        data = row.data
        if energy_key in data:
            info[energy_key] = data[energy_key]
        if forces_key in data and (atoms.calc is None or forces_key not in atoms.calc.results):
            atoms.arrays[forces_key] = np.asarray(data[forces_key], dtype=np.float64)
        out.append(_from_atoms(atoms, info, source, energy_key, forces_key))
    if not out:
        raise StructureFormatError(f"{path}: database has no rows")
    return out


def read_spice_hdf5(path: str | Path, groups: Sequence[str] | None = None) -> list[Structure]:
    """Read a SPICE-layout HDF5 file: one group per molecule.

    Each group holds ``atomic_numbers`` (n_atoms,), ``conformations`` (n_conf, n_atoms, 3) in bohr,
    ``dft_total_energy`` (n_conf,) in hartree and ``dft_total_gradient`` (n_conf, n_atoms, 3) in
    hartree/bohr. Positions are converted to Å, energies to eV, and forces = −gradient to eV/Å
    (``ase.units``). The group name is the molecule identity.

    Parameters
    ----------
    path : str or Path
        The file.
    groups : sequence of str, optional
        Read only these groups (default: all, in file order).
    """
    import h5py
    from ase.units import Bohr, Hartree

    path = Path(path)
    out: list[Structure] = []
    try:
        fh = h5py.File(path, "r")
    except Exception as exc:
        raise StructureFormatError(f"{path}: unreadable HDF5 file ({type(exc).__name__}: {exc})") from None
    with fh:
        names = list(fh.keys()) if groups is None else list(groups)
        for name in names:
            if name not in fh or not isinstance(fh[name], h5py.Group):
                raise StructureFormatError(f"{path}#{name}: no such molecule group")
            group = fh[name]
            arrays = {}
            for key in ("atomic_numbers", "conformations", "dft_total_energy", "dft_total_gradient"):
                if key not in group:
                    raise StructureFormatError(f"{path}#{name}: missing field {key!r}")
                arrays[key] = np.asarray(group[key][()])
            numbers = arrays["atomic_numbers"].astype(np.int64).reshape(-1)
            n_atoms = len(numbers)
            conf = arrays["conformations"].astype(np.float64)
            if conf.ndim != 3 or conf.shape[1:] != (n_atoms, 3):
                raise StructureFormatError(f"{path}#{name}: field 'conformations' has shape {conf.shape}, "
                                           f"expected (n_conf, {n_atoms}, 3)")
            n_conf = conf.shape[0]
            expected = {"dft_total_energy": (n_conf,), "dft_total_gradient": (n_conf, n_atoms, 3)}
            for key, shape in expected.items():
                if arrays[key].shape != shape:
                    raise StructureFormatError(f"{path}#{name}: field {key!r} has shape {arrays[key].shape}, "
                                               f"expected {shape}")
            energy = arrays["dft_total_energy"].astype(np.float64) * Hartree
            forces = -arrays["dft_total_gradient"].astype(np.float64) * (Hartree / Bohr)
            for i in range(n_conf):
                out.append(Structure(numbers=numbers, positions=conf[i] * Bohr, energy=energy[i],
                                     forces=forces[i], molecule=name, source=f"{path}#{name}/{i}"))
    if not out:
        raise StructureFormatError(f"{path}: no conformations")
    return out


def read_structures(paths: str | Path | Iterable[str | Path], energy_key: str = "energy",
                    forces_key: str = "forces") -> list[Structure]:
    """Read labelled structures from one or more files, choosing the reader by suffix.

    ``.xyz``/``.extxyz`` → :func:`read_extxyz`; ``.db``/``.json``/``.aselmdb`` → :func:`read_ase_db`;
    ``.h5``/``.hdf5`` → :func:`read_spice_hdf5`.

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    StructureFormatError
        For an unknown suffix or unusable content (the message names the file, frame and field).
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    out: list[Structure] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"training data not found: {path}")
        suffix = path.suffix.lower()
        if suffix in EXTXYZ_SUFFIXES:
            out.extend(read_extxyz(path, energy_key, forces_key))
        elif suffix in ASE_DB_SUFFIXES:
            out.extend(read_ase_db(path, energy_key, forces_key))
        elif suffix in HDF5_SUFFIXES:
            out.extend(read_spice_hdf5(path))
        else:
            known = ", ".join(EXTXYZ_SUFFIXES + ASE_DB_SUFFIXES + HDF5_SUFFIXES)
            raise StructureFormatError(f"{path}: unknown training-data suffix {suffix!r} (known: {known})")
    return out


def write_extxyz(structures: Sequence[Structure], path: str | Path) -> Path:
    """Write structures to an extended-XYZ file atomically (labels as ``energy``/``forces``,
    molecule identity as ``mol_id``); :func:`read_extxyz` reads it back."""
    import io

    from ase.io import write

    from pesprobe.data.atomic import atomic_write

    buf = io.StringIO()
    write(buf, [s.to_atoms() for s in structures], format="extxyz")
    return atomic_write(path, buf.getvalue())


def split_by_molecule(structures: Sequence[Structure], valid_fraction: float,
                      seed: int = 0) -> tuple[list[Structure], list[Structure]]:
    """Split structures into train and validation sets with no molecule in both.

    Molecules are shuffled with ``seed`` and moved to the validation set until it holds at least
    ``valid_fraction`` of the structures (at least one molecule if the fraction is positive, and
    at least one molecule is always left for training).

    Returns
    -------
    train, valid : list of Structure
        Both in input order.
    """
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    counts: dict[str, int] = {}
    for s in structures:
        counts[s.molecule] = counts.get(s.molecule, 0) + 1
    molecules = sorted(counts)
    order = np.random.default_rng(seed).permutation(len(molecules))
    target = valid_fraction * len(structures)
    valid_set: set[str] = set()
    taken = 0
    for index in order[:-1]:  # always leave one molecule for training
        if valid_fraction == 0.0 or (taken >= target and valid_set):
            break
        valid_set.add(molecules[index])
        taken += counts[molecules[index]]
    train = [s for s in structures if s.molecule not in valid_set]
    valid = [s for s in structures if s.molecule in valid_set]
    return train, valid
