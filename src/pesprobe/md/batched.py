"""The batched engine: many molecules × seeds advanced together, one model call per step.

Works with any torch model meeting the contract of :mod:`pesprobe.md.torch_models`. Positions
and momenta are integrated in float64 (ASE units: Å, eV, amu; time in ASE units) whatever the
model's dtype. NVE: velocity Verlet. NVT: Langevin BAOAB, the noise of each trajectory drawn from
its own generator, so a trajectory does not depend on which others share its batch. Initial
velocities are drawn exactly as in the ASE engine (same seed, same numbers). A trajectory that
fails is taken out of the batch; the others go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pesprobe.md.analysis import LogBuffer
from pesprobe.md.ase_engine import initial_atoms
from pesprobe.md.checkpoint import read_checkpoint, write_checkpoint
from pesprobe.md.config import MDConfig
from pesprobe.md.monitor import Failure, FailureMonitor
from pesprobe.md.record import RawTrajectory
from pesprobe.md.systems import Molecule
from pesprobe.md.torch_models import model_device, model_dtype

#: Steps between two progress updates.
TICK_EVERY = 20


@dataclass
class _Batch:
    """Flat state of the active trajectories (float64)."""

    jobs: list[int]                 # job index of each active system
    numbers: torch.Tensor           # (n_atoms,) long
    system_index: torch.Tensor      # (n_atoms,) long, 0..n_active-1
    masses: torch.Tensor            # (n_atoms, 1) amu
    positions: torch.Tensor         # (n_atoms, 3) Å
    momenta: torch.Tensor           # (n_atoms, 3) amu·Å/(ASE time)
    forces: torch.Tensor            # (n_atoms, 3) eV/Å
    energy: torch.Tensor            # (n_active,) eV

    def keep(self, keep_systems: np.ndarray) -> _Batch:
        """The batch restricted to active systems ``keep_systems`` (positions in ``jobs``)."""
        keep_t = torch.as_tensor(keep_systems, dtype=torch.long, device=self.positions.device)
        atom_mask = torch.isin(self.system_index, keep_t)
        remap = torch.full((len(self.jobs),), -1, dtype=torch.long, device=self.positions.device)
        remap[keep_t] = torch.arange(len(keep_t), device=self.positions.device)
        return _Batch(jobs=[self.jobs[s] for s in keep_systems], numbers=self.numbers[atom_mask],
                      system_index=remap[self.system_index[atom_mask]], masses=self.masses[atom_mask],
                      positions=self.positions[atom_mask], momenta=self.momenta[atom_mask],
                      forces=self.forces[atom_mask], energy=self.energy[keep_t])


    def to(self, device: torch.device) -> _Batch:
        """The batch with every tensor on ``device``."""
        move = {name: getattr(self, name).to(device) for name in ("numbers", "system_index", "masses", "positions",
                                                                  "momenta", "forces", "energy")}
        return _Batch(jobs=list(self.jobs), **move)


@dataclass
class _RunState:
    """Everything a batched run needs to go on from ``next_step`` (what a checkpoint holds)."""

    batch: _Batch
    errors: dict[int, str]          # model errors at the last evaluated step, by active system
    next_step: int
    ticked: int
    monitor: FailureMonitor
    buffers: list[LogBuffer]
    frames: list[list]
    failures: dict[int, Failure]
    generator_states: list[torch.Tensor]
    elapsed: float                  # wall seconds spent before this process took over


_BATCH_TENSORS = ("numbers", "system_index", "masses", "positions", "momenta", "forces", "energy")


def _save_state(path: str | Path, key: str, state: _RunState) -> None:
    """Write ``state`` atomically as plain arrays and JSON (see :mod:`pesprobe.md.checkpoint`)."""
    arrays = {f"batch_{name}": getattr(state.batch, name).cpu().numpy() for name in _BATCH_TENSORS}
    arrays["batch_jobs"] = np.asarray(state.batch.jobs, dtype=np.int64)
    arrays.update({f"monitor_{k}": v for k, v in state.monitor.state().items()})
    samples = [buffer.samples() for buffer in state.buffers]
    arrays["log_counts"] = np.array([len(steps) for steps, _ in samples], dtype=np.int64)
    arrays["log_steps"] = np.concatenate([steps for steps, _ in samples])
    arrays["log_values"] = np.concatenate([values for _, values in samples]).reshape(-1, 2)
    frames = [f for job in state.frames for f in job]
    arrays["frame_counts"] = np.array([len(job) for job in state.frames], dtype=np.int64)
    arrays["frame_positions"] = np.concatenate([f.positions for f in frames] or [np.zeros((0, 3))])
    arrays["frame_momenta"] = np.concatenate([f.get_momenta() for f in frames] or [np.zeros((0, 3))])
    arrays["frame_info"] = np.array([[f.info[k] for k in _FRAME_INFO] for f in frames], dtype=np.float64).reshape(-1, 4)
    arrays["generator_states"] = np.stack([g.cpu().numpy() for g in state.generator_states])
    meta = {"errors": {str(s): text for s, text in state.errors.items()}, "next_step": state.next_step,
            "ticked": state.ticked, "elapsed": state.elapsed,
            "failures": {str(job): failure.to_json() for job, failure in state.failures.items()}}
    write_checkpoint(path, key, arrays, meta)


#: Fields of a frame's ``info`` kept by a checkpoint.
_FRAME_INFO = ("step", "time_fs", "energy_eV", "kinetic_eV")


def _load_state(path: str | Path, key: str, molecules: list[Molecule], config: MDConfig) -> _RunState | None:
    """The state in ``path`` if it exists, is readable and was written for ``key``; else None."""
    found = read_checkpoint(path, key)
    if found is None:
        return None
    arrays, meta = found
    from ase import Atoms

    jobs = [int(j) for j in arrays["batch_jobs"]]
    batch = _Batch(jobs=jobs, **{name: torch.as_tensor(arrays[f"batch_{name}"]) for name in _BATCH_TENSORS})
    monitor = FailureMonitor([molecules[j].numbers for j in jobs], [molecules[j].positions for j in jobs], config)
    monitor.restore({k.removeprefix("monitor_"): v for k, v in arrays.items() if k.startswith("monitor_")})
    buffers = [LogBuffer(config, m.n_atoms) for m in molecules]
    ends = np.cumsum(arrays["log_counts"])
    for buffer, stop, count in zip(buffers, ends, arrays["log_counts"]):
        buffer.restore(arrays["log_steps"][stop - count:stop], arrays["log_values"][stop - count:stop])
    frames: list[list] = []
    row = atom = 0
    for molecule, count in zip(molecules, arrays["frame_counts"]):
        frames.append([])
        for _ in range(int(count)):
            n = molecule.n_atoms
            frame = Atoms(numbers=molecule.numbers, positions=arrays["frame_positions"][atom:atom + n],
                          momenta=arrays["frame_momenta"][atom:atom + n])
            info = arrays["frame_info"][row]
            frame.info.update(step=int(info[0]), **{k: float(v) for k, v in zip(_FRAME_INFO[1:], info[1:])})
            frames[-1].append(frame)
            row, atom = row + 1, atom + n
    return _RunState(batch=batch, errors={int(s): t for s, t in meta["errors"].items()},
                     next_step=int(meta["next_step"]), ticked=int(meta["ticked"]), monitor=monitor, buffers=buffers,
                     frames=frames, failures={int(j): Failure(**f) for j, f in meta["failures"].items()},
                     generator_states=[torch.as_tensor(g) for g in arrays["generator_states"]],
                     elapsed=float(meta["elapsed"]))


def checkpoint_ticked(path: str | Path, key: str) -> int:
    """Batch steps that the run in state file ``path`` had reported to its progress callback (a run
    resumed from it ticks the rest: ``(n_steps - this) × trajectories``); 0 without a usable file."""
    found = read_checkpoint(path, key)
    return 0 if found is None else int(found[1].get("ticked", 0))


class BatchedIntegrator:
    """Integrates trajectories ``(molecule, seed)`` together under one torch model.

    Parameters
    ----------
    model : torch.nn.Module
        Contract model (energy [n_systems] eV, forces [n_atoms, 3] eV/Å).
    config : MDConfig
    device : str or torch.device, optional
        Where to integrate; defaults to the model's device.
    checkpoint_every_s : float
        Seconds between two state files when :meth:`run` is given a ``checkpoint`` path.
    """

    def __init__(self, model: torch.nn.Module, config: MDConfig, device: str | torch.device | None = None,
                 checkpoint_every_s: float = 60.0) -> None:
        self.model = model
        self.config = config
        self.device = torch.device(device) if device is not None else model_device(model)
        self.dtype = model_dtype(model)
        self.checkpoint_every_s = checkpoint_every_s

    def _evaluate(self, batch: _Batch) -> tuple[torch.Tensor, torch.Tensor, dict[int, str]]:
        """Energies (n_active,) and forces (n_atoms, 3), float64. If the batched call raises, each
        system is evaluated alone so the error is pinned on the systems that cause it."""
        try:
            return (*self._call(batch.positions, batch.system_index, batch.numbers), {})
        except Exception:  # noqa: BLE001 - find the culprit(s) below
            pass
        energy = torch.full((len(batch.jobs),), float("nan"), dtype=torch.float64, device=self.device)
        forces = torch.full_like(batch.positions, float("nan"))
        errors: dict[int, str] = {}
        for s in range(len(batch.jobs)):
            mask = batch.system_index == s
            try:
                e, f = self._call(batch.positions[mask], torch.zeros(int(mask.sum()), dtype=torch.long,
                                                                     device=self.device), batch.numbers[mask])
                energy[s], forces[mask] = e[0], f
            except Exception as exc:  # noqa: BLE001 - one bad system must not end the batch
                errors[s] = f"{type(exc).__name__}: {exc}".strip()
        return energy, forces, errors

    def _call(self, positions: torch.Tensor, system_index: torch.Tensor,
              numbers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(positions.to(self.dtype), None, system_index, numbers)
        energy = out["energy"].detach().to(torch.float64).reshape(-1)
        forces = out["forces"].detach().to(torch.float64)
        n_systems = int(system_index.max()) + 1
        if energy.shape != (n_systems,) or forces.shape != positions.shape:
            raise ValueError(f"model returned energy {tuple(energy.shape)} and forces {tuple(forces.shape)}, "
                             f"expected ({n_systems},) and {tuple(positions.shape)}")
        return energy, forces

    def _kinetic(self, batch: _Batch) -> torch.Tensor:
        per_atom = 0.5 * (batch.momenta ** 2).sum(dim=1) / batch.masses[:, 0]
        out = torch.zeros(len(batch.jobs), dtype=torch.float64, device=self.device)
        return out.index_add_(0, batch.system_index, per_atom)

    def run(self, molecules: list[Molecule], seeds: list[int], tick: Callable[[int], None] | None = None,
            checkpoint: str | Path | None = None, checkpoint_key: str = "") -> list[RawTrajectory]:
        """Integrate trajectory k = (``molecules[k]``, ``seeds[k]``) for every k.

        Parameters
        ----------
        molecules, seeds : lists of equal length
        tick : callable, optional
            Called with a number of trajectory-steps done (batch steps × trajectories of the
            batch, failed ones included), for progress bars: a run ticks ``len(molecules) ×
            n_steps`` in all.
        checkpoint : path, optional
            State file: written atomically every ``checkpoint_every_s`` seconds; a run started with
            an existing file whose key matches goes on from it (same trajectories, same numbers).
            The caller deletes it once the results are safe. Plain arrays and JSON (no pickle: see
            :mod:`pesprobe.md.checkpoint`).
        checkpoint_key : str
            Identity of this batch (settings, model, molecules, seeds); a file with another key is
            ignored and overwritten.

        Returns
        -------
        list of RawTrajectory
            In input order; wall time is the batch's, shared evenly.
        """
        from ase import units

        if len(molecules) != len(seeds):
            raise ValueError(f"got {len(molecules)} molecules and {len(seeds)} seeds; expected one seed each")
        cfg = self.config
        start = time.perf_counter()
        n_jobs = len(molecules)
        state = _load_state(checkpoint, checkpoint_key, molecules, cfg) if checkpoint is not None else None
        generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]
        if state is None:
            state = self._initial_state(molecules, seeds)
        else:
            state.batch = state.batch.to(self.device)
            for generator, rng_state in zip(generators, state.generator_states):
                generator.set_state(rng_state)
        batch = state.batch
        dt = cfg.timestep_fs * units.fs
        kT = units.kB * cfg.temperature_K
        c1 = float(np.exp(-cfg.friction_per_fs / units.fs * dt))
        errors: dict[int, str] = state.errors
        last_save = time.monotonic()
        for step in range(state.next_step, cfg.n_steps + 1):
            if step > 0:
                self._advance(batch, dt, c1, kT, generators)
                batch.energy, batch.forces, errors = self._evaluate(batch)
                batch.momenta += 0.5 * dt * batch.forces                     # closing half kick
            kinetic = self._kinetic(batch)
            found = state.monitor.check(step, batch.positions.cpu().numpy(), batch.energy.cpu().numpy(),
                                        kinetic.cpu().numpy(), batch.forces.cpu().numpy())
            for s, text in errors.items():
                found[s] = Failure(step, "calculator_error", text, step * cfg.timestep_fs)
            self._record(batch, step, kinetic, found, state.buffers, state.frames, molecules)
            if found:
                for s, failure in found.items():
                    state.failures[batch.jobs[s]] = failure
                keep = np.array(sorted(set(range(len(batch.jobs))) - set(found)), dtype=np.int64)
                if len(keep) == 0:
                    break
                batch = batch.keep(keep)
                state.monitor = state.monitor.subset(keep)
            if tick is not None and step - state.ticked >= TICK_EVERY:
                tick((step - state.ticked) * n_jobs)
                state.ticked = step
            if checkpoint is not None and time.monotonic() - last_save >= self.checkpoint_every_s:
                state.batch, state.next_step, state.errors = batch, step + 1, {}
                state.generator_states = [g.get_state() for g in generators]
                state.elapsed = state.elapsed + time.perf_counter() - start
                start = time.perf_counter()
                _save_state(checkpoint, checkpoint_key, state)
                last_save = time.monotonic()
        if tick is not None:
            tick((cfg.n_steps - state.ticked) * n_jobs)
        failures = state.failures
        wall = (state.elapsed + time.perf_counter() - start) / n_jobs
        return [RawTrajectory(log=state.buffers[k].log(), failure=failures.get(k),
                              steps_done=failures[k].step if k in failures else cfg.n_steps,
                              frames=state.frames[k], wall_seconds=wall) for k in range(n_jobs)]

    def _initial_state(self, molecules: list[Molecule], seeds: list[int]) -> _RunState:
        """Positions, Maxwell–Boltzmann momenta and first forces of every trajectory (step 0 to do)."""
        cfg, dev = self.config, self.device
        atoms0 = [initial_atoms(m, s, cfg)[0] for m, s in zip(molecules, seeds)]
        cat = lambda arrays: torch.as_tensor(np.concatenate(arrays), device=dev)  # noqa: E731
        batch = _Batch(jobs=list(range(len(molecules))), numbers=cat([m.numbers for m in molecules]).long(),
                       system_index=cat([np.full(m.n_atoms, k) for k, m in enumerate(molecules)]).long(),
                       masses=cat([a.get_masses() for a in atoms0]).double()[:, None],
                       positions=cat([m.positions for m in molecules]).double(),
                       momenta=cat([a.get_momenta() for a in atoms0]).double(),
                       forces=torch.empty(0), energy=torch.empty(0))
        batch.energy, batch.forces, errors = self._evaluate(batch)
        return _RunState(batch=batch, errors=errors, next_step=0, ticked=0,
                         monitor=FailureMonitor([m.numbers for m in molecules], [m.positions for m in molecules], cfg),
                         buffers=[LogBuffer(cfg, m.n_atoms) for m in molecules],
                         frames=[[] for _ in molecules], failures={}, generator_states=[], elapsed=0.0)

    def _advance(self, batch: _Batch, dt: float, c1: float, kT: float, generators: list[torch.Generator]) -> None:
        """A step up to the new positions (NVE: B A; NVT: B A O A); the caller then evaluates the
        forces there and applies the closing half kick B."""
        if self.config.ensemble == "nve":
            batch.momenta += 0.5 * dt * batch.forces
            batch.positions += dt * batch.momenta / batch.masses
            return
        batch.momenta += 0.5 * dt * batch.forces                        # B
        batch.positions += 0.5 * dt * batch.momenta / batch.masses      # A
        sizes = torch.bincount(batch.system_index, minlength=len(batch.jobs)).tolist()
        noise = torch.cat([torch.randn((n, 3), generator=generators[j], dtype=torch.float64, device=self.device)
                           for j, n in zip(batch.jobs, sizes)])
        batch.momenta.mul_(c1).add_(torch.sqrt((1.0 - c1 ** 2) * batch.masses * kT) * noise)  # O
        batch.positions += 0.5 * dt * batch.momenta / batch.masses      # A

    def _record(self, batch: _Batch, step: int, kinetic: torch.Tensor, found: dict[int, Failure],
                buffers: list[LogBuffer], frames: list[list], molecules: list[Molecule]) -> None:
        """Log energies (and snapshots) of the active systems at ``step`` (after the closing half kick)."""
        cfg = self.config
        log_now = step % cfg.log_every == 0
        save_now = bool(cfg.save_every) and step % cfg.save_every == 0
        if not (log_now or save_now or found):
            return
        energy = batch.energy.cpu().numpy()
        kin = kinetic.cpu().numpy()
        if save_now or (found and cfg.save_every):
            from ase import Atoms

            positions = batch.positions.cpu().numpy()
            momenta = batch.momenta.cpu().numpy()
            index = batch.system_index.cpu().numpy()
        for s, job in enumerate(batch.jobs):
            if log_now or s in found:
                buffers[job].add(step, float(energy[s]), float(kin[s]))
            if save_now or (s in found and cfg.save_every):
                mask = index == s
                frame = Atoms(numbers=molecules[job].numbers, positions=positions[mask], momenta=momenta[mask])
                frame.info.update(step=step, time_fs=step * cfg.timestep_fs, energy_eV=float(energy[s]),
                                  kinetic_eV=float(kin[s]))
                frames[job].append(frame)
