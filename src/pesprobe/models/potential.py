"""The trained model as a batched :class:`~pesprobe.potentials.base.Potential` and for many structures at once."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from pesprobe.models.checkpoint import load_checkpoint
from pesprobe.models.transformer import PESTransformer
from pesprobe.potentials.base import Predictions
from pesprobe.potentials.elements import UnseenElementCheck

if TYPE_CHECKING:
    from ase import Atoms

#: Atoms per forward call by default: bounds the memory of a call (~0.4 GB peak for the sample
#: scans against ~1.1 GB with 4096) and is the fastest on CPU (``benchmarks/memory.py``).
DEFAULT_MAX_ATOMS = 512

#: Atoms of ghost frames ending every batched call (:meth:`TorchPotential._predict_frames`): more
#: than the widest SIMD vector of float32 (16), so no real frame lies in a kernel's tail.
TAIL_ATOMS = 16

#: Where ``load_potential("default")`` looks for a shipped model.
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "resources" / "models" / "default.pt"


@dataclass
class StructureResults:
    """Results of :meth:`TorchPotential.evaluate_structures` for structures of different sizes.

    Attributes
    ----------
    energy : ndarray, shape (n_structures,)
        Energies in eV (NaN where the structure failed).
    forces : list of ndarray, each shape (n_atoms_s, 3)
        Forces in eV/Å (NaN where the structure failed).
    stress : ndarray, shape (n_structures, 3, 3), optional
        Stress in eV/Å³ when requested (NaN for non-periodic structures).
    failed : ndarray, shape (n_structures,), bool
        True where the output was not finite or the evaluation raised.
    errors : dict[int, str]
        Error text for each failed structure.
    """

    energy: np.ndarray
    forces: list[np.ndarray]
    stress: np.ndarray | None
    failed: np.ndarray
    errors: dict[int, str]


def placed(model: PESTransformer, device: torch.device, dtype: torch.dtype) -> PESTransformer:
    """``model`` itself when it already lives on ``device`` in ``dtype`` (a trainer's live model keeps its
    current weights), else a converted copy (the original is never changed)."""
    reference = model.element_refs
    if reference.dtype != dtype or reference.device != device:
        return copy.deepcopy(model).to(device=device, dtype=dtype)
    return model


class TorchPotential:
    """A :class:`PESTransformer` evaluating all frames of a scan in few batched forward calls.

    Parameters
    ----------
    model : PESTransformer
        Used as is when it already lives on ``device`` in ``dtype`` (so a trainer's live model is
        evaluated with its current weights); otherwise a converted copy is made.
    device : str or torch.device
        ``"cpu"`` or ``"cuda"``.
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``.
    batch_frames : int, optional
        Most frames per forward call (default: as many as fit in ``max_atoms``).
    max_atoms : int
        Most atoms per forward call (bounds memory; a single larger frame still goes alone). Results
        do not depend on it: frames are batched only with frames of the same padded layout
        (:meth:`_layout`), so any budget gives the same bits as any other on CPU (tested); only
        memory and speed change.
    name : str
        Name in reports.

    Structures with elements the model never saw in training (:attr:`training_elements`) are
    evaluated as any other, with one :class:`~pesprobe.potentials.elements.UnseenElementWarning`
    per new set of such elements.
    """

    def __init__(self, model: PESTransformer, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 batch_frames: int | None = None, max_atoms: int = DEFAULT_MAX_ATOMS,
                 name: str = "pesprobe-model") -> None:
        if batch_frames is not None and batch_frames < 1:
            raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
        if max_atoms < 1:
            raise ValueError(f"max_atoms must be >= 1, got {max_atoms}")
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = placed(model, self.device, dtype)
        self.batch_frames = batch_frames
        self.max_atoms = max_atoms
        self.name = name
        self._unseen = UnseenElementCheck()

    @property
    def training_elements(self) -> frozenset[int] | None:
        """Atomic numbers the model was trained on (None: unknown); see :attr:`PESTransformer.training_elements`."""
        return self.model.training_elements

    def identity(self) -> str:
        """SHA-256 of the config, every weight and buffer, and the evaluation dtype (cache key)."""
        digest = hashlib.sha256()
        digest.update(json.dumps(self.model.config.to_dict(), sort_keys=True).encode())
        digest.update(str(self.dtype).encode())
        for key, value in sorted(self.model.state_dict().items()):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return f"pesprobe-transformer:{digest.hexdigest()}"

    def _per_call(self, n_atoms: int) -> int:
        """Frames of ``n_atoms`` atoms per forward call under ``max_atoms`` and ``batch_frames``."""
        ghosts = -(-TAIL_ATOMS // max(n_atoms, 1))
        per_call = max(1, self.max_atoms // max(n_atoms, 1) - ghosts)
        if self.batch_frames is not None:
            per_call = min(per_call, self.batch_frames)
        return per_call

    def _chunks(self, n_frames: int, n_atoms: int) -> list[tuple[int, int]]:
        per_call = self._per_call(n_atoms)
        return [(start, min(start + per_call, n_frames)) for start in range(0, n_frames, per_call)]

    def _layout(self, z: torch.Tensor, positions: np.ndarray, cell: np.ndarray | None, pbc: np.ndarray | None,
                periodic: bool, frames: np.ndarray) -> list[tuple[int, int]]:
        """Per frame of ``frames``: the most search candidates and the most tokens of one of its atoms.

        These are the widths the model pads its per-atom tables to (the largest over a batch), and
        the only way one frame's numbers depend on the others in its call: padded entries are
        exact zeros, but a reduction over a wider row adds them in another order. Frames of one
        layout give the same bits whether they go one by one or all together."""
        from pesprobe.models.graph import find_candidates

        n, n_atoms = len(frames), z.shape[0]
        pos = torch.as_tensor(positions[frames].reshape(-1, 3), dtype=self.dtype, device=self.device)
        system_index = torch.arange(n, device=self.device).repeat_interleave(n_atoms)
        cell_t = None
        pbc_np = np.zeros((n, 3), dtype=bool)
        if periodic:
            cell_t = torch.as_tensor(np.asarray(cell), dtype=self.dtype, device=self.device).expand(n, 3, 3)
            pbc_np = np.broadcast_to(np.asarray(pbc, dtype=bool), (n, 3)).copy()
        with torch.no_grad():
            graph = self.model.build_graph(pos, cell_t, system_index, pbc_np)
            candidates = find_candidates(pos.cpu().double().numpy(), system_index.cpu().numpy(),
                                         None if cell_t is None else cell_t.cpu().double().numpy(), pbc_np,
                                         self.model.config.candidate_cutoff)
        total = n * n_atoms
        tokens = np.bincount(graph.centre.cpu().numpy(), minlength=total).reshape(n, n_atoms).max(axis=1)
        found = np.bincount(candidates.centre, minlength=total).reshape(n, n_atoms).max(axis=1)
        return [(int(c), int(t)) for c, t in zip(found, tokens, strict=True)]

    def _batches(self, z: torch.Tensor, positions: np.ndarray, cell: np.ndarray | None, pbc: np.ndarray | None,
                 periodic: bool) -> list[np.ndarray]:
        """The frames of each forward call: frames of one :meth:`_layout`, at most :meth:`_per_call` a call.

        So results are bit-identical whatever ``max_atoms`` and ``batch_frames`` (and equal to
        frame-by-frame evaluation); only memory and speed change. A frame whose layout cannot be
        found (it makes the model raise) goes alone, and fails there."""
        n_frames, n_atoms = positions.shape[:2]
        keys: list[object] = []
        for lo, hi in self._chunks(n_frames, n_atoms):
            frames = np.arange(lo, hi)
            try:
                keys.extend(self._layout(z, positions, cell, pbc, periodic, frames))
            except Exception:  # noqa: BLE001 - find the frames that raise
                for frame in frames:
                    try:
                        keys.extend(self._layout(z, positions, cell, pbc, periodic, np.array([frame])))
                    except Exception:  # noqa: BLE001 - evaluated alone below, where it fails
                        keys.append(("alone", int(frame)))
        groups: dict[object, list[int]] = {}
        for frame, key in enumerate(keys):
            groups.setdefault(key, []).append(frame)
        per_call = self._per_call(n_atoms)
        return [np.asarray(members[start:start + per_call]) for members in groups.values()
                for start in range(0, len(members), per_call)]

    def _forward(self, numbers: torch.Tensor, positions: torch.Tensor, system_index: torch.Tensor,
                 cell: torch.Tensor | None, pbc: torch.Tensor | None, stress: bool) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            out = self.model(positions, cell, system_index, numbers, pbc=pbc, compute_forces=True,
                             compute_stress=stress)
        return {k: v.detach().to("cpu", torch.float64) for k, v in out.items()}

    def predict(self, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray | None = None,
                pbc: np.ndarray | None = None) -> Predictions:
        """Energies (eV) and forces (eV/Å) of ``positions`` (n_frames, n_atoms, 3), batched.

        A chunk that raises is retried frame by frame so that only the offending frames are marked
        failed; frames with non-finite output are marked failed. Never raises for a bad frame.
        """
        start_time = time.perf_counter()
        self._unseen(self.name, self.training_elements, numbers)
        positions = np.asarray(positions)
        n_frames, n_atoms = positions.shape[:2]
        energy = np.full(n_frames, np.nan)
        forces = np.full((n_frames, n_atoms, 3), np.nan)
        errors: dict[int, str] = {}
        periodic = pbc is not None and bool(np.any(pbc))
        z = torch.as_tensor(np.asarray(numbers), dtype=torch.long, device=self.device)
        for frames in self._batches(z, positions, cell, pbc, periodic):
            try:
                self._predict_frames(z, positions, cell, pbc, periodic, frames, energy, forces)
            except Exception:
                for frame in frames:
                    try:
                        self._predict_frames(z, positions, cell, pbc, periodic, np.array([frame]), energy, forces)
                    except Exception as exc:  # one bad frame must not stop the scan
                        errors[int(frame)] = f"{type(exc).__name__}: {exc}"
        result = Predictions.from_arrays(energy, forces, seconds=time.perf_counter() - start_time)
        result.errors.update(errors)
        return result

    def _predict_frames(self, z: torch.Tensor, positions: np.ndarray, cell: np.ndarray | None,
                        pbc: np.ndarray | None, periodic: bool, frames: np.ndarray, energy: np.ndarray,
                        forces: np.ndarray) -> None:
        # Copies of the first frame go last, as ghosts whose results are dropped: vectorised kernels
        # treat the last few elements of an array (a partial SIMD vector) differently, so the real
        # frames must never be last; TAIL_ATOMS atoms of ghosts cover any such tail.
        real = len(frames)
        n_atoms = z.shape[0]
        frames = np.concatenate([frames, np.repeat(frames[:1], -(-TAIL_ATOMS // max(n_atoms, 1)))])
        n = len(frames)
        pos = torch.as_tensor(positions[frames].reshape(-1, 3), dtype=self.dtype, device=self.device)
        system_index = torch.arange(n, device=self.device).repeat_interleave(n_atoms)
        cell_t = pbc_t = None
        if periodic:
            cell_t = torch.as_tensor(np.asarray(cell), dtype=self.dtype, device=self.device).expand(n, 3, 3)
            pbc_t = torch.as_tensor(np.asarray(pbc, dtype=bool), device=self.device).expand(n, 3)
        out = self._forward(z.repeat(n), pos, system_index, cell_t, pbc_t, stress=False)
        energy[frames[:real]] = out["energy"].numpy()[:real]
        forces[frames[:real]] = out["forces"].numpy().reshape(n, n_atoms, 3)[:real]

    def evaluate_structures(self, structures: list[Atoms], compute_stress: bool = False) -> StructureResults:
        """Energies and forces of many structures of different sizes (e.g. MD replicas) in batched calls.

        Parameters
        ----------
        structures : list of ase.Atoms
            Molecules and/or periodic cells (``atoms.pbc``, ``atoms.cell`` are honoured).
        compute_stress : bool
            Also return stress (conservative head; NaN for non-periodic structures).
        """
        if compute_stress and self.model.config.force_head != "conservative":
            raise ValueError("stress needs the conservative force head (ModelConfig.force_head='conservative')")
        n = len(structures)
        known = self.training_elements
        for atoms in structures:
            self._unseen(self.name, known, atoms.numbers)
        energy = np.full(n, np.nan)
        forces = [np.full((len(a), 3), np.nan) for a in structures]
        stress = np.full((n, 3, 3), np.nan) if compute_stress else None
        errors: dict[int, str] = {}
        groups: list[list[int]] = [[]]
        atoms_in_group = 0
        for index, atoms in enumerate(structures):
            if groups[-1] and atoms_in_group + len(atoms) > self.max_atoms:
                groups.append([])
                atoms_in_group = 0
            groups[-1].append(index)
            atoms_in_group += len(atoms)
        for group in groups:
            try:
                self._evaluate_group(structures, group, compute_stress, energy, forces, stress)
            except Exception:
                for index in group:
                    try:
                        self._evaluate_group(structures, [index], compute_stress, energy, forces, stress)
                    except Exception as exc:
                        errors[index] = f"{type(exc).__name__}: {exc}"
        failed = np.array([i in errors or not (np.isfinite(energy[i]) and np.isfinite(forces[i]).all())
                           for i in range(n)], dtype=bool)
        for index in np.flatnonzero(failed):
            errors.setdefault(int(index), "non-finite energy or forces")
        return StructureResults(energy, forces, stress, failed, errors)

    def _evaluate_group(self, structures: list[Atoms], group: list[int], compute_stress: bool, energy: np.ndarray,
                        forces: list[np.ndarray], stress: np.ndarray | None) -> None:
        if not group:
            return
        chosen = [structures[i] for i in group]
        sizes = [len(a) for a in chosen]
        pos = torch.as_tensor(np.concatenate([a.get_positions() for a in chosen]), dtype=self.dtype,
                              device=self.device)
        z = torch.as_tensor(np.concatenate([a.numbers for a in chosen]), dtype=torch.long, device=self.device)
        system_index = torch.repeat_interleave(torch.arange(len(chosen), device=self.device),
                                               torch.as_tensor(sizes, device=self.device))
        cell = torch.as_tensor(np.stack([np.asarray(a.cell[:]) for a in chosen]), dtype=self.dtype,
                               device=self.device)
        pbc = torch.as_tensor(np.stack([a.pbc for a in chosen]), device=self.device)
        out = self._forward(z, pos, system_index, cell, pbc, stress=compute_stress)
        splits = np.cumsum(sizes)[:-1]
        for slot, (index, f) in enumerate(zip(group, np.split(out["forces"].numpy(), splits), strict=True)):
            energy[index] = float(out["energy"][slot])
            forces[index] = f
            if stress is not None:
                stress[index] = out["stress"][slot].numpy()


def load_potential(path_or_name: str | os.PathLike, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float32, **kwargs) -> TorchPotential:
    """A :class:`TorchPotential` from a checkpoint path, or ``"default"`` for the shipped model.

    Used by the SPEC ``pesprobe:PATH``. Extra keyword arguments go to :class:`TorchPotential`.
    """
    path = DEFAULT_MODEL if str(path_or_name) == "default" else Path(path_or_name)
    if str(path_or_name) == "default" and not path.is_file():
        raise FileNotFoundError(f"no default model is shipped at {path}; pass a checkpoint path (pesprobe:PATH)")
    model, _ = load_checkpoint(path, map_location=device)
    return TorchPotential(model, device=device, dtype=dtype, name=kwargs.pop("name", f"pesprobe:{path.stem}"),
                          **kwargs)
