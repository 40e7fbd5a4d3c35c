"""Write src/pesprobe/resources/yardsticks.json: GFN2-xTB and zero-force FSD per bond type on the
BSCT-SPICE sample (the reference yardsticks in summary.md and report.html).

    python benchmarks/calibration.py --out benchmarks/results/calibration   # makes variants/clean.json, zero.json
    python tools/make_yardsticks.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ROOT / "benchmarks" / "results" / "calibration" / "variants"
OUT = ROOT / "src" / "pesprobe" / "resources" / "yardsticks.json"
FIGURES = ("full_smoothness", "full_smoothness_skill", "roughness")


def per_bond(rows: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["scan"].split("/")[0], []).append(r)
    groups["all"] = rows
    return {g: {"n_scans": len(v), **{f: float(np.mean([r[f] for r in v])) for f in FIGURES}}
            for g, v in sorted(groups.items())}


def main() -> None:
    data = {"source": "27-scan BSCT-SPICE sample (../shared/data/bsct_spice_sample), DFT reference",
            "command": "python benchmarks/calibration.py --out benchmarks/results/calibration && "
                       "python tools/make_yardsticks.py",
            "potentials": {}}
    for name, label in (("clean", "GFN2-xTB"), ("zero", "zero forces")):
        rows = json.loads((VARIANTS / f"{name}.json").read_text())["rows"]
        data["potentials"][label] = per_bond(rows)
    OUT.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
