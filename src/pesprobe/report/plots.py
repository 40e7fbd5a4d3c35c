"""Matplotlib figures (Agg backend, no LaTeX): per-scan curves, FSD distributions, worst-scan gallery."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pesprobe.data.scan import Scan  # noqa: E402
from pesprobe.metrics import ScanMetrics, scan_curves  # noqa: E402
from pesprobe.potentials.base import Predictions  # noqa: E402

COORD_LABEL = {"bond": "bond length (Å)", "angle": "angle (rad)", "torsion": "torsion (rad)"}
RANGE_COLORS = {"full": "#4c72b0", "compress": "#dd8452", "stretch": "#55a868"}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def _energy_panel(ax, scan: Scan, pred: Predictions, metrics: ScanMetrics, title: bool = True) -> None:
    c = scan_curves(scan, pred)
    ax.plot(c.coordinate, c.ref_energy, "k-", lw=1.6, label="reference E − E(q)")
    if np.isfinite(c.model_energy).any():
        ax.plot(c.coordinate, c.model_energy, "-", color="#c44e52", lw=1.2, label="model Ê − Ê(q)")
    ax.plot(c.coordinate, c.integrated, "--", color="#4c72b0", lw=1.2, label="model ∫F·dx (U)")
    ax.axvline(c.coordinate[c.eq], color="0.6", lw=0.8, ls=":")
    for k, d in enumerate(x for x in metrics.discontinuities if x["confirmed"]):
        ax.axvline(d["coordinate"], color="#d62728", lw=1.4, alpha=0.8,
                   label="discontinuity (confirmed)" if k == 0 else None)
    finite = np.concatenate([c.ref_energy[np.isfinite(c.ref_energy)]])
    lo, hi = finite.min(), np.percentile(finite, 98)
    pad = 0.15 * (hi - lo + 1e-9)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(COORD_LABEL.get(scan.kind, "coordinate"))
    ax.set_ylabel("energy (eV)")
    if title:
        ax.set_title(f"{scan.id}   FSD {metrics.values['full_smoothness']:.3g}", parse_math=False)
    ax.legend(fontsize=7, loc="upper right")


def _deviation_panel(ax, scan: Scan, pred: Predictions) -> None:
    c = scan_curves(scan, pred)
    ax.semilogy(c.coordinate, np.maximum(c.ref_dev, 1e-6), "k-", lw=1.4, label="reference Σ(F−F_q)²")
    ax.semilogy(c.coordinate, np.maximum(c.model_dev, 1e-6), "-", color="#c44e52", lw=1.2, label="model Σ(F̂−F_q)²")
    ax.axhline(1.0, color="0.7", lw=0.8, ls=":")
    ax.set_xlabel(COORD_LABEL.get(scan.kind, "coordinate"))
    ax.set_ylabel("squared force deviation ((eV/Å)²)")
    twin = ax.twinx()
    twin.plot(c.coordinate, c.log_ratio, ".-", color="#8172b2", lw=0.8, ms=2.5, label="log-ratio r")
    twin.set_ylabel("log-ratio r = log m − log g", color="#8172b2")
    ok = np.isfinite(c.log_ratio)
    if ok.sum() >= 2:
        x, r = c.coordinate[ok], c.log_ratio[ok]
        k = int(np.argmax(np.abs(np.diff(r) / np.diff(x))))
        twin.plot(x[k:k + 2], r[k:k + 2], "-", color="#e377c2", lw=3.0, alpha=0.8, label="FSD step")
        twin.axvspan(x[k], x[k + 1], color="#e377c2", alpha=0.15)
    lines = ax.get_lines()[:2] + twin.get_lines()[:1] + twin.get_lines()[-1:]
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="lower right")


def plot_scan(scan: Scan, pred: Predictions, metrics: ScanMetrics, path: str | Path) -> Path:
    """Two panels for one scan: energies (reference, model, integrated model potential) and the
    squared force deviations (log axis) with the log-ratio on a twin axis and the FSD step marked."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    _energy_panel(ax1, scan, pred, metrics, title=False)
    _deviation_panel(ax2, scan, pred)
    v = metrics.values
    flag = f"   ⚠ {metrics.n_failed} failed frames" if metrics.n_failed else ""
    fig.suptitle(f"{scan.id}: FSD full {v['full_smoothness']:.3g} / compress {v['compress_smoothness']:.3g} / "
                 f"stretch {v['stretch_smoothness']:.3g} Å⁻¹{flag}", fontsize=10, parse_math=False)
    fig.tight_layout()
    return _save(fig, Path(path))


