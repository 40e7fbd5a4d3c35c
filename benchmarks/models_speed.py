"""Speed and memory of the pesprobe Transformer MLIP (default ModelConfig, float32, CPU).

Prints: per-call time of energy+forces on a 20-atom molecule; a 100-frame scan batched vs one
frame at a time; time and peak memory for 1,000- and 5,000-atom periodic cells (each measured in a
fresh subprocess, so the peak RSS is that case's own); and a MACE model of comparable size with
random weights if ``mace`` is importable (otherwise it says it was skipped).

Usage::

    python benchmarks/models_speed.py [--threads N] [--sizes 1000 5000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

DENSITY = 0.1  # atoms per Å³, about liquid water / organic crystals


def dense_cell(n_atoms: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_atoms`` H/C/N/O on random sites of a jittered cubic grid at ``DENSITY``: numbers, positions (Å), cell (Å)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(n_atoms ** (1 / 3) - 1e-9))
    spacing = (side ** 3 / (n_atoms * DENSITY)) ** (1 / 3)
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    grid = grid[np.sort(rng.choice(len(grid), size=n_atoms, replace=False))]
    positions = (grid + rng.uniform(-0.12, 0.12, grid.shape)) * spacing
    numbers = rng.choice([1, 6, 7, 8], size=n_atoms)
    return numbers, positions, np.eye(3) * side * spacing


def molecule(n_atoms: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A compact random 'molecule' (min. distance 0.95 Å): numbers, positions (Å)."""
    rng = np.random.default_rng(seed)
    points: list[np.ndarray] = []
    while len(points) < n_atoms:
        p = rng.normal(size=3) * 0.9 * n_atoms ** (1 / 3)
        if all(np.linalg.norm(p - q) > 0.95 for q in points):
            points.append(p)
    return rng.choice([1, 6, 7, 8], size=n_atoms), np.array(points)


def timed(fn, repeats: int) -> float:
    """Median wall time in seconds of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def case_cell(n_atoms: int, threads: int) -> dict:
    """Child-process body: time and peak memory of one energy+forces call on a periodic cell."""
    import psutil
    import torch

    from pesprobe.models import ModelConfig, build_model

    torch.set_num_threads(threads)
    numbers, positions, cell = dense_cell(n_atoms)
    model = build_model(ModelConfig()).eval()
    args = (torch.tensor(positions, dtype=torch.float32), torch.tensor(cell[None], dtype=torch.float32),
            torch.zeros(len(numbers), dtype=torch.long), torch.tensor(numbers))
    baseline = psutil.Process().memory_info().rss
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = model(*args)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    graph = model.build_graph(args[0], args[1], args[2], np.ones((1, 3), bool))
    return {"n_atoms": len(numbers), "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_gib": peak / 2**30,
            "extra_gib": (peak - baseline) / 2**30, "tokens_per_atom": graph.centre.numel() / len(numbers),
            "finite": bool(torch.isfinite(out["forces"]).all())}


def case_mace(n_atoms_list: list[int], threads: int) -> None:
    """Random-weight MACE of comparable size, if installed."""
    try:
        import mace  # noqa: F401
        from mace.calculators import mace_mp  # noqa: F401
    except ImportError:
        print("MACE: skipped (the 'mace' package is not installed; not installed on purpose)")
        return
    import torch
    from e3nn import o3
    from mace import modules

    torch.set_num_threads(threads)
    model = modules.MACE(r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=2,
                         interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
                         interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
                         num_interactions=2, num_elements=4, hidden_irreps=o3.Irreps("32x0e+32x1o"),
                         MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(4), avg_num_neighbors=20.0,
                         atomic_numbers=[1, 6, 7, 8], correlation=3, gate=torch.nn.functional.silu)
    n_params = sum(p.numel() for p in model.parameters())
    from mace.data import AtomicData, config_from_atoms
    from mace.tools import AtomicNumberTable, torch_geometric
    from ase import Atoms

    for n_atoms in n_atoms_list:
        numbers, positions, cell = dense_cell(n_atoms)
        atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
        data = AtomicData.from_config(config_from_atoms(atoms), z_table=AtomicNumberTable([1, 6, 7, 8]), cutoff=5.0)
        batch = next(iter(torch_geometric.dataloader.DataLoader([data], batch_size=1)))
        seconds = timed(lambda b=batch: model(b.to_dict(), compute_force=True), 1)
        print(f"MACE ({n_params:,} params, random weights): {n_atoms} atoms: {seconds:.2f} s per energy+forces")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(case_cell(args.case, args.threads)))
        return

    import torch

    from pesprobe.models import ModelConfig, TorchPotential, build_model

    torch.set_num_threads(args.threads)
    config = ModelConfig()
    model = build_model(config).eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"pesprobe Transformer: {n_params:,} parameters, graph={config.graph}, k={config.k}, "
          f"r_c={config.cutoff} Å, d={config.d_model}, {config.n_blocks} blocks, float32, "
          f"{args.threads} CPU thread(s), torch {torch.__version__}")

    numbers, positions = molecule(20)
    potential = TorchPotential(model)
    one = timed(lambda: potential.predict(numbers, positions[None]), args.repeats * 4)
    print(f"20-atom molecule: {one * 1e3:.1f} ms per energy+forces call")

    frames = np.repeat(positions[None], 100, axis=0)
    frames[:, 1] += np.linspace(-0.3, 0.7, 100)[:, None] * np.array([1.0, 0.0, 0.0])
    batched = timed(lambda: potential.predict(numbers, frames), args.repeats)
    single = timed(lambda: [potential.predict(numbers, frames[i:i + 1]) for i in range(100)], 1)
    print(f"100-frame scan (20 atoms): batched {batched:.2f} s, one by one {single:.2f} s "
          f"({single / batched:.1f}x faster batched)")

    for n_atoms in args.sizes:
        proc = subprocess.run([sys.executable, __file__, "--case", str(n_atoms), "--threads", str(args.threads)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{n_atoms}-atom cell: FAILED\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        verdict = "fits" if r["peak_rss_gib"] < 4.0 else "EXCEEDS"
        print(f"{r['n_atoms']}-atom periodic cell (density {DENSITY} Å⁻³): {r['seconds']:.2f} s per energy+forces "
              f"({r['cpu_seconds']:.2f} s CPU), "
              f"peak RSS {r['peak_rss_gib']:.2f} GiB (+{r['extra_gib']:.2f} GiB for the call; {verdict} 4 GiB), "
              f"{r['tokens_per_atom']:.1f} tokens/atom, finite={r['finite']}")

    case_mace(args.sizes, args.threads)


if __name__ == "__main__":
    main()
