"""Input structures for scan generation and sampling: SMILES, XYZ/extended XYZ, SDF, SPICE HDF5, crystals.

Every reader returns :class:`Structure` records plus :class:`~pesprobe.data.scan.LoadProblem` entries
for what could not be read, so one bad entry never stops a batch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr

from pesprobe.data.scan import LoadProblem

SMILES_SUFFIXES = {".smi", ".smiles", ".txt"}
CRYSTAL_SUFFIXES = {".cif", ".vasp", ".poscar"}
CRYSTAL_NAMES = re.compile(r"^(POSCAR|CONTCAR)", re.I)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def safe_name(text: str) -> str:
    """A file-system-safe name (letters, digits, ``_ . + -``)."""
    name = _UNSAFE.sub("_", text).strip("_.")
    return name or "structure"


@dataclass
class Structure:
    """One input structure.

    Attributes
    ----------
    name : str
        File-system-safe unique name (scan ids and file names derive from it).
    numbers : ndarray, shape (n_atoms,)
        Atomic numbers.
    positions : ndarray, shape (n_atoms, 3)
        Positions in Å.
    cell : ndarray, shape (3, 3), optional
        Cell vectors in Å for crystals.
    pbc : ndarray, shape (3,), bool
        Periodic directions.
    smiles : str
        SMILES if known ("" otherwise).
    source : str
        Where it came from (file path, ``path:group`` or ``smiles``).
    needs_relax : bool
        True for structures built from SMILES (an embedded conformer, not a minimum).
    """

    name: str
    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray | None = None
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    smiles: str = ""
    source: str = ""
    needs_relax: bool = False

    @property
    def periodic(self) -> bool:
        """True for crystals."""
        return bool(np.any(self.pbc))

    def to_atoms(self) -> Atoms:
        """The structure as :class:`ase.Atoms`."""
        return Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)


def from_smiles(smiles: str, name: str, seed: int = 0) -> Structure:
    """Embed one 3-D conformer of ``smiles`` (hydrogens added) with RDKit's ETKDG and a fixed seed.

    The conformer is cleaned up with MMFF94 (UFF where MMFF lacks parameters) so that the
    relaxation with the reference method that follows needs fewer steps.

    Raises
    ------
    ValueError
        If the SMILES cannot be parsed or embedded (the message quotes it).
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"SMILES {smiles!r} ({name}): could not be parsed")
    mol = Chem.AddHs(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise ValueError(f"SMILES {smiles!r} ({name}): RDKit could not embed a 3-D conformer")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=1000)
    elif AllChem.UFFHasAllMoleculeParams(mol):
        AllChem.UFFOptimizeMolecule(mol, maxIters=1000)
    numbers = np.array([atom.GetAtomicNum() for atom in mol.GetAtoms()])
    positions = mol.GetConformer().GetPositions()
    return Structure(name=safe_name(name), numbers=numbers, positions=positions,
                     smiles=Chem.MolToSmiles(Chem.RemoveHs(mol)), source="smiles", needs_relax=True)


