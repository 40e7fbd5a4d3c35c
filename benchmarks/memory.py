"""Peak memory and time of ``pesprobe bsct`` with ``pesprobe:default`` against the batch budget (issue 15, part 4).

Each budget runs in a fresh process (``ru_maxrss`` is a high-water mark): load the scans, run
:func:`pesprobe.evaluate.evaluate` (detector included, as ``pesprobe bsct``) with
``TorchPotential(max_atoms=BUDGET)``, print the peak resident memory, the wall time and a digest
of all predictions. ``before`` is the old behaviour: the old default budget (4096 atoms) cut into
consecutive frames regardless of the frames' layout. The digests of all new budgets must agree
(results do not depend on the budget).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/memory.py [--data DIR] [--budgets 4096,1024,512,256] [--no-before]

Default data: ``../shared/data/bsct_spice_sample`` (27 published scans, up to 47 atoms), else the
scans embedded in pesprobe. Peak memory depends on the largest scan, not on the number of scans
(the full 485-scan BSCT-SPICE set has molecules of the same sizes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "bsct_spice_sample"


def child(data: str, budget: int, before: bool) -> None:
    import resource
    import time

    import numpy as np

    from pesprobe.data import load_scans
    from pesprobe.evaluate import evaluate
    from pesprobe.evaluate.threadlimit import thread_limit
    from pesprobe.models import load_potential
    from pesprobe.models.potential import TorchPotential

    scans = load_scans(data)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    potential = load_potential("default", max_atoms=budget)
    if before:  # the old batching: consecutive frames, max_atoms // n_atoms a call
        def legacy(self, z, positions, cell, pbc, periodic):
            return [np.arange(lo, hi) for lo, hi in self._chunks(*positions.shape[:2])]

        TorchPotential._batches = legacy
    start = time.perf_counter()
    with thread_limit(1):
        result = evaluate(potential, scans, progress=False)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for scan_id in sorted(result.predictions):
        pred = result.predictions[scan_id]
        digest.update(pred.energy.tobytes() + pred.forces.tobytes())
    print(json.dumps({"budget": budget, "before": before, "peak_MB": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, "after_load_MB": base, "seconds": seconds,
        "scans": len(result.predictions), "max_atoms_in_scan": max(s.n_atoms for s in scans),
        "digest": digest.hexdigest()[:16]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None)
    parser.add_argument("--budgets", default="4096,1024,512,256")
    parser.add_argument("--no-before", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2] == "1")
        return
    if args.data is None:
        from pesprobe.data.embedded import embedded_scans_path

        args.data = str(SAMPLE if SAMPLE.is_dir() else embedded_scans_path())
    runs = [(4096, True)] if not args.no_before else []
    runs += [(int(b), False) for b in args.budgets.split(",")]
    print(f"data: {args.data}")
    print(f"{'run':>22} {'peak RSS MB':>12} {'after load MB':>14} {'seconds':>8}  digest")
    for budget, before in runs:
        out = subprocess.run([sys.executable, __file__, "--child", args.data, str(budget), "1" if before else "0"],
                             check=True, capture_output=True, text=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        label = f"{'before' if before else 'now'} max_atoms={budget}"
        print(f"{label:>22} {row['peak_MB']:12.0f} {row['after_load_MB']:14.0f} {row['seconds']:8.1f}  "
              f"{row['digest']}")


if __name__ == "__main__":
    main()
