"""pesprobe's Transformer as a torch-sim model, for torch-sim's MD, relaxations and autobatching.

Needs torch-sim (``pip install pesprobe[torchsim]``)::

    import torch_sim as ts
    from pesprobe.models.torchsim import PesprobeTorchSimModel

    model = PesprobeTorchSimModel("default")            # or a checkpoint path, or a PESTransformer
    final = ts.integrate(system=atoms, model=model, integrator=ts.nvt_langevin, n_steps=100,
                         temperature=300, timestep=0.0005)

Conventions are torch-sim's: a ``SimState`` holds all systems flat, cell vectors as columns, one
``pbc`` flag; energies eV, forces eV/Å, stress eV/Å³ (``(1/V) ∂E/∂ε``, the sign of ASE and of
torch-sim's own models). A state with elements the model never saw in training warns once per new
set of them (:class:`~pesprobe.potentials.elements.UnseenElementWarning`), as every pesprobe
entry point does.
"""

from __future__ import annotations

import os
import weakref

import torch
from torch_sim.models.interface import ModelInterface
from torch_sim.state import SimState

from pesprobe.models.potential import placed
from pesprobe.models.transformer import PESTransformer
from pesprobe.potentials.elements import UnseenElementCheck


class PesprobeTorchSimModel(ModelInterface):
    """A :class:`PESTransformer` behind torch-sim's ``ModelInterface``.

    Parameters
    ----------
    model : PESTransformer, path or ``"default"``
        The network, a pesprobe checkpoint, or the shipped default model.
    device : str or torch.device
    dtype : torch.dtype
        The evaluation dtype (a converted copy of the network is made when it differs).
    compute_stress : bool
        Also return ``"stress"`` (conservative force head and periodic systems only; NaN otherwise).
    name : str, optional
        The model's name in warnings (default: the checkpoint or ``"pesprobe"``).
    """

    def __init__(self, model: PESTransformer | str | os.PathLike = "default", device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float64, compute_stress: bool = False, name: str | None = None) -> None:
        super().__init__()
        self.name = name or (f"pesprobe:{model}" if not isinstance(model, PESTransformer) else "pesprobe")
        self._unseen = UnseenElementCheck()
        self._checked: weakref.ref | None = None  # the atomic_numbers tensor last checked (MD reuses it every step)
        if not isinstance(model, PESTransformer):
            from pesprobe.models.potential import load_potential

            model = load_potential(model, device=device, dtype=dtype).model
        self._device = torch.device(device)
        self._dtype = dtype
        self.model = placed(model, self._device, dtype)
        self._compute_forces = True
        self._compute_stress = False
        self.compute_stress = compute_stress
        self._memory_scales_with = "n_atoms"  # a k-nearest-neighbour graph: work per atom is bounded

    @property
    def compute_stress(self) -> bool:
        """Whether ``forward`` returns ``"stress"``."""
        return self._compute_stress

    @compute_stress.setter
    def compute_stress(self, value: bool) -> None:
        if value and self.model.config.force_head != "conservative":
            raise NotImplementedError("stress needs the conservative force head")
        self._compute_stress = bool(value)

    @property
    def training_elements(self) -> frozenset[int] | None:
        """Atomic numbers the model was trained on (None: unknown); see :attr:`PESTransformer.training_elements`."""
        return self.model.training_elements

    @property
    def compute_forces(self) -> bool:
        """Always True: the model computes forces."""
        return self._compute_forces

    @compute_forces.setter
    def compute_forces(self, value: bool) -> None:
        if not value:
            raise NotImplementedError("pesprobe models always compute forces")

    def forward(self, state: SimState | dict, **kwargs) -> dict[str, torch.Tensor]:
        """``{"energy": (n_systems,), "forces": (n_atoms, 3)[, "stress": (n_systems, 3, 3)]}`` of ``state``."""
        if isinstance(state, dict):
            state = SimState(**state, masses=torch.ones_like(state["positions"][:, 0]))
        numbers = state.atomic_numbers
        if self.training_elements is not None and (self._checked is None or self._checked() is not numbers):
            self._unseen(self.name, self.training_elements, torch.unique(numbers).tolist())
            self._checked = weakref.ref(numbers)
        n_systems = state.n_systems
        periodic = bool(state.pbc)
        cell = state.cell.transpose(1, 2).to(self._dtype) if periodic else None  # columns -> rows
        pbc = torch.full((n_systems, 3), periodic, dtype=torch.bool, device=self._device)
        stress = self._compute_stress and periodic
        out = self.model(state.positions.to(self._dtype), cell, state.system_idx, state.atomic_numbers.long(),
                         pbc=pbc, compute_forces=True, compute_stress=stress)
        result = {"energy": out["energy"].detach(), "forces": out["forces"].detach()}
        if self._compute_stress:
            result["stress"] = out["stress"].detach() if stress else torch.full(
                (n_systems, 3, 3), float("nan"), dtype=self._dtype, device=self._device)
        return result
