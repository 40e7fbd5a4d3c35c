"""What the numbers say: the table, each design step's effect on FSD, and FSD↔MD-stability rank correlations.

Everything here is computed from :class:`~pesprobe.study.runner.VariantResult` numbers (pure
Python/NumPy, no I/O), so the report text can only say what the numbers show.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pesprobe.md.analysis import INSTABILITY_MEASURES
from pesprobe.md.stats import rank_correlation
from pesprobe.study.runner import VariantResult

#: FSD ranges compared step by step.
RANGES = ("full", "compress", "stretch")
#: Instability measures the report text discusses (the correlation table has all of them).
FINDING_MEASURES = ("failure_fraction", "temperature_jump_K", "abs_energy_drift_meV_atom_ps",
                    "energy_excursion_meV_atom")
#: Relative FSD changes smaller than this are called "unchanged".
TOLERANCE = 0.05
#: Table columns: (key, header, unit scale, format).
COLUMNS = (
    ("variant", "variant", None, "s"), ("label", "change", None, "s"), ("steps", "steps", 1.0, "d"),
    ("energy_mae", "E MAE (meV/atom)", 1000.0, ".3g"), ("forces_mae", "F MAE (meV/Å)", 1000.0, ".3g"),
    ("fsd_full", "FSD full (1/Å)", 1.0, ".3g"), ("fsd_compress", "FSD compress (1/Å)", 1.0, ".3g"),
    ("fsd_stretch", "FSD stretch (1/Å)", 1.0, ".3g"), ("spurious_minima", "spurious minima / scan", 1.0, ".2g"),
    ("ef_consistency", "E–F consistency (eV, median)", 1.0, ".2g"),
    ("md_failed", "MD failed", None, "s"), ("time_to_failure", "time to failure (ps)", 1.0, ".3g"),
    ("drift", "|drift| (meV/atom/ps)", 1.0, ".3g"), ("temperature_jump", "T jump (K)", 1.0, ".3g"),
    ("train_s", "train (s)", 1.0, ".0f"), ("bsct_s", "BSCT (s)", 1.0, ".1f"), ("md_s", "MD (s)", 1.0, ".1f"),
)


def table_rows(variants: list[VariantResult]) -> list[dict[str, Any]]:
    """One row per variant, raw values in the units of :data:`COLUMNS` (eV, eV/Å scaled to meV)."""
    rows = []
    for v in variants:
        mean = v.md.get("mean", {})
        rows.append({
            "variant": v.name, "label": v.label, "steps": v.steps,
            "energy_mae": v.valid.get("valid_energy_mae", math.nan) * 1000.0,
            "forces_mae": v.valid.get("valid_forces_mae", math.nan) * 1000.0,
            "fsd_full": v.bsct["full_smoothness"], "fsd_compress": v.bsct["compress_smoothness"],
            "fsd_stretch": v.bsct["stretch_smoothness"], "spurious_minima": v.bsct["spurious_minima"],
            "ef_consistency": v.bsct["energy_force_consistency"],
            "md_failed": f"{v.md.get('n_failed', 0)}/{v.md.get('n_trajectories', 0)}",
            "time_to_failure": mean.get("time_to_failure_ps", math.nan),
            "drift": mean.get("abs_energy_drift_meV_atom_ps", math.nan),
            "temperature_jump": mean.get("temperature_jump_K", math.nan),
            "train_s": v.seconds.get("train", math.nan), "bsct_s": v.seconds.get("bsct", math.nan),
            "md_s": v.seconds.get("md", math.nan),
        })
    return rows


def formatted(row: dict[str, Any]) -> list[str]:
    """The cells of one table row as text (``–`` for NaN)."""
    cells = []
    for key, _, _, fmt in COLUMNS:
        value = row[key]
        if fmt == "s":
            cells.append(str(value))
        elif value is None or not math.isfinite(float(value)):
            cells.append("–")
        else:
            cells.append(format(value, fmt))
    return cells


@dataclass
class Step:
    """The effect of one design step (variant vs the variant it extends) on FSD and accuracy.

    Attributes
    ----------
    parent, child : str
    change : dict
        ``{range: relative change of the mean FSD}`` for full, compress and stretch
        ((child − parent) / parent; negative = smoother).
    parent_fsd, child_fsd : dict
        Mean FSD per range, 1/Å.
    forces_change : float
        Relative change of the validation force MAE.
    """

    parent: str
    child: str
    change: dict[str, float]
    parent_fsd: dict[str, float]
    child_fsd: dict[str, float]
    forces_change: float

    def verdict(self, rng: str = "full") -> str:
        """``lowered``, ``raised``, ``unchanged`` (|change| < :data:`TOLERANCE`) or ``unknown`` (NaN)."""
        value = self.change[rng]
        if not math.isfinite(value):
            return "unknown"
        if abs(value) < TOLERANCE:
            return "unchanged"
        return "lowered" if value < 0 else "raised"


def _relative(new: float, old: float) -> float:
    if not (math.isfinite(new) and math.isfinite(old)) or old == 0:
        return math.nan
    return (new - old) / abs(old)


def design_steps(variants: list[VariantResult]) -> list[Step]:
    """One :class:`Step` per variant that ``extends`` another finished variant."""
    by_name = {v.name: v for v in variants}
    steps = []
    for v in variants:
        parent = by_name.get(v.extends) if v.extends else None
        if parent is None:
            continue
        p_fsd = {r: parent.bsct[f"{r}_smoothness"] for r in RANGES}
        c_fsd = {r: v.bsct[f"{r}_smoothness"] for r in RANGES}
        steps.append(Step(parent=parent.name, child=v.name, change={r: _relative(c_fsd[r], p_fsd[r]) for r in RANGES},
                          parent_fsd=p_fsd, child_fsd=c_fsd,
                          forces_change=_relative(v.valid.get("valid_forces_mae", math.nan),
                                                  parent.valid.get("valid_forces_mae", math.nan))))
    return steps


def pairs(variants: list[VariantResult]) -> list[dict[str, Any]]:
    """One row per (variant, MD molecule): the molecule's scan FSD values and its MD instability measures."""
    rows = []
    for v in variants:
        for mol, measures in v.molecules.items():
            scan = v.scans.get(mol, {})
            row = {"variant": v.name, "molecule": mol,
                   **{f"fsd_{r}": scan.get(f"{r}_smoothness", math.nan) for r in RANGES}}
            row.update({m: measures.get(m, math.nan) for m in INSTABILITY_MEASURES})
            rows.append(row)
    return rows


