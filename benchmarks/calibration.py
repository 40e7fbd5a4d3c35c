"""Calibration of the smoothness verdict: what each BSCT figure detects, measured.

    python benchmarks/calibration.py [--data DIR] [--out calibration_out] [--quick] [--base gfn2-xtb]

Artifacts of known place and size (energy steps 1–100 meV, force kinks 0.01–1 eV/Å, spurious
wells 10–100 meV) on a smooth real reference (GFN2-xTB by default), smooth-but-wrong controls
(LJ, zero forces, GFN-FF where xtb-python is installed, forces × 0.8) and random-weight pesprobe
models (knn, diffknn, radius graphs). Prints the Markdown tables of docs/calibration.md and writes
``<out>/calibration.json``; ``<out>/variants/`` makes a rerun resume. Data: ../shared's 27-scan
sample when present, else the 6 embedded scans. One thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pesprobe.potentials.threads import limit_threads

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "bsct_spice_sample"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="scan set (default: ../shared sample, else embedded scans)")
    parser.add_argument("--out", default="calibration_out")
    parser.add_argument("--base", default="gfn2-xtb", help="SPEC of the smooth reference")
    parser.add_argument("--quick", action="store_true", help="one amplitude per artifact, one random seed")
    args = parser.parse_args()
    limit_threads(1)

    from pesprobe.calibration.markdown import markdown
    from pesprobe.calibration.run import calibrate
    from pesprobe.data import load_scans
    from pesprobe.data.embedded import embedded_scans_path
    from pesprobe.potentials.registry import resolve

    data = args.data or (SAMPLE if SAMPLE.is_dir() else embedded_scans_path())
    scans = [s for s in load_scans(data) if s.kind == "bond"]
    controls = {"lj": resolve("lj")}
    try:
        controls["gfn-ff"] = resolve("gfn-ff")
    except Exception as exc:  # noqa: BLE001 - optional extra
        print(f"GFN-FF control left out: {exc}")
    start = time.perf_counter()
    result = calibrate(scans, resolve(args.base), out=args.out, quick=args.quick, controls=controls)
    print(f"# Calibration: {len(scans)} bond scans from {data}, base {args.base}, "
          f"{time.perf_counter() - start:.0f} s\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
