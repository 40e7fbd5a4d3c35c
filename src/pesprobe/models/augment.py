"""Random rotations: the model is not equivariant by construction and learns rotational symmetry from data."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def random_rotation_matrices(n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                             device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` rotation matrices drawn uniformly from SO(3) (normalised Gaussian quaternions); shape (n, 3, 3)."""
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / torch.linalg.vector_norm(q, dim=1, keepdim=True)
    w, x, y, z = q.unbind(dim=1)
    rot = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=1).view(n, 3, 3)
    return rot.to(dtype=dtype, device=device)


@dataclass
class RotatedBatch:
    """A flat batch after :func:`random_rotation`; fields given as None stay None.

    Attributes
    ----------
    positions : Tensor, shape (n_atoms, 3)
        Rotated positions in Å.
    forces : Tensor, shape (n_atoms, 3), optional
        Rotated forces in eV/Å.
    cell : Tensor, shape (n_systems, 3, 3), optional
        Rotated cell vectors (rows) in Å.
    stress : Tensor, shape (n_systems, 3, 3), optional
        Rotated stress R σ Rᵀ in eV/Å³.
    rotations : Tensor, shape (n_systems, 3, 3)
        The matrices used; a row vector v becomes v @ Rᵀ.
    """

    positions: torch.Tensor
    forces: torch.Tensor | None
    cell: torch.Tensor | None
    stress: torch.Tensor | None
    rotations: torch.Tensor


def random_rotation(positions: torch.Tensor, system_index: torch.Tensor, n_systems: int | None = None,
                    forces: torch.Tensor | None = None, cell: torch.Tensor | None = None,
                    stress: torch.Tensor | None = None, generator: torch.Generator | None = None) -> RotatedBatch:
    """Rotate every structure of a flat batch by its own uniformly random rotation.

    Energies are unchanged; positions, forces and cell vectors rotate as row vectors (v → v Rᵀ),
    stress as R σ Rᵀ. Positions rotate about the origin, which for periodic cells is consistent
    with rotating the cell. Inputs are not modified.

    Parameters
    ----------
    positions : Tensor, shape (n_atoms, 3)
    system_index : Tensor, shape (n_atoms,), long
    n_systems : int, optional
        Number of structures (default: from ``cell``, else ``system_index.max() + 1``).
    forces : Tensor, shape (n_atoms, 3), optional
    cell : Tensor, shape (n_systems, 3, 3), optional
    stress : Tensor, shape (n_systems, 3, 3), optional
    generator : torch.Generator, optional
        Source of randomness (CPU generator), for reproducible augmentation.
    """
    if n_systems is None:
        n_systems = cell.shape[0] if cell is not None else int(system_index.max()) + 1
    rot = random_rotation_matrices(n_systems, generator, positions.dtype, positions.device)
    per_atom = rot[system_index].transpose(1, 2)

    def rotate_rows(v: torch.Tensor | None, r: torch.Tensor) -> torch.Tensor | None:
        return None if v is None else torch.einsum("ni,nij->nj", v, r)

    return RotatedBatch(
        positions=rotate_rows(positions, per_atom),
        forces=rotate_rows(forces, per_atom),
        cell=None if cell is None else cell @ rot.transpose(1, 2),
        stress=None if stress is None else rot @ stress @ rot.transpose(1, 2),
        rotations=rot,
    )
