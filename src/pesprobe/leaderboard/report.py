"""Render a :class:`~pesprobe.leaderboard.runner.Leaderboard` as Markdown, HTML and CSV."""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import fields

from pesprobe.report.tables import fmt, markdown_table

HEADER = ["rank", "potential", "model", "FSD full (1/Å)", "FSD compress (1/Å)", "FSD stretch (1/Å)",
          "skill full", "roughness (eV/Å)", "scans with discontinuities", "aligned E MAE (eV)", "F MAE (eV/Å)",
          "scored scans", "failed frames", "ms/frame"]

RANK_LABELS = {"full": "mean full FSD", "full-median": "median full FSD", "compress": "mean compress FSD",
               "stretch": "mean stretch FSD", "energy": "aligned energy MAE", "forces": "force MAE"}

EXPLANATION = (
    "FSD cells: mean (median) over the scans. FSD (force smoothness deviation) is the largest change, per Å of "
    "bond length, of the log ratio between the model's and the reference's squared force deviation from the "
    "equilibrium frame: lower is smoother, an ideal model scores near 0; *compress* and *stretch* are the two "
    "sides of the equilibrium bond length. Aligned E MAE compares the energy curves after zeroing both at the "
    "reference minimum; F MAE is the force MAE over all frames. Failed frames (the model raised or returned "
    "non-finite values) are left out of the metrics; a scan with fewer than 3 usable frames is not scored. "
    "ms/frame is model time per frame on this machine. Skill = 1 − FSD / FSD of a zero-force model on the same "
    "frames (1 as smooth as the reference, 0 no better than predicting nothing). Roughness (median, eV/Å) and "
    "scans with discontinuities need no reference: the largest unexplained single-step force change, and scans "
    "where a jump in energy or forces was confirmed on a refined grid."
)


def rows(board) -> list[list[str]]:
    """Table cells of every entry, best first."""
    out = []
    for e in board.entries:
        out.append([
            str(e.rank), e.name, e.label,
            f"{fmt(e.fsd_full)} ({fmt(e.fsd_full_median)})",
            f"{fmt(e.fsd_compress)} ({fmt(e.fsd_compress_median)})",
            f"{fmt(e.fsd_stretch)} ({fmt(e.fsd_stretch_median)})",
            fmt(e.skill_full, 3), fmt(e.roughness_median, 3), f"{e.n_discontinuity_scans}/{e.n_scored}",
            fmt(e.aligned_energy_mae), fmt(e.forces_mae), f"{e.n_scored}/{e.n_scans}",
            f"{e.n_failed_frames}/{e.n_frames}", fmt(e.ms_per_frame, 3),
        ])
    return out


def group_rows(board) -> tuple[list[str], list[list[str]]]:
    """Mean full FSD per bond type (rows) and potential (columns, in rank order)."""
    names = [e.name for e in board.entries]
    groups = sorted({g for n in names for g in board.by_group.get(n, {})})
    header = ["bond type", *names]
    return header, [[g, *(fmt(board.by_group.get(n, {}).get(g)) for n in names)] for g in groups]


def _intro(board) -> str:
    problems = f", {board.n_data_problems} data problems" if board.n_data_problems else ""
    return (f"Data: `{board.source}` — {len(board.scan_ids)} scans{problems}. "
            f"Ranked by {RANK_LABELS[board.rank_by]} (lower is better).")


def markdown(board) -> str:
    """``leaderboard.md``: the ranked table, FSD per bond type, skipped potentials."""
    parts = ["# BSCT leaderboard", _intro(board),
             markdown_table(HEADER, rows(board)) if board.entries else "No potential could be run.",
             EXPLANATION]
    if board.entries:
        parts += ["## Mean full FSD per bond type (1/Å)", markdown_table(*group_rows(board))]
    if board.skipped:
        parts += ["## Skipped", "\n".join(f"- **{s.name}** (`{s.spec}`): {s.reason}" for s in board.skipped)]
    return "\n\n".join(parts) + "\n"


def _html_table(header: list[str], body: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><tr>{head}</tr>{cells}</table>"


def html_page(board) -> str:
    """``leaderboard.html``: one self-contained page with the same content as the Markdown."""
    from pesprobe.report.html import STYLE

    skipped = "".join(f"<li><b>{html.escape(s.name)}</b> (<code>{html.escape(s.spec)}</code>): "
                      f"{html.escape(s.reason)}</li>" for s in board.skipped)
    intro = html.escape(_intro(board)).replace("`", "")
    body = [f"<h1>BSCT leaderboard</h1><p class=\"note\">{intro}</p>",
            _html_table(HEADER, rows(board)) if board.entries else "<p>No potential could be run.</p>",
            f"<p class=\"note\">{html.escape(EXPLANATION).replace('*', '')}</p>"]
    if board.entries:
        body.append(f"<h2>Mean full FSD per bond type (1/Å)</h2>{_html_table(*group_rows(board))}")
    if skipped:
        body.append(f"<h2>Skipped</h2><ul>{skipped}</ul>")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>BSCT leaderboard</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def csv_text(board) -> str:
    """``leaderboard.csv``: one row per ranked entry, every :class:`Entry` field (empty cell for NaN)."""
    from pesprobe.leaderboard.runner import Entry

    columns = [f.name for f in fields(Entry)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for e in board.entries:
        writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                         for k, v in ((c, getattr(e, c)) for c in columns)})
    return buf.getvalue()
