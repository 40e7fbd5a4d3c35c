"""Any torch-sim model as a batched pesprobe :class:`~pesprobe.potentials.base.Potential`.

torch-sim (``pip install pesprobe[torchsim]``, package ``torch-sim-atomistic``) models implement
``ModelInterface``: ``model(state) -> {"energy": (n_systems,), "forces": (n_atoms, 3), ...}`` over a
flat concatenation of systems (a ``SimState``: positions in Å, cell vectors as *columns*
``(n_systems, 3, 3)``, ``system_idx``, ``atomic_numbers``, one ``pbc`` flag for all systems; energies
in eV, forces in eV/Å). MACE, SevenNet, ORB, MatterSim, fairchem and metatomic models ship such
wrappers in torch-sim.

:class:`TorchSimPotential` puts all frames of a scan (:meth:`~TorchSimPotential.predict`) or of
several scans (:meth:`~TorchSimPotential.predict_many`) into as few forward calls as fit in
``max_atoms`` atoms. It is also a ``torch.nn.Module`` meeting the contract of
:mod:`pesprobe.md.torch_models` (``forward(positions, cell, system_index, atomic_numbers)``), so
``pesprobe md`` runs it in the batched engine, and ``bsct`` and the leaderboard take it as any
Potential. SPEC: ``torchsim:MODULE:FACTORY`` (FACTORY returns a torch-sim model).

torch-sim itself is imported only to build a ``SimState``; this module imports without it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pesprobe.potentials.base import PotentialError, Predictions

#: Atoms per forward call unless told otherwise (a single larger frame still goes alone).
DEFAULT_MAX_ATOMS = 4096


def torchsim_version() -> str | None:
    """The installed ``torch-sim-atomistic`` version, or None when it is not installed."""
    try:
        return importlib.metadata.version("torch-sim-atomistic")
    except importlib.metadata.PackageNotFoundError:
        return None


def _plain(value: Any) -> bytes | None:
    """Bytes of a setting that can change results (numbers, strings, tensors, dtypes), else None."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        flat = flat.to(torch.float64 if flat.is_floating_point() or flat.is_complex() else torch.int64)
        return str(value.dtype).encode() + str(tuple(value.shape)).encode() + flat.numpy().tobytes()
    if isinstance(value, bool | int | float | str | type(None) | torch.dtype | torch.device):
        return repr(value).encode()
    if isinstance(value, tuple | list) and all(_plain(v) is not None for v in value):
        return b"[" + b",".join(_plain(v) for v in value) + b"]"
    return None


def model_digest(model: torch.nn.Module) -> str:
    """SHA-256 over every submodule's class, its plain settings (tensor attributes such as a
    Lennard-Jones ``sigma`` that are not buffers, numbers, strings, flags), the state dict and the
    source file of the model class: what can change a torch-sim model's results."""
    from pesprobe.potentials.ase_adapter import source_digest

    h = hashlib.sha256(source_digest(type(model)).encode())
    for name, module in model.named_modules():
        h.update(f"{name}:{type(module).__module__}.{type(module).__qualname__}".encode())
        for key, value in sorted(vars(module).items()):
            if key.startswith("_") and key not in ("_dtype", "_device", "_compute_forces", "_compute_stress"):
                continue
            if (data := _plain(value)) is not None:
                h.update(key.encode() + b"=" + data)
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode() + (_plain(value) or b""))
    return h.hexdigest()


