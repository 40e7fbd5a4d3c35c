"""Batches of structures as flat tensors, and the step-indexed distributed sampler.

A batch is the flat concatenation the model takes (torch-sim style, no padding):
``positions[n_atoms,3]``, ``numbers[n_atoms]``, ``system_index[n_atoms]`` and per-structure labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from pesprobe.data.structures import Structure
from pesprobe.train.config import ConfigError


@dataclass
class Batch:
    """Structures concatenated into flat tensors.

    Attributes
    ----------
    positions : Tensor, shape (n_atoms, 3)
        Positions, Å.
    numbers : Tensor, shape (n_atoms,), long
        Atomic numbers.
    system_index : Tensor, shape (n_atoms,), long
        Index of each atom's structure within the batch.
    cell : Tensor, shape (n_systems, 3, 3), optional
        Cells, Å (None when no structure is periodic; zeros for the non-periodic ones otherwise).
    pbc : Tensor, shape (n_systems, 3), bool, optional
        Periodic boundary conditions (None when no structure is periodic).
    n_atoms : Tensor, shape (n_systems,)
        Atoms per structure (in the float dtype, for per-atom normalisation).
    energy : Tensor, shape (n_systems,)
        Reference energies, eV (0 where ``energy_mask`` is False).
    forces : Tensor, shape (n_atoms, 3)
        Reference forces, eV/Å (0 where ``forces_mask`` is False).
    energy_mask : Tensor, shape (n_systems,), bool
        Structures with an energy label.
    forces_mask : Tensor, shape (n_atoms,), bool
        Atoms with force labels.
    """

    positions: torch.Tensor
    numbers: torch.Tensor
    system_index: torch.Tensor
    cell: torch.Tensor | None
    pbc: torch.Tensor | None
    n_atoms: torch.Tensor
    energy: torch.Tensor
    forces: torch.Tensor
    energy_mask: torch.Tensor
    forces_mask: torch.Tensor

    @property
    def n_systems(self) -> int:
        """Number of structures."""
        return int(self.n_atoms.shape[0])


def collate(structures: Sequence[Structure], dtype: torch.dtype = torch.float32,
            device: torch.device | str = "cpu", rotations: Sequence[np.ndarray] | None = None) -> Batch:
    """Concatenate ``structures`` into one :class:`Batch`.

    Parameters
    ----------
    structures : sequence of Structure
    dtype : torch.dtype
        Float dtype of positions, cells and labels.
    device : torch.device or str
    rotations : sequence of ndarray (3, 3), optional
        One rotation per structure, applied to positions, forces and cell (row vectors: ``x @ R.T``).
    """
    if not structures:
        raise ValueError("cannot collate an empty list of structures")
    positions, forces, cells = [], [], []
    for i, s in enumerate(structures):
        pos, frc = s.positions, np.nan_to_num(s.forces, nan=0.0)
        cell = s.cell if s.cell is not None else np.zeros((3, 3))
        if rotations is not None:
            rot = rotations[i]
            pos, frc, cell = pos @ rot.T, frc @ rot.T, cell @ rot.T
        positions.append(pos)
        forces.append(frc)
        cells.append(cell)
    counts = np.array([s.n_atoms for s in structures])
    periodic = any(s.pbc.any() for s in structures)

    def tensor(array, kind=dtype):
        return torch.as_tensor(np.asarray(array), dtype=kind, device=device)

    energies = np.array([s.energy for s in structures])
    return Batch(
        positions=tensor(np.concatenate(positions)),
        numbers=tensor(np.concatenate([s.numbers for s in structures]), torch.long),
        system_index=tensor(np.repeat(np.arange(len(structures)), counts), torch.long),
        cell=tensor(np.stack(cells)) if periodic else None,
        pbc=tensor(np.stack([s.pbc for s in structures]), torch.bool) if periodic else None,
        n_atoms=tensor(counts),
        energy=tensor(np.nan_to_num(energies, nan=0.0)),
        forces=tensor(np.concatenate(forces)),
        energy_mask=tensor(np.isfinite(energies), torch.bool),
        forces_mask=tensor(np.concatenate([np.repeat(s.has_forces, s.n_atoms) for s in structures]), torch.bool),
    )


class StepSampler:
    """Deterministic, step-indexed distributed sampler.

    Step ``t`` of epoch ``e = t // batches_per_epoch`` takes the global batch
    ``perm_e[b * B:(b + 1) * B]`` (``b = t % batches_per_epoch``, ``perm_e`` a permutation seeded by
    ``(seed, e)``, the incomplete last batch dropped); rank ``r`` of ``W`` takes every ``W``-th
    structure of it starting at ``r``. The union over ranks is the single-process batch, so a run
    on any number of ranks sees the same data, and resuming needs only the step.

    Parameters
    ----------
    n_items : int
        Training structures.
    global_batch : int
        Structures per step over all ranks (a multiple of ``world_size``).
    seed : int
    rank, world_size : int
    """

    def __init__(self, n_items: int, global_batch: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise ConfigError(f"train.batch_size ({global_batch}) must be a multiple of the number of ranks "
                             f"({world_size})")
        if n_items < global_batch:
            raise ConfigError(f"train.batch_size ({global_batch}) exceeds the {n_items} training structures")
        self.n_items, self.global_batch, self.seed = n_items, global_batch, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = n_items // global_batch
        self._epoch = -1
        self._perm = np.arange(n_items)

    def global_indices(self, step: int) -> np.ndarray:
        """Indices of the whole global batch of ``step`` (all ranks)."""
        epoch, b = divmod(step, self.batches_per_epoch)
        if epoch != self._epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n_items)
            self._epoch = epoch
        return self._perm[b * self.global_batch:(b + 1) * self.global_batch]

    def indices(self, step: int) -> np.ndarray:
        """Indices of this rank's share of the batch of ``step``."""
        return self.global_indices(step)[self.rank::self.world_size]
