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
from pathlib import Path

import numpy as np
from ase.data import chemical_symbols

from pesprobe.data.atomic import atomic_write
from pesprobe.data.scan import LoadProblem, Scan
from pesprobe.data.xyzparse import XYZFormatError, read_xyz_frame

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
        for scan_dir in sorted(bond_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
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


def _read_partition(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            part = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise ValueError("missing partition.npz") from None
    except Exception as exc:  # noqa: BLE001 - any corrupt archive
        raise ValueError(f"unreadable partition.npz ({type(exc).__name__}: {exc})") from None
    for key in ("perturb_range", "bond_index"):
        if key not in part:
            raise ValueError(f"partition.npz lacks field {key!r}")
    rng = np.asarray(part["perturb_range"], dtype=float).reshape(-1)
    if rng.shape != (3,) or not np.isfinite(rng).all() or rng[2] < 2 or rng[2] != int(rng[2]):
        raise ValueError(f"partition.npz field 'perturb_range' must be (start, end, n), got {rng.tolist()}")
    return part


def read_scan_dir(scan_dir: Path, problems: list[LoadProblem]) -> Scan | None:
    """Read one published scan folder; return None (with a problem recorded) if it is unusable.

    Frames that cannot be read, or whose atoms differ from the scan's, are left out with a
    problem naming the file; a scan with fewer than three valid frames is rejected.
    """
    scan_id = f"{scan_dir.parent.name}/{scan_dir.name}"
    try:
        part = _read_partition(scan_dir / "partition.npz")
    except ValueError as exc:
        problems.append(LoadProblem(str(scan_dir / "partition.npz"), f"scan {scan_id} skipped: {exc}"))
        return None
    start, end, n = part["perturb_range"].astype(float)
    grid = np.linspace(start, end, int(n))
    frame_files: dict[int, Path] = {}
    for entry in os.scandir(scan_dir):
        match = _FRAME.match(entry.name)
        if match:
            frame_files[int(match.group(1))] = Path(entry.path)
        elif entry.name not in _SCAN_FILES and not DOC_FILES.match(entry.name):
            problems.append(LoadProblem(entry.path, "stray entry in scan folder (ignored)"))
    out_of_grid = sorted(i for i in frame_files if i >= len(grid))
    for i in out_of_grid:
        problems.append(LoadProblem(str(frame_files.pop(i)),
                                    f"frame index beyond perturb_range n={len(grid)} (ignored)"))
    missing = sorted(set(range(len(grid))) - set(frame_files))
    if missing:
        problems.append(LoadProblem(str(scan_dir), f"missing frame files for indices {_ranges(missing)}"))

    unperturbed = None
    reference_atoms = None
    if (scan_dir / "unperturbed.xyz").exists():
        try:
            frame = read_xyz_frame(str(scan_dir / "unperturbed.xyz"))
            unperturbed, reference_atoms = frame.positions, frame.numbers
        except XYZFormatError as exc:
            problems.append(LoadProblem(str(scan_dir / "unperturbed.xyz"), str(exc)))

    kept, positions, energies, forces, info0 = [], [], [], [], None
    for i in sorted(frame_files):
        path = frame_files[i]
        try:
            frame = read_xyz_frame(str(path))
        except XYZFormatError as exc:
            problems.append(LoadProblem(str(path), f"frame skipped: {exc}"))
            continue
        if reference_atoms is None:
            reference_atoms = frame.numbers
        if len(frame.numbers) != len(reference_atoms) or not np.array_equal(frame.numbers, reference_atoms):
            problems.append(LoadProblem(str(path), f"frame skipped: atoms ({_formula(frame.numbers)}) differ "
                                                   f"from the scan's ({_formula(reference_atoms)})"))
            continue
        if frame.forces is None:
            problems.append(LoadProblem(str(path), "frame has no forces column; reference forces set to NaN"))
        energy = frame.info.get("energy", np.nan)
        if "energy" not in frame.info:
            problems.append(LoadProblem(str(path), "frame has no energy= key: kept for its geometry, left out of "
                                                   "the metrics (no reference energy)"))
        kept.append(i)
        positions.append(frame.positions)
        energies.append(float(energy))
        forces.append(frame.forces if frame.forces is not None else np.full_like(frame.positions, np.nan))
        info0 = info0 or frame.info
    valid = int(np.isfinite(energies).sum()) if energies else 0
    if valid < MIN_VALID_FRAMES:
        problems.append(LoadProblem(str(scan_dir), f"scan {scan_id} skipped: only {valid} frames with a reference "
                                                   f"energy (need at least {MIN_VALID_FRAMES})"))
        return None
    labels = part.get("labels")
    if labels is not None and len(labels) != len(reference_atoms):
        problems.append(LoadProblem(str(scan_dir / "partition.npz"),
                                    f"'labels' has {len(labels)} entries for {len(reference_atoms)} atoms (ignored)"))
        labels = None
    meta = {
        "bond": str(part["bond"]) if "bond" in part else scan_dir.parent.name,
        "bond_index": np.asarray(part["bond_index"], dtype=np.int64),
        "perturb_range": part["perturb_range"].astype(float),
        "frame_index": np.asarray(kept, dtype=np.int64),
        "source": str(scan_dir),
    }
    if labels is not None:
        meta["labels"] = np.asarray(labels, dtype=np.int64)
    for key in ("unit_vec", "rotation"):
        if key in part:
            meta[key] = part[key].astype(float) if key == "unit_vec" else str(part[key])
    for key in ("smiles", "dataset"):
        if info0 and key in info0:
            meta[key] = str(info0[key])
    if unperturbed is not None:
        meta["unperturbed"] = unperturbed
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
