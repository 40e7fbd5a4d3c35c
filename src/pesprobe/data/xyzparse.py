"""A fast reader for single-frame extended XYZ files (the published BSCT frames).

``ase.io.read`` is general but slow (about a millisecond per small file); BSCT data sets have
tens of thousands of one-frame files, so this reader parses the extended-XYZ comment line and the
atom table directly with NumPy. It follows ASE's conventions: ``Properties=name:type:ncols``,
``key=value`` pairs (quoted values allowed), ``energy`` in eV and ``forces`` in eV/Å.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers

_KEY_VALUE = re.compile(r'([A-Za-z_][\w\-]*)\s*=\s*("(?:[^"\\]|\\.)*"|\S+)')


class XYZFormatError(ValueError):
    """A malformed extended XYZ file; the message names the file and the problem."""


@dataclass
class XYZFrame:
    """One parsed frame.

    Attributes
    ----------
    numbers : ndarray, shape (n_atoms,)
    positions : ndarray, shape (n_atoms, 3), Å
    forces : ndarray, shape (n_atoms, 3), eV/Å, or None if the file has no forces column
    info : dict
        The comment line's key=value pairs (``energy`` as float when present).
    """

    numbers: np.ndarray
    positions: np.ndarray
    forces: np.ndarray | None
    info: dict[str, str | float]


def parse_comment(line: str) -> dict[str, str]:
    """Key=value pairs of an extended-XYZ comment line, quotes removed."""
    out = {}
    for key, value in _KEY_VALUE.findall(line):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[key] = value
    return out


def _columns(properties: str, path: str) -> dict[str, tuple[int, int, str]]:
    fields = properties.split(":")
    if len(fields) % 3:
        raise XYZFormatError(f"{path}: malformed Properties={properties!r}")
    cols, start = {}, 0
    for name, kind, count in zip(fields[::3], fields[1::3], fields[2::3]):
        try:
            n = int(count)
        except ValueError:
            raise XYZFormatError(f"{path}: malformed Properties={properties!r}") from None
        cols[name] = (start, start + n, kind)
        start += n
    return cols


def parse_xyz_text(text: str, path: str = "<string>") -> XYZFrame:
    """Parse the first frame of extended XYZ ``text``; ``path`` is only used in error messages.

    Raises
    ------
    XYZFormatError
        On a missing or bad atom count, a truncated atom table, a missing ``species`` or ``pos``
        column, an unknown element or an unparsable number.
    """
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise XYZFormatError(f"{path}: empty file")
    try:
        n_atoms = int(lines[0].split()[0])
    except ValueError:
        raise XYZFormatError(f"{path}: first line must be the atom count, got {lines[0][:40]!r}") from None
    if n_atoms <= 0:
        raise XYZFormatError(f"{path}: atom count must be positive, got {n_atoms}")
    if len(lines) < n_atoms + 2:
        raise XYZFormatError(f"{path}: truncated: {n_atoms} atoms declared, "
                             f"{max(len(lines) - 2, 0)} atom lines found")
    info: dict[str, str | float] = dict(parse_comment(lines[1]))
    cols = _columns(str(info.pop("Properties", "species:S:1:pos:R:3")), path)
    if "species" not in cols or "pos" not in cols:
        raise XYZFormatError(f"{path}: Properties must contain species and pos columns")
    width = max(stop for _, stop, _ in cols.values())
    tokens = " ".join(lines[2:2 + n_atoms]).split()
    if len(tokens) != n_atoms * width:
        raise XYZFormatError(f"{path}: atom table has {len(tokens)} values, expected {n_atoms} x {width}")
    table = np.array(tokens, dtype=object).reshape(n_atoms, width)
    s0, _, _ = cols["species"]
    try:
        numbers = np.array([atomic_numbers[s] for s in table[:, s0]], dtype=np.int64)
    except KeyError as exc:
        raise XYZFormatError(f"{path}: unknown element {exc.args[0]!r}") from None
    try:
        p0, p1, _ = cols["pos"]
        positions = table[:, p0:p1].astype(np.float64)
        forces = None
        if "forces" in cols:
            f0, f1, _ = cols["forces"]
            forces = table[:, f0:f1].astype(np.float64)
    except ValueError as exc:
        raise XYZFormatError(f"{path}: unparsable number in atom table ({exc})") from None
    if "energy" in info:
        try:
            info["energy"] = float(info["energy"])
        except ValueError:
            raise XYZFormatError(f"{path}: unparsable energy={info['energy']!r}") from None
    return XYZFrame(numbers, positions, forces, info)


def read_xyz_frame(path: str) -> XYZFrame:
    """Read one extended XYZ file (see :func:`parse_xyz_text`)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return parse_xyz_text(fh.read(), path)
