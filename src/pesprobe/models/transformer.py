"""The Transformer MLIP over a flat batch of structures (no padding across structures)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pesprobe.models.config import ModelConfig
from pesprobe.models.graph import (
    MAX_NEG_LOG_WEIGHT,
    Candidates,
    diffknn_coordinate,
    find_candidates,
    knn_mask,
    neg_log_bump,
    pair_vectors,
    slot_index,
    smooth_step_down,
    soft_rank,
)
from pesprobe.models.layers import PAD_BIAS, GaussianRBF, TokenBlock, mlp

#: Largest kept edge coordinate: x²/(1 − x²) < MAX_NEG_LOG_WEIGHT.
_X_MAX = math.sqrt(MAX_NEG_LOG_WEIGHT / (1.0 + MAX_NEG_LOG_WEIGHT))


@dataclass
class TokenGraph:
    """The tokens (directed edges with non-zero weight) of a batch, sorted by centre atom.

    Attributes
    ----------
    centre, neighbour, slot : Tensor, shape (n_tokens,), long
        Centre atom, neighbour atom, and position among the centre's tokens.
    vector : Tensor, shape (n_tokens, 3)
        r_j − r_i (+ periodic shift) in Å, differentiable.
    distance : Tensor, shape (n_tokens,)
        |vector| in Å.
    neg_log_weight : Tensor, shape (n_tokens,)
        −log w_ij (≥ 0, < ``MAX_NEG_LOG_WEIGHT``).
    n_slots : int
        Most tokens of one atom.
    """

    centre: torch.Tensor
    neighbour: torch.Tensor
    slot: torch.Tensor
    vector: torch.Tensor
    distance: torch.Tensor
    neg_log_weight: torch.Tensor
    n_slots: int


class PESTransformer(nn.Module):
    """Per-atom-token Transformer potential; see :class:`~pesprobe.models.ModelConfig` for every switch.

    Buffers the trainer sets: ``element_refs`` (per-element reference energies, eV, through
    :meth:`set_element_references`), ``energy_scale`` and ``energy_shift`` (through
    :meth:`set_normalization`). Per-atom energy: E_i = scale · ε_i + shift + E_ref[Z_i]; direct-head
    forces are scaled by the same ``energy_scale``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        n_species = config.max_atomic_number + 1
        self.token_embed = nn.Embedding(n_species, config.embed_dim)
        self.node_embed = nn.Embedding(n_species, d)
        self.rbf = GaussianRBF(config.cutoff, config.n_rbf, config.rbf_width)
        self.token_mlp = mlp(2 * config.embed_dim + config.n_rbf + 3, d, d, config.activation)
        self.blocks = nn.ModuleList(TokenBlock(config, t) for t in config.temperatures())
        if config.message_passing:
            self.messages = nn.ModuleList(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d))
                                          for _ in range(config.n_blocks - 1))
        self.energy_head = mlp(config.n_blocks * config.readout_dim, d, 1, config.activation)
        if config.force_head == "direct":
            self.force_readout = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 1))
        self.register_buffer("element_refs", torch.zeros(n_species))
        self.register_buffer("energy_scale", torch.tensor(1.0))
        self.register_buffer("energy_shift", torch.tensor(0.0))

    # ------------------------------------------------------------------ trainer-facing state

    def set_element_references(self, refs: dict[int, float]) -> None:
        """Set per-element reference energies in eV (elements not named keep their value)."""
        for z, value in refs.items():
            z_int = int(z)
            if not 1 <= z_int <= self.config.max_atomic_number:
                raise ValueError(f"element reference for atomic number {z!r}: must be in 1..{self.config.max_atomic_number}")
            if not math.isfinite(float(value)):
                raise ValueError(f"element reference for Z={z_int} is not finite: {value!r}")
            self.element_refs[z_int] = float(value)

    def element_references(self) -> dict[int, float]:
        """The non-zero per-element reference energies in eV."""
        refs = self.element_refs.detach().cpu().tolist()
        return {z: v for z, v in enumerate(refs) if v != 0.0}

    @property
    def training_elements(self) -> frozenset[int] | None:
        """Atomic numbers the model was trained on, or None when unknown.

        The trainer fits a reference energy for every element of its labelled training structures
        (:func:`~pesprobe.train.references.fit_element_references`) and stores it with the weights,
        so these are the elements with a non-zero reference; a model without any reference (never
        trained) gives None. See :mod:`pesprobe.potentials.elements`.
        """
        refs = self.element_references()
        return frozenset(refs) if refs else None

    def set_normalization(self, scale: float, shift: float) -> None:
        """Per-atom energy scale and shift in eV: E_i = scale · ε_i + shift + E_ref[Z_i]."""
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"energy scale must be a finite number > 0, got {scale!r}")
        if not math.isfinite(shift):
            raise ValueError(f"energy shift must be finite, got {shift!r}")
        self.energy_scale.fill_(float(scale))
        self.energy_shift.fill_(float(shift))

    # ------------------------------------------------------------------ graph

    def build_graph(self, positions: torch.Tensor, cell: torch.Tensor | None, system_index: torch.Tensor,
                    pbc: np.ndarray) -> TokenGraph:
        """Candidate search on detached positions, then differentiable distances and edge weights."""
        cfg = self.config
        cell_np = None if cell is None else cell.detach().cpu().double().numpy()
        candidates = find_candidates(positions.detach().cpu().double().numpy(), system_index.cpu().numpy(),
                                     cell_np, pbc, cfg.candidate_cutoff)
        n_atoms = positions.shape[0]
        if cfg.graph == "knn":
            candidates = candidates.subset(knn_mask(candidates, cfg.k) & (candidates.distance < cfg.cutoff))
        device = positions.device
        centre = torch.as_tensor(candidates.centre, device=device)
        neighbour = torch.as_tensor(candidates.neighbour, device=device)
        shift = torch.as_tensor(candidates.shift, device=device)
        vector = pair_vectors(positions, cell, system_index, centre, neighbour, shift)
        distance = torch.linalg.vector_norm(vector, dim=-1)
        if cfg.graph == "diffknn":
            inner = torch.as_tensor(np.flatnonzero(candidates.distance < cfg.cutoff), device=device)
            x, rows = self._diffknn_x(candidates, centre, distance, inner, n_atoms)
        else:
            rows = torch.arange(distance.numel(), device=device)
            x = distance / cfg.cutoff
        keep = x < _X_MAX
        rows, x = rows[keep], x[keep]
        tok_centre = centre[rows]
        slot, n_slots = slot_index(tok_centre, n_atoms)
        return TokenGraph(tok_centre, neighbour[rows], slot, vector[rows], distance[rows], neg_log_bump(x), n_slots)

    def _diffknn_x(self, candidates: Candidates, centre: torch.Tensor, distance: torch.Tensor,
                   inner: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge coordinates x of the candidates closer than r_c (``inner``), and those rows."""
        cfg = self.config
        vote = smooth_step_down(distance, cfg.cutoff, cfg.candidate_margin)
        slot, n_slots = slot_index(centre, n_atoms)
        rank = soft_rank(distance, centre, slot, n_atoms, n_slots, vote, cfg.softrank_scale, inner)
        position = torch.full((distance.numel(),), -1, dtype=torch.long, device=distance.device)
        position[inner] = torch.arange(inner.numel(), device=distance.device)
        reverse = position[torch.as_tensor(candidates.reverse, device=distance.device)[inner]]
        return diffknn_coordinate(rank, rank[reverse], distance[inner], cfg), inner

    # ------------------------------------------------------------------ network

    def atomic_energies(self, numbers: torch.Tensor, graph: TokenGraph) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-atom energies (n_atoms,) in eV and, for the direct head, forces (n_atoms, 3) in eV/Å."""
        cfg = self.config
        n_atoms = numbers.shape[0]
        index = (graph.centre, graph.slot)
        dtype = graph.distance.dtype
        unit = graph.vector / graph.distance[:, None]
        features = torch.cat([self.token_embed(numbers[graph.centre]), self.token_embed(numbers[graph.neighbour]),
                              self.rbf(graph.distance), unit], dim=-1)
        tokens = graph.distance.new_zeros(n_atoms, graph.n_slots, cfg.d_model).index_put(index, self.token_mlp(features))
        bias = torch.full((n_atoms, graph.n_slots), PAD_BIAS, dtype=dtype, device=numbers.device)
        bias = bias.index_put(index, -graph.neg_log_weight)
        weight = graph.distance.new_zeros(n_atoms, graph.n_slots).index_put(index, torch.exp(-graph.neg_log_weight))
        nodes = self.node_embed(numbers)
        readouts = []
        for b, block in enumerate(self.blocks):
            if cfg.message_passing and b > 0:
                message = self.messages[b - 1](nodes)[graph.neighbour]
                tokens = tokens + torch.zeros_like(tokens).index_put(index, message)
            last = b == len(self.blocks) - 1
            tokens, nodes, readout = block(tokens, nodes, bias, weight,
                                           update_tokens=not last or cfg.force_head == "direct")
            readouts.append(readout)
        energy = self.energy_head(torch.cat(readouts, dim=-1)).squeeze(-1)
        energy = energy * self.energy_scale + self.energy_shift + self.element_refs[numbers]
        forces = None
        if cfg.force_head == "direct":
            magnitude = self.force_readout(tokens).squeeze(-1) * weight
            unit_pad = graph.distance.new_zeros(n_atoms, graph.n_slots, 3).index_put(index, unit)
            forces = (magnitude[:, :, None] * unit_pad).sum(dim=1) * self.energy_scale
        return energy, forces

    def forward(self, positions: torch.Tensor, cell: torch.Tensor | None, system_index: torch.Tensor,
                atomic_numbers: torch.Tensor, pbc: torch.Tensor | None = None, compute_forces: bool = True,
                compute_stress: bool = False, create_graph: bool = False) -> dict[str, torch.Tensor]:
        """Energies, forces (and stress) of a flat batch of structures.

        Parameters
        ----------
        positions : Tensor, shape (n_atoms, 3)
            Positions in Å of all structures, concatenated. Not modified.
        cell : Tensor, shape (n_systems, 3, 3), optional
            Cell vectors (rows) in Å. None for a batch of molecules.
        system_index : Tensor, shape (n_atoms,), long
            Structure of each atom, 0 .. n_systems − 1.
        atomic_numbers : Tensor, shape (n_atoms,), long
        pbc : Tensor, shape (n_systems, 3), bool, optional
            Periodicity; default: all True if ``cell`` is given, else all False.
        compute_forces : bool
            Return ``"forces"`` (eV/Å).
        compute_stress : bool
            Return ``"stress"`` (n_systems, 3, 3) in eV/Å³, (1/V) ∂E/∂ε (ASE sign convention);
            conservative head only, needs ``cell``; NaN for systems of zero volume.
        create_graph : bool
            Keep the graph of forces/stress so a loss on them can be back-propagated (training).

        Returns
        -------
        dict
            ``"energy"`` (n_systems,) eV, ``"forces"`` (n_atoms, 3) eV/Å, ``"stress"`` (n_systems, 3, 3).
        """
        cfg = self.config
        dtype = self.element_refs.dtype
        numbers, system_index, cell, pbc_np, n_systems = self._check_inputs(
            positions, cell, system_index, atomic_numbers, pbc, compute_stress)
        outer_grad = torch.is_grad_enabled()
        conservative = cfg.force_head == "conservative" and (compute_forces or compute_stress)
        with torch.set_grad_enabled(outer_grad or conservative):
            pos = positions.to(dtype)
            if conservative and not pos.requires_grad:
                pos = pos.detach().requires_grad_(True)
            strain = None
            if compute_stress:
                strain = torch.zeros(n_systems, 3, 3, dtype=dtype, device=pos.device, requires_grad=True)
                sym = 0.5 * (strain + strain.transpose(1, 2))
                pos = pos + torch.einsum("ni,nij->nj", pos, sym[system_index])
                cell = cell + cell @ sym
            graph = self.build_graph(pos, cell, system_index, pbc_np)
            atom_energy, direct_forces = self.atomic_energies(numbers, graph)
            energy = atom_energy.new_zeros(n_systems).index_add(0, system_index, atom_energy)
            out: dict[str, torch.Tensor] = {"energy": energy}
            if conservative:
                inputs = [pos] if strain is None else [pos, strain]
                retain = create_graph or (outer_grad and energy.requires_grad)
                grads = torch.autograd.grad(energy.sum(), inputs, create_graph=create_graph, retain_graph=retain,
                                            allow_unused=True, materialize_grads=True)
                if compute_forces:
                    out["forces"] = -grads[0] if create_graph else -grads[0].detach()
                if strain is not None:
                    volume = torch.linalg.det(cell).abs()
                    stress = grads[1] / volume[:, None, None]
                    stress = torch.where(volume[:, None, None] > 0, stress, torch.full_like(stress, math.nan))
                    out["stress"] = stress if create_graph else stress.detach()
                if not outer_grad:
                    out["energy"] = energy.detach()
            elif compute_forces:
                out["forces"] = direct_forces
        return out

    def _check_inputs(self, positions: torch.Tensor, cell: torch.Tensor | None, system_index: torch.Tensor,
                      atomic_numbers: torch.Tensor, pbc: torch.Tensor | None, compute_stress: bool
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, np.ndarray, int]:
        n_atoms = positions.shape[0]
        if positions.ndim != 2 or positions.shape[1] != 3:
            raise ValueError(f"positions must have shape (n_atoms, 3), got {tuple(positions.shape)}")
        if system_index.shape != (n_atoms,) or atomic_numbers.shape != (n_atoms,):
            raise ValueError(f"system_index {tuple(system_index.shape)} and atomic_numbers "
                             f"{tuple(atomic_numbers.shape)} must both have shape ({n_atoms},)")
        numbers = atomic_numbers.long()
        system_index = system_index.long()
        if n_atoms and (int(numbers.min()) < 1 or int(numbers.max()) > self.config.max_atomic_number):
            raise ValueError(f"atomic_numbers must lie in 1..{self.config.max_atomic_number}, got "
                             f"{int(numbers.min())}..{int(numbers.max())}")
        if cell is not None:
            if cell.ndim != 3 or cell.shape[1:] != (3, 3):
                raise ValueError(f"cell must have shape (n_systems, 3, 3), got {tuple(cell.shape)}")
            n_systems = cell.shape[0]
            cell = cell.to(self.element_refs.dtype)
        else:
            n_systems = int(system_index.max()) + 1 if n_atoms else 0
        if n_atoms and (int(system_index.min()) < 0 or int(system_index.max()) >= n_systems):
            raise ValueError(f"system_index must lie in 0..{n_systems - 1}")
        if pbc is None:
            pbc_np = np.full((n_systems, 3), cell is not None)
        else:
            pbc_np = np.asarray(pbc.detach().cpu() if isinstance(pbc, torch.Tensor) else pbc, dtype=bool)
            pbc_np = np.broadcast_to(pbc_np, (n_systems, 3)).copy()
            if pbc_np.any() and cell is None:
                raise ValueError("pbc has periodic directions but no cell was given")
        if compute_stress:
            if self.config.force_head != "conservative":
                raise ValueError("stress needs the conservative force head (ModelConfig.force_head='conservative')")
            if cell is None:
                raise ValueError("compute_stress=True needs a cell")
        return numbers, system_index, cell, pbc_np, n_systems


def build_model(config: ModelConfig) -> PESTransformer:
    """A freshly initialised :class:`PESTransformer` in ``config.dtype``."""
    model = PESTransformer(config)
    return model.to(getattr(torch, config.dtype))
