"""Members of an earlier zoo run, read back from its ``zoo.json`` (``pesprobe zoo --include``).

A slow member (an ASE calculator's MD) can be run on its own later and join the answers of a
finished run, provided both ran the same protocol: the same MD molecules, the same number of scans
and the same MD length (checked here; each row is marked ``included_from``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Earlier:
    """The members of an earlier zoo run, as its ``zoo.json`` holds them.

    Attributes
    ----------
    path : Path
    rows : dict
        Member name -> its row (family, reason, BSCT figures, MD per temperature, seconds), each with
        ``included_from`` set to ``path``.
    train_s : float
        That run's training time, s.
    """

    path: Path
    rows: dict[str, dict[str, Any]]
    train_s: float


def load_earlier(path: str | Path, molecules: list[str], n_scans: int, length_ps: float) -> Earlier:
    """Read an earlier run's ``zoo.json`` and check that it ran the same protocol.

    Parameters
    ----------
    path : str or Path
    molecules : list of str
        This run's MD molecule ids (:func:`pick_molecules`), in order.
    n_scans : int
        Scans this run scores with BSCT.
    length_ps : float
        This run's MD length per trajectory, ps.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If it is not a zoo result, or its molecules, scan count or MD length differ (naming the
        field), or a member's row lacks a field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such zoo.json")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a zoo.json ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("members"), dict):
        raise ValueError(f"{path}: not a zoo.json (no 'members' table)")
    profile = data.get("profile") or {}
    for field_name, theirs, ours in (("molecules", data.get("molecules"), molecules),
                                     ("n_scans", data.get("n_scans"), n_scans),
                                     ("profile.length_ps", profile.get("length_ps"), length_ps)):
        if theirs != ours:
            raise ValueError(f"{path}: field {field_name!r} is {theirs!r}, this run's is {ours!r}; only a run on "
                             "the same scans, molecules and MD length can be included")
    rows = {}
    for name, row in data["members"].items():
        need = ("family", "reason") if "skipped" in row else ("family", "reason", "bsct", "md", "seconds")
        missing = [k for k in need if k not in row]
        if missing:
            raise ValueError(f"{path}: member {name!r} lacks field(s) {', '.join(missing)}")
        for key, md in row.get("md", {}).items():
            if set(md.get("per_molecule", {})) != set(molecules):
                raise ValueError(f"{path}: member {name!r} at {key} K has MD for other molecules than this run's")
        if "bsct" in row:  # NaN is stored as null
            row = {**row, "bsct": {k: (math.nan if v is None else v) for k, v in row["bsct"].items()}}
        rows[name] = {**row, "included_from": str(path)}
    return Earlier(path, rows, float((data.get("compute") or {}).get("train_s", 0.0)))
