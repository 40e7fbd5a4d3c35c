"""Torch models of the zoo that meet the batched contract of :mod:`pesprobe.md.torch_models`
(``model(positions, cell, system_index, atomic_numbers) -> {"energy", "forces"}``), and a BSCT
:class:`~pesprobe.potentials.base.Potential` over any such model.

``CutoffArtifact`` adds a pair term over every atom pair of a system to a base model, the way a
hard cutoff or a neighbour-list switch would (d in Å):

``step``  E += A·Σ_pairs [d_ij < r_c]           energy steps of A eV when a pair crosses r_c, forces unchanged
``kink``  E += A·Σ_pairs max(0, r_c − d_ij)     energy continuous, forces jump by A eV/Å at r_c
"""

from __future__ import annotations

import time

import numpy as np
import torch

from pesprobe.md.torch_models import intra_system_pairs, model_identity
from pesprobe.potentials.base import Predictions

KINDS = ("step", "kink")


class CutoffArtifact(torch.nn.Module):
    """``base`` plus a cutoff artifact on every pair (see the module docstring).

    Parameters
    ----------
    base : torch.nn.Module
        A contract model.
    kind : str
        ``"step"`` (A in eV) or ``"kink"`` (A in eV/Å).
    amplitude : float
    r_c : float
        Cutoff distance, Å.
    """

    def __init__(self, base: torch.nn.Module, kind: str, amplitude: float, r_c: float) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown artifact kind {kind!r}; expected one of {KINDS}")
        self.base, self.kind = base, kind
        # the kind is in the buffer too, so that the model identity (state dict hash) tells step from kink
        self.register_buffer("params", torch.tensor([amplitude, r_c, KINDS.index(kind)], dtype=torch.float64))

    def forward(self, positions: torch.Tensor, cell: torch.Tensor | None, system_index: torch.Tensor,
                atomic_numbers: torch.Tensor) -> dict[str, torch.Tensor]:
        """Base energies [n_systems] (eV) and forces [n_atoms, 3] (eV/Å) plus the artifact term."""
        out = self.base(positions, cell, system_index, atomic_numbers)
        energy, forces = out["energy"], out["forces"]
        amplitude, r_c = float(self.params[0]), float(self.params[1])
        i, j = intra_system_pairs(system_index)
        vec = (positions[j] - positions[i]).detach()
        d = torch.linalg.norm(vec, dim=1)
        inside = (d < r_c).to(energy.dtype)
        n_systems = energy.shape[0]
        if self.kind == "step":
            term = amplitude * inside
            extra_f = torch.zeros_like(forces)
        else:
            term = amplitude * torch.clamp(r_c - d, min=0.0).to(energy.dtype)
            # dE/dd = −A inside: F_j = +A û, F_i = −A û (pushes the pair apart)
            f = (amplitude * inside)[:, None] * (vec / d[:, None]).to(forces.dtype)
            extra_f = torch.zeros_like(forces).index_add(0, j, f).index_add(0, i, -f)
        extra_e = torch.zeros(n_systems, dtype=energy.dtype, device=energy.device).index_add(
            0, system_index[i], term.to(energy.dtype))
        return {"energy": energy + extra_e, "forces": forces + extra_f}


class ZeroModel(torch.nn.Module):
    """Zero energy and forces: the null model (in MD its atoms fly on their initial velocities)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("tag", torch.zeros(1, dtype=torch.float64))

    def forward(self, positions: torch.Tensor, cell: torch.Tensor | None, system_index: torch.Tensor,
                atomic_numbers: torch.Tensor) -> dict[str, torch.Tensor]:
        """Zeros of the contract's shapes."""
        n_systems = int(system_index.max()) + 1 if len(system_index) else 0
        return {"energy": torch.zeros(n_systems, dtype=positions.dtype, device=positions.device),
                "forces": torch.zeros_like(positions)}


class ContractPotential:
    """A batched BSCT potential over a contract model: all frames of a scan in one forward call.

    ``model`` is exposed so that :func:`pesprobe.md.run_stability` runs the same model in its
    batched engine.

    Parameters
    ----------
    model : torch.nn.Module
    name : str
    dtype : torch.dtype
        Positions are passed in this dtype (the model's own).
    """

    def __init__(self, model: torch.nn.Module, name: str, dtype: torch.dtype = torch.float32) -> None:
        self.model, self.name, self.dtype = model, name, dtype

    def identity(self) -> str:
        """The model's identity (config and weights) for result caches."""
        return f"contract:{model_identity(self.model)}"

    def predict(self, numbers, positions, cell=None, pbc=None) -> Predictions:
        """Energies (n_frames,) eV and forces (n_frames, n_atoms, 3) eV/Å."""
        positions = np.asarray(positions, dtype=np.float64)
        n_frames, n_atoms = positions.shape[:2]
        start = time.perf_counter()
        flat = torch.tensor(positions.reshape(-1, 3), dtype=self.dtype)
        system_index = torch.arange(n_frames).repeat_interleave(n_atoms)
        z = torch.tensor(np.tile(np.asarray(numbers, dtype=np.int64), n_frames))
        box = None if cell is None or not np.asarray(pbc if pbc is not None else False).any() else \
            torch.tensor(np.repeat(np.asarray(cell, dtype=np.float64)[None], n_frames, axis=0), dtype=self.dtype)
        out = self.model(flat, box, system_index, z)
        energy = out["energy"].detach().cpu().double().numpy()
        forces = out["forces"].detach().cpu().double().numpy().reshape(n_frames, n_atoms, 3)
        return Predictions.from_arrays(energy, forces, seconds=time.perf_counter() - start)
