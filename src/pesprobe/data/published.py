"""The published BSCT layout: ``<bond>/<id>/atoms_<i>.xyz`` + ``unperturbed.xyz`` + ``partition.npz``.

``partition.npz`` keys: ``bond`` (str), ``bond_index`` (2 ints, 0-based), ``labels`` (fragment 0/1 of
each atom), ``perturb_range`` (start Å, end Å, n_frames), ``unit_vec`` (3,), ``rotation`` (an
ASE-style rotation string such as ``'0x,0y,0z'``). Frame ``i`` has bond length
``linspace(start, end, n)[i]``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from pesprobe.data.atomic import atomic_write
from pesprobe.data.files import UnreadableFileError, regular_file_size
from pesprobe.data.scan import DATA_PROBLEMS, LoadProblem, Scan
from pesprobe.data.xyzparse import XYZFormatError, XYZFrame, read_xyz_frame

_FRAME = re.compile(r"^atoms_(\d+)\.xyz$")
_SCAN_FILES = {"partition.npz", "unperturbed.xyz"}
#: Files at the data-set root or in a bond folder that are documentation, not data.
DOC_FILES = re.compile(r"^(LICEN[CS]E|COPYING|README|NOTICE|CITATION)(\..*)?$|.*\.(md|txt|rst|json|cff)$", re.I)
MIN_VALID_FRAMES = 3


def is_published_layout(root: Path) -> bool:
    """True if ``root`` looks like the published layout (a partition.npz two levels down)."""
    return any(root.glob("*/*/partition.npz"))


def scan_dirs(root: Path, problems: list[LoadProblem]) -> list[Path]:
    """Scan folders under ``root`` in sorted order; stray entries are reported in ``problems``."""
    found = []
    for bond_dir in sorted(root.iterdir()):
        if bond_dir.name.startswith("."):
            continue
        if not bond_dir.is_dir():
            if not DOC_FILES.match(bond_dir.name):
                problems.append(LoadProblem(str(bond_dir), "stray file in data-set root (ignored)"))
            continue
        for scan_dir in sorted(_listing(bond_dir, problems), key=lambda p: (len(p.name), p.name)):
            if scan_dir.name.startswith("."):
                continue
            if not scan_dir.is_dir():
                if not DOC_FILES.match(scan_dir.name):
                    problems.append(LoadProblem(str(scan_dir), "stray file in bond folder (ignored)"))
                continue
            found.append(scan_dir)
        if not any(p.parent == bond_dir for p in found):
            problems.append(LoadProblem(str(bond_dir), "folder holds no scan folders (ignored)"))
    return sorted(found, key=lambda p: (p.parent.name, p.name))


def _listing(folder: Path, problems: list[LoadProblem]) -> list[Path]:
    """Entries of ``folder``; an unreadable folder is reported and gives none."""
    try:
        return list(folder.iterdir())
    except OSError as exc:
        problems.append(LoadProblem(str(folder), f"folder unreadable ({type(exc).__name__}: "
                                                 f"{exc.strerror or exc}) (ignored)"))
        return []


def _read_partition(path: Path) -> dict:
    try:
        regular_file_size(path)
    except UnreadableFileError as exc:
        missing = not path.exists() and not path.is_symlink()
        raise ValueError("missing partition.npz" if missing else f"unreadable partition.npz ({exc.reason})") from None
    try:
        with np.load(path, allow_pickle=False) as data:
            part = {key: data[key] for key in data.files}
    except Exception as exc:  # noqa: BLE001 - any corrupt archive
        raise ValueError(f"unreadable partition.npz ({type(exc).__name__}: {exc})") from None
    for key in ("perturb_range", "bond_index"):
        if key not in part:
            raise ValueError(f"partition.npz lacks field {key!r}")
    _check_perturb_range(part["perturb_range"])
    return part


def _check_perturb_range(value: np.ndarray) -> None:
    """Raise ValueError unless ``value`` is (start, end, n) with 0 < start < end (Å) and an integer n >= 2."""
    try:
        rng = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        rng = np.full(1, np.nan)
    name = "partition.npz field 'perturb_range'"
    if rng.shape != (3,) or not np.isfinite(rng).all() or rng[2] < 2 or rng[2] != int(rng[2]):
        raise ValueError(f"{name} must be (start, end, n), got {rng.tolist()}")
    if rng[0] <= 0 or rng[1] <= 0:
        raise ValueError(f"{name} holds a bond length <= 0 Å: {rng.tolist()}")
    if rng[0] >= rng[1]:
        raise ValueError(f"{name} must run from a shorter to a longer bond (start < end, Å), got {rng.tolist()}")


class _Rejected(Exception):
    """The scan folder cannot be used; ``path`` is the file to blame."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(reason)
        self.path, self.reason = str(path), reason