def canonical_smiles(smiles: str) -> str:
    """RDKit canonical SMILES (heavy atoms), or raise ValueError if unparsable."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"SMILES {smiles!r}: could not be parsed")
    return Chem.MolToSmiles(mol)


def read_smiles_list(text: str, origin: str) -> list[tuple[str, str]]:
    """Parse a SMILES list: one ``SMILES [name]`` per line; ``#`` starts a comment.

    Returns
    -------
    list of (smiles, name)
        Unnamed entries are called ``<origin stem>_<line number>``.
    """
    entries = []
    stem = safe_name(Path(origin).stem)
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        entries.append((parts[0], parts[1] if len(parts) > 1 else f"{stem}_{lineno}"))
    return entries


def packaged_smiles(name: str) -> list[tuple[str, str]]:
    """A SMILES list shipped in ``pesprobe/resources`` (e.g. ``"bsct_xtb.smi"``)."""
    text = resources.files("pesprobe").joinpath("resources", name).read_text(encoding="utf-8")
    return read_smiles_list(text, name)


def embed_all(entries: list[tuple[str, str]], seed: int = 0) -> tuple[list[Structure], list[LoadProblem]]:
    """Embed every ``(smiles, name)`` entry; failures become problems."""
    structures, problems = [], []
    for smiles, name in entries:
        try:
            structures.append(from_smiles(smiles, name, seed=seed))
        except ValueError as exc:
            problems.append(LoadProblem(name, str(exc)))
    return structures, problems


def _from_atoms(atoms: Atoms, name: str, source: str, crystal_format: bool) -> Structure:
    cell = np.asarray(atoms.cell[:], dtype=float)
    has_cell = abs(np.linalg.det(cell)) > 1e-6
    if crystal_format or atoms.pbc.any():
        if not has_cell:
            raise ValueError(f"{source}: crystal without a cell (periodic structures need three cell vectors)")
        if not atoms.pbc.all():
            raise ValueError(f"{source}: only fully periodic crystals are supported, got pbc={atoms.pbc.tolist()}")
        return Structure(name=name, numbers=atoms.numbers.copy(), positions=atoms.positions.copy(), cell=cell,
                         pbc=np.ones(3, dtype=bool), source=source)
    smiles = str(atoms.info.get("smiles", ""))
    return Structure(name=name, numbers=atoms.numbers.copy(), positions=atoms.positions.copy(), smiles=smiles,
                     source=source)


def _read_ase(path: Path, crystal_format: bool) -> tuple[list[Structure], list[LoadProblem]]:
    from ase.io import read

    try:
        frames = read(path, index=":")
    except Exception as exc:  # noqa: BLE001 - any parse error of any format
        return [], [LoadProblem(str(path), f"could not be read ({type(exc).__name__}: {exc})")]
    structures, problems = [], []
    for k, atoms in enumerate(frames):
        name = safe_name(str(atoms.info.get("name", "")) or (path.stem if len(frames) == 1 else f"{path.stem}_{k}"))
        try:
            structures.append(_from_atoms(atoms, name, f"{path}[{k}]", crystal_format))
        except ValueError as exc:
            problems.append(LoadProblem(f"{path}[{k}]", str(exc)))
    return structures, problems


def _read_sdf(path: Path) -> tuple[list[Structure], list[LoadProblem]]:
    from rdkit import Chem

    structures, problems = [], []
    supplier = Chem.SDMolSupplier(str(path), removeHs=False, sanitize=False)
    for k, mol in enumerate(supplier):
        where = f"{path}[{k}]"
        if mol is None or mol.GetNumConformers() == 0:
            problems.append(LoadProblem(where, "SDF record could not be parsed or has no coordinates"))
            continue
        title = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
        name = safe_name(title or f"{path.stem}_{k}")
        numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()])
        try:
            smiles = Chem.MolToSmiles(Chem.RemoveHs(mol, sanitize=False))
        except Exception:  # noqa: BLE001 - SMILES is informational only
            smiles = ""
        structures.append(Structure(name=name, numbers=numbers, positions=mol.GetConformer().GetPositions(),
                                    smiles=smiles, source=where))
    return structures, problems


def _read_spice(path: Path) -> tuple[list[Structure], list[LoadProblem]]:
    import h5py

    structures, problems = [], []
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        return [], [LoadProblem(str(path), f"not a readable HDF5 file ({exc})")]
    with handle:
        for group_name in sorted(handle):
            group, where = handle[group_name], f"{path}:{group_name}"
            if not isinstance(group, h5py.Group) or "atomic_numbers" not in group or "conformations" not in group:
                problems.append(LoadProblem(where, "group lacks 'atomic_numbers' or 'conformations' (skipped)"))
                continue
            numbers = np.asarray(group["atomic_numbers"][()], dtype=np.int64).reshape(-1)
            conformations = np.asarray(group["conformations"][()], dtype=float)
            if conformations.ndim != 3 or conformations.shape[1:] != (len(numbers), 3) or not len(conformations):
                problems.append(LoadProblem(where, f"'conformations' has shape {conformations.shape}, expected "
                                                   f"(n_conf, {len(numbers)}, 3) (skipped)"))
                continue
            smiles = group["smiles"][()] if "smiles" in group else b""
            smiles = np.asarray(smiles).reshape(-1)[0] if np.size(smiles) else b""
            smiles = smiles.decode() if isinstance(smiles, bytes) else str(smiles)
            structures.append(Structure(name=safe_name(group_name), numbers=numbers,
                                        positions=conformations[0] * Bohr, smiles=smiles, source=where))
    return structures, problems


def read_structures(path: str | Path, smiles_seed: int = 0) -> tuple[list[Structure], list[LoadProblem]]:
    """Read structures from ``path`` by its suffix.

    ``.smi``/``.smiles``/``.txt``: SMILES list (embedded, to be relaxed); ``.sdf``; ``.h5``/``.hdf5``:
    SPICE layout (first conformation, bohr -> Å); ``.cif``, ``.vasp``, ``POSCAR*``, ``CONTCAR*``:
    crystals; anything else (``.xyz``, ``.extxyz`` ...) through ``ase.io.read`` — a structure with a
    cell and ``pbc`` is taken as a crystal.
    """
    path = Path(path)
    if not path.is_file():
        return [], [LoadProblem(str(path), "no such file")]
    suffix = path.suffix.lower()
    if suffix in SMILES_SUFFIXES:
        return embed_all(read_smiles_list(path.read_text(encoding="utf-8"), str(path)), seed=smiles_seed)
    if suffix == ".sdf":
        return _read_sdf(path)
    if suffix in {".h5", ".hdf5"}:
        return _read_spice(path)
    crystal = suffix in CRYSTAL_SUFFIXES or bool(CRYSTAL_NAMES.match(path.name))
    return _read_ase(path, crystal_format=crystal)


def unique_names(structures: list[Structure]) -> list[Structure]:
    """Rename duplicates ``name``, ``name_2``, ``name_3`` ... in order (in place; returns the list)."""
    taken = {s.name for s in structures}
    used: set[str] = set()
    for s in structures:
        if s.name in used:
            k = 2
            while f"{s.name}_{k}" in taken or f"{s.name}_{k}" in used:
                k += 1
            s.name = f"{s.name}_{k}"
        used.add(s.name)
    return structures
