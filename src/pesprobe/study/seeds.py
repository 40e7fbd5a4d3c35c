"""Seed statistics of a ``seeds:`` study: mean ± sd over the training seeds per variant, and each
design step's effect judged against that spread.

Per variant and figure, over the runs whose value is finite: the mean and the sample standard
deviation sd = sqrt(Σ (x_s − mean)² / (n − 1)) (undefined for n < 2). A design step (a variant
vs the one it ``extends``) changes a figure by Δ = mean(child) − mean(parent). The step is said to
have lowered or raised it only when |Δ| is at least the larger of the two sds *and* the paired
per-seed differences x_child,s − x_parent,s all have the sign of Δ; otherwise the difference is
"within the seed spread". A change beyond the spread but smaller than
:data:`~pesprobe.study.analysis.TOLERANCE` (5 %) of the parent's mean is called negligible, as the
one-seed analysis calls such an FSD change unchanged. With fewer than two seeds on either side no
spread is known and no effect is claimed. Pure Python/NumPy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pesprobe.study.analysis import TOLERANCE
from pesprobe.study.runner import VariantResult

#: Figures summarised over seeds: (key, header with unit, format of the mean, format of the sd).
METRICS = (
    ("energy_mae", "E MAE (meV/atom)", ".3g", ".2g"),
    ("forces_mae", "F MAE (eV/Å)", ".3g", ".2g"),
    ("fsd_full", "FSD full (1/Å)", ".3g", ".2g"),
    ("fsd_compress", "FSD compress (1/Å)", ".3g", ".2g"),
    ("fsd_stretch", "FSD stretch (1/Å)", ".3g", ".2g"),
    ("skill_full", "full-FSD skill", ".3f", ".3f"),
    ("discontinuity_scans", "scans with a confirmed discontinuity", ".3g", ".2g"),
    ("md_failure_fraction", "MD failure fraction", ".2f", ".2f"),
)
#: Figures each design step is judged on in the findings.
STEP_METRICS = ("fsd_full", "skill_full", "discontinuity_scans", "md_failure_fraction", "energy_mae", "forces_mae")
#: Spread rule, stated once in the findings.
RULE = ("Mean ± sd over the training seeds (sample sd, n − 1). A step is said to lower or raise a figure only when "
        "|Δmean| is at least the larger sd and every seed's paired difference has the sign of Δmean; otherwise the "
        f"difference is within the seed spread. A change beyond the spread but below {TOLERANCE:.0%} of the earlier "
        "mean is called negligible.")


def run_values(run: VariantResult) -> dict[str, float]:
    """The :data:`METRICS` of one run: validation energy MAE, meV/atom; force MAE, eV/Å; mean FSD over the
    scans, 1/Å; mean full-FSD skill; number of scans with a confirmed discontinuity; MD failure fraction
    (failed / all trajectories). NaN where the run lacks it."""
    n_traj = run.md.get("n_trajectories", 0)
    return {
        "energy_mae": run.valid.get("valid_energy_mae", math.nan) * 1000.0,
        "forces_mae": run.valid.get("valid_forces_mae", math.nan),
        **{f"fsd_{r}": run.bsct.get(f"{r}_smoothness", math.nan) for r in ("full", "compress", "stretch")},
        "skill_full": run.bsct.get("full_smoothness_skill", math.nan),
        "discontinuity_scans": float(run.bsct.get("n_scans_with_discontinuities", math.nan)),
        "md_failure_fraction": run.md.get("n_failed", 0) / n_traj if n_traj else math.nan,
    }


@dataclass
class SeedStats:
    """One figure of one variant over its seeds.

    Attributes
    ----------
    mean, sd : float
        Mean and sample standard deviation over the finite values (sd NaN for n < 2; mean NaN for n = 0).
    n : int
        Number of finite values.
    seeds : list
        Training seeds of the runs (None: a one-seed study's run), aligned with ``values``.
    values : list of float
        Per-seed values (NaN kept).
    """

    mean: float
    sd: float
    n: int
    seeds: list[int | None] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def text(self, mean_fmt: str = ".3g", sd_fmt: str = ".2g", n_runs: int | None = None) -> str:
        """``mean ± sd`` (``–`` when undefined), with ``(n = k)`` when fewer than ``n_runs`` values are finite."""
        if not math.isfinite(self.mean):
            return "–"
        out = format(self.mean, mean_fmt) + (f" ± {format(self.sd, sd_fmt)}" if math.isfinite(self.sd) else "")
        return out + (f" (n = {self.n})" if n_runs is not None and self.n < n_runs else "")


def seed_stats(values: Sequence[float], seeds: Sequence[int | None] | None = None) -> SeedStats:
    """Mean and sample sd of the finite ``values`` (see :class:`SeedStats`)."""
    array = np.asarray(values, dtype=float)
    finite = array[np.isfinite(array)]
    n = int(finite.size)
    mean = float(finite.mean()) if n else math.nan
    sd = float(finite.std(ddof=1)) if n >= 2 else math.nan
    return SeedStats(mean=mean, sd=sd, n=n, seeds=list(seeds) if seeds is not None else [None] * len(array),
                     values=[float(v) for v in array])


@dataclass
class SeedRow:
    """One variant over its seeds: ``stats[key]`` for every key of :data:`METRICS`."""

    variant: str
    label: str
    extends: str | None
    steps: int
    seeds: list[int | None]
    stats: dict[str, SeedStats]


def aggregate(runs: dict[str, list[VariantResult]]) -> list[SeedRow]:
    """One :class:`SeedRow` per variant (study order) from ``{variant: [run per seed]}``."""
    rows = []
    for name, items in runs.items():
        seeds = [r.seed for r in items]
        values = [run_values(r) for r in items]
        first = items[0]
        rows.append(SeedRow(variant=name, label=first.label, extends=first.extends, steps=first.steps, seeds=seeds,
                            stats={key: seed_stats([v[key] for v in values], seeds) for key, *_ in METRICS}))
    return rows


@dataclass
class SeedStep:
    """The change of one figure from a variant to the one extending it, judged against the seed spread.

    Attributes
    ----------
    parent, child, metric : str
    delta : float
        mean(child) − mean(parent), in the figure's unit.
    spread : float
        The larger of the two sds.
    paired : list of float
        child − parent for every seed both have (finite values only).
    verdict : str
        ``lowered``, ``raised``, ``unchanged`` (equal in every seed), ``within the seed spread``,
        ``negligible`` (beyond the spread, below :data:`TOLERANCE` of the parent's mean),
        ``no spread (one seed)`` or ``unknown`` (a mean is undefined).
    """

    parent: str
    child: str
    metric: str
    delta: float
    spread: float
    paired: list[float]
    verdict: str


def judge(parent: SeedStats, child: SeedStats) -> tuple[float, float, list[float], str]:
    """(Δmean, larger sd, paired differences, verdict) for ``child`` vs ``parent`` (see the module docstring)."""
    delta = child.mean - parent.mean
    spread = max(parent.sd, child.sd) if math.isfinite(parent.sd) and math.isfinite(child.sd) else math.nan
    by_seed = {s: v for s, v in zip(parent.seeds, parent.values)}
    paired = [c - by_seed[s] for s, c in zip(child.seeds, child.values)
              if s in by_seed and math.isfinite(c) and math.isfinite(by_seed[s])]
    if not math.isfinite(delta):
        return delta, spread, paired, "unknown"
    if min(parent.n, child.n) < 2:
        return delta, spread, paired, "no spread (one seed)"
    if delta == 0 and all(d == 0 for d in paired):
        return delta, spread, paired, "unchanged"
    if abs(delta) < spread or any(np.sign(d) != np.sign(delta) for d in paired):
        return delta, spread, paired, "within the seed spread"
    if abs(delta) < TOLERANCE * abs(parent.mean):
        return delta, spread, paired, "negligible"
    return delta, spread, paired, "lowered" if delta < 0 else "raised"


def seed_steps(rows: list[SeedRow]) -> list[SeedStep]:
    """One :class:`SeedStep` per (variant extending another finished variant, figure of :data:`STEP_METRICS`)."""
    by_name = {r.variant: r for r in rows}
    out = []
    for row in rows:
        parent = by_name.get(row.extends) if row.extends else None
        if parent is None:
            continue
        for key in STEP_METRICS:
            delta, spread, paired, verdict = judge(parent.stats[key], row.stats[key])
            out.append(SeedStep(parent=parent.variant, child=row.variant, metric=key, delta=delta, spread=spread,
                                paired=paired, verdict=verdict))
    return out


def _format(key: str) -> tuple[str, str, str]:
    """(header, mean format, sd format) of figure ``key``."""
    return next((header, m, s) for k, header, m, s in METRICS if k == key)


def seed_findings(rows: list[SeedRow]) -> list[str]:
    """The rule, then one line per design step: every figure of :data:`STEP_METRICS` before → after with its
    spread, Δmean, the per-seed differences and the verdict."""
    by_name = {r.variant: r for r in rows}
    lines = [RULE]
    steps = seed_steps(rows)
    for child in dict.fromkeys(s.child for s in steps):
        parts = []
        for step in (s for s in steps if s.child == child):
            header, mean_fmt, sd_fmt = _format(step.metric)
            before = by_name[step.parent].stats[step.metric].text(mean_fmt, sd_fmt)
            after = by_name[child].stats[step.metric].text(mean_fmt, sd_fmt)
            seeds = ", ".join(format(d, "+" + sd_fmt) for d in step.paired)
            delta = format(step.delta, "+" + sd_fmt) if math.isfinite(step.delta) else "n/a"
            parts.append(f"{header} {before} → {after} (Δ {delta}; per seed {seeds or 'n/a'}): {step.verdict}")
        parent = by_name[child].extends
        n = min(len(by_name[child].seeds), len(by_name[parent].seeds))
        lines.append(f"{child} vs {parent} ({n} seeds): " + "; ".join(parts) + ".")
    if len(lines) == 1 and len(rows) > 1:
        lines.append("No variant extends another, so no design step is compared.")
    return lines


def seed_table(rows: list[SeedRow]) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of the seed table: variant, change, steps, seeds, then mean ± sd of :data:`METRICS`."""
    header = ["variant", "change", "steps", "seeds"] + [h for _, h, _, _ in METRICS]
    cells = []
    for row in rows:
        seeds = ", ".join("–" if s is None else str(s) for s in row.seeds)
        cells.append([row.variant, row.label, str(row.steps), f"{len(row.seeds)} ({seeds})"]
                     + [row.stats[key].text(m, s, len(row.seeds)) for key, _, m, s in METRICS])
    return header, cells
