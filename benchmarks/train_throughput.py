"""Training throughput (structures/s) on CPU for the default model configuration.

Trains on generated structures (EMT labels) for a fixed number of steps per batch size and
prints structures per second and seconds per step, measured over the steps after the first few
(warm-up excluded). Two sets: the toy set of rattled small molecules (about 5 atoms), and
clusters of ``--cluster`` larger molecules (about 12 atoms each) side by side, closer to the
size of SPICE molecules.

    python benchmarks/train_throughput.py [--steps 30] [--batch-sizes 4 8 16] [--threads 1] [--cluster 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

LARGE = ("trans-butane", "isobutane", "C5H8", "C3H9N", "CH3CH2OCH3", "C6H6", "C2H6CHOH", "C5H5N")


def clusters(n_structures: int, per_cluster: int, seed: int = 0) -> list:
    """Structures of ``per_cluster`` rattled molecules 4 Å apart along x, with EMT labels."""
    import numpy as np
    from ase.calculators.emt import EMT

    from pesprobe.data.structures import Structure
    from pesprobe.train.toy import toy_structures

    pool = toy_structures(n_per_molecule=2, molecules=LARGE, seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_structures):
        parts = [pool[j].to_atoms() for j in rng.choice(len(pool), per_cluster, replace=False)]
        atoms = parts[0]
        for part in parts[1:]:
            part.positions += [atoms.positions[:, 0].max() - part.positions[:, 0].min() + 4.0, 0.0, 0.0]
            atoms += part
        atoms.calc = EMT()
        out.append(Structure(numbers=atoms.numbers, positions=atoms.positions, energy=atoms.get_potential_energy(),
                             forces=atoms.get_forces(), molecule=f"cluster{i}", source=f"cluster{i}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per batch size")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (1 is fastest for these small graphs on a shared machine)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cluster", type=int, default=3, help="molecules per structure of the second set")
    args = parser.parse_args()

    import torch

    from pesprobe.data.structures import write_extxyz
    from pesprobe.models import ModelConfig, build_model
    from pesprobe.train import read_log, train
    from pesprobe.train.toy import toy_structures

    torch.set_num_threads(args.threads)
    n_params = sum(p.numel() for p in build_model(ModelConfig()).parameters())
    print(f"default ModelConfig: {n_params:,} parameters; torch {torch.__version__}, {args.threads} threads, "
          f"{args.dtype}, {args.device}")
    sets = {"toy molecules": toy_structures(n_per_molecule=12),
            f"{args.cluster}-molecule clusters": clusters(96, args.cluster)}
    with tempfile.TemporaryDirectory() as tmp:
        for label, structures in sets.items():
            mean_atoms = sum(s.n_atoms for s in structures) / len(structures)
            print(f"\n{label}: {len(structures)} structures, {mean_atoms:.1f} atoms on average")
            print(f"{'batch':>5} {'structures/s':>13} {'atoms/s':>9} {'s/step':>8}")
            data = write_extxyz(structures, Path(tmp) / f"{len(structures)}-{mean_atoms:.0f}.xyz")
            for batch_size in args.batch_sizes:
                out = Path(tmp) / f"{data.stem}-b{batch_size}"
                config = {"data": {"train": str(data), "valid_fraction": 0.1},
                          "train": {"steps": args.warmup + args.steps, "batch_size": batch_size,
                                    "eval_every": 10**6, "ckpt_every": 10**6, "log_every": 1,
                                    "device": args.device, "dtype": args.dtype, "out": str(out)}}
                start = time.perf_counter()
                train(config, progress=False)
                wall = time.perf_counter() - start
                records = [r for r in read_log(out / "log.jsonl") if r["event"] == "train"][args.warmup:]
                seconds = sum(batch_size / r["structures_per_s"] for r in records)
                rate = batch_size * len(records) / seconds
                print(f"{batch_size:>5} {rate:>13.1f} {rate * mean_atoms:>9.0f} {seconds / len(records):>8.3f}"
                      f"   (whole run incl. set-up and final validation: {wall:.1f} s)")

if __name__ == "__main__":
    main()
