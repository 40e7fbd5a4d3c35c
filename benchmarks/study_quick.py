"""Wall time of the --quick study, stage by stage (data building, then training, BSCT and MD per variant).

Runs ``pesprobe study --quick --build-data`` in a temporary folder and prints the seconds of each
part, read from ``study.json``, so a slow stage stands out.

    python benchmarks/study_quick.py [--threads 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it")
    args = parser.parse_args()

    import torch

    from pesprobe.study.config import load_study
    from pesprobe.study.data import ensure_data
    from pesprobe.study.runner import run_study

    torch.set_num_threads(args.threads)
    root = args.keep or Path(tempfile.mkdtemp(prefix="study-quick-"))
    root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)
    config = load_study("quick")
    start = time.perf_counter()
    ensure_data(config, build=True, progress=False, log=lambda line: None)
    data_s = time.perf_counter() - start
    tick = time.perf_counter()
    result = run_study(config, root / "out", progress=False, log=lambda line: None)
    study_s = time.perf_counter() - tick
    print(f"quick study in {root}: data {data_s:.1f} s, study {study_s:.1f} s, total {data_s + study_s:.1f} s")
    print(f"{'variant':<12} {'steps':>5} {'train s':>8} {'BSCT s':>7} {'MD s':>6}")
    for v in result.variants:
        print(f"{v.name:<12} {v.steps:>5} {v.seconds['train']:>8.1f} {v.seconds['bsct']:>7.2f} {v.seconds['md']:>6.2f}")
    size = (root / "out" / "report.html").stat().st_size
    print(f"report.html {size / 1e3:.0f} kB; study.json has {len(json.loads((root / 'out' / 'study.json').read_text())['findings'])} findings")


if __name__ == "__main__":
    main()
