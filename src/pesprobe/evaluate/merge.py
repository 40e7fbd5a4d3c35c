"""Combine the outputs of sharded BSCT runs (``--shard I/N``) into one result."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from pesprobe.evaluate.lock import output_lock
from pesprobe.evaluate.result import BSCTResult
from pesprobe.report import figure_scans, record_figures


def merge(shard_dirs: Sequence[str | Path], out: str | Path | None = None) -> BSCTResult:
    """Merge shard outputs into the result an unsharded run would give.

    Parameters
    ----------
    shard_dirs : sequence of paths
        Output folders of ``pesprobe bsct --shard I/N`` runs (or their results.json files).
    out : path, optional
        Folder for the merged results.json, results.csv, summary.md, report.html; per-scan plots
        found in the shard folders are copied along.

    Raises
    ------
    ValueError
        If the shards come from different potentials or data sets, overlap, or miss scans.
    OutputBusyError
        If another run is writing into ``out``.
    """
    if not shard_dirs:
        raise ValueError("merge needs at least one shard output folder")
    parts = [BSCTResult.read(d) for d in shard_dirs]
    first = parts[0]
    for d, part in zip(shard_dirs, parts):
        if part.identity != first.identity:
            raise ValueError(f"{d}: results of potential {part.identity!r}, expected {first.identity!r}")
        if part.order != first.order:
            raise ValueError(f"{d}: results of a different data set than {shard_dirs[0]}")
    by_id = {}
    for d, part in zip(shard_dirs, parts):
        for m in part.metrics:
            if m.id in by_id:
                raise ValueError(f"{d}: scan {m.id} appears in more than one shard")
            by_id[m.id] = m
    missing = [i for i in first.order if i not in by_id]
    if missing:
        raise ValueError(f"shards miss {len(missing)} scans of the data set, e.g. {missing[:3]}")
    problems = {(p.path, p.message): p for part in parts for p in part.problems}
    merged = BSCTResult(metrics=[by_id[i] for i in first.order], problems=list(problems.values()),
                        potential=first.potential, identity=first.identity, source=first.source,
                        order=first.order, shard=None, wall_seconds=sum(p.wall_seconds for p in parts))
    if out is not None:
        out = Path(out)
        with output_lock(out):  # one writer per output folder, as for evaluate
            drawn: set[str] = set()
            for d in shard_dirs:
                plots = Path(d) / "plots"
                if plots.is_dir():
                    drawn |= figure_scans(plots, merged.identity)
                    shutil.copytree(plots, out / "plots", dirs_exist_ok=True)
            if drawn:
                record_figures(out / "plots", merged.identity, sorted(drawn))
            merged.write(out)
    return merged
