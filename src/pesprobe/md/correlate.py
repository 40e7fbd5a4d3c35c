"""``correlate``: does the cheap static test (BSCT's FSD) rank potentials and molecules the way
the expensive one (MD stability) does? One primary question answered with cluster-aware statistics
(:mod:`pesprobe.md.clustered`), a secondary table of rank correlations with Holm-adjusted p, and the
cost ratio (:mod:`pesprobe.md.cost`)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pesprobe.data.atomic import atomic_write, atomic_write_json, json_safe
from pesprobe.data.scan import ScanSet
from pesprobe.md.analysis import INSTABILITY_MEASURES
from pesprobe.md.clustered import PrimaryQuestion, answer
from pesprobe.md.config import MDConfig
from pesprobe.md.cost import cost_table, label_seconds, md_full_length_seconds
from pesprobe.md.stats import METHODS, holm, rank_correlation
from pesprobe.md.study import StabilityResult, _csv, run_stability
from pesprobe.md.systems import Molecule, molecules_from_scans

#: The FSD variants correlated (BSCT result names).
FSD_METRICS = ("full_smoothness", "compress_smoothness", "stretch_smoothness")


@dataclass
class CorrelationResult:
    """Paired BSCT/MD data and their rank correlations.

    Attributes
    ----------
    pairs : list of dict
        One row per (potential, molecule): the FSD values (mean over the molecule's scans, ``n_scans``)
        and the instability measures (means over seeds).
    correlations : list of dict
        The secondary table, one row per (group, FSD metric, measure, method): ``group`` is
        ``"pooled"`` (all pairs), ``"potential=<name>"`` (across molecules) or ``"molecule=<id>"``
        (across potentials); ``n``, ``value``, ``ci_low``, ``ci_high``, ``p_value`` (pairs treated as
        independent) and ``p_holm`` (Holm-adjusted over every row of the table).
    primary : dict
        The answer to the run's primary question (:class:`pesprobe.md.clustered.PrimaryAnswer`).
    cost : dict
        See :func:`pesprobe.md.cost.cost_table`.
    """

    pairs: list[dict[str, Any]]
    correlations: list[dict[str, Any]]
    primary: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)

    def get(self, group: str = "pooled", fsd: str = "full_smoothness", measure: str = "early_failure",
            method: str = "spearman") -> dict[str, Any]:
        """The correlation row of one (group, FSD metric, measure, method)."""
        for row in self.correlations:
            if (row["group"], row["fsd"], row["measure"], row["method"]) == (group, fsd, measure, method):
                return row
        raise KeyError(f"no correlation for group={group!r}, fsd={fsd!r}, measure={measure!r}, method={method!r}")

    def write(self, out: str | Path, plots: bool = True) -> None:
        """``correlation.json``, ``correlations.csv``, ``pairs.csv`` and ``plots/scatter.png``."""
        out = Path(out)
        atomic_write_json(out / "correlation.json", json_safe({"primary": self.primary, "cost": self.cost,
                                                            "correlations": self.correlations, "pairs": self.pairs}))
        atomic_write(out / "correlations.csv", _csv(self.correlations))
        atomic_write(out / "pairs.csv", _csv(self.pairs))
        if plots:
            from pesprobe.md.plots import plot_scatter

            plot_scatter(self, out / "plots" / "scatter.png")


def _label_key(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "potential"


def _named(potentials: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    if isinstance(potentials, Mapping):
        named = dict(potentials)
    else:
        named = {}
        for spec in potentials:
            if not isinstance(spec, str):
                raise TypeError("give potentials as SPEC strings or as a {name: potential} mapping")
            named[spec] = spec
    if len(named) < 1:
        raise ValueError("correlate needs at least one potential")
    keys = [_label_key(k) for k in named]
    if len(set(keys)) != len(keys):
        raise ValueError(f"potential names must stay distinct as folder names: {list(named)}")
    return named


def correlate(potentials: Mapping[str, Any] | Sequence[str], data: str | Path | ScanSet,
              config: MDConfig | None = None, out: str | Path | None = None,
              measures: Sequence[str] = INSTABILITY_MEASURES, fsd: Sequence[str] = FSD_METRICS,
              methods: Sequence[str] = METHODS, n_bootstrap: int = 2000, n_permutations: int = 5000, seed: int = 0,
              engine: str = "auto", jobs: int = 1, plots: bool = True, progress: bool = True,
              question: PrimaryQuestion | None = None, label_time_s: float | None = None) -> CorrelationResult:
    """Run BSCT and the MD stability test for every potential on the same molecules, and
    correlate FSD with each instability measure.

    Parameters
    ----------
    potentials : sequence of SPEC or mapping name -> potential
        SPEC strings, or any potential :func:`pesprobe.evaluate.evaluate` and
        :func:`pesprobe.md.run_stability` accept, under display names.
    data : path or ScanSet
        Scan set: BSCT runs on its scans, MD once per distinct unperturbed geometry (scans of one
        molecule share its MD; molecule id = its first scan's id), ``config.seeds`` trajectories each.
    config : MDConfig, optional
        MD settings.
    out : path, optional
        Output folder: ``<potential>/bsct`` and ``<potential>/md`` (each resumable: a second call
        reads the saved results), ``correlation.json``, ``correlations.csv``, ``pairs.csv``,
        ``plots/scatter.png``.
    measures : sequence of str
        Per-molecule instability measures (larger = less stable; see
        :data:`pesprobe.md.analysis.INSTABILITY_MEASURES`).
    fsd : sequence of str
        FSD variants.
    methods : sequence of str
        ``"spearman"`` and/or ``"kendall"``.
    n_bootstrap, n_permutations, seed : int
        Resampling settings (:func:`pesprobe.md.stats.rank_correlation`).
    engine, jobs : str, int
        MD engine and ASE worker processes (BSCT uses ``jobs`` workers too).
    plots, progress : bool
    question : PrimaryQuestion, optional
        The primary question (default: mean full FSD vs failure fraction across potentials, given
        the full force MAE); answered with cluster-aware statistics (:mod:`pesprobe.md.clustered`).
    label_time_s : float, optional
        Wall time of labelling the scans, s (default: read from the scans' ``build.json``).

    Returns
    -------
    CorrelationResult
    """
    from pesprobe.data import load_scans
    from pesprobe.evaluate import evaluate

    named = _named(potentials)
    scanset = data if isinstance(data, ScanSet) else load_scans(data)
    molecules = molecules_from_scans(scanset)
    config = config or MDConfig()
    question = question or PrimaryQuestion()
    columns = tuple(dict.fromkeys((*fsd, question.predictor, question.control)))
    pairs: list[dict[str, Any]] = []
    times: dict[str, tuple[float, float, float]] = {}
    for label, potential in tqdm(named.items(), desc="potentials", disable=not progress or len(named) < 2):
        folder = None if out is None else Path(out) / _label_key(label)
        bsct = evaluate(potential, scanset, out=None if folder is None else folder / "bsct", jobs=jobs,
                        progress=progress, name=label)
        md = run_stability(potential, molecules, config, out=None if folder is None else folder / "md",
                           engine=engine, jobs=jobs, plots=plots, progress=progress, name=label)
        systems = bsct.systems
        bsct_seconds = float(sum(systems[scan].get("seconds", 0.0) for m in molecules for scan in m.scans)
                             ) or bsct.wall_seconds
        times[label] = (bsct_seconds, md.wall_seconds, md_full_length_seconds(md))
        pairs.extend(_pairs(label, systems, md, molecules, columns, measures))
    labels, note = (label_time_s, "given by the caller") if label_time_s is not None else label_seconds(data)
    correlations = _correlations(pairs, fsd, measures, methods, n_bootstrap, n_permutations, seed)
    for row, p_adj in zip(correlations, holm(np.array([row["p_value"] for row in correlations]))):
        row["p_holm"] = float(p_adj)
    primary = answer(pairs, question, n_bootstrap, n_permutations, seed)
    result = CorrelationResult(pairs=pairs, correlations=correlations, primary=primary.as_dict(),
                               cost=cost_table(times, labels, note))
    if out is not None:
        result.write(out, plots=plots)
    return result


def _pairs(label: str, systems: dict[str, dict], md: StabilityResult, molecules: list[Molecule],
           columns: Sequence[str], measures: Sequence[str]) -> list[dict[str, Any]]:
    """One row per molecule: each BSCT figure of ``columns`` averaged over the molecule's scans, its MD
    measures (means over seeds)."""
    rows = []
    per_molecule = md.molecules
    for molecule in molecules:
        missing = [scan for scan in molecule.scans if scan not in systems]
        if missing or molecule.id not in per_molecule:
            raise KeyError(f"molecule {molecule.id!r}: no BSCT result for scan(s) {missing} or no MD result, "
                           f"potential {label!r}")
        values = per_molecule[molecule.id]
        row: dict[str, Any] = {"potential": label, "molecule": molecule.id, "n_scans": len(molecule.scans)}
        for name in columns:
            scores = np.array([systems[scan].get(name, math.nan) for scan in molecule.scans], dtype=float)
            row[name] = float(np.nanmean(scores)) if np.isfinite(scores).any() else math.nan
        for name in measures:
            if name not in values:
                raise KeyError(f"unknown stability measure {name!r}; known: {', '.join(sorted(values))}")
            row[name] = values[name]
        rows.append(row)
    return rows


def _correlations(pairs: list[dict[str, Any]], fsd: Sequence[str], measures: Sequence[str], methods: Sequence[str],
                  n_bootstrap: int, n_permutations: int, seed: int) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {"pooled": pairs}
    for key in ("potential", "molecule"):
        for value in dict.fromkeys(row[key] for row in pairs):
            members = [row for row in pairs if row[key] == value]
            if len(members) >= 3:
                groups[f"{key}={value}"] = members
    out = []
    for group, rows in groups.items():
        for f in fsd:
            x = np.array([row[f] for row in rows], dtype=float)
            for m in measures:
                y = np.array([row[m] for row in rows], dtype=float)
                for method in methods:
                    rc = rank_correlation(x, y, method, n_bootstrap, n_permutations, seed)
                    out.append({"group": group, "fsd": f, "measure": m, **rc.as_dict()})
    return out
