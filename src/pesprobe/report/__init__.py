"""Reports: Markdown/CSV tables, matplotlib figures and the self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

from pesprobe.data.atomic import atomic_write

#: Scans shown in the worst-scan gallery.
GALLERY_SIZE = 6
#: Which potential the per-scan figures in ``plots/`` belong to: ``{"identity": str, "scans": [id, ...]}``.
FIGURES_MANIFEST = "figures.json"


def _manifest(plots_dir: Path) -> dict:
    """The figures manifest of ``plots_dir`` (empty if missing or unreadable)."""
    import json

    try:
        return json.loads((plots_dir / FIGURES_MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def figure_scans(plots_dir: Path, identity: str) -> set[str]:
    """Ids of the scans whose figure in ``plots_dir`` was drawn for the potential ``identity``."""
    data = _manifest(plots_dir)
    return set(data.get("scans", [])) if data.get("identity") == identity else set()


def record_figures(plots_dir: Path, identity: str, scan_ids: list[str]) -> None:
    """Add ``scan_ids`` to the manifest of ``identity``; figures of another potential are removed."""
    from pesprobe.data.atomic import atomic_write_json

    previous = _manifest(plots_dir)
    kept = set(previous.get("scans", [])) if previous.get("identity") == identity else set()
    if previous.get("identity") not in (None, identity):
        for scan_id in set(previous.get("scans", [])) - set(scan_ids):
            (plots_dir / plot_name(scan_id)).unlink(missing_ok=True)
    atomic_write_json(plots_dir / FIGURES_MANIFEST, {"identity": identity, "scans": sorted(kept | set(scan_ids))})


def plot_name(scan_id: str) -> str:
    """File name of a scan's figure inside ``plots/``."""
    return scan_id.replace("/", "__") + ".png"


def write_summary_figures(result, plots_dir: Path, draw_worst: bool = True) -> list[Path]:
    """The FSD distribution and, when predictions are in memory, the worst-scan gallery and the full
    diagnostic figure of each worst scan (a handful: the report always shows where the FSD step is).
    Without predictions (e.g. after a merge) an older gallery is removed: it would show some other
    run's worst scans."""
    from pesprobe.report.plots import plot_distributions, plot_gallery, plot_scan

    if not result.metrics:
        return []
    written = []
    if any(m.values.get("full_smoothness") == m.values.get("full_smoothness") for m in result.metrics):
        written.append(plot_distributions(result.metrics, plots_dir / "fsd_distribution.png"))
    else:  # nothing scored (e.g. only unlabelled scans): no FSD to show
        (plots_dir / "fsd_distribution.png").unlink(missing_ok=True)
    if result.scans and result.predictions is not None:
        scans = {s.id: s for s in result.scans}
        by_id = {m.id: m for m in result.metrics}
        items = [(scans[w["id"]], result.predictions[w["id"]], by_id[w["id"]])
                 for w in result.summary["worst"][:GALLERY_SIZE] if w["id"] in scans]
        if items:
            written.append(plot_gallery(items, plots_dir / "worst_gallery.png"))
            if draw_worst:  # (write_plots has drawn every scan already)
                for scan, pred, m in items:
                    written.append(plot_scan(scan, pred, m, plots_dir / plot_name(scan.id)))
                record_figures(plots_dir, result.identity, [scan.id for scan, _, _ in items])
    else:
        (plots_dir / "worst_gallery.png").unlink(missing_ok=True)
    return written


def write_plots(result, plots_dir: Path) -> list[Path]:
    """A figure per scored scan (predictions must be in memory) plus the summary figures."""
    from pesprobe.report.plots import plot_scan

    written, drawn = [], []
    if result.scans and result.predictions is not None:
        by_id = {m.id: m for m in result.metrics}
        for scan in result.scans:
            m = by_id[scan.id]
            if m.values["full_smoothness"] == m.values["full_smoothness"]:  # scored (not NaN)
                written.append(plot_scan(scan, result.predictions[scan.id], m, plots_dir / plot_name(scan.id)))
                drawn.append(scan.id)
        record_figures(plots_dir, result.identity, drawn)
    return written + write_summary_figures(result, plots_dir, draw_worst=False)


def write_report(result, out: Path, plots: bool = False) -> None:
    """Write ``summary.md`` and ``report.html`` (and every per-scan figure when ``plots``) into ``out``.

    The HTML page embeds the summary figures and the per-scan figures of the worst scans that
    exist in ``out/plots`` for this potential (written now with ``plots=True``, or by an earlier
    run of the same potential: :data:`FIGURES_MANIFEST` says whose they are).
    """
    from pesprobe.report.html import render_html
    from pesprobe.report.tables import summary_markdown

    plots_dir = out / "plots"
    if plots:
        write_plots(result, plots_dir)
    else:
        write_summary_figures(result, plots_dir)
    atomic_write(out / "summary.md", summary_markdown(result))
    atomic_write(out / "report.html", render_html(result, plots_dir))
