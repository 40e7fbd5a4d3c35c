"""What the cheap test saves: MD wall time over BSCT wall time, with and without labelling the scans."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from pesprobe.data.scan import ScanSet
from pesprobe.md.study import StabilityResult

#: Said in the cost table when the scans' labelling time is unknown.
NO_LABEL_TIME = ("labelling time not recorded (no build.json with seconds beside the scans): the ratio with "
                 "labels is not given")


def label_seconds(data: str | Path | ScanSet) -> tuple[float | None, str]:
    """Wall time of labelling the scans (prepare + label, s) from the ``build.json`` that
    ``pesprobe scan build`` writes beside them, and a note on where it came from.

    The figure is the last build run's: scans reused from an earlier run cost nothing there, so a
    resumed build under-counts. None (with :data:`NO_LABEL_TIME`) when no such file is found.
    """
    source = Path(data.source) if isinstance(data, ScanSet) and data.source else data
    if isinstance(source, ScanSet):
        return None, NO_LABEL_TIME
    source = Path(source)
    for folder in (source, source.parent):
        path = folder / "build.json"
        if not (folder.is_dir() and path.is_file()):
            continue
        try:
            build = json.loads(path.read_text())
            seconds = build.get("seconds") or {}
            total = float(seconds.get("prepare", 0.0)) + float(seconds.get("label", 0.0))
        except (ValueError, TypeError, AttributeError):
            continue
        reused = " (some scans were reused from an earlier run: an under-count)" if build.get("reused") else ""
        return total, f"from {path}: prepare + label of the last build run{reused}"
    return None, NO_LABEL_TIME


def md_full_length_seconds(md: StabilityResult) -> float:
    """MD wall time had every trajectory run its full length (a failed one's time scaled by
    n_steps / steps_done), s: what a user planning the MD test pays, failures or not."""
    return float(sum(t.wall_seconds * t.n_steps / max(t.steps_done, 1) for t in md.trajectories))


def _ratios(bsct: float, md: float, md_full: float, labels: float | None) -> dict[str, float | None]:
    div = lambda a, b: a / b if b > 0 else math.nan  # noqa: E731
    return {"bsct_seconds": bsct, "md_seconds": md, "md_seconds_full_length": md_full, "ratio": div(md, bsct),
            "ratio_full_length": div(md_full, bsct),
            "ratio_with_labels": None if labels is None else div(md, bsct + labels)}


def cost_table(per_potential: dict[str, tuple[float, float, float]], labels: float | None,
               label_note: str) -> dict[str, Any]:
    """The cost figures of a ``correlate`` run.

    Parameters
    ----------
    per_potential : dict
        ``{potential: (BSCT seconds, MD seconds, MD seconds at full length)}``.
    labels : float or None
        Labelling time of the scans, s (paid once, whatever the number of potentials).
    label_note : str
        Where ``labels`` came from.

    Returns
    -------
    dict
        Overall ``bsct_seconds``, ``md_seconds``, ``md_seconds_full_length``, ``ratio`` (MD / BSCT),
        ``ratio_full_length``, ``ratio_with_labels`` (MD / (BSCT + labelling once); None if unknown),
        ``label_seconds``, ``label_note``; and ``per_potential`` with the same ratios, where
        ``ratio_with_labels`` charges the whole labelling to that one potential.
    """
    table: dict[str, Any] = {"per_potential": {name: _ratios(*times, labels) for name, times in per_potential.items()}}
    totals = [sum(times[k] for times in per_potential.values()) for k in range(3)]
    table.update(_ratios(*totals, labels))
    table.update(label_seconds=labels, label_note=label_note)
    return table
