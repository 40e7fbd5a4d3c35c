"""Test calculators: flaky ones that fail on chosen frames, and a numpy batched Potential."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.morse import MorsePotential

from pesprobe.potentials.base import Predictions

CALLS = {"n": 0}


class FlakyMorse(MorsePotential):
    """Morse that raises when the first atom's x is above ``raise_above`` and returns NaN below ``nan_below``."""

    def __init__(self, raise_above: float = np.inf, nan_below: float = -np.inf, **kwargs) -> None:
        super().__init__(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5, **kwargs)
        self.raise_above, self.nan_below = raise_above, nan_below

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        CALLS["n"] += 1
        super().calculate(atoms, properties, system_changes)
        x = atoms.positions[0, 0]
        if x > self.raise_above:
            raise RuntimeError("SCF did not converge")
        if x < self.nan_below:
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


class Stateful(Calculator):
    """Energy depends on how many times it was called since reset: exposes missing resets."""

    implemented_properties = ["energy", "forces"]

    def __init__(self):
        super().__init__()
        self.count = 0

    def reset(self):
        super().reset()
        self.count = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.count += 1
        self.results = {"energy": float(self.count), "forces": np.zeros((len(atoms), 3))}


def morse_factory():
    return FlakyMorse()


class BatchedMorse:
    """The Morse potential of ASE (no smooth cutoff region used here), in NumPy, all frames at once."""

    name = "batched-morse"

    def identity(self) -> str:
        return "batched-morse-v1"

    def predict(self, numbers, positions, cell=None, pbc=None) -> Predictions:
        calc = MorsePotential(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5)
        from ase import Atoms

        energies, forces = [], []
        atoms = Atoms(numbers=numbers, positions=positions[0])
        atoms.calc = calc
        for frame in positions:  # reference implementation wrapped as one call
            atoms.positions = frame
            energies.append(atoms.get_potential_energy())
            forces.append(atoms.get_forces())
        return Predictions.from_arrays(np.array(energies), np.array(forces))


class BatchedTrouble(BatchedMorse):
    """BatchedMorse that raises for scans of ``raise_atoms`` atoms and returns a NaN energy on frame ``nan_frame``."""

    name = "batched-trouble"

    def __init__(self, raise_atoms: int, nan_frame: int) -> None:
        self.raise_atoms, self.nan_frame = raise_atoms, nan_frame

    def identity(self) -> str:
        return f"batched-trouble-{self.raise_atoms}-{self.nan_frame}"

    def predict(self, numbers, positions, cell=None, pbc=None) -> Predictions:
        if len(numbers) == self.raise_atoms:
            raise RuntimeError("CUDA out of memory (simulated)")
        pred = super().predict(numbers, positions, cell, pbc)
        energy = pred.energy.copy()
        energy[self.nan_frame] = np.nan
        return Predictions.from_arrays(energy, pred.forces)


class SpringNetwork(Calculator):
    """Harmonic springs between chosen atom pairs: E = Σ ½ k (d_ij − d_eq)² (eV, Å); no other terms.

    Parameters
    ----------
    springs : list of (i, j, d_eq_A, k_eV_A2)
        Pair, rest length (Å) and stiffness (eV/Å²) of each spring.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, springs: list[tuple[int, int, float, float]]) -> None:
        super().__init__()
        arr = np.asarray(springs, dtype=float).reshape(-1, 4)
        self.i, self.j = arr[:, 0].astype(int), arr[:, 1].astype(int)
        self.d_eq, self.k = arr[:, 2], arr[:, 3]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.positions
        vec = pos[self.i] - pos[self.j]
        d = np.linalg.norm(vec, axis=1)
        stretch = d - self.d_eq
        pair_force = -(self.k * stretch / np.maximum(d, 1e-12))[:, None] * vec
        forces = np.zeros_like(pos)
        np.add.at(forces, self.i, pair_force)
        np.add.at(forces, self.j, -pair_force)
        self.results = {"energy": float(0.5 * np.sum(self.k * stretch ** 2)), "forces": forces}


def elastic_network(positions: np.ndarray, k_eV_A2: float = 10.0, cutoff_A: float = 3.0
                    ) -> list[tuple[int, int, float, float]]:
    """Springs at their current lengths between every pair closer than ``cutoff_A`` (Å): a smooth,
    stiff model whose minimum is ``positions`` (Å)."""
    d = np.linalg.norm(positions[:, None] - positions[None], axis=2)
    i, j = np.nonzero(np.triu(d < cutoff_A, k=1))
    return [(int(a), int(b), float(d[a, b]), k_eV_A2) for a, b in zip(i, j)]


def interrupting_morse(stop: int | None = None):
    """A torch MorsePair that counts its calls and raises KeyboardInterrupt at call ``stop``."""
    from pesprobe.md.torch_models import MorsePair

    class Interrupting(MorsePair):
        def __init__(self) -> None:
            super().__init__()
            self.calls, self.stop = 0, stop

        def forward(self, positions, cell, system_index, atomic_numbers):
            self.calls += 1
            if self.calls == self.stop:
                raise KeyboardInterrupt
            return super().forward(positions, cell, system_index, atomic_numbers)

    return Interrupting()
