"""The outcome of a BSCT run and its files: results.json, results.csv, summary.md, report.html."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pesprobe.data.atomic import atomic_write, atomic_write_json, json_safe
from pesprobe.data.scan import LoadProblem, Scan
from pesprobe.metrics import ALL_METRICS, ScanMetrics, summarize
from pesprobe.potentials.base import Predictions

BOOKKEEPING = ("group", "kind", "labelled", "equilibrium_index", "n_frames", "n_failed", "n_refined", "flagged", "seconds")



def _discontinuity_text(d: dict) -> str:
    """One discontinuity as CSV cell text, e.g. ``energy@1.3021:0.0100`` (``?`` marks unconfirmed)."""
    return f"{d['quantity']}@{d['coordinate']:.4f}:{d['jump']:.4g}" + ("" if d["confirmed"] else "?")


@dataclass
class BSCTResult:
    """Per-scan metrics, aggregates and failures of one BSCT run.

    Attributes
    ----------
    metrics : list of ScanMetrics
        One per evaluated scan, in data-set order.
    problems : list of LoadProblem
        Data problems met while loading (files skipped, frames left out).
    potential, identity : str
        The potential's display name and cache identity.
    source : str
        Where the scans came from.
    order : list of str
        Ids of the whole data set (before sharding), to merge shards in order.
    shard : (index, count) or None
    wall_seconds : float
        Wall time of the evaluation, s.
    predictions, scans : optional
        In-memory model predictions and scans (not written to results.json), for plots.
    """

    metrics: list[ScanMetrics]
    problems: list[LoadProblem] = field(default_factory=list)
    potential: str = ""
    identity: str = ""
    source: str = ""
    order: list[str] = field(default_factory=list)
    shard: tuple[int, int] | None = None
    wall_seconds: float = 0.0
    predictions: dict[str, Predictions] | None = None
    scans: list[Scan] | None = None

    @property
    def systems(self) -> dict[str, dict[str, Any]]:
        """``{scan id: {metric: value, ...}}`` with the nine published names and the diagnostics."""
        return {m.id: m.as_dict() for m in self.metrics}

    @property
    def summary(self) -> dict:
        """Aggregates per group and overall (see :func:`pesprobe.metrics.summarize`)."""
        return summarize(self.metrics)

    @property
    def unseen_elements(self) -> dict[str, list[str]]:
        """``{scan id: symbols}`` of the scans with elements the potential never saw in training."""
        return {m.id: list(m.unseen_elements) for m in self.metrics if m.unseen_elements}

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Every problem: data problems, failed frames, unscored scans — each with a path or scan id."""
        out: list[dict[str, Any]] = [{"kind": "data", "path": p.path, "error": p.message} for p in self.problems]
        for m in self.metrics:
            for frame, error in sorted(m.errors.items()):
                if frame < 0:
                    out.append({"kind": "scan", "scan": m.id, "error": error})
                else:
                    out.append({"kind": "frame", "scan": m.id, "frame": frame, "error": error})
        return out

    def to_json(self) -> dict:
        """The ``results.json`` content: ``systems``, ``summary``, ``failures`` and run information."""
        return json_safe({
            "potential": self.potential, "identity": self.identity, "source": self.source,
            "shard": list(self.shard) if self.shard else None, "order": self.order,
            "wall_seconds": self.wall_seconds,
            "systems": self.systems, "summary": self.summary, "failures": self.failures,
        })

    def to_dataframe(self):
        """Per-scan metrics as a :class:`pandas.DataFrame` indexed by scan id."""
        import pandas as pd

        return pd.DataFrame.from_dict(self.systems, orient="index")

    def to_csv(self) -> str:
        """Per-scan metrics as CSV text (one row per scan; empty cell for NaN)."""
        columns = ["id", *BOOKKEEPING, *ALL_METRICS, "discontinuities", "unseen_elements"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for m in self.metrics:
            row = json_safe({"id": m.id, **m.as_dict()})
            row["discontinuities"] = "; ".join(_discontinuity_text(d) for d in m.discontinuities)
            row["unseen_elements"] = " ".join(m.unseen_elements)
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
        return buf.getvalue()

    def write(self, out: str | Path, plots: bool = False, report: bool = True) -> Path:
        """Write results.json, results.csv and (``report``) summary.md, report.html and ``plots/``, atomically."""
        from pesprobe.report import write_report

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "results.json", self.to_json())
        atomic_write(out / "results.csv", self.to_csv())
        if report:
            write_report(self, out, plots=plots)
        return out

    @classmethod
    def read(cls, out: str | Path) -> BSCTResult:
        """Rebuild a result from an output folder's ``results.json`` (predictions are not kept)."""
        path = Path(out) / "results.json" if Path(out).is_dir() else Path(out)
        try:
            data = json.loads(path.read_text())
            systems = data["systems"]
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"{path}: not a pesprobe results.json ({type(exc).__name__}: {exc})") from None
        errors: dict[str, dict[int, str]] = {}
        problems = []
        for item in data.get("failures", []):
            if item["kind"] == "data":
                problems.append(LoadProblem(item["path"], item["error"]))
            else:
                errors.setdefault(item["scan"], {})[item.get("frame", -1)] = item["error"]
        metrics = []
        for scan_id, row in systems.items():
            values = {k: (math.nan if row.get(k) is None else row[k]) for k in ALL_METRICS}
            metrics.append(ScanMetrics(id=scan_id, group=row["group"], values=values,
                                       equilibrium_index=row["equilibrium_index"], n_frames=row["n_frames"],
                                       n_failed=row["n_failed"], flagged=row["flagged"],
                                       errors=errors.get(scan_id, {}), seconds=row["seconds"],
                                       discontinuities=list(row.get("discontinuities", [])),
                                       labelled=bool(row.get("labelled", True)), n_refined=int(row.get("n_refined", 0)),
                                       kind=row.get("kind", "bond"),
                                       unseen_elements=list(row.get("unseen_elements", []))))
        shard = tuple(data["shard"]) if data.get("shard") else None
        return cls(metrics=metrics, problems=problems, potential=data.get("potential", ""),
                   identity=data.get("identity", ""), source=data.get("source", ""), order=data.get("order", []),
                   shard=shard, wall_seconds=data.get("wall_seconds", 0.0))
