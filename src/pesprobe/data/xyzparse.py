"""A fast reader for single-frame extended XYZ files (the published BSCT frames).

``ase.io.read`` is general but slow (about a millisecond per small file); BSCT data sets have
tens of thousands of one-frame files, so this reader parses the extended-XYZ comment line and the
atom table directly with NumPy. It follows ASE's conventions: ``Properties=name:type:ncols``,
``key=value`` pairs (quoted values allowed), ``energy`` in eV and ``forces`` in eV/Å.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass

import numpy as np
from ase.data import atomic_numbers

from pesprobe.data.files import open_regular

#: Longest line accepted in a frame file (characters): far beyond any real comment or atom line.
MAX_LINE_CHARS = 1 << 16
#: Fewest bytes an atom line can take ("H 0 0 0"), to bound the declared atom count by the file size.
MIN_ATOM_LINE_BYTES = 7
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
    n_atoms = _atom_count(lines[0] if lines else "", path)
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


def _atom_count(line: str, path: str) -> int:
    """The atom count on the first line of a frame."""
    if not line.strip():
        raise XYZFormatError(f"{path}: empty file")
    try:
        n_atoms = int(line.split()[0])
    except ValueError:
        raise XYZFormatError(f"{path}: first line must be the atom count, got {line[:40]!r}") from None
    if n_atoms <= 0:
        raise XYZFormatError(f"{path}: atom count must be positive, got {n_atoms}")
    return n_atoms


def _read_lines(fh: io.TextIOBase, count: int, path: str) -> list[str]:
    """Up to ``count`` lines of ``fh`` (fewer at the end of the file), none longer than :data:`MAX_LINE_CHARS`."""
    lines = []
    for _ in range(count):
        line = fh.readline(MAX_LINE_CHARS)
        if not line:
            break
        if len(line) == MAX_LINE_CHARS and not line.endswith("\n"):
            raise XYZFormatError(f"{path}: line {len(lines) + 1} is longer than {MAX_LINE_CHARS} characters: "
                                 "not an extended XYZ frame")
        lines.append(line)
    return lines


def read_xyz_frame(path: str) -> XYZFrame:
    """Read the first frame of an extended XYZ file (see :func:`parse_xyz_text`).

    Only the atom-count line, the comment line and the declared atom lines are read, each at most
    :data:`MAX_LINE_CHARS` long, and the atom count is checked against the file size first: a large
    junk file costs one short read, not a read of the whole file.

    Raises
    ------
    UnreadableFileError
        If ``path`` is not a regular file or cannot be read (see :func:`pesprobe.data.files.open_regular`).
    XYZFormatError
        If the frame is malformed.
    """
    with open_regular(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as fh:
        size = os.fstat(raw.fileno()).st_size
        head = _read_lines(fh, 1, path)
        n_atoms = _atom_count(head[0] if head else "", path)
        if n_atoms * MIN_ATOM_LINE_BYTES > size:
            raise XYZFormatError(f"{path}: truncated: {n_atoms} atoms declared in a file of {size} bytes")
        lines = head + _read_lines(fh, n_atoms + 1, path)
    return parse_xyz_text("".join(lines), path)
