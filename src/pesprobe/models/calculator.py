"""ASE calculator over a pesprobe model, so any ASE workflow (MD, relaxations) can use it."""

from __future__ import annotations

import os

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from pesprobe.models.checkpoint import load_checkpoint
from pesprobe.models.transformer import PESTransformer
from pesprobe.potentials.elements import UnseenElementCheck


class PESProbeCalculator(Calculator):
    """Energy (eV), forces (eV/Å) and, for periodic cells with the conservative head, stress (eV/Å³).

    Parameters
    ----------
    checkpoint_or_model : path-like or PESTransformer
        A checkpoint written by :func:`~pesprobe.models.save_checkpoint`, or a model object
        (converted to ``device``/``dtype`` in place).
    device : str or torch.device
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``.

    Atoms with elements the model never saw in training (:attr:`training_elements`) are computed as
    any other, with one :class:`~pesprobe.potentials.elements.UnseenElementWarning` per new set of
    such elements, naming the model (``model_name``: the checkpoint path, or ``"pesprobe model"``).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, checkpoint_or_model: str | os.PathLike | PESTransformer, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(checkpoint_or_model, PESTransformer):
            model = checkpoint_or_model
            self.model_name = "pesprobe model"
        else:
            model, _ = load_checkpoint(checkpoint_or_model, map_location=device)
            self.model_name = f"pesprobe:{checkpoint_or_model}"
        self._unseen = UnseenElementCheck()
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = model.to(device=self.device, dtype=dtype).eval()

    @property
    def training_elements(self) -> frozenset[int] | None:
        """Atomic numbers the model was trained on (None: unknown); see :attr:`PESTransformer.training_elements`."""
        return self.model.training_elements

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        """Fill ``self.results``; stress is computed when asked for (periodic cells only)."""
        properties = properties or ["energy"]
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        self._unseen(self.model_name, self.training_elements, atoms.numbers)
        periodic = bool(atoms.pbc.any())
        want_stress = "stress" in properties
        if want_stress and not periodic:
            raise ValueError("stress is only defined for periodic structures (atoms.pbc has no True entry)")
        if want_stress and self.model.config.force_head != "conservative":
            raise ValueError("stress needs a model with the conservative force head")
        n = len(atoms)
        kwargs = {"device": self.device}
        positions = torch.as_tensor(atoms.get_positions(), dtype=self.dtype, **kwargs)
        numbers = torch.as_tensor(atoms.numbers, dtype=torch.long, **kwargs)
        cell = torch.as_tensor(np.asarray(atoms.cell[:])[None], dtype=self.dtype, **kwargs) if periodic else None
        pbc = torch.as_tensor(atoms.pbc[None], **kwargs) if periodic else None
        with torch.no_grad():
            out = self.model(positions, cell, torch.zeros(n, dtype=torch.long, **kwargs), numbers, pbc=pbc,
                             compute_forces=True, compute_stress=want_stress)
        energy = float(out["energy"][0])
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = out["forces"].detach().cpu().double().numpy()
        if want_stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(out["stress"][0].detach().cpu().double().numpy())


def calculator(checkpoint_or_model: str | os.PathLike | PESTransformer, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> PESProbeCalculator:
    """Shorthand for :class:`PESProbeCalculator` (``atoms.calc = calculator("model.pt")``)."""
    return PESProbeCalculator(checkpoint_or_model, device=device, dtype=dtype)
