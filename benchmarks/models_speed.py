"""Speed and memory of the pesprobe Transformer MLIP (default ModelConfig, float32, CPU).

Prints: per-call time of energy+forces on a 20-atom molecule; a 100-frame scan batched vs one
frame at a time; time and peak memory for 1,000- and 5,000-atom periodic cells (each measured in a
fresh subprocess, so the peak RSS is that case's own); then the same molecule and cells with a MACE
model of comparable parameter count and random weights if ``mace`` (mace-torch) is importable,
otherwise it says it was skipped. Times per atom include each model's neighbour search.

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
WARMUP_ATOMS = 64  # size of the untimed warm-up cell evaluated before each timed cell
MACE_HIDDEN = "64x0e+64x1o"  # with max_ell=3, correlation 3, 2 interactions: ~220k parameters, like pesprobe's


def dense_cell(n_atoms: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_atoms`` H/C/N/O on random sites of a jittered cubic grid at ``DENSITY``: numbers, positions (Å), cell (Å)."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(n_atoms ** (1 / 3) - 1e-9))
    spacing = (n_atoms / DENSITY) ** (1 / 3) / side  # cell volume n_atoms / DENSITY
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
    """Child-process body: time and peak memory of one energy+forces call on a periodic cell.

    A ``WARMUP_ATOMS``-atom cell is evaluated first so one-off start-up costs are not timed.
    """
    import psutil
    import torch

    from pesprobe.models import ModelConfig, build_model

    def cell_args(size: int) -> tuple[torch.Tensor, ...]:
        numbers, positions, cell = dense_cell(size)
        return (torch.tensor(positions, dtype=torch.float32), torch.tensor(cell[None], dtype=torch.float32),
                torch.zeros(size, dtype=torch.long), torch.tensor(numbers))

    torch.set_num_threads(threads)
    model = build_model(ModelConfig()).eval()
    with torch.no_grad():
        model(*cell_args(WARMUP_ATOMS))
    args = cell_args(n_atoms)
    baseline = psutil.Process().memory_info().rss
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch.no_grad():
        out = model(*args)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    graph = model.build_graph(args[0], args[1], args[2], np.ones((1, 3), bool))
    return {"n_atoms": n_atoms, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_gib": peak / 2**30,
            "extra_gib": (peak - baseline) / 2**30, "tokens_per_atom": graph.centre.numel() / n_atoms,
            "finite": bool(torch.isfinite(out["forces"]).all())}


def mace_available() -> bool:
    """Whether the ``mace`` package (mace-torch) is importable."""
    try:
        import mace  # noqa: F401
    except ImportError:
        return False
    return True


def build_mace(cutoff: float):
    """A MACE model with random weights (nothing downloaded), sized like the default pesprobe model.

    Elements H/C/N/O, radial cutoff ``cutoff`` Å, hidden irreps ``MACE_HIDDEN``, float32.
    """
    import torch
    from mace import modules  # before e3nn: mace sets the torch.load flag that e3nn's constants need
    from e3nn import o3

    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    return modules.MACE(r_max=cutoff, num_bessel=8, num_polynomial_cutoff=5, max_ell=3, interaction_cls=block,
                        interaction_cls_first=block, num_interactions=2, num_elements=4,
                        hidden_irreps=o3.Irreps(MACE_HIDDEN), MLP_irreps=o3.Irreps("16x0e"),
                        atomic_energies=np.zeros(4), avg_num_neighbors=50.0, atomic_numbers=[1, 6, 7, 8],
                        correlation=3, gate=torch.nn.functional.silu).float().eval()


def mace_energy_forces(model, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray | None = None) -> dict:
    """MACE energy and forces of one structure (periodic if ``cell`` is given), neighbour list included."""
    from ase import Atoms
    from mace.data import AtomicData, config_from_atoms
    from mace.tools import AtomicNumberTable, torch_geometric

    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=cell is not None)
    data = AtomicData.from_config(config_from_atoms(atoms), z_table=AtomicNumberTable([1, 6, 7, 8]),
                                  cutoff=float(model.r_max))
    batch = next(iter(torch_geometric.dataloader.DataLoader([data], batch_size=1)))
    out = model(batch.to_dict(), compute_force=True)
    out["n_edges"] = batch.edge_index.shape[1]
    return out


def case_mace_cell(n_atoms: int, threads: int) -> dict:
    """Child-process body: like ``case_cell`` for the random-weight MACE model."""
    import torch

    from pesprobe.models import ModelConfig

    torch.set_num_threads(threads)
    model = build_mace(ModelConfig().cutoff)
    mace_energy_forces(model, *dense_cell(WARMUP_ATOMS))
    numbers, positions, cell = dense_cell(n_atoms)
    start, cpu_start = time.perf_counter(), time.process_time()
    out = mace_energy_forces(model, numbers, positions, cell)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"n_atoms": n_atoms, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_gib": peak / 2**30,
            "neighbours_per_atom": out["n_edges"] / n_atoms, "finite": bool(torch.isfinite(out["forces"]).all())}


def run_case(model: str, n_atoms: int, threads: int) -> dict | None:
    """Run one periodic-cell case in a fresh subprocess; its result, or None (reason printed) if it failed."""
    proc = subprocess.run([sys.executable, __file__, "--case", str(n_atoms), "--model", model,
                           "--threads", str(threads)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"{model} {n_atoms}-atom cell: FAILED\n{proc.stderr[-2000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare_mace(molecule_numbers: np.ndarray, molecule_positions: np.ndarray, sizes: list[int], threads: int,
                 repeats: int) -> None:
    """Time the random-weight MACE model on the same molecule and cells, if mace is installed."""
    if not mace_available():
        print("MACE: skipped (the 'mace' package is not installed)")
        return
    from importlib.metadata import version

    from pesprobe.models import ModelConfig

    model = build_mace(ModelConfig().cutoff)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"MACE (mace-torch {version('mace-torch')}, random weights): {n_params:,} parameters, "
          f"hidden {MACE_HIDDEN}, max_ell 3, correlation 3, 2 interactions, r_max={model.r_max.item():g} Å, float32")
    n_atoms = len(molecule_numbers)
    seconds = timed(lambda: mace_energy_forces(model, molecule_numbers, molecule_positions), repeats * 4)
    print(f"MACE {n_atoms}-atom molecule: {seconds * 1e3:.1f} ms per energy+forces call "
          f"({seconds / n_atoms * 1e6:.0f} µs/atom)")
    for n_atoms in sizes:
        r = run_case("mace", n_atoms, threads)
        if r is not None:
            print(f"MACE {r['n_atoms']}-atom periodic cell: {r['seconds']:.2f} s per energy+forces "
                  f"({r['seconds'] / r['n_atoms'] * 1e6:.0f} µs/atom, {r['cpu_seconds']:.2f} s CPU), "
                  f"peak RSS {r['peak_rss_gib']:.2f} GiB, {r['neighbours_per_atom']:.1f} neighbours/atom, "
                  f"finite={r['finite']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 5000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=["pesprobe", "mace"], default="pesprobe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        case = case_mace_cell if args.model == "mace" else case_cell
        print(json.dumps(case(args.case, args.threads)))
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
    print(f"20-atom molecule: {one * 1e3:.1f} ms per energy+forces call ({one / len(numbers) * 1e6:.0f} µs/atom)")

    frames = np.repeat(positions[None], 100, axis=0)
    frames[:, 1] += np.linspace(-0.3, 0.7, 100)[:, None] * np.array([1.0, 0.0, 0.0])
    batched = timed(lambda: potential.predict(numbers, frames), args.repeats)
    single = timed(lambda: [potential.predict(numbers, frames[i:i + 1]) for i in range(100)], 1)
    print(f"100-frame scan (20 atoms): batched {batched:.2f} s, one by one {single:.2f} s "
          f"({single / batched:.1f}x faster batched)")

    for n_atoms in args.sizes:
        r = run_case("pesprobe", n_atoms, args.threads)
        if r is None:
            continue
        verdict = "fits" if r["peak_rss_gib"] < 4.0 else "EXCEEDS"
        print(f"{r['n_atoms']}-atom periodic cell (density {DENSITY} Å⁻³): {r['seconds']:.2f} s per energy+forces "
              f"({r['seconds'] / r['n_atoms'] * 1e6:.0f} µs/atom, {r['cpu_seconds']:.2f} s CPU), "
              f"peak RSS {r['peak_rss_gib']:.2f} GiB (+{r['extra_gib']:.2f} GiB for the call; {verdict} 4 GiB), "
              f"{r['tokens_per_atom']:.1f} tokens/atom, finite={r['finite']}")

    compare_mace(numbers, positions, args.sizes, args.threads, args.repeats)


if __name__ == "__main__":
    main()
