"""Refresh ``docs/evidence.md`` from a finished zoo run.

The page has a hand-written head (the run, the subsets, the honest reading) and, below the heading
``## The generated report``, the ``evidence.md`` that ``pesprobe zoo`` wrote, unchanged except that its
title is dropped, its headings go one level down and its plots point at ``docs/zoo_plots/``. This tool
keeps the head, replaces the generated part, and copies the run's plots and ``zoo.json``
(``benchmarks/results/zoo/``)::

    python tools/make_evidence_doc.py --zoo /work/runs/zoo_final
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "## The generated report"


def generated_part(zoo_markdown: str) -> str:
    """The run's ``evidence.md`` as the page's generated part: no title, headings one level down,
    plots in ``zoo_plots/``."""
    lines = zoo_markdown.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    out = [("#" + line) if line.startswith("## ") else line for line in lines]
    return "\n".join(out).replace("](plots/", "](zoo_plots/").strip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", type=Path, required=True, help="the zoo run's --out folder")
    parser.add_argument("--page", type=Path, default=ROOT / "docs" / "evidence.md")
    args = parser.parse_args()
    page = args.page.read_text()
    if MARKER not in page:
        raise SystemExit(f"{args.page}: no line {MARKER!r} to put the generated report under")
    head = page[:page.index(MARKER) + len(MARKER)]
    body = generated_part((args.zoo / "evidence.md").read_text())
    args.page.write_text(f"{head}\n\n{body}")
    plots = args.page.parent / "zoo_plots"
    plots.mkdir(exist_ok=True)
    for png in sorted((args.zoo / "plots").glob("*.png")):
        shutil.copyfile(png, plots / png.name)
    results = ROOT / "benchmarks" / "results" / "zoo"
    results.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.zoo / "zoo.json", results / "zoo.json")
    print(f"wrote {args.page}, {plots}/, {results / 'zoo.json'}")


if __name__ == "__main__":
    main()
