"""Plain-text tables of a BSCT result: Markdown for summary.md and the terminal."""

from __future__ import annotations

import math
from collections.abc import Sequence

SUMMARY_COLUMNS = (
    ("full_smoothness", "FSD full"), ("compress_smoothness", "FSD compress"), ("stretch_smoothness", "FSD stretch"),
    ("aligned_energy_mae", "aligned E MAE (eV)"), ("full_forces_mae", "F MAE (eV/Å)"),
)


#: Labels of the overall row (bold in Markdown, never escaped).
ALL_LABELS = ("**all**", "**all bond scans**")


def all_label(summary: dict) -> str:
    """The overall row's label: "all", or "all bond scans" when the headline leaves other kinds out."""
    partial = summary.get("headline") == "bond scans" and summary.get("n_headline_scans", 0) < summary["n_scans"]
    return ALL_LABELS[1] if partial else ALL_LABELS[0]


def fmt(value, digits: int = 4) -> str:
    """Format a number for a table ('—' for missing)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


#: Characters that Markdown (GitHub flavour, with its $math$) would interpret, backslash-escaped.
_MD_SPECIAL = "\\`*_[]|$~#!"


def md_escape(text: object) -> str:
    """``text`` as literal Markdown: HTML (``<``, ``>``, ``&``) as entities, Markdown and math
    punctuation (``\\ ` * _ [ ] | $ ~ # !``) backslash-escaped, newlines as spaces; for scan ids,
    paths and error text in ``summary.md``."""
    out = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    out = "".join("\\" + c if c in _MD_SPECIAL else c for c in out)
    return " ".join(out.splitlines())


def _md_code(text: str) -> str:
    """``text`` as a Markdown code span (literal), or escaped when it holds a backtick or a newline."""
    return f"`{text}`" if "`" not in text and "\n" not in text else md_escape(text)


def _md_rows(rows: Sequence[Sequence[str]]) -> list[list[str]]:
    """Table rows with every cell escaped, except the bold ``**all**`` row label."""
    return [[c if c in ALL_LABELS else md_escape(c) for c in row] for row in rows]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Rows per group and overall: mean (median) of each summary column, plus counts."""
    header = ["group", "scans"] + [label for _, label in SUMMARY_COLUMNS] + ["failed frames", "flagged scans"]
    rows = []
    blocks = list(summary["by_group"].items()) + [(all_label(summary), summary)]
    for name, block in blocks:
        cells = [name, str(block["n_scans"])]
        for key, _ in SUMMARY_COLUMNS:
            s = block["stats"][key]
            cells.append(f"{fmt(s['mean'])} ({fmt(s['median'])})")
        cells += [str(block["n_failed_frames"]), str(block["n_flagged_scans"])]
        rows.append(cells)
    return header, rows


def spread_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Rows per group and overall: the spread of full FSD (mean, median, p90, max) and the worst scan."""
    header = ["group", "scans", "mean", "median", "p90", "max", "worst scan"]
    rows = []
    for name, block in list(summary["by_group"].items()) + [(all_label(summary), summary)]:
        s = block["stats"]["full_smoothness"]
        worst = block["worst"][0] if block.get("worst") else None
        rows.append([name, str(block["n_scans"]), *(fmt(s[k]) for k in ("mean", "median", "p90", "max")),
                     f"{worst['id']} ({fmt(worst['full_smoothness'])})" if worst else "—"])
    return header, rows


#: How to read the figures beside the published ones (summary.md and report.html).
VERDICT_NOTES = (
    "Null FSD: the FSD a model predicting zero forces gets on the same frames — the published FSD's ceiling, "
    "set by the reference alone; a published FSD near it says nothing about smoothness.",
    "Skill = 1 − FSD / null FSD: 1 as smooth as the reference relative to it, 0 no better than predicting zero "
    "forces, negative worse.",
    "Roughness (eV/Å, no reference needed): the largest single-step force change that neither a smooth trend nor "
    "the neighbouring steps explain; ~0 for a continuous force curve, ≈ the jump for a force discontinuity.",
    "Discontinuities (no reference needed): steps where the model's energy or forces change faster than a "
    "continuous function can at that resolution, confirmed by extra model calls on a refined grid (a continuous "
    "curve's jump shrinks with the step, a discontinuity's does not).",
)


def verdict_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Rows per group and overall: null FSD, skill (mean, median), roughness median, discontinuities."""
    header = ["group", "scans", "null FSD full", "skill full: mean (median)", "skill compress", "skill stretch",
              "roughness median (eV/Å)", "scans with discontinuities", "extra frames"]
    rows = []
    for name, block in list(summary["by_group"].items()) + [(all_label(summary), summary)]:
        st = block["stats"]
        rows.append([name, str(block["n_scans"]), fmt(st["null_full_smoothness"]["mean"]),
                     f"{fmt(st['full_smoothness_skill']['mean'], 3)} ({fmt(st['full_smoothness_skill']['median'], 3)})",
                     fmt(st["compress_smoothness_skill"]["mean"], 3), fmt(st["stretch_smoothness_skill"]["mean"], 3),
                     fmt(st["roughness"]["median"], 3), str(block["n_scans_with_discontinuities"]),
                     str(block["n_refined_frames"])])
    return header, rows


def discontinuity_rows(metrics, limit: int = 50) -> tuple[list[str], list[list[str]]]:
    """One row per reported discontinuity (confirmed first), at most ``limit``."""
    header = ["scan", "quantity", "coordinate", "jump", "status"]
    items = [(m, d) for m in metrics for d in m.discontinuities]
    items.sort(key=lambda md: (not md[1]["confirmed"], -md[1]["jump"]))
    rows = [[m.id, d["quantity"], f"{d['coordinate']:.4f} {'Å' if m.group not in ('angle', 'torsion') else 'rad'}",
             f"{d['jump']:.3g} {'eV' if d['quantity'] == 'energy' else 'eV/Å'}",
             "confirmed" if d["confirmed"] else f"unconfirmed: {d['note']}"] for m, d in items[:limit]]
    return header, rows


def published_rows(summary: dict) -> list[list[str]]:
    """The nine published means of the headline scans, with units."""
    unit = summary.get("unit", "1/Å")
    return [[label, *(fmt(summary[f"{r}_{key}"]) for r in ("full", "compress", "stretch"))]
            for key, label in (("smoothness", f"FSD ({unit})"),
                               ("energy_mae", "energy MAE (eV; offset-sensitive: see aligned E MAE)"),
                               ("forces_mae", "force MAE (eV/Å)"))]


def kind_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Rows per scan kind, each with its own FSD unit (compress/stretch are not defined for torsions)."""
    header = ["kind", "scans", "FSD full", "FSD compress", "FSD stretch", "unit", "skill full"]
    rows = [[kind, str(b["n_scans"]), fmt(b["full_smoothness"]), fmt(b["compress_smoothness"]),
             fmt(b["stretch_smoothness"]), b["unit"], fmt(b["full_smoothness_skill"], 3)]
            for kind, b in summary.get("by_kind", {}).items()]
    return header, rows


def _escaped(table: tuple[list[str], list[list[str]]]) -> tuple[list[str], list[list[str]]]:
    return table[0], _md_rows(table[1])


def unseen_elements_note(unseen: dict[str, list[str]], what: str = "scans") -> str | None:
    """One line naming the elements never seen in training and where they occur, or None if there are none.

    Parameters
    ----------
    unseen : dict
        ``{scan or molecule id: element symbols}`` (entries with an empty list are ignored).
    what : str
        What the ids are, for the text (``"scans"``, ``"molecules"``).
    """
    by_element: dict[str, list[str]] = {}
    for key, symbols in unseen.items():
        for symbol in symbols:
            by_element.setdefault(symbol, []).append(key)
    if not by_element:
        return None
    parts = [f"{symbol} in {len(ids)} {what} ({', '.join(ids[:3])}{', …' if len(ids) > 3 else ''})"
             for symbol, ids in by_element.items()]
    return ("Warning: elements never seen in training: " + "; ".join(parts)
            + ". The model's results there are extrapolation.")


def summary_markdown(result) -> str:
    """The ``summary.md`` text of a :class:`~pesprobe.evaluate.BSCTResult`."""
    summary = result.summary
    header, rows = summary_rows(summary)
    published = markdown_table(["metric", "full", "compress", "stretch"], published_rows(summary))
    worst = markdown_table(["scan", "FSD full"], _md_rows([[w["id"], fmt(w["full_smoothness"])]
                                                        for w in summary["worst"]]))
    parts = [
        f"# BSCT summary: {md_escape(result.potential)}",
        f"Data: {_md_code(result.source)} — {summary['n_scans']} scans, {summary['n_frames']} frames, "
        f"{summary['n_failed_frames']} failed frames, {summary['n_flagged_scans']} flagged scans, "
        f"{summary['n_unscored_scans']} unscored scans, {len(result.problems)} data problems.",
        *([md_escape(note)] if (note := unseen_elements_note(result.unseen_elements)) else []),
        f"## Published metrics (mean over {summary.get('headline', 'all scans')})", published,
        *(["## Per scan kind (each in its own unit)", markdown_table(*kind_rows(summary))]
          if len(summary.get("by_kind", {})) > 1 else []),
        "## Per bond type: mean (median)", markdown_table(header, _md_rows(rows)),
        "## Spread of full FSD (Å⁻¹) per bond type", markdown_table(*_escaped(spread_rows(summary))),
        "## Worst scans by full FSD", worst,
        "## Smoothness verdict: null ceiling, skill, roughness, discontinuities",
        markdown_table(*_escaped(verdict_rows(summary))),
        "\n".join(f"- {note}" for note in VERDICT_NOTES),
    ]
    found = discontinuity_rows(result.metrics)
    parts.append(markdown_table(*_escaped(found)) if found[1] else "No discontinuity found.")
    from pesprobe.report.yardsticks import next_steps, yardstick_rows, yardsticks

    parts += ["## Yardsticks (mean full FSD per bond type, 1/Å)", markdown_table(*yardstick_rows(summary)),
              f"Reference rows: {yardsticks()['source']}; made by `{yardsticks()['command']}`.",
              "## What to do next", "\n".join(f"{i}. {line}" for i, line in enumerate(next_steps(summary), 1))]
    if summary["n_unlabelled_scans"]:
        parts.append(f"{summary['n_unlabelled_scans']} scans have no reference labels: only the reference-free "
                     "figures (roughness, discontinuities) are reported for them.")
    parts += [
        "FSD: largest change of the log ratio of model to reference squared force deviation per Å "
        "(lower is smoother; 0 only for a model that reproduces the reference's force curve, and its ceiling is "
        "the null FSD below: see the yardsticks). Aligned energy MAE compares energies after zeroing both curves "
        "at the reference minimum.",
    ]
    failures = result.failures
    if failures:
        lines = [f"- {md_escape(f.get('path') or f.get('scan'))}{' frame ' + str(f['frame']) if 'frame' in f else ''}: "
                 f"{md_escape(f['error'])}" for f in failures[:50]]
        more = [f"- … and {len(failures) - 50} more (see results.json)"] if len(failures) > 50 else []
        parts += ["## Failures and data problems", "\n".join(lines + more)]
    return "\n\n".join(parts) + "\n"