@dataclass
class _Notes:
    """The problems met reading one scan: all go to the set's problems; ``flag=True`` ones also flag the scan
    (they touch which frames or reference values it is scored on) and are kept in its ``meta["data_problems"]``."""

    problems: list[LoadProblem]
    flags: list[str] = field(default_factory=list)

    def add(self, path: str | Path, message: str, flag: bool = True) -> None:
        problem = LoadProblem(str(path), message)
        self.problems.append(problem)
        if flag:
            self.flags.append(str(problem))


def _frame_files(scan_dir: Path, notes: _Notes) -> dict[int, Path]:
    """Frame index -> file of the ``atoms_<i>.xyz`` entries; two files for one index reject the scan."""
    frame_files: dict[int, Path] = {}
    try:
        entries = sorted(os.scandir(scan_dir), key=lambda e: e.name)
    except OSError as exc:
        raise _Rejected(scan_dir, f"folder unreadable ({type(exc).__name__}: {exc.strerror or exc})") from None
    for entry in entries:
        match = _FRAME.match(entry.name)
        if not match:
            if entry.name not in _SCAN_FILES and not DOC_FILES.match(entry.name):
                notes.add(entry.path, "stray entry in scan folder (ignored)", flag=False)
            continue
        index = int(match.group(1))
        if index in frame_files:
            raise _Rejected(scan_dir, f"{frame_files[index].name} and {entry.name} are both frame {index}")
        frame_files[index] = Path(entry.path)
    return frame_files


def _frames_on_grid(frame_files: dict[int, Path], n_grid: int, scan_dir: Path, notes: _Notes) -> None:
    """Drop (and report) frame files beyond the grid; report grid points without a file."""
    for i in sorted(i for i in frame_files if i >= n_grid):
        notes.add(frame_files.pop(i), f"frame index beyond perturb_range n={n_grid} (ignored)")
    missing = sorted(set(range(n_grid)) - set(frame_files))
    if missing:
        notes.add(scan_dir, f"missing frame files for indices {_ranges(missing)}")


def _read_frame(path: Path) -> XYZFrame:
    """One frame file; an unreadable one rejects the scan."""
    try:
        return read_xyz_frame(str(path))
    except UnreadableFileError as exc:
        raise _Rejected(exc.path, f"unreadable: {exc.reason}") from None


def _bad_coordinates(frame: XYZFrame) -> str | None:
    """Why the frame's positions are unusable (non-finite values), or None."""
    bad = np.flatnonzero(~np.isfinite(frame.positions).all(axis=1))
    if not len(bad):
        return None
    return f"non-finite coordinates (NaN/inf) for atoms {_ranges(bad.tolist())} (0-based): a data problem"


def read_scan_dir(scan_dir: Path, problems: list[LoadProblem]) -> Scan | None:
    """Read one published scan folder; return None (with a problem recorded) if it is unusable.

    Frames that cannot be parsed, have non-finite coordinates, or whose atoms differ from the
    scan's are left out with a problem naming the file. The scan is rejected (a problem naming
    the file and the reason) when its ``partition.npz`` is missing or invalid, when any of its
    files is not a readable regular file (directory, FIFO, dangling symlink, symlink loop, no
    permission), when two files claim one frame (``atoms_01.xyz`` and ``atoms_1.xyz``), or when
    fewer than three frames have a reference energy. Problems that touch the scored frames
    (missing, skipped, out-of-grid frames; missing or non-finite reference values) are also
    listed in the scan's ``meta["data_problems"]``, which flags it.
    """
    scan_id = f"{scan_dir.parent.name}/{scan_dir.name}"
    notes = _Notes(problems)
    try:
        part = _read_partition(scan_dir / "partition.npz")
    except ValueError as exc:
        problems.append(LoadProblem(str(scan_dir / "partition.npz"), f"scan {scan_id} skipped: {exc}"))
        return None
    try:
        return _read_scan(scan_dir, scan_id, part, notes)
    except _Rejected as exc:
        problems.append(LoadProblem(exc.path, f"scan {scan_id} skipped: {exc.reason}"))
        return None


def _read_unperturbed(scan_dir: Path, notes: _Notes) -> XYZFrame | None:
    path = scan_dir / "unperturbed.xyz"
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return _read_frame(path)
    except XYZFormatError as exc:
        notes.add(path, str(exc), flag=False)
        return None


