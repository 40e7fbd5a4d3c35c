"""Aggregates of per-scan metrics: per group (bond type) and overall."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pesprobe.metrics.scan_metrics import ALL_METRICS, PUBLISHED, VERDICT, ScanMetrics

#: Metrics ranked to pick the worst scans.
WORST_BY = "full_smoothness"


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
        The overall block at top level — the nine published means (the numbers the paper
        reports), the means of the null ceiling, skill and detector figures, counts of scans
        (unlabelled ones, those with a confirmed discontinuity) and of the detector's extra frames, flagged scans, unscored scans and failed frames, ``stats``
        (mean, median, 90th percentile, max and count of every metric, NaNs excluded and counted)
        and ``worst`` (the ``worst`` scans by full FSD) — plus ``by_group``, the same block per
        bond type (or scan kind).
    """
    groups: dict[str, list[ScanMetrics]] = {}
    for m in metrics:
        groups.setdefault(m.group, []).append(m)
    out = _block(list(metrics), worst)
    out["by_group"] = {g: _block(items, worst) for g, items in sorted(groups.items())}
    return out
