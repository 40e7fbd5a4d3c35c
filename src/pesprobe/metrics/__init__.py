"""Metrics: FSD, the published BSCT numbers, diagnostics and aggregates — pure functions, no I/O."""

from pesprobe.metrics.fsd import EPSILON, RANGES, integrated_potential, smoothness
from pesprobe.metrics.scan_metrics import (DIAGNOSTICS, PUBLISHED, ScanCurves, ScanMetrics, scan_curves,
                                           scan_metrics)
from pesprobe.metrics.summary import summarize

__all__ = ["DIAGNOSTICS", "EPSILON", "PUBLISHED", "RANGES", "ScanCurves", "ScanMetrics", "integrated_potential",
           "scan_curves", "scan_metrics", "smoothness", "summarize"]
