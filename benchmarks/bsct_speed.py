"""BSCT engine speed and memory figures (issue: the BSCT engine).

Prints:
 (a) total evaluation time from a warm scan cache with a zero-cost model, through the ASE-calculator
     path and through the batched path, against the reference tool's design (a plain loop that
     reads each frame with ``ase.io.read`` and calls the calculator);
 (b) the cold first read of the published layout against ``ase.io.read`` per file;
 (c) ``jobs=2`` against ``jobs=1`` with GFN2-xTB;
 (d) peak memory (RSS) of loading and evaluating a full-size (485-scan) set.

Usage::

    python benchmarks/bsct_speed.py [--data DIR] [--full DIR] [--xtb-scans N] [--skip-xtb]

``--full`` points at the full BSCT-SPICE set if you have it; without it, (d) uses a synthetic
485-scan set made by replicating the sample on disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "bsct_spice_sample"


class ZeroCalculator(Calculator):
    """A zero-cost model: zero energy and forces."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.zeros((len(atoms), 3))}


class ZeroBatched:
    """The same zero-cost model through the batched Potential interface."""

    name = "zero-batched"

    def identity(self) -> str:
        return "zero"

    def predict(self, numbers, positions, cell=None, pbc=None):
        from pesprobe.potentials.base import Predictions

        return Predictions.from_arrays(np.zeros(len(positions)), np.zeros_like(positions))


def plain_loop(root: Path) -> float:
    """The reference design: ase.io.read every frame, call the calculator, then score."""
    from ase.io import read

    from pesprobe.data import Scan
    from pesprobe.metrics import scan_metrics
    from pesprobe.potentials.base import Predictions

    start = time.perf_counter()
    calc = ZeroCalculator()
    for scan_dir in sorted(p for p in root.glob("*/*") if p.is_dir()):
        part = np.load(scan_dir / "partition.npz")
        n = int(part["perturb_range"][2])
        pos, e_ref, f_ref, e, f = [], [], [], [], []
        for i in range(n):
            atoms = read(scan_dir / f"atoms_{i}.xyz")
            e_ref.append(atoms.get_potential_energy())
            f_ref.append(atoms.get_forces())
            pos.append(atoms.positions)
            atoms.calc = calc
            e.append(atoms.get_potential_energy())
            f.append(atoms.get_forces())
        scan = Scan(id=scan_dir.name, kind="bond", numbers=atoms.numbers, positions=np.array(pos),
                    coordinate=np.linspace(*part["perturb_range"][:2], n), ref_energy=np.array(e_ref),
                    ref_forces=np.array(f_ref))
        scan_metrics(scan, Predictions.from_arrays(np.array(e), np.array(f)))
    return time.perf_counter() - start


def ours(root: Path, model) -> float:
    from pesprobe.bsct import evaluate

    start = time.perf_counter()
    evaluate(model, root, progress=False)
    return time.perf_counter() - start


def cold_read(root: Path) -> tuple[float, float, int]:
    from ase.io import read

    from pesprobe.data import load_scans

    files = sorted(root.glob("*/*/atoms_*.xyz"))
    start = time.perf_counter()
    load_scans(root, cache=False)
    t_ours = time.perf_counter() - start
    subset = files[:: max(1, len(files) // 1000)]
    start = time.perf_counter()
    for path in subset:
        read(path)
    t_ase = (time.perf_counter() - start) / len(subset) * len(files)
    return t_ours, t_ase, len(files)


def replicate(root: Path, target: Path, n_scans: int) -> Path:
    scans = sorted(p for p in root.glob("*/*") if p.is_dir())
    k = 0
    while k < n_scans:
        for src in scans:
            if k >= n_scans:
                break
            shutil.copytree(src, target / src.parent.name / f"{src.name}_{k}")
            k += 1
    return target


def peak_memory(root: Path) -> float:
    """Peak RSS (MiB) of a fresh process that loads (cold) and evaluates ``root`` with the zero model."""
    code = (
        "import resource,sys; sys.path.insert(0, %r); from bsct_speed import ZeroBatched;"
        "from pesprobe.bsct import evaluate; evaluate(ZeroBatched(), %r, progress=False);"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)" % (str(Path(__file__).parent), str(root))
    )
    env = dict(os.environ, PESPROBE_CACHE_DIR=tempfile.mkdtemp())
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def jobs_speedup(root: Path, n_scans: int) -> tuple[float, float, int]:
    from pesprobe.bsct import evaluate, load_scans
    from pesprobe.data import ScanSet

    scans = load_scans(root)
    subset = ScanSet(sorted(scans, key=lambda s: s.n_atoms)[:n_scans], source=str(root))
    times = []
    for jobs in (1, 2):
        start = time.perf_counter()
        evaluate("gfn2-xtb", subset, jobs=jobs, progress=False)
        times.append(time.perf_counter() - start)
    return times[0], times[1], len(subset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument("--full", type=Path, default=None, help="the full 485-scan BSCT-SPICE set, if available")
    parser.add_argument("--xtb-scans", type=int, default=12)
    parser.add_argument("--skip-xtb", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PESPROBE_CACHE_DIR", tempfile.mkdtemp())
    from pesprobe.data import load_scans

    sets = [("sample", args.data)] + ([("full", args.full)] if args.full else [])
    for label, root in sets:
        n = len(load_scans(root))  # warms the cache
        t_plain = plain_loop(root)
        t_ase = ours(root, ZeroCalculator())
        t_batch = ours(root, ZeroBatched())
        print(f"(a) [{label}, {n} scans] plain ase.io.read loop {t_plain:.2f} s | ours, ASE path {t_ase:.3f} s "
              f"(1/{t_plain / t_ase:.1f}) | ours, batched {t_batch:.3f} s (1/{t_plain / t_batch:.1f})")
        t_ours, t_ase_read, n_files = cold_read(root)
        print(f"(b) [{label}] cold read of {n_files} frame files: ours {t_ours:.2f} s, ase.io.read "
              f"{t_ase_read:.2f} s ({t_ase_read / t_ours:.1f}x faster)")
    if not args.skip_xtb:
        t1, t2, n = jobs_speedup(args.data, args.xtb_scans)
        print(f"(c) GFN2-xTB on {n} scans: jobs=1 {t1:.1f} s, jobs=2 {t2:.1f} s ({t1 / t2:.2f}x)")
    if args.full:
        print(f"(d) peak RSS, full set {args.full}: {peak_memory(args.full):.0f} MiB")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            synthetic = replicate(args.data, Path(tmp) / "full", 485)
            print(f"(d) peak RSS, synthetic 485-scan set (sample replicated): {peak_memory(synthetic):.0f} MiB")


if __name__ == "__main__":
    main()
