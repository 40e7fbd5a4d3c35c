"""``report.html``: one self-contained page (images embedded as base64 PNG)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from pesprobe.report import figure_scans, plot_name
from pesprobe.report.tables import (VERDICT_NOTES, discontinuity_rows, fmt, kind_rows, published_rows, summary_rows,
                                    unseen_elements_note, verdict_rows)
from pesprobe.report.yardsticks import next_steps, yardstick_rows, yardsticks

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:14px}.bad{color:#b00}
"""


def _img(path: Path) -> str:
    if not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c)).replace('**', '')}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(result, plots_dir: Path) -> str:
    """HTML text of the report; figures are read from ``plots_dir`` when present."""
    s = result.summary
    published = _table(["metric", "full", "compress", "stretch"], published_rows(s))
    kinds = (f"<h2>Per scan kind (each in its own unit)</h2>{_table(*kind_rows(s))}"
             if len(s.get("by_kind", {})) > 1 else "")
    advice = ("<h2>Yardsticks (mean full FSD per bond type, 1/Å)</h2>" + _table(*yardstick_rows(s))
              + f"<p class=\"note\">Reference rows: {html.escape(yardsticks()['source'])}.</p>"
              + "<h2>What to do next</h2><ol>" + "".join(f"<li>{html.escape(x)}</li>" for x in next_steps(s))
              + "</ol>")
    header, rows = summary_rows(s)
    worst_parts = []
    ours = figure_scans(plots_dir, result.identity)
    for w in s["worst"]:
        figure = _img(plots_dir / plot_name(w["id"])) if w["id"] in ours else ""
        worst_parts.append(f"<h3>{html.escape(w['id'])} — FSD {fmt(w['full_smoothness'])}</h3>{figure}")
    found = discontinuity_rows(result.metrics)
    unlabelled = (f"<p class=\"note\">{s['n_unlabelled_scans']} scans have no reference labels: only the "
                  "reference-free figures are reported for them.</p>") if s["n_unlabelled_scans"] else ""
    verdict = (_table(*verdict_rows(s)) + "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in VERDICT_NOTES)
               + "</ul>" + (_table(*found) if found[1] else "<p>No discontinuity found.</p>") + unlabelled)
    note = unseen_elements_note(result.unseen_elements)
    unseen = f'<p class="bad">{html.escape(note)}</p>' if note else ""
    failures = result.failures
    fail_rows = [[f.get("path") or f.get("scan"), str(f.get("frame", "")), f["error"]] for f in failures[:200]]
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>BSCT report: {html.escape(result.potential)}</title>
<style>{STYLE}</style></head><body>
<h1>BSCT report: {html.escape(result.potential)}</h1>
<p class="note">Data: <code>{html.escape(result.source)}</code> — {s['n_scans']} scans, {s['n_frames']} frames,
<span class="{'bad' if s['n_failed_frames'] else ''}">{s['n_failed_frames']} failed frames</span>,
{s['n_flagged_scans']} flagged scans, {len(result.problems)} data problems. Wall time {result.wall_seconds:.1f} s.</p>
{unseen}
<p class="note">FSD (force smoothness deviation) is the largest change, per Å of bond length, of the log ratio between the
model's and the reference's squared force deviation from the equilibrium frame. Lower is smoother; spikes reveal kinks
and discontinuities in the potential energy surface.</p>
<h2>Published metrics (mean over {html.escape(s.get("headline", "all scans"))})</h2>{published}
{kinds}
<h2>Per bond type: mean (median)</h2>{_table(header, rows)}
<h2>Smoothness verdict: null ceiling, skill, roughness, discontinuities</h2>{verdict}
<h2>FSD distributions</h2>{_img(plots_dir / "fsd_distribution.png") or "<p>No scan was scored.</p>"}
<h2>Worst scans</h2>{_img(plots_dir / "worst_gallery.png")}
{''.join(worst_parts)}
{advice}
<h2>Failures and data problems ({len(failures)})</h2>
{_table(["path or scan", "frame", "error"], fail_rows) if fail_rows else "<p>None.</p>"}
</body></html>
"""
