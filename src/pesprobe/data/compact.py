"""Our compact scan-set format: one uncompressed ``.npz`` file per data set.

Arrays of all scans are concatenated (no padding): ``numbers`` (sum n_atoms,), ``positions`` and
``ref_forces`` (sum n_frames*n_atoms, 3), ``coordinate`` and ``ref_energy`` (sum n_frames,), with
``atom_offsets``/``frame_offsets``/``row_offsets`` to slice them; ``cells`` (n_scans, 3, 3; NaN when not periodic),
``pbc`` (n_scans, 3); and ``header``, a JSON string with ids, kinds, metadata, the source and the
load problems. Loading needs no pickle and takes milliseconds per hundred scans.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pesprobe.data.atomic import atomic_write
from pesprobe.data.scan import LoadProblem, Scan, ScanSet

FORMAT = "pesprobe-compact"
VERSION = 1


def meta_to_json(meta: dict) -> tuple[dict, dict]:
    """Split scan metadata into JSON-ready values and ``{key: [dtype, shape]}`` for the arrays."""
    plain, arrays = {}, {}
    for key, value in meta.items():
        if isinstance(value, np.ndarray):
            arrays[key] = [value.dtype.str, list(value.shape)]
            plain[key] = value.reshape(-1).tolist()
        elif isinstance(value, np.generic):
            plain[key] = value.item()
        else:
            plain[key] = value
    return plain, arrays


def meta_from_json(plain: dict, arrays: dict) -> dict:
    """Inverse of :func:`meta_to_json`."""
    meta = dict(plain)
    for key, (dtype, shape) in arrays.items():
        meta[key] = np.asarray(plain[key], dtype=np.dtype(dtype)).reshape(shape)
    return meta


def write_compact(scans: ScanSet, path: str | Path) -> Path:
    """Write ``scans`` (with its source and problems) to one compact ``.npz`` file, atomically."""
    items = list(scans)
    atom_counts = [s.n_atoms for s in items]
    frame_counts = [s.n_frames for s in items]
    entries = []
    for s in items:
        plain, arrays = meta_to_json(s.meta)
        entries.append({"id": s.id, "kind": s.kind, "meta": plain, "meta_arrays": arrays})
    header = {"format": FORMAT, "version": VERSION, "source": scans.source,
              "problems": [[p.path, p.message] for p in scans.problems], "scans": entries}

    def cat(arrays: list[np.ndarray], shape: tuple[int, ...], dtype) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.zeros(shape, dtype=dtype)

    content = {
        "header": np.array(json.dumps(header)),
        "atom_offsets": np.concatenate([[0], np.cumsum(atom_counts)]).astype(np.int64),
        "frame_offsets": np.concatenate([[0], np.cumsum(frame_counts)]).astype(np.int64),
        "row_offsets": np.concatenate([[0], np.cumsum(np.multiply(frame_counts, atom_counts))]).astype(np.int64),
        "numbers": cat([s.numbers for s in items], (0,), np.int64),
        "positions": cat([s.positions.reshape(-1, 3) for s in items], (0, 3), float),
        "ref_forces": cat([s.ref_forces.reshape(-1, 3) for s in items], (0, 3), float),
        "coordinate": cat([s.coordinate for s in items], (0,), float),
        "ref_energy": cat([s.ref_energy for s in items], (0,), float),
        "cells": np.array([s.cell if s.cell is not None else np.full((3, 3), np.nan) for s in items]).reshape(-1, 3, 3),
        "pbc": np.array([s.pbc for s in items], dtype=bool).reshape(-1, 3),
    }
    return atomic_write(path, content)


def read_compact(path: str | Path) -> ScanSet:
    """Read a file written by :func:`write_compact`.

    Raises
    ------
    ValueError
        If the file is not a pesprobe compact file or is corrupt (the message names the file).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        header = json.loads(str(arrays["header"]))
    except Exception as exc:  # noqa: BLE001 - any corrupt archive
        raise ValueError(f"{path}: not a readable pesprobe compact file ({type(exc).__name__}: {exc})") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ValueError(f"{path}: not a pesprobe compact file of version {VERSION}")
    ao, fo, ro = arrays["atom_offsets"], arrays["frame_offsets"], arrays["row_offsets"]
    scans = []
    for k, entry in enumerate(header["scans"]):
        n_atoms = ao[k + 1] - ao[k]
        f0, f1 = fo[k], fo[k + 1]
        rows = slice(ro[k], ro[k + 1])
        cell = arrays["cells"][k]
        scans.append(Scan(
            id=entry["id"], kind=entry["kind"], numbers=arrays["numbers"][ao[k]:ao[k + 1]],
            positions=arrays["positions"][rows].reshape(-1, n_atoms, 3),
            coordinate=arrays["coordinate"][f0:f1], ref_energy=arrays["ref_energy"][f0:f1],
            ref_forces=arrays["ref_forces"][rows].reshape(-1, n_atoms, 3),
            cell=None if np.isnan(cell).all() else cell, pbc=arrays["pbc"][k],
            meta=meta_from_json(entry["meta"], entry["meta_arrays"])))
    problems = [LoadProblem(p, m) for p, m in header["problems"]]
    return ScanSet(scans, source=header["source"], problems=problems)
