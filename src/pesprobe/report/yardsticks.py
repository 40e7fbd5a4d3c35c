"""Reference yardsticks (GFN2-xTB and zero forces on the BSCT-SPICE sample) and the "what to do
next" lines of summary.md and report.html."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources

from pesprobe.report.tables import fmt

GFN2, ZERO = "GFN2-xTB", "zero forces"


@lru_cache(maxsize=1)
def yardsticks() -> dict:
    """The shipped ``resources/yardsticks.json`` (see ``tools/make_yardsticks.py``)."""
    return json.loads(resources.files("pesprobe").joinpath("resources/yardsticks.json").read_text())


def yardstick_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Per bond type of this run: its mean full FSD and skill beside GFN2-xTB's and zero forces' FSD."""
    ref = yardsticks()["potentials"]
    header = ["group", "this potential: FSD full (skill)", f"{GFN2}: FSD full (skill)", f"{ZERO}: FSD full"]
    rows = []
    for name, block in list(summary["by_group"].items()) + [("all", summary)]:
        g, z = ref[GFN2].get(name), ref[ZERO].get(name)
        label = f"all (reference columns: all {ref[GFN2]['all']['n_scans']} sample scans)" if name == "all" else name
        rows.append([label, f"{fmt(block['full_smoothness'])} ({fmt(block['full_smoothness_skill'], 3)})",
                     f"{fmt(g['full_smoothness'])} ({fmt(g['full_smoothness_skill'], 3)})" if g else "—",
                     fmt(z["full_smoothness"]) if z else "—"])
    return header, rows


def next_steps(summary: dict) -> list[str]:
    """Three lines: smoothness relative to the reference, discontinuities, energies."""
    gfn2 = yardsticks()["potentials"][GFN2]["all"]["full_smoothness_skill"]
    skill = summary.get("full_smoothness_skill")
    if skill is None or not math.isfinite(skill):
        first = "No skill score (no labelled scan was scored): only the reference-free figures apply."
    elif skill < gfn2:
        first = (f"Mean skill {skill:.2f} is below GFN2-xTB's {gfn2:.2f} on the sample scans: the force curves "
                 "stray from the reference more than a semi-empirical method's — look at the worst scans' figures "
                 "(the highlighted FSD step shows where).")
    else:
        first = (f"Mean skill {skill:.2f} reaches GFN2-xTB's {gfn2:.2f}: smoothness relative to the reference is "
                 "at semi-empirical level; compare potentials on the same scans with `pesprobe leaderboard`.")
    n_disc = summary.get("n_scans_with_discontinuities", 0)
    second = (f"{n_disc} scans have a confirmed discontinuity (listed above, marked on the scan figures): look for "
              "a hard cutoff, a hard k-nearest-neighbour graph or a neighbour-list switch at those coordinates "
              "before running MD." if n_disc else
              "No confirmed discontinuity: no energy or force jump was found at this resolution "
              "(steps of ≥ 1 meV and force jumps of ≥ 0.02 eV/Å are the detector's floors).")
    third = ("Energies: read the aligned energy MAE (both curves zeroed at the reference minimum); the raw energy "
             "MAE also counts a constant offset between energy zeros (e.g. DFT vs xTB) and is meaningless across them.")
    return [first, second, third]
