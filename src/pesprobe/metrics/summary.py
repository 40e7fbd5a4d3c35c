"""Aggregates of per-scan metrics: per group (bond type) and overall."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pesprobe.metrics.scan_metrics import ALL_METRICS, PUBLISHED, VERDICT, ScanMetrics

#: Metrics ranked to pick the worst scans.
WORST_BY = "full_smoothness"
#: Unit of FSD (and its null ceiling) per scan kind.
FSD_UNIT = {"bond": "1/Å", "angle": "1/rad", "torsion": "1/rad"}
#: Counts that the top-level block takes over every scan (its metric values cover the headline scans).
COUNTS = ("n_scans", "n_unlabelled_scans", "n_scans_with_discontinuities", "n_refined_frames", "n_flagged_scans",
          "n_unscored_scans", "n_failed_frames", "n_frames")


def _stats(values: np.ndarray) -> dict[str, float | int | None]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"mean": None, "median": None, "p90": None, "max": None, "n": 0}
    return {"mean": float(finite.mean()), "median": float(np.median(finite)),
            "p90": float(np.percentile(finite, 90)), "max": float(finite.max()), "n": int(len(finite))}


def _block(items: Sequence[ScanMetrics], worst: int) -> dict:
    names = ALL_METRICS
    table = {name: np.array([m.values.get(name, np.nan) for m in items], dtype=float) for name in names}
    stats = {name: _stats(table[name]) for name in names}
    ranked = sorted((m for m in items if np.isfinite(m.values.get(WORST_BY, np.nan))),
                    key=lambda m: -m.values[WORST_BY])
    return {
        # the published summary: plain means of each metric over the scans
        **{name: stats[name]["mean"] for name in PUBLISHED},
        # beside them: means of the null ceiling, skill and detector figures
        **{name: stats[name]["mean"] for name in VERDICT},
        "n_scans": len(items),
        "n_unlabelled_scans": int(sum(not m.labelled for m in items)),
        "n_scans_with_discontinuities": int(sum(m.values.get("n_discontinuities", 0) > 0 for m in items)),
        "n_refined_frames": int(sum(m.n_refined for m in items)),
        "n_flagged_scans": int(sum(m.flagged for m in items)),
        "n_unscored_scans": int(sum(not np.isfinite(m.values.get(WORST_BY, np.nan)) for m in items)),
        "n_failed_frames": int(sum(m.n_failed for m in items)),
        "n_frames": int(sum(m.n_frames for m in items)),
        "stats": stats,
        "worst": [{"id": m.id, WORST_BY: m.values[WORST_BY]} for m in ranked[:worst]],
    }


def summarize(metrics: Sequence[ScanMetrics], worst: int = 5) -> dict:
    """Summary of a BSCT run.

    Returns
    -------
    dict
        The overall block at top level. Its metric values — the nine published means (the numbers
        the paper reports), the means of the null ceiling, skill and detector figures, ``stats``
        (mean, median, 90th percentile, max and count of every metric, NaNs excluded and counted)
        and ``worst`` (the ``worst`` scans by full FSD) — cover the *headline* scans: the bond scans
        when there are any (FSD in 1/Å; ``headline`` says which), so that bond FSD (1/Å) is never
        averaged with angle or torsion FSD (1/rad). Its counts (:data:`COUNTS`: scans, unlabelled
        scans, scans with a confirmed discontinuity, extra detector frames, flagged, unscored,
        failed frames, frames) cover every scan; ``n_headline_scans`` counts the headline ones.
        Beside it: ``by_kind`` (the same block per scan kind, with its FSD ``unit``) and ``by_group``
        (per bond type, or per kind for angle and torsion scans).
    """
    items = list(metrics)
    kinds: dict[str, list[ScanMetrics]] = {}
    groups: dict[str, list[ScanMetrics]] = {}
    for m in items:
        kinds.setdefault(m.kind, []).append(m)
        groups.setdefault(m.group, []).append(m)
    headline = kinds.get("bond") or items
    out = _block(headline, worst)
    every = _block(items, worst)
    out.update({key: every[key] for key in COUNTS})
    out["headline"] = "bond scans" if kinds.get("bond") else "all scans"
    out["n_headline_scans"] = len(headline)
    out["unit"] = FSD_UNIT["bond"] if kinds.get("bond") or not kinds else FSD_UNIT[sorted(kinds)[0]]
    out["by_kind"] = {k: {**_block(v, worst), "unit": FSD_UNIT.get(k, "")} for k, v in sorted(kinds.items())}
    out["by_group"] = {g: _block(v, worst) for g, v in sorted(groups.items())}
    return out