def variant_means(variants: list[VariantResult]) -> list[dict[str, Any]]:
    """One row per variant: mean FSD over all BSCT scans and mean of each instability measure over MD molecules."""
    rows = []
    for v in variants:
        row = {"variant": v.name, **{f"fsd_{r}": v.bsct[f"{r}_smoothness"] for r in RANGES}}
        for m in INSTABILITY_MEASURES:
            values = np.array([mol.get(m, math.nan) for mol in v.molecules.values()], dtype=float)
            row[m] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
        rows.append(row)
    return rows


def correlations(variants: list[VariantResult], n_bootstrap: int = 1000, n_permutations: int = 2000,
                 seed: int = 0) -> list[dict[str, Any]]:
    """Spearman ρ of FSD (full) with each instability measure.

    Groups: ``across variants`` (each variant's mean FSD over the scans vs its mean measure over
    the molecules), ``pooled`` (every (variant, molecule) pair: the molecule's scan FSD vs its
    measure) and ``variant=<name>`` (across molecules within one variant).
    """
    groups = {"across variants": variant_means(variants), "pooled": pairs(variants)}
    for v in variants:
        groups[f"variant={v.name}"] = [r for r in groups["pooled"] if r["variant"] == v.name]
    out = []
    for group, rows in groups.items():
        x = np.array([r["fsd_full"] for r in rows], dtype=float)
        for m in INSTABILITY_MEASURES:
            y = np.array([r[m] for r in rows], dtype=float)
            rc = rank_correlation(x, y, "spearman", n_bootstrap, n_permutations, seed)
            out.append({"group": group, "measure": m, **asdict(rc)})
    return out


