"""Metrics: FSD, the published BSCT numbers, diagnostics and aggregates — pure functions, no I/O."""

from pesprobe.metrics.fsd import EPSILON, RANGES, integrated_potential, smoothness
from pesprobe.metrics.scan_metrics import (ALL_METRICS, DETECTOR, DIAGNOSTICS, NULL_CEILING, PUBLISHED, SKILL,
                                           VERDICT, ScanCurves, ScanMetrics, refinement_plan, scan_curves,
                                           scan_metrics)
from pesprobe.metrics.summary import summarize

__all__ = ["ALL_METRICS", "DETECTOR", "NULL_CEILING", "SKILL", "VERDICT", "refinement_plan", "DIAGNOSTICS", "EPSILON", "PUBLISHED", "RANGES", "ScanCurves", "ScanMetrics", "integrated_potential",
           "scan_curves", "scan_metrics", "smoothness", "summarize"]
