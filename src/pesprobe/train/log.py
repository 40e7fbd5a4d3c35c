"""The JSON-lines training log: one record per line, written by rank 0, truncated on resume."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pesprobe.data.atomic import atomic_write


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Records of a ``log.jsonl`` file, in order (a torn last line, from a crash, is skipped)."""
    path = Path(path)
    records = []
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: not a JSON record") from None
    return records


class JsonlLog:
    """Append-only JSON-lines log.

    Parameters
    ----------
    path : str or Path
        The ``log.jsonl`` file.
    resume_step : int, optional
        When resuming, keep the records with ``step <= resume_step`` (later ones were written
        after the checkpoint and will be written again); otherwise start an empty log.
    enabled : bool
        False on ranks other than 0: nothing is written.
    """

    def __init__(self, path: str | Path, resume_step: int | None = None, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        if not enabled:
            return
        kept = []
        if resume_step is not None and self.path.exists():
            kept = [r for r in read_log(self.path) if r.get("step", 0) <= resume_step]
        atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (non-finite floats become null) and flush it to disk."""
        if not self.enabled:
            return
        with self.path.open("a") as fh:
            fh.write(json.dumps({k: _finite(v) for k, v in record.items()}) + "\n")