#: Marker of each FSD range in the distribution figure (they must not look alike with one scan per type).
RANGE_MARKERS = {"full": "o", "compress": "v", "stretch": "^"}


def plot_distributions(metrics: Sequence[ScanMetrics], path: str | Path) -> Path:
    """FSD per group (bond type) for the full, compress and stretch ranges: a box per range where a
    group has ≥ 5 scans, every scan as a marker (circle, down and up triangles), and each group's
    null ceiling (zero-force FSD) as a grey bar; log y axis with plain-number tick labels (an FSD of
    exactly 0 is drawn at the axis floor)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    groups = sorted({m.group for m in metrics})
    fig, ax = plt.subplots(figsize=(max(6.5, 1.2 * len(groups) + 2.5), 4.2))
    width = 0.26
    values = [v for m in metrics for r in RANGE_COLORS for v in [m.values.get(f"{r}_smoothness", np.nan)]
              if np.isfinite(v) and v > 0]
    floor = 0.5 * min(values) if values else 0.1
    for j, rng in enumerate(RANGE_COLORS):
        data = [[max(m.values[f"{rng}_smoothness"], floor) for m in metrics
                 if m.group == g and np.isfinite(m.values[f"{rng}_smoothness"])] for g in groups]
        pos = np.arange(len(groups)) + (j - 1) * width
        big = [k for k, d in enumerate(data) if len(d) >= 5]
        if big:
            box = ax.boxplot([data[k] for k in big], positions=pos[big], widths=width * 0.85, patch_artist=True,
                             showfliers=False, manage_ticks=False)
            for patch in box["boxes"]:
                patch.set_facecolor(RANGE_COLORS[rng])
                patch.set_alpha(0.35)
        for p, d in zip(pos, data):
            ax.plot(np.full(len(d), p), d, RANGE_MARKERS[rng], color=RANGE_COLORS[rng], ms=6, mec="k", mew=0.4,
                    alpha=0.85)
        ax.plot([], [], RANGE_MARKERS[rng], color=RANGE_COLORS[rng], mec="k", mew=0.4, label=rng)
    for k, g in enumerate(groups):
        null = [m.values.get("null_full_smoothness", np.nan) for m in metrics if m.group == g]
        null = [v for v in null if np.isfinite(v)]
        if null:
            ax.hlines(np.mean(null), k - 1.5 * width, k + 1.5 * width, color="0.45", lw=2.0, alpha=0.8,
                      label="zero-force FSD (mean, full)" if k == 0 else None)
    ax.set_xticks(np.arange(len(groups)), groups, parse_math=False)  # names from folders: no mathtext
    if values:  # log axis needs something positive (a set where every FSD is 0 or NaN stays linear)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_ylabel("FSD (1/Å or 1/rad" + (", log scale)" if values else ")"))
    ax.set_title("Force smoothness deviation per scan and bond type (lower is smoother)")
    ax.grid(axis="y", which="major", color="0.9")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_gallery(items: Sequence[tuple[Scan, Predictions, ScanMetrics]], path: str | Path) -> Path:
    """Energy panels of several scans side by side (the worst scans)."""
    n = max(len(items), 1)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax, (scan, pred, metrics) in zip(axes.flat, items):
        _energy_panel(ax, scan, pred, metrics)
    for ax in axes.flat[len(items):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, Path(path))
