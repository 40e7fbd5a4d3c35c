"""Cost of running a calculator in a child process (IsolatedCalculator, used for GFN-FF).

Prints ms per frame for ASE's Morse calculator called directly and through the child process,
on a 100-frame scan of a 20-atom molecule; the difference is the pipe round trip per frame.

    python benchmarks/leaderboard_isolation.py
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
from ase.calculators.morse import MorsePotential

from pesprobe.potentials.ase_adapter import AseCalculatorPotential
from pesprobe.potentials.isolated import IsolatedCalculator

MORSE = dict(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5)


def scan(n_frames: int = 100, n_atoms: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 20-atom cluster (Å) with atom 1 moved along x over the frames."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 6, size=(n_atoms, 3))
    positions = np.repeat(base[None], n_frames, axis=0)
    positions[:, 1, 0] += np.linspace(-0.5, 1.5, n_frames)
    return np.full(n_atoms, 6), positions


def ms_per_frame(potential: AseCalculatorPotential, numbers: np.ndarray, positions: np.ndarray,
                 repeats: int = 5) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        pred = potential.predict(numbers, positions)
        best = min(best, time.perf_counter() - start)
        assert pred.n_failed == 0
    return 1000 * best / len(positions)


def main() -> None:
    numbers, positions = scan()
    direct = ms_per_frame(AseCalculatorPotential(lambda: MorsePotential(**MORSE)), numbers, positions)
    isolated = ms_per_frame(AseCalculatorPotential(
        lambda: IsolatedCalculator(partial(MorsePotential, **MORSE))), numbers, positions)
    print(f"Morse, 20 atoms, 100 frames (best of 5): direct {direct:.3f} ms/frame, "
          f"in a child process {isolated:.3f} ms/frame (+{isolated - direct:.3f} ms/frame, "
          "including one process start per scan)")


if __name__ == "__main__":
    main()
