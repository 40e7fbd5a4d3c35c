"""Starting geometries for MD: :class:`Molecule` and :func:`load_molecules`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pesprobe.data.scan import Scan, ScanSet


@dataclass
class Molecule:
    """One starting structure of a stability test.

    Attributes
    ----------
    id : str
        Key of the molecule; a scan id (``"C-C/220"``) when taken from a scan set.
    numbers : ndarray, shape (n_atoms,), int
        Atomic numbers.
    positions : ndarray, shape (n_atoms, 3)
        Starting positions, Å.
    scans : tuple of str
        Ids of the scans that start from this geometry (empty when not taken from a scan set): BSCT
        figures of these scans pair with this molecule's MD.
    """

    id: str
    numbers: np.ndarray
    positions: np.ndarray
    scans: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.numbers = np.asarray(self.numbers, dtype=np.int64).reshape(-1)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.scans = tuple(str(x) for x in self.scans)
        if self.positions.shape != (len(self.numbers), 3):
            raise ValueError(f"molecule {self.id}: positions have shape {self.positions.shape}, "
                             f"expected ({len(self.numbers)}, 3)")
        if len(self.numbers) < 2:
            raise ValueError(f"molecule {self.id}: needs at least 2 atoms, has {len(self.numbers)}")
        if not np.isfinite(self.positions).all():
            raise ValueError(f"molecule {self.id}: positions contain NaN or inf")

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.numbers)

    @property
    def key(self) -> str:
        """The id made safe as a file name (``"C-C/220"`` -> ``"C-C__220"``)."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.id.replace("/", "__"))

    def to_atoms(self):
        """The molecule as an :class:`ase.Atoms` (no cell, no periodicity)."""
        from ase import Atoms

        return Atoms(numbers=self.numbers, positions=self.positions.copy())


def molecule_from_scan(scan: Scan) -> Molecule:
    """The scan's unperturbed geometry (``scan.meta["unperturbed"]``), else its lowest-energy frame.

    Raises
    ------
    ValueError
        If the scan is periodic (the stability test is for molecules) or has neither an unperturbed
        geometry nor a reference energy.
    """
    if scan.pbc.any():
        raise ValueError(f"scan {scan.id}: periodic structures are not supported by the MD stability test")
    if "unperturbed" in scan.meta:
        return Molecule(scan.id, scan.numbers, np.asarray(scan.meta["unperturbed"], dtype=np.float64), (scan.id,))
    if not scan.valid.any():
        raise ValueError(f"scan {scan.id}: no unperturbed geometry and no frame with a reference energy")
    frame = int(np.flatnonzero(scan.valid)[np.argmin(scan.ref_energy[scan.valid])])
    return Molecule(scan.id, scan.numbers, scan.positions[frame], (scan.id,))


#: Starting geometries that agree to this many decimals (Å) are one molecule.
SAME_GEOMETRY_DECIMALS = 3


def molecules_from_scans(scans: ScanSet | list[Scan]) -> list[Molecule]:
    """One :class:`Molecule` per distinct starting geometry of the scans (see :func:`molecule_from_scan`).

    Scans of one molecule (same atoms, same unperturbed geometry to :data:`SAME_GEOMETRY_DECIMALS`
    decimals) share one MD run: its id is the first such scan's id and ``scans`` lists them all, so
    that a molecule with many scanned bonds is not counted as many independent MD samples.
    """
    groups: dict[tuple[bytes, bytes], list[Molecule]] = {}
    for scan in scans:
        mol = molecule_from_scan(scan)
        key = (mol.numbers.tobytes(), (mol.positions.round(SAME_GEOMETRY_DECIMALS) + 0.0).tobytes())
        groups.setdefault(key, []).append(mol)
    return [Molecule(group[0].id, group[0].numbers, group[0].positions, tuple(m.id for m in group))
            for group in groups.values()]


def read_xyz_molecules(path: str | Path) -> list[Molecule]:
    """Every frame of an (extended) XYZ file as a molecule.

    Ids are the frame's ``name`` or ``id`` info field when present, else ``"<file stem>/<index>"``.

    Raises
    ------
    ValueError
        If the file cannot be parsed (the message names the file) or ids repeat.
    """
    from ase.io import read

    path = Path(path)
    try:
        frames = read(path, index=":")
    except Exception as exc:
        raise ValueError(f"{path}: could not read molecules: {type(exc).__name__}: {exc}") from exc
    molecules = []
    for i, atoms in enumerate(frames):
        name = atoms.info.get("name", atoms.info.get("id"))
        mol_id = str(name) if name is not None else f"{path.stem}/{i}"
        if atoms.pbc.any():
            raise ValueError(f"{path}: frame {i} is periodic; the MD stability test is for molecules")
        try:
            molecules.append(Molecule(mol_id, atoms.numbers, atoms.positions))
        except ValueError as exc:
            raise ValueError(f"{path}: frame {i}: {exc}") from exc
    _check_unique(molecules, str(path))
    return molecules


def load_molecules(path: str | Path) -> list[Molecule]:
    """Molecules from an extended XYZ file (``.xyz``/``.extxyz``) or from any scan set that
    :func:`pesprobe.data.load_scans` reads (their unperturbed geometries)."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() in (".xyz", ".extxyz"):
        return read_xyz_molecules(path)
    from pesprobe.data import load_scans

    return molecules_from_scans(load_scans(path))


def _check_unique(molecules: list[Molecule], source: str) -> None:
    seen: set[str] = set()
    for mol in molecules:
        if mol.key in seen:
            raise ValueError(f"{source}: molecule id {mol.id!r} occurs more than once (give frames unique "
                             "'name' info fields)")
        seen.add(mol.key)


def preset_molecules(names: tuple[str, ...] | list[str], preset: str = "bsct_xtb.smi", relax: str | None = "gfn2-xtb",
                     fmax_eV_A: float = 0.01, max_steps: int = 500) -> list[Molecule]:
    """Named molecules of a packaged SMILES list, embedded by the scan builder's
    :func:`pesprobe.scan.inputs.from_smiles` and relaxed (BFGS) with a potential.

    Parameters
    ----------
    names : sequence of str
        Names from ``resources/<preset>`` (the second column).
    preset : str
        Packaged SMILES list.
    relax : str or None
        Potential SPEC to relax with (None: keep the MMFF94/UFF geometry).
    fmax_eV_A, max_steps : float, int
        BFGS convergence (largest force, eV/Å) and step limit.

    Raises
    ------
    KeyError
        For a name not in the list (the message lists a few known ones).
    """
    from ase import Atoms
    from ase.optimize import BFGS

    from pesprobe.scan.inputs import from_smiles, packaged_smiles

    smiles = {name: smi for smi, name in packaged_smiles(preset)}
    unknown = [n for n in names if n not in smiles]
    if unknown:
        raise KeyError(f"{preset} has no molecule(s) {unknown}; e.g. {', '.join(sorted(smiles)[:5])}")
    factory = None
    if relax is not None:
        from pesprobe.potentials.registry import calculator_factory

        factory = calculator_factory(relax)
    out = []
    for name in names:
        structure = from_smiles(smiles[name], name)
        atoms = Atoms(numbers=structure.numbers, positions=structure.positions)
        if factory is not None:
            atoms.calc = factory()
            BFGS(atoms, logfile=None).run(fmax=fmax_eV_A, steps=max_steps)
        out.append(Molecule(name, atoms.numbers, atoms.positions))
    return out