def discordant(variants: list[VariantResult], measure: str) -> list[tuple[str, str]]:
    """Variant pairs (a, b) where a has the clearly lower mean FSD (full; by more than :data:`TOLERANCE`)
    but the higher (worse) ``measure``."""
    rows = variant_means(variants)
    out = []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            fa, fb, ma, mb = a["fsd_full"], b["fsd_full"], a[measure], b[measure]
            if not all(math.isfinite(x) for x in (fa, fb, ma, mb)) or ma == mb:
                continue
            if abs(fa - fb) < TOLERANCE * max(abs(fa), abs(fb)):  # FSD tie: no ranking claimed
                continue
            lo, hi = (a, b) if fa < fb else (b, a)
            if lo[measure] > hi[measure]:
                out.append((lo["variant"], hi["variant"]))
    return out


def _pct(value: float) -> str:
    return f"{value:+.1%}" if math.isfinite(value) else "n/a"


def _strength(rho: float, p: float) -> str:
    if rho >= 0.5 and p < 0.1:
        return "ranked MD stability"
    if rho > 0 and p < 0.1:
        return "ranked MD stability weakly"
    if rho >= 0.5:
        return "ranked MD stability in the same direction, but not significantly"
    if rho > 0:
        return "showed no significant ranking of MD stability"
    return "did not rank MD stability (the order was opposite or unrelated)"


def findings(variants: list[VariantResult], corr: list[dict[str, Any]]) -> list[str]:
    """Plain-text statements computed from the numbers: each step's effect on FSD, whether FSD
    ranked MD stability across variants and across molecules, and where it did not."""
    return step_findings(variants) + correlation_findings(variants, corr)


def step_findings(variants: list[VariantResult]) -> list[str]:
    """One line per design step of one run per variant: FSD before → after and the validation force MAE change."""
    lines = []
    for step in design_steps(variants):
        parts = ", ".join(f"{r} {step.parent_fsd[r]:.3g} → {step.child_fsd[r]:.3g} ({_pct(step.change[r])})"
                          for r in RANGES)
        lines.append(f"{step.child} vs {step.parent}: FSD {step.verdict('full')} ({parts}); validation force MAE "
                     f"{_pct(step.forces_change)}.")
    if not lines and len(variants) > 1:
        lines.append("No variant extends another, so no design step is compared.")
    return lines


def correlation_findings(variants: list[VariantResult], corr: list[dict[str, Any]]) -> list[str]:
    """Whether FSD ranked MD stability across variants and across (variant, molecule) pairs, and where not."""
    lines = []
    for group in ("across variants", "pooled"):
        rows = [r for r in corr if r["group"] == group and r["measure"] in FINDING_MEASURES]
        n = rows[0]["n"] if rows else 0
        scope = (f"Across the {len(variants)} variants (mean FSD vs mean MD measure)" if group == "across variants"
                 else f"Across all {n} (variant, molecule) pairs")
        assessed = [r for r in rows if math.isfinite(r["value"])]
        constant = [r["measure"] for r in rows if not math.isfinite(r["value"])]
        for r in assessed:
            lines.append(f"{scope}, FSD (full) {_strength(r['value'], r['p_value'])} by {r['measure']}: Spearman "
                         f"ρ = {r['value']:+.2f} [{r['ci_low']:+.2f}, {r['ci_high']:+.2f}], p = {r['p_value']:.2g}, "
                         f"n = {r['n']}.")
        if constant:
            lines.append(f"{scope}: not assessable for {', '.join(constant)} (the same value everywhere, e.g. all "
                         "or none of the trajectories failed, or fewer than 3 pairs).")
    for measure in FINDING_MEASURES:
        bad = discordant(variants, measure)
        if bad:
            lines.append(f"Where FSD did not rank {measure}: " + "; ".join(
                f"{a} has the lower FSD but the higher {measure} than {b}" for a, b in bad) + ".")
    return lines