class TorchSimPotential(torch.nn.Module):
    """A torch-sim ``ModelInterface`` as a batched pesprobe Potential and MD contract model.

    Parameters
    ----------
    model : torch-sim ModelInterface
        Any object with ``device``, ``dtype`` and ``forward(SimState) -> {"energy", "forces"}``.
        Its ``compute_forces`` is switched on if it can be.
    max_atoms : int
        Most atoms per forward call (bounds memory); a single larger system still goes alone.
    name : str, optional
        Name in reports (default ``torchsim:<model class>``).

    Notes
    -----
    torch-sim 0.3 has one ``pbc`` flag per state: frames periodic in some directions only fail with
    that reason. Molecules get a zero cell and ``pbc=False``, as torch-sim's own ``atoms_to_state``.
    """

    def __init__(self, model: torch.nn.Module, max_atoms: int = DEFAULT_MAX_ATOMS, name: str | None = None) -> None:
        super().__init__()
        if max_atoms < 1:
            raise ValueError(f"max_atoms must be >= 1, got {max_atoms}")
        for attr in ("device", "dtype", "forward"):
            if not hasattr(model, attr):
                raise PotentialError(f"{type(model).__name__} is not a torch-sim model: it has no {attr!r}")
        if not getattr(model, "compute_forces", True):
            try:
                model.compute_forces = True
            except (NotImplementedError, AttributeError):
                raise PotentialError(f"{type(model).__name__} does not compute forces") from None
        self.model = model
        self.max_atoms = max_atoms
        self.name = name or f"torchsim:{type(model).__name__}"
        # For pesprobe.md.torch_models: model_dtype/model_device read the first parameter or
        # buffer (a Lennard-Jones model has none), model_identity hashes the state dict.
        self.register_buffer("dtype_probe", torch.zeros(0, dtype=model.dtype, device=model.device))
        self.register_buffer("settings_digest", torch.tensor(list(bytes.fromhex(model_digest(model))),
                                                             dtype=torch.uint8, device=model.device))

    # ------------------------------------------------------------------ Potential

    def identity(self) -> str:
        """Model class, settings, weights and source (:func:`model_digest`), torch-sim version (cache key)."""
        return f"torchsim:{torchsim_version()}:{type(self.model).__qualname__}:{model_digest(self.model)}"

    def predict(self, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray | None = None,
                pbc: np.ndarray | None = None) -> Predictions:
        """Energies (eV) and forces (eV/Å) of ``positions`` (n_frames, n_atoms, 3), batched; never
        raises for a bad frame (a call that raises is retried frame by frame)."""
        return self.predict_many([(numbers, positions, cell, pbc)])[0]

    def predict_many(self, batches: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]
                     ) -> list[Predictions]:
        """:meth:`predict` of several scans ``(numbers, positions, cell, pbc)`` sharing forward calls.

        Frames of all scans are packed in order into calls of at most ``max_atoms`` atoms (frames
        of periodic and non-periodic scans never share a call, since torch-sim has one ``pbc``
        flag per state). Results are the same as scan by scan up to the model's own batch
        dependence (none for torch-sim's pair potentials)."""
        start = time.perf_counter()
        items = []  # (batch, frame, n_atoms, periodic flag or error)
        results = []
        for b, (numbers, positions, cell, pbc) in enumerate(batches):
            positions = np.asarray(positions)
            n_frames, n_atoms = positions.shape[:2]
            results.append((np.full(n_frames, np.nan), np.full((n_frames, n_atoms, 3), np.nan), {}))
            flags = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool).reshape(3)
            mode: bool | str = bool(flags.all())
            if flags.any() and not flags.all():
                mode = f"torch-sim takes pbc all or nothing, got pbc={flags.tolist()}"
            elif mode and cell is None:
                mode = "periodic frames need a cell"
            items.extend((b, f, n_atoms, mode) for f in range(n_frames))
        calls: list[list[tuple]] = []
        atoms = 0
        for item in items:
            if isinstance(item[3], str):
                results[item[0]][2][item[1]] = item[3]
                continue
            if calls and calls[-1] and (atoms + item[2] > self.max_atoms or calls[-1][-1][3] != item[3]):
                calls.append([])
                atoms = 0
            if not calls:
                calls.append([])
            calls[-1].append(item)
            atoms += item[2]
        for call in calls:
            try:
                self._predict_call(batches, call, results)
            except Exception:  # noqa: BLE001 - pin the error on the frames that cause it
                for item in call:
                    try:
                        self._predict_call(batches, [item], results)
                    except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the scan
                        results[item[0]][2][item[1]] = f"{type(exc).__name__}: {exc}".strip()
        seconds = time.perf_counter() - start
        out = []
        for energy, forces, errors in results:
            pred = Predictions.from_arrays(energy, forces, seconds=seconds / max(len(batches), 1))
            for frame, text in errors.items():
                pred.failed[frame] = True
                pred.energy[frame] = np.nan
                pred.forces[frame] = np.nan
            pred.errors.update(errors)
            out.append(pred)
        return out

    def _predict_call(self, batches: Sequence[tuple], call: list[tuple], results: list[tuple]) -> None:
        sizes = [item[2] for item in call]
        periodic = bool(call[0][3])
        positions = np.concatenate([np.asarray(batches[b][1])[f] for b, f, _, _ in call])
        numbers = np.concatenate([np.asarray(batches[b][0]) for b, _, _, _ in call])
        cells = np.stack([np.asarray(batches[b][2], dtype=float).reshape(3, 3) if periodic else np.zeros((3, 3))
                          for b, _, _, _ in call])
        system_index = np.repeat(np.arange(len(call)), sizes)
        energy, forces = self._call(torch.as_tensor(positions), torch.as_tensor(cells), periodic,
                                    torch.as_tensor(system_index), torch.as_tensor(numbers))
        energy = energy.cpu().numpy()
        forces = np.split(forces.cpu().numpy(), np.cumsum(sizes)[:-1])
        for slot, (b, f, _, _) in enumerate(call):
            results[b][0][f] = energy[slot]
            results[b][1][f] = forces[slot]

    # ------------------------------------------------------------------ torch-sim call

    def _call(self, positions: torch.Tensor, cells_rows: torch.Tensor, periodic: bool, system_index: torch.Tensor,
              numbers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward call of the torch-sim model on a flat batch; energies (n_systems,) and forces
        (n_atoms, 3) in float64. ``cells_rows``: cell vectors as rows (ASE, pesprobe)."""
        import torch_sim as ts
        from ase.data import atomic_masses

        device, dtype = self.model.device, self.model.dtype
        n_systems = int(cells_rows.shape[0])
        z = numbers.to(device=device, dtype=torch.long)
        state = ts.SimState(positions=positions.to(device=device, dtype=dtype),
                            masses=torch.as_tensor(atomic_masses, dtype=dtype, device=device)[z],
                            cell=cells_rows.to(device=device, dtype=dtype).transpose(1, 2).contiguous(),
                            pbc=periodic, atomic_numbers=z.to(torch.int),
                            system_idx=system_index.to(device=device, dtype=torch.long))
        out = self.model(state)
        if "forces" not in out:
            raise PotentialError(f"{type(self.model).__name__} returned no forces (keys {sorted(out)})")
        energy = out["energy"].detach().to(torch.float64).reshape(-1)
        forces = out["forces"].detach().to(torch.float64)
        if energy.shape != (n_systems,) or forces.shape != (positions.shape[0], 3):
            raise PotentialError(f"{type(self.model).__name__} returned energy {tuple(energy.shape)} and forces "
                                 f"{tuple(forces.shape)}, expected ({n_systems},) and ({positions.shape[0]}, 3)")
        return energy, forces

    def forward(self, positions: torch.Tensor, cell: torch.Tensor | None, system_index: torch.Tensor,
                atomic_numbers: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batched-MD contract (:mod:`pesprobe.md.torch_models`): energies (n_systems,) eV and forces
        (n_atoms, 3) eV/Å of a flat batch; ``cell`` (n_systems, 3, 3) as rows, or None for molecules.
        Systems go to the model in calls of at most ``max_atoms`` atoms."""
        system_index = system_index.long()
        n_systems = int(system_index.max()) + 1 if system_index.numel() else 0
        periodic = cell is not None
        cells = cell if periodic else torch.zeros(n_systems, 3, 3, dtype=positions.dtype, device=positions.device)
        sizes = torch.bincount(system_index, minlength=n_systems).tolist()
        energy = torch.full((n_systems,), float("nan"), dtype=torch.float64, device=positions.device)
        forces = torch.full((positions.shape[0], 3), float("nan"), dtype=torch.float64, device=positions.device)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        first = 0
        while first < n_systems:  # systems are contiguous (the contract): pack whole systems per call
            last = first + 1
            while last < n_systems and offsets[last + 1] - offsets[first] <= self.max_atoms:
                last += 1
            rows = slice(int(offsets[first]), int(offsets[last]))
            e, f = self._call(positions[rows], cells[first:last], periodic, system_index[rows] - first,
                              atomic_numbers[rows])
            energy[first:last] = e.to(energy.device)
            forces[rows] = f.to(forces.device)
            first = last
        return {"energy": energy, "forces": forces}


def as_torchsim_potential(obj: Any, name: str | None = None, max_atoms: int = DEFAULT_MAX_ATOMS) -> TorchSimPotential:
    """``obj`` if it already is a :class:`TorchSimPotential`, else ``TorchSimPotential(obj)``
    (what the SPEC ``torchsim:MODULE:FACTORY`` does with FACTORY's result)."""
    if isinstance(obj, TorchSimPotential):
        return obj
    return TorchSimPotential(obj, max_atoms=max_atoms, name=name)
