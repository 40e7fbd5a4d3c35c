"""Scan sets as one multi-frame extended XYZ file (ASE conventions), readable by any ASE tool.

Each frame is one scan frame: positions (Å), ``energy`` (eV) in the comment line and per-atom
``forces`` (eV/Å), as ``ase.io.write`` writes them, plus the info keys ``scan_id``, ``scan_kind``,
``coordinate`` (Å or rad) and ``frame_index``; the first frame of each scan also carries
``scan_meta``, the scan's metadata as JSON. Frames of one scan are consecutive.
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
from pesprobe.data.scan import LoadProblem, Scan, ScanSet

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
                atoms.info["scan_meta"] = json.dumps({"meta": plain, "arrays": arrays})
            atoms.calc = SinglePointCalculator(atoms, energy=float(scan.ref_energy[i]),
                                               forces=scan.ref_forces[i].copy())
            frames.append(atoms)
    buffer = io.StringIO()
    write(buffer, frames, format="extxyz")
    return atomic_write(path, buffer.getvalue())


def read_scans_extxyz(path: str | Path) -> ScanSet:
    """Read a file written by :func:`write_scans_extxyz` (or any extended XYZ with those info keys).

    Frames without the scan keys, or whose atoms differ from their scan's first frame, are left out
    with a problem naming the file and frame number; scans with fewer than three frames with a
    reference energy are skipped the same way.
    """
    path = Path(path)
    problems: list[LoadProblem] = []
    groups: dict[str, list[tuple[int, Atoms]]] = {}
    try:
        for n, atoms in enumerate(iread(path, index=":", format="extxyz")):
            missing = [k for k in _REQUIRED if k not in atoms.info]
            if missing:
                problems.append(LoadProblem(f"{path}#frame{n}", f"frame skipped: no {', '.join(missing)} info key"))
                continue
            groups.setdefault(str(atoms.info["scan_id"]), []).append((n, atoms))
    except Exception as exc:  # noqa: BLE001 - ASE raises many types for malformed files
        problems.append(LoadProblem(str(path), f"unreadable extended XYZ after {sum(map(len, groups.values()))} "
                                               f"frames ({type(exc).__name__}: {exc})"))
    scans = [scan for scan_id, frames in groups.items()
             if (scan := _scan(path, scan_id, frames, problems)) is not None]
    return ScanSet(scans, source=str(path), problems=problems)


def _scan(path: Path, scan_id: str, frames: list[tuple[int, Atoms]], problems: list[LoadProblem]) -> Scan | None:
    first = frames[0][1]
    kept = []
    for n, atoms in frames:
        if not np.array_equal(atoms.numbers, first.numbers):
            problems.append(LoadProblem(f"{path}#frame{n}", f"frame skipped: atoms differ from scan {scan_id}'s"))
            continue
        kept.append(atoms)
    energy = np.array([_result(a, "energy", np.nan) for a in kept], dtype=float)
    if np.isfinite(energy).sum() < 3:
        problems.append(LoadProblem(str(path), f"scan {scan_id} skipped: fewer than 3 frames with a reference energy"))
        return None
    meta = {}
    if "scan_meta" in first.info:
        stored = json.loads(first.info["scan_meta"])
        meta = meta_from_json(stored["meta"], stored["arrays"])
    meta["frame_index"] = np.array([a.info.get("frame_index", i) for i, a in enumerate(kept)], dtype=np.int64)
    forces = np.array([_result(a, "forces", np.full((len(a), 3), np.nan)) for a in kept], dtype=float)
    cell = first.cell.array if first.pbc.any() else None
    return Scan(id=scan_id, kind=str(first.info["scan_kind"]), numbers=first.numbers,
                positions=np.array([a.positions for a in kept]),
                coordinate=np.array([a.info["coordinate"] for a in kept], dtype=float), ref_energy=energy,
                ref_forces=forces, cell=cell, pbc=first.pbc, meta=meta)


def _result(atoms: Atoms, name: str, default):
    calc = atoms.calc
    if calc is not None and name in calc.results:
        return calc.results[name]
    return atoms.info.get(name, default) if name == "energy" else atoms.arrays.get(name, default)
