"""Scan generation and training-data sampling speed with GFN2-xTB (issue: scan generation).

Prints:
 (a) time per relaxed molecule, per 100-point bond scan and per labelled frame, for a few molecules
     of the xtb-organic preset;
 (b) time per labelled structure of ``pesprobe data sample`` on a few molecules of the xtb-train preset;
 (c) with ``--preset``: the full ``pesprobe scan build --preset xtb-organic`` run (wall and CPU time,
     number of scans); with ``--sample-preset``: the full ``pesprobe data sample --preset xtb-train`` run.

Usage::

    python benchmarks/scan_generation.py [--molecules 6] [--jobs 1] [--preset] [--sample-preset]

CPU time (user+sys of this process and its workers) is printed beside wall time: on a shared machine
wall time depends on the load, CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from pesprobe.data.sample import SampleSettings, sample_dataset
from pesprobe.scan.build import build_scans
from pesprobe.scan.generate import ScanSettings
from pesprobe.scan.inputs import embed_all, packaged_smiles
from pesprobe.scan.presets import sample_preset, scan_preset


def cpu_seconds() -> float:
    """User+sys CPU seconds of this process and its finished children."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def bench_scans(n_molecules: int, jobs: int, work: Path) -> None:
    preset = scan_preset("xtb-organic")
    entries = packaged_smiles(preset.smiles_file)[:n_molecules]
    structures, _ = embed_all(entries, seed=preset.seed)
    wall, cpu = time.perf_counter(), cpu_seconds()
    report = build_scans(structures, work / "scans", ScanSettings(n_points=100), bond_types=preset.bond_types,
                         per_type=1, jobs=jobs, progress=False)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    n_scans, n_frames = len(report.scans), report.n_labelled
    atoms = sum(s.n_atoms for s in report.scans) / max(n_scans, 1)
    print(f"(a) {len(structures)} molecules, {n_scans} bond scans x 100 points (mean {atoms:.1f} atoms), jobs={jobs}")
    print(f"    relaxation: {report.seconds['prepare']:.1f} s wall = {report.seconds['prepare'] / len(structures):.2f} "
          f"s per molecule")
    print(f"    labelling : {report.seconds['label']:.1f} s wall = {report.seconds['label'] / max(n_scans, 1):.2f} s per "
          f"scan = {1e3 * report.seconds['label'] / max(n_frames, 1):.1f} ms per frame")
    print(f"    total     : {wall:.1f} s wall, {cpu:.1f} s CPU")


def bench_sample(n_molecules: int, jobs: int, work: Path) -> None:
    preset = sample_preset("xtb-train")
    structures, _ = embed_all(packaged_smiles(preset.smiles_file)[:n_molecules], seed=preset.seed)
    settings = SampleSettings(temperatures=preset.temperatures, snapshots=preset.snapshots,
                              interval=preset.interval, stretches=preset.stretches, seed=preset.seed)
    wall, cpu = time.perf_counter(), cpu_seconds()
    report = sample_dataset(structures, work / "sample", settings, jobs=jobs, progress=False)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    n = sum(report.counts.values())
    steps = len(settings.temperatures) * (settings.equilibration + settings.snapshots * settings.interval)
    print(f"(b) sampler: {len(structures)} molecules -> {n} structures ({steps} MD steps + {settings.stretches} "
          f"stretches per molecule), jobs={jobs}")
    print(f"    {wall:.1f} s wall, {cpu:.1f} s CPU = {1e3 * wall / max(n, 1):.1f} ms wall per kept structure")


def run_preset(command: str, jobs: int, work: Path) -> None:
    wall, cpu = time.perf_counter(), cpu_seconds()
    status = os.system(f"{command} --jobs {jobs} --quiet")
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    print(f"(c) `{command} --jobs {jobs}`: exit {status}, {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=6)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--preset", action="store_true", help="also run the full xtb-organic preset")
    parser.add_argument("--sample-preset", action="store_true", help="also run the full xtb-train preset")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        bench_scans(args.molecules, args.jobs, work)
        bench_sample(max(2, args.molecules // 2), args.jobs, work)
        if args.preset:
            run_preset(f"pesprobe scan build --preset xtb-organic --out {work / 'bsct_xtb'}", args.jobs, work)
        if args.sample_preset:
            run_preset(f"pesprobe data sample --preset xtb-train --out {work / 'train_xtb'}", args.jobs, work)


if __name__ == "__main__":
    main()