def _read_scan(scan_dir: Path, scan_id: str, part: dict, notes: _Notes) -> Scan | None:
    start, end, n = part["perturb_range"].astype(float)
    grid = np.linspace(start, end, int(n))
    frame_files = _frame_files(scan_dir, notes)
    _frames_on_grid(frame_files, len(grid), scan_dir, notes)
    start_frame = _read_unperturbed(scan_dir, notes)
    reference_atoms = start_frame.numbers if start_frame is not None else None

    kept, positions, energies, forces, info0, nonfinite = [], [], [], [], None, []
    for i in sorted(frame_files):
        path = frame_files[i]
        try:
            frame = _read_frame(path)
        except XYZFormatError as exc:
            notes.add(path, f"frame skipped: {exc}")
            continue
        if reference_atoms is None:
            reference_atoms = frame.numbers
        if len(frame.numbers) != len(reference_atoms) or not np.array_equal(frame.numbers, reference_atoms):
            notes.add(path, f"frame skipped: atoms ({_formula(frame.numbers)}) differ "
                            f"from the scan's ({_formula(reference_atoms)})")
            continue
        if (bad := _bad_coordinates(frame)) is not None:
            notes.add(path, f"frame {i} skipped: {bad}")
            continue
        if frame.forces is None:
            notes.add(path, "frame has no forces column; reference forces set to NaN")
        energy = frame.info.get("energy", np.nan)
        if "energy" not in frame.info:
            notes.add(path, "frame has no energy= key: kept for its geometry, left out of "
                            "the metrics (no reference energy)")
        elif not np.isfinite(energy):
            nonfinite.append(i)
        kept.append(i)
        positions.append(frame.positions)
        energies.append(float(energy))
        forces.append(frame.forces if frame.forces is not None else np.full_like(frame.positions, np.nan))
        info0 = info0 or frame.info
    if nonfinite:
        names = ", ".join(frame_files[i].name for i in nonfinite)
        notes.add(scan_dir, f"scan {scan_id}: non-finite reference energy in frames {_ranges(nonfinite)} ({names}): "
                            "left out of the metrics")
    valid = int(np.isfinite(energies).sum()) if energies else 0
    if valid < MIN_VALID_FRAMES:
        notes.add(scan_dir, f"scan {scan_id} skipped: only {valid} frames with a reference "
                            f"energy (need at least {MIN_VALID_FRAMES})", flag=False)
        return None
    labels = part.get("labels")
    if labels is not None and len(labels) != len(reference_atoms):
        notes.add(scan_dir / "partition.npz",
                  f"'labels' has {len(labels)} entries for {len(reference_atoms)} atoms (ignored)", flag=False)
        labels = None
    meta = {
        "bond": str(part["bond"]) if "bond" in part else scan_dir.parent.name,
        "bond_index": np.asarray(part["bond_index"], dtype=np.int64),
        "perturb_range": part["perturb_range"].astype(float),
        "frame_index": np.asarray(kept, dtype=np.int64),
        "source": str(scan_dir),
    }
    if notes.flags:
        meta[DATA_PROBLEMS] = list(notes.flags)
    if labels is not None:
        meta["labels"] = np.asarray(labels, dtype=np.int64)
    for key in ("unit_vec", "rotation"):
        if key in part:
            meta[key] = part[key].astype(float) if key == "unit_vec" else str(part[key])
    for key in ("smiles", "dataset"):
        if info0 and key in info0:
            meta[key] = str(info0[key])
    if start_frame is not None:
        meta["unperturbed"] = start_frame.positions
    cell, pbc = _cell_of(info0 or {}, scan_dir)
    return Scan(id=scan_id, kind="bond", numbers=reference_atoms, positions=np.stack(positions),
                coordinate=grid[kept], ref_energy=np.asarray(energies), ref_forces=np.stack(forces), meta=meta,
                cell=cell, pbc=pbc)


def _cell_of(info: dict, scan_dir: Path) -> tuple[np.ndarray | None, np.ndarray]:
    """Cell (from ``Lattice=``) and periodicity (``pbc=``) of a scan's frames; a molecule has neither."""
    flags = str(info.get("pbc", "F F F")).split()
    pbc = np.array([f.upper() in ("T", "TRUE", "1") for f in flags] if len(flags) == 3 else [False] * 3)
    if "Lattice" not in info:
        if pbc.any():
            raise ValueError(f"{scan_dir}: frames say pbc={info.get('pbc')!r} but give no Lattice=")
        return None, pbc
    try:
        cell = np.array(str(info["Lattice"]).split(), dtype=float).reshape(3, 3)
    except ValueError:
        raise ValueError(f"{scan_dir}: unparsable Lattice={info['Lattice']!r}") from None
    return cell, pbc


def iter_published(root: Path, problems: list[LoadProblem]) -> Iterator[Scan]:
    """Yield the scans of a published-layout folder in sorted order."""
    for scan_dir in scan_dirs(root, problems):
        scan = read_scan_dir(scan_dir, problems)
        if scan is not None:
            yield scan


def _formula(numbers: np.ndarray) -> str:
    symbols, counts = np.unique(numbers, return_counts=True)
    return "".join(f"{chemical_symbols[s]}{c if c > 1 else ''}" for s, c in zip(symbols, counts))


