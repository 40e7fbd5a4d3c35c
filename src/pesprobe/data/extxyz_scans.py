"""Scan sets as one multi-frame extended XYZ file (ASE conventions), readable by any ASE tool.

Each frame is one scan frame: positions (Å), ``energy`` (eV) in the comment line and per-atom
``forces`` (eV/Å), as ``ase.io.write`` writes them, plus the info keys ``scan_id``, ``scan_kind``,
``coordinate`` (Å or rad) and ``frame_index``; the first frame of each scan also carries
``scan_meta``, the scan's metadata as JSON with the list of the scan's ``frame_index`` values, so
that a reader knows which frames a truncated file lost. Frames of one scan are consecutive.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import iread, write

from pesprobe.data.atomic import atomic_write
from pesprobe.data.compact import meta_from_json, meta_to_json
from pesprobe.data.scan import DATA_PROBLEMS, LoadProblem, Scan, ScanSet

_REQUIRED = ("scan_id", "scan_kind", "coordinate")


def write_scans_extxyz(scans: Iterable[Scan], path: str | Path) -> Path:
    """Write every frame of ``scans`` to one extended XYZ file, atomically."""
    frames = []
    for scan in scans:
        plain, arrays = meta_to_json(scan.meta)
        indices = scan.meta.get("frame_index", np.arange(scan.n_frames))
        for i in range(scan.n_frames):
            atoms = Atoms(numbers=scan.numbers, positions=scan.positions[i], cell=scan.cell, pbc=scan.pbc)
            atoms.info.update(scan_id=scan.id, scan_kind=scan.kind, coordinate=float(scan.coordinate[i]),
                              frame_index=int(indices[i]))
            if i == 0:
                atoms.info["scan_meta"] = json.dumps({"meta": plain, "arrays": arrays,
                                                      "frame_index": [int(k) for k in indices]})
            atoms.calc = SinglePointCalculator(atoms, energy=float(scan.ref_energy[i]),
                                               forces=scan.ref_forces[i].copy())
            frames.append(atoms)
    buffer = io.StringIO()
    write(buffer, frames, format="extxyz")
    return atomic_write(path, buffer.getvalue())


def read_scans_extxyz(path: str | Path) -> ScanSet:
    """Read a file written by :func:`write_scans_extxyz` (or any extended XYZ with those info keys).

    Frames without the scan keys, with non-finite coordinates, or whose atoms differ from their
    scan's first frame are left out with a problem naming the file and frame number; scans with
    fewer than three frames with a reference energy are skipped the same way — except a scan with
    no reference energy at all and at least three frames: an *unlabelled* scan (a user's own
    geometries without reference labels), kept for the reference-free figures. A scan that lost
    frames (a truncated file: its ``scan_meta`` lists more frames than were read, or the file
    ends in an unreadable frame of it) or has frames without a finite reference energy is kept,
    with the problem in its ``meta["data_problems"]`` (it is flagged).
    """
    path = Path(path)
    problems: list[LoadProblem] = []
    groups: dict[str, list[tuple[int, Atoms]]] = {}
    truncated: str | None = None
    n_read = 0
    try:
        for n_read, atoms in enumerate(iread(path, index=":", format="extxyz"), start=1):
            if (reason := _unusable(atoms)) is not None:
                problems.append(LoadProblem(f"{path}#frame{n_read - 1}", f"frame skipped: {reason}"))
                continue
            groups.setdefault(str(atoms.info["scan_id"]), []).append((n_read - 1, atoms))
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for malformed files
        problems.append(LoadProblem(str(path), f"unreadable extended XYZ after {n_read} frames "
                                               f"({type(exc).__name__}: {exc})"))
        truncated = next(reversed(groups), None)
    scans = [scan for scan_id, frames in groups.items()
             if (scan := _scan(path, scan_id, frames, problems, scan_id == truncated)) is not None]
    return ScanSet(scans, source=str(path), problems=problems)


def _unusable(atoms: Atoms) -> str | None:
    """Why a frame cannot be a scan frame (missing scan keys, non-finite coordinates), or None."""
    missing = [k for k in _REQUIRED if k not in atoms.info]
    if missing:
        return f"no {', '.join(missing)} info key"
    bad = np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))
    if len(bad):
        return f"non-finite coordinates (NaN/inf) for atoms {bad.tolist()} (0-based): a data problem"
    return None


def _stored_meta(first: Atoms) -> tuple[dict, list[int] | None]:
    """The scan's metadata from its first frame's ``scan_meta`` and the frame indices the writer wrote
    (None when unknown: a file from another writer, or an older pesprobe that did not store them)."""
    if "scan_meta" not in first.info:
        return {}, None
    stored = json.loads(first.info["scan_meta"])
    meta = meta_from_json(stored["meta"], stored["arrays"])
    meta.pop(DATA_PROBLEMS, None)  # recomputed from what this read finds
    expected = stored.get("frame_index", meta.get("frame_index"))
    return meta, None if expected is None else [int(k) for k in np.asarray(expected).reshape(-1)]


def _scan(path: Path, scan_id: str, frames: list[tuple[int, Atoms]], problems: list[LoadProblem],
          truncated: bool) -> Scan | None:
    first = frames[0][1]
    kept = []
    for n, atoms in frames:
        if not np.array_equal(atoms.numbers, first.numbers):
            problems.append(LoadProblem(f"{path}#frame{n}", f"frame skipped: atoms differ from scan {scan_id}'s"))
            continue
        kept.append(atoms)
    energy = np.array([_result(a, "energy", np.nan) for a in kept], dtype=float)
    labelled = bool(np.isfinite(energy).any())
    if (labelled and np.isfinite(energy).sum() < 3) or len(kept) < 3:
        problems.append(LoadProblem(str(path), f"scan {scan_id} skipped: fewer than 3 frames with a reference energy"
                                    if labelled else f"scan {scan_id} skipped: fewer than 3 frames"))
        return None
    meta, expected = _stored_meta(first)
    meta["frame_index"] = np.array([a.info.get("frame_index", i) for i, a in enumerate(kept)], dtype=np.int64)
    flags = _lost_frames(scan_id, expected, meta["frame_index"], truncated)
    bad = meta["frame_index"][~np.isfinite(energy)]
    if len(bad) and labelled:  # an unlabelled scan (no reference energy at all) is not a data problem
        flags.append(f"scan {scan_id}: no finite reference energy in frames {bad.tolist()} (frame_index): "
                     "left out of the metrics")
    for message in flags:
        problems.append(LoadProblem(str(path), message))
    if flags:
        meta[DATA_PROBLEMS] = [f"{path}: {message}" for message in flags]
    forces = np.array([_result(a, "forces", np.full((len(a), 3), np.nan)) for a in kept], dtype=float)
    cell = first.cell.array if first.pbc.any() else None
    return Scan(id=scan_id, kind=str(first.info["scan_kind"]), numbers=first.numbers,
                positions=np.array([a.positions for a in kept]),
                coordinate=np.array([a.info["coordinate"] for a in kept], dtype=float), ref_energy=energy,
                ref_forces=forces, cell=cell, pbc=first.pbc, meta=meta)


def _lost_frames(scan_id: str, expected: list[int] | None, read: np.ndarray, truncated: bool) -> list[str]:
    """Messages for the frames of a scan that the file should hold but did not give."""
    if expected is not None:
        missing = sorted(set(expected) - set(read.tolist()))
        if missing:
            return [f"scan {scan_id}: {len(read)} of {len(expected)} frames read; frame_index {missing} "
                    "missing (truncated or damaged file)"]
        return []
    if truncated:
        return [f"scan {scan_id}: the file ends in an unreadable frame after {len(read)} frames of this scan; "
                "later frames are lost"]
    return []


def _result(atoms: Atoms, name: str, default):
    calc = atoms.calc
    if calc is not None and name in calc.results:
        return calc.results[name]
    return atoms.info.get(name, default) if name == "energy" else atoms.arrays.get(name, default)
