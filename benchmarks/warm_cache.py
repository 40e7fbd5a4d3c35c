"""Warm-run cost: finding the scan-cache key, loading, and the report's figures.

    python benchmarks/warm_cache.py [--data DIR] [--repeat 3]

(a) the content key (every byte hashed: what a warm run paid before) vs the stat-signature key
(:func:`pesprobe.data.loader.folder_key`, what it pays now), (b) a warm ``load_scans``, (c) a warm
``pesprobe bsct`` of a zero-cost potential split into the run without the report and the report
(summary.md, report.html and its figures). Data: ../shared's 27-scan sample, else ``--data``.
Best of ``--repeat``, seconds. One thread.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pesprobe.potentials.threads import limit_threads

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "bsct_spice_sample"


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SAMPLE))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    limit_threads(1)
    from pesprobe.calibration.artifacts import ZeroPotential
    from pesprobe.data import load_scans
    from pesprobe.data.loader import content_key, folder_key
    from pesprobe.evaluate import evaluate

    root = Path(args.data)
    n_files = sum(1 for p in root.rglob("*") if p.is_file())
    load_scans(root)  # fill the cache
    print(f"data: {root} ({n_files} files)")
    print(f"(a) content key (hash every byte) {best(lambda: content_key(root), args.repeat):.4f} s; "
          f"stat-signature key (warm) {best(lambda: folder_key(root), args.repeat):.4f} s")
    print(f"(b) warm load_scans {best(lambda: load_scans(root), args.repeat):.4f} s")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "o"
        evaluate(ZeroPotential(), root, out=out, progress=False)  # fill the prediction cache
        no_report = best(lambda: evaluate(ZeroPotential(), root, out=out, progress=False, report=False), args.repeat)
        full = best(lambda: evaluate(ZeroPotential(), root, out=out, progress=False), args.repeat)
    print(f"(c) warm bsct (zero-cost potential): without the report {no_report:.3f} s, with it {full:.3f} s "
          f"(report and figures {full - no_report:.3f} s, {100 * (full - no_report) / full:.0f} %)")


if __name__ == "__main__":
    main()