def _ranges(indices: list[int]) -> str:
    parts, start = [], indices[0]
    for prev, cur in zip(indices, indices[1:] + [None]):
        if cur != prev + 1:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = cur
    return ",".join(parts)


#: Values written unquoted: plain words and numbers.
_PLAIN = re.compile(r"[A-Za-z0-9_.+\-]+")


def _frame_text(numbers: np.ndarray, positions: np.ndarray, forces: np.ndarray, info: dict,
                cell: np.ndarray | None = None, pbc: np.ndarray | None = None) -> str:
    pairs = ["Properties=species:S:1:pos:R:3:forces:R:3"]
    for key, value in info.items():
        text = str(value)
        # quote anything but a plain word or number: extended-XYZ readers (ASE) parse [..], = and
        # spaces in bare values (a SMILES such as N[C@@H](C)C(=O)O would turn into an array)
        pairs.append(f"{key}={text}" if _PLAIN.fullmatch(text) else f'{key}="{text}"')
    if cell is not None:
        pairs.append('Lattice="' + " ".join(f"{v:.10f}" for v in np.asarray(cell).ravel()) + '"')
    flags = np.zeros(3, dtype=bool) if pbc is None or cell is None else np.asarray(pbc, dtype=bool)
    pairs.append('pbc="' + " ".join("T" if p else "F" for p in flags) + '"')
    rows = [f"{chemical_symbols[z]:<2s} {p[0]:16.8f} {p[1]:16.8f} {p[2]:16.8f} {f[0]:16.8f} {f[1]:16.8f} {f[2]:16.8f}"
            for z, p, f in zip(numbers, positions, forces)]
    return f"{len(numbers)}\n{' '.join(pairs)}\n" + "\n".join(rows) + "\n"


def write_published(scans: Iterable[Scan], root: str | Path) -> list[Path]:
    """Write bond scans in the published layout under ``root``; returns the scan folders.

    Every file is written atomically. Energies are written with full precision (``repr``);
    a NaN reference energy is written as ``energy=nan``. ``unperturbed.xyz`` carries the reference
    energy and forces at the unperturbed geometry when the scan has them (``meta["unperturbed_energy"]``,
    ``meta["unperturbed_forces"]``, as :func:`pesprobe.scan.build_scans` records), else NaN forces.
    """
    root = Path(root)
    written = []
    for scan in scans:
        if scan.kind != "bond":
            raise ValueError(f"scan {scan.id}: the published layout holds bond scans only (kind={scan.kind!r}); "
                             "use the compact format for angle and torsion scans")
        bond = scan.group
        name = scan.id.split("/")[-1]
        scan_dir = root / bond / name
        scan_dir.mkdir(parents=True, exist_ok=True)
        base = {"id": name, "bond": bond}
        for key in ("smiles", "dataset", "method"):
            if key in scan.meta:
                base[key] = scan.meta[key]
        indices = scan.meta.get("frame_index", np.arange(scan.n_frames))
        for old in set(scan_dir.glob("atoms_*.xyz")) - {scan_dir / f"atoms_{int(idx)}.xyz" for idx in indices}:
            old.unlink()  # a frame of an earlier scan written here (e.g. with more points)
        for i, idx in enumerate(indices):
            info = dict(base, energy=repr(float(scan.ref_energy[i])))
            atomic_write(scan_dir / f"atoms_{int(idx)}.xyz",
                         _frame_text(scan.numbers, scan.positions[i], scan.ref_forces[i], info, scan.cell, scan.pbc))
        if "unperturbed" in scan.meta:
            unperturbed = np.asarray(scan.meta["unperturbed"])
            start = dict(base)
            if np.isfinite(scan.meta.get("unperturbed_energy", np.nan)):
                start["energy"] = repr(float(scan.meta["unperturbed_energy"]))
            forces = np.asarray(scan.meta.get("unperturbed_forces", np.full_like(unperturbed, np.nan)))
            atomic_write(scan_dir / "unperturbed.xyz",
                         _frame_text(scan.numbers, unperturbed, forces, start, scan.cell, scan.pbc))
        coordinate = scan.coordinate
        perturb = scan.meta.get("perturb_range", (coordinate[0], coordinate[-1], len(coordinate)))
        arrays = {
            "bond": np.array(bond),
            "bond_index": np.asarray(scan.meta.get("bond_index", (0, 1)), dtype=np.int64),
            "labels": np.asarray(scan.meta.get("labels", np.zeros(scan.n_atoms)), dtype=np.int32),
            "perturb_range": np.asarray(perturb, dtype=float),
            "unit_vec": np.asarray(scan.meta.get("unit_vec", np.zeros(3)), dtype=float),
            "rotation": np.array(str(scan.meta.get("rotation", "0x,0y,0z"))),
        }
        atomic_write(scan_dir / "partition.npz", arrays)
        written.append(scan_dir)
    return written
