"""Torch glue for the batched integrator: a reference pair model meeting the torch-sim-style
contract, an ASE calculator over any such model, and a model identity for result caches.

The contract: ``model(positions[n_atoms, 3], cell[n_systems, 3, 3] | None, system_index[n_atoms],
atomic_numbers[n_atoms]) -> {"energy": [n_systems] eV, "forces": [n_atoms, 3] eV/Å}`` over a flat
concatenation of systems (positions in Å).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes


def intra_system_pairs(system_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All pairs ``i < j`` of atoms in the same system, for systems stored contiguously.

    Parameters
    ----------
    system_index : (n_atoms,) long, non-decreasing

    Returns
    -------
    i, j : (n_pairs,) long
    """
    sizes = torch.bincount(system_index)
    offsets = torch.cumsum(sizes, 0) - sizes
    m = int(sizes.max())
    ti, tj = torch.triu_indices(m, m, offset=1, device=system_index.device)
    keep = tj[None, :] < sizes[:, None]
    i = (offsets[:, None] + ti[None, :])[keep]
    j = (offsets[:, None] + tj[None, :])[keep]
    return i, j


class MorsePair(torch.nn.Module):
    """All-pairs Morse potential ``D[(1 − e^{−a(r − r0)})² − 1]`` per pair, batched over systems.

    The torch twin of :class:`pesprobe.md.synthetic.SyntheticPairCalculator` without roughness
    (same parameters, same numbers); forces are analytic.

    Parameters
    ----------
    depth_eV, alpha_per_A, r0_A : float
        D (eV), a (1/Å), r0 (Å).
    """

    def __init__(self, depth_eV: float = 1.0, alpha_per_A: float = 4.0, r0_A: float = 1.4) -> None:
        super().__init__()
        self.register_buffer("params", torch.tensor([depth_eV, alpha_per_A, r0_A], dtype=torch.float64))

    def forward(self, positions: torch.Tensor, cell: torch.Tensor | None, system_index: torch.Tensor,
                atomic_numbers: torch.Tensor) -> dict[str, torch.Tensor]:
        """Energies [n_systems] (eV) and forces [n_atoms, 3] (eV/Å); ``cell`` must be None."""
        if cell is not None:
            raise ValueError("MorsePair is for molecules: cell must be None")
        depth, alpha, r0 = self.params.to(positions.dtype)
        i, j = intra_system_pairs(system_index)
        vec = positions[i] - positions[j]
        r = torch.linalg.norm(vec, dim=1)
        x = torch.exp(-alpha * (r - r0))
        pair_energy = depth * ((1.0 - x) ** 2 - 1.0)
        pair_force = -(2.0 * depth * alpha * (1.0 - x) * x / r)[:, None] * vec
        n_systems = int(system_index.max()) + 1
        energy = torch.zeros(n_systems, dtype=positions.dtype, device=positions.device)
        energy.index_add_(0, system_index[i], pair_energy)
        forces = torch.zeros_like(positions)
        forces.index_add_(0, i, pair_force)
        forces.index_add_(0, j, -pair_force)
        return {"energy": energy, "forces": forces}


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating dtype of the model's first parameter (or floating buffer); float64 if none."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float64


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer; CPU if none."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def model_identity(model: torch.nn.Module) -> str:
    """Class path and a hash of the state dict: changes whenever the model's results could."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"{type(model).__module__}.{type(model).__qualname__}#{h.hexdigest()[:16]}"


class ModelCalculator(Calculator):
    """An ASE calculator over a contract model: one system per call (the unbatched path).

    Parameters
    ----------
    model : torch.nn.Module
        Any model meeting the contract (module doc).
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, model: torch.nn.Module, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.dtype = model_dtype(model)
        self.device = model_device(model)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        pos = torch.as_tensor(self.atoms.positions, dtype=self.dtype, device=self.device)
        out = self.model(pos, None, torch.zeros(n, dtype=torch.long, device=self.device),
                         torch.as_tensor(self.atoms.numbers, dtype=torch.long, device=self.device))
        self.results = {"energy": float(out["energy"].detach()[0]),
                        "forces": out["forces"].detach().to(torch.float64).cpu().numpy().astype(np.float64)}
