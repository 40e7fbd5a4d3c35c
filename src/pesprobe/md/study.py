"""``run_stability``: the MD stability test of one potential on a set of molecules."""

from __future__ import annotations

import csv
import hashlib
import io
import math
import multiprocessing as mp
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pesprobe.data.atomic import atomic_write, atomic_write_json, json_safe
from pesprobe.data.scan import ScanSet
from pesprobe.md.ase_engine import run_ase_trajectory
from pesprobe.md.config import MDConfig
from pesprobe.md.record import RawTrajectory, RunStore, TrajectoryResult, finish, measure, trajectory_fingerprint
from pesprobe.md.systems import Molecule, load_molecules, molecules_from_scans
from pesprobe.potentials.elements import UnseenElementCheck

ENGINES = ("auto", "ase", "batched")
# Worker-process state for parallel ASE trajectories (inherited through fork).
_WORKER: dict[str, Any] = {}


@dataclass
class StabilityResult:
    """All trajectories of one potential, and their aggregates.

    Attributes
    ----------
    potential, identity, engine : str
        Display name, cache identity and the engine used (``"ase"`` or ``"batched"``).
    config : MDConfig
    trajectories : list of TrajectoryResult
        One per (molecule, seed), molecules in input order, seeds in config order.
    wall_seconds : float
        Sum of the trajectories' wall times, s (stored times for resumed ones).
    unseen_elements : dict[str, list[str]]
        ``{molecule id: symbols}`` of the elements the potential never saw in training (an empty
        list when all were seen or the potential does not say; see :mod:`pesprobe.potentials.elements`).
    """

    potential: str
    identity: str
    engine: str
    config: MDConfig
    trajectories: list[TrajectoryResult] = field(default_factory=list)
    wall_seconds: float = 0.0
    unseen_elements: dict[str, list[str]] = field(default_factory=dict)

    @property
    def molecules(self) -> dict[str, dict[str, float]]:
        """``{molecule id: measures}``: each trajectory measure's mean over seeds (NaN-aware; the
        mean of ``failed`` is called ``failure_fraction``), plus ``n_seeds`` and ``wall_seconds`` (sum)."""
        groups: dict[str, list[TrajectoryResult]] = {}
        for t in self.trajectories:
            groups.setdefault(t.molecule, []).append(t)
        out = {}
        for mol, runs in groups.items():
            names = runs[0].measures.keys()
            agg = {}
            for name in names:
                values = np.array([r.measures[name] for r in runs], dtype=float)
                key = "failure_fraction" if name == "failed" else name
                agg[key] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
            agg["n_seeds"] = float(len(runs))
            agg["wall_seconds"] = float(sum(r.wall_seconds for r in runs))
            out[mol] = agg
        return out

    @property
    def summary(self) -> dict[str, Any]:
        """Overall figures: trajectories, failures by criterion, mean of each instability measure, and
        ``unseen_elements`` of the molecules with elements never seen in training."""
        criteria: dict[str, int] = {}
        for t in self.trajectories:
            if t.failure is not None:
                criteria[t.failure.criterion] = criteria.get(t.failure.criterion, 0) + 1
        means = {}
        for name in (self.trajectories[0].measures if self.trajectories else {}):
            values = np.array([t.measures.get(name, math.nan) for t in self.trajectories], dtype=float)
            means[name] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
        return {"n_trajectories": len(self.trajectories), "n_failed": sum(t.failed for t in self.trajectories),
                "failures_by_criterion": criteria, "mean": means, "wall_seconds": self.wall_seconds,
                "unseen_elements": {mol: symbols for mol, symbols in self.unseen_elements.items() if symbols}}

    def write(self, out: str | Path) -> None:
        """``results.json`` (everything), ``trajectories.csv`` and ``molecules.csv``, atomically; each
        molecule's entry carries its ``unseen_elements`` (a list in JSON, space-separated in CSV)."""
        out = Path(out)
        molecules = {mol: {**values, "unseen_elements": self.unseen_elements.get(mol, [])}
                     for mol, values in self.molecules.items()}
        atomic_write_json(out / "results.json", json_safe({
            "potential": self.potential, "identity": self.identity, "engine": self.engine,
            "config": self.config.to_dict(), "summary": self.summary, "molecules": molecules,
            "trajectories": [t.to_json() for t in self.trajectories]}))
        atomic_write(out / "trajectories.csv", _csv([t.row() for t in self.trajectories]))
        rows = [{"molecule": k, **v, "unseen_elements": " ".join(v["unseen_elements"])} for k, v in molecules.items()]
        atomic_write(out / "molecules.csv", _csv(rows))



def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


@dataclass
class _Engine:
    """A resolved potential: a torch contract model (batched) or an ASE calculator factory, and the
    atomic numbers it was trained on when it says (None: unknown)."""

    name: str
    identity: str
    kind: str
    model: Any = None
    factory: Callable[[], Any] | None = None
    training_elements: frozenset[int] | None = None


def _is_torch_model(obj: Any) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(obj, torch.nn.Module)


def resolve_engine(potential: Any, engine: str = "auto", name: str | None = None) -> _Engine:
    """Decide how to run ``potential``.

    Parameters
    ----------
    potential : str, torch.nn.Module, ASE calculator or callable
        A SPEC (``gfn2-xtb``, ``MODULE:FACTORY``, ``pesprobe:PATH`` ...), a contract torch model,
        a batched Potential wrapping one (e.g. :func:`pesprobe.models.load_potential`'s
        result: its ``model`` runs), an ASE calculator instance (reset before each trajectory),
        or a zero-argument factory of any of these.
    engine : str
        ``"auto"`` (batched for torch models, ASE otherwise), ``"ase"`` or ``"batched"``.
    name : str, optional
        Display name.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    from pesprobe.potentials.ase_adapter import describe_calculator

    obj, label = potential, name
    if isinstance(potential, str):
        from pesprobe.potentials.registry import BUILTIN_FACTORIES, calculator_factory

        label = name or potential.strip()
        if potential.strip().lower().startswith("pesprobe:"):
            obj = _pesprobe_model(potential.strip().split(":", 1)[1]) or calculator_factory(potential)
        else:
            obj = calculator_factory(potential)
            if engine != "ase" and potential.strip().lower() not in BUILTIN_FACTORIES:
                probe = obj()
                obj = probe if _is_torch_model(probe) else obj
    elif _is_torch_model(getattr(potential, "model", None)) and not _is_torch_model(potential):
        obj = potential.model  # a batched Potential around a torch model (TorchPotential)
        label = name or getattr(potential, "name", None)
    elif callable(potential) and not _is_torch_model(potential) and (
            isinstance(potential, type) or not hasattr(potential, "get_potential_energy")):  # a class is a factory
        probe = potential()
        obj = probe if _is_torch_model(probe) else potential
    if _is_torch_model(obj):
        from pesprobe.md.torch_models import ModelCalculator, model_identity

        known = getattr(obj, "training_elements", None)
        if engine == "ase":
            model = obj
            return _Engine(label or type(model).__name__, model_identity(model), "ase",
                           factory=lambda: ModelCalculator(model), training_elements=known)
        return _Engine(label or type(obj).__name__, model_identity(obj), "batched", model=obj,
                       training_elements=known)
    if engine == "batched":
        raise ValueError(f"potential {label or obj!r} is not a torch model; the batched engine needs one "
                         "(use engine='ase')")
    if hasattr(obj, "get_potential_energy") and not isinstance(obj, type):
        instance = obj

        def factory():
            if hasattr(instance, "reset"):
                instance.reset()
            return instance

        return _Engine(label or type(obj).__name__, describe_calculator(obj), "ase", factory=factory,
                       training_elements=getattr(obj, "training_elements", None))
    sample = obj()
    ident = f"{label or getattr(obj, '__qualname__', 'factory')}|{describe_calculator(sample)}"
    return _Engine(label or getattr(obj, "__name__", type(sample).__name__), ident, "ase", factory=obj,
                   training_elements=getattr(sample, "training_elements", None))


def _pesprobe_model(path: str) -> Any:
    """The torch model inside a pesprobe checkpoint, or None if it exposes none."""
    from pesprobe.models import load_potential

    potential = load_potential(path)
    model = getattr(potential, "model", None)
    return model if _is_torch_model(model) else None


def _as_molecules(molecules: str | Path | ScanSet | list[Molecule]) -> list[Molecule]:
    if isinstance(molecules, str | Path):
        return load_molecules(molecules)
    if isinstance(molecules, ScanSet):
        return molecules_from_scans(molecules)
    mols = list(molecules)
    if mols and not isinstance(mols[0], Molecule):
        return molecules_from_scans(mols)
    return mols


def run_stability(potential: Any, molecules: str | Path | ScanSet | list[Molecule], config: MDConfig | None = None,
                  out: str | Path | None = None, engine: str = "auto", jobs: int = 1, batch_size: int | None = None,
                  device: str | None = None, plots: bool = True, progress: bool = True, resume: bool = True,
                  name: str | None = None, cluster: Any = None) -> StabilityResult:
    """Run the MD stability test: one trajectory per molecule and seed.

    Parameters
    ----------
    potential : str, torch.nn.Module, ASE calculator or callable
        See :func:`resolve_engine`.
    molecules : path, ScanSet or list of Molecule
        An extended XYZ file, a scan set (its unperturbed geometries), or molecules.
    config : MDConfig, optional
        Settings (default: NVE, 500 K, 0.5 fs, 10 ps, seeds 0, 1, 2).
    out : path, optional
        Output folder: ``results.json``, ``trajectories.csv``, ``molecules.csv``, ``runs/`` (per
        trajectory: JSON result and ``.npz`` energy log), ``traj/`` (extended XYZ every
        ``save_every`` steps), ``plots/`` (energy and temperature vs time per molecule).
    engine : str
        ``"auto"``, ``"ase"`` or ``"batched"`` (see :func:`resolve_engine`).
    jobs : int
        Worker processes for the ASE engine (one trajectory each; needs the ``fork`` start method).
    batch_size : int, optional
        Batched engine: at most this many trajectories per batch (default: all in one).
    device : str, optional
        Batched engine: torch device (default: the model's).
    plots : bool
        Write the figures (requires ``out``).
    progress : bool
        Show a progress bar: trajectory-steps of the whole run (stored and checkpointed work
        included, so a resumed run starts where it stopped) with rate and ETA, and which
        trajectory or batch is running with its fs done.
    resume : bool
        Reuse finished trajectories in ``out/runs`` whose settings, potential and molecule match.
    name : str, optional
        Display name of the potential.
    cluster : str or ClusterExecutor, optional
        Integrate on a Dask cluster (``"local:N"``, ``"tcp://HOST:PORT"`` or an open
        :class:`~pesprobe.evaluate.executors.ClusterExecutor`): one task per trajectory (ASE
        engine) or per batch (batched engine; no mid-batch state file then). Only this process
        writes ``out``; see :mod:`pesprobe.evaluate.executors`.

    Returns
    -------
    StabilityResult

    Notes
    -----
    A molecule with elements that the potential never saw in training (when it says which it saw,
    as pesprobe models do) is simulated like any other, with one
    :class:`~pesprobe.potentials.elements.UnseenElementWarning` per new set of such elements; the
    result records them per molecule (``unseen_elements``).
    """
    from pesprobe.evaluate.executors import cluster_executor, parse_cluster

    if isinstance(cluster, str):
        parse_cluster(cluster)
    config = config or MDConfig()
    eng = resolve_engine(potential, engine, name)
    mols = _as_molecules(molecules)
    if not mols:
        raise ValueError("no molecules to simulate")
    keys = [m.key for m in mols]
    if len(set(keys)) != len(keys):
        raise ValueError("molecule ids must be unique (after making them file-safe)")
    check = UnseenElementCheck()
    unseen = {m.id: check(eng.name, eng.training_elements, m.numbers) for m in mols}
    store = RunStore(out) if out is not None else None
    tasks = [(m, s) for m in mols for s in config.seeds]
    prints = {(m.key, s): trajectory_fingerprint(config, s, eng.identity, m) for m, s in tasks}
    done: dict[tuple[str, int], TrajectoryResult] = {}
    if store is not None and resume:
        for m, s in tasks:
            key = RunStore.key(m, s)
            found = store.load(key, prints[(m.key, s)])
            if found is not None:  # measured again: the analysis-only settings may have changed
                found.measures = measure(store.load_log(key), m.n_atoms, config, found.failure)
                done[(m.key, s)] = found
    todo = [(m, s) for m, s in tasks if (m.key, s) not in done]
    chunks = _chunks(todo, batch_size, prints) if eng.kind == "batched" else []
    checkpointed = 0  # trajectory-steps an interrupted batch already did (its state file goes on from them)
    if store is not None and chunks and cluster is None:  # cluster tasks keep no state files
        from pesprobe.md.batched import checkpoint_ticked

        checkpointed = sum(checkpoint_ticked(store.checkpoint_path(key), key) * len(chunk) for chunk, key in chunks)
    spec = potential.strip() if isinstance(potential, str) else None
    with cluster_executor(cluster if todo else None) as executor, \
            _Progress(f"MD {eng.name}", len(tasks), len(done), config, checkpointed,
                      enabled=progress and bool(todo)) as bar:
        for (m, s), raw in _integrate(eng, todo, config, jobs, device, bar, store, chunks, executor, spec):
            result = finish(raw, m, s, config, eng.name, eng.kind, prints[(m.key, s)])
            if store is not None:
                store.save(result, raw)
            done[(m.key, s)] = result
    if store is not None:
        store.clear_checkpoints()
    trajectories = [done[(m.key, s)] for m, s in tasks]
    result = StabilityResult(potential=eng.name, identity=eng.identity, engine=eng.kind, config=config,
                             trajectories=trajectories, wall_seconds=float(sum(t.wall_seconds for t in trajectories)),
                             unseen_elements=unseen)
    if out is not None:
        result.write(out)
        if plots:
            from pesprobe.md.plots import plot_molecule

            for m in mols:
                plot_molecule(store, [done[(m.key, s)] for s in config.seeds], config,
                              Path(out) / "plots" / f"{m.key}.png")
    return result


class _Progress:
    """The progress bar of a run: trajectory-steps of the whole run (what is stored or checkpointed
    counts from the start, so a resumed run starts where it stopped), tqdm's rate and ETA, and in
    the postfix how many trajectories are done and which trajectory (or batch) runs, with its fs.

    A *unit* is what one engine call advances: one trajectory (ASE) or a batch of ``size``
    trajectories moving together (batched); :meth:`advance` takes its trajectory-steps.
    """

    def __init__(self, desc: str, n_tasks: int, n_done: int, config: MDConfig, checkpointed: int = 0,
                 enabled: bool = True) -> None:
        self.n_tasks, self.n_done, self.config = n_tasks, n_done, config
        self.length_fs = config.n_steps * config.timestep_fs
        self.units: dict[str, list[int]] = {}  # label -> [trajectory-steps done, trajectories in it]
        self.bar = tqdm(total=n_tasks * config.n_steps, initial=n_done * config.n_steps + checkpointed, desc=desc,
                        unit="step", unit_scale=True, disable=not enabled, dynamic_ncols=True,
                        postfix=f"{n_done}/{n_tasks} trajectories done")

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def start(self, label: str, size: int = 1, steps_done: int = 0) -> None:
        """Unit ``label`` of ``size`` trajectories begins (``steps_done`` of them already done)."""
        self.units[label] = [steps_done, size]
        self._postfix()

    def advance(self, label: str, steps: int) -> None:
        """``steps`` more trajectory-steps of unit ``label``."""
        unit = self.units.setdefault(label, [0, 1])
        unit[0] += steps
        self._postfix()
        self.bar.update(steps)

    def finish(self, label: str, n_trajectories: int = 1) -> None:
        """Unit ``label`` is over; ``n_trajectories`` more trajectories are done."""
        self.units.pop(label, None)
        self.n_done += n_trajectories
        self._postfix()
        self.bar.refresh()

    def _postfix(self) -> None:
        parts = [f"{self.n_done}/{self.n_tasks} trajectories done"]
        shown = list(self.units.items())[:2]
        for label, (steps, size) in shown:
            fs = min(steps / max(size, 1), self.config.n_steps) * self.config.timestep_fs
            parts.append(f"{label} {fs:.0f}/{self.length_fs:.0f} fs")
        if len(self.units) > len(shown):
            parts.append(f"+{len(self.units) - len(shown)} running")
        self.bar.set_postfix_str(", ".join(parts), refresh=False)


def _label(m: Molecule, seed: int) -> str:
    return f"{m.id} seed {seed}"


def _chunks(todo: list[tuple[Molecule, int]], batch_size: int | None,
            prints: dict[tuple[str, int], str]) -> list[tuple[list[tuple[Molecule, int]], str]]:
    """The batches of the batched engine and their keys (identity of a batch's state file)."""
    size = batch_size or len(todo) or 1
    out = []
    for start in range(0, len(todo), size):
        chunk = todo[start:start + size]
        key = hashlib.sha256("|".join(prints[(m.key, s)] for m, s in chunk).encode()).hexdigest()[:20]
        out.append((chunk, key))
    return out


def _integrate(eng: _Engine, todo: list[tuple[Molecule, int]], config: MDConfig, jobs: int, device: str | None,
               progress: _Progress, store: RunStore | None,
               chunks: list[tuple[list[tuple[Molecule, int]], str]], executor: Any = None, spec: str | None = None
               ) -> Iterator[tuple[tuple[Molecule, int], RawTrajectory]]:
    if not todo:
        return
    if executor is not None:
        from pesprobe.evaluate.executors import md_outcomes

        yield from md_outcomes(executor, eng, spec, todo, chunks, config, device, progress)
        return
    if eng.kind == "batched":
        from pesprobe.md.batched import BatchedIntegrator, checkpoint_ticked

        integrator = BatchedIntegrator(eng.model, config, device=device)
        for number, (chunk, key) in enumerate(chunks, 1):
            path = None if store is None else store.checkpoint_path(key)
            label = (_label(*chunk[0]) if len(chunk) == 1 else
                     f"batch {number}/{len(chunks)} ({len(chunk)} trajectories)" if len(chunks) > 1 else
                     f"all {len(chunk)} trajectories")
            progress.start(label, len(chunk), 0 if path is None else checkpoint_ticked(path, key) * len(chunk))
            raws = integrator.run([m for m, _ in chunk], [s for _, s in chunk],
                                  tick=lambda n, label=label: progress.advance(label, n),
                                  checkpoint=path, checkpoint_key=key)
            progress.finish(label, len(chunk))
            yield from zip(chunk, raws)
        return
    if jobs <= 1 or len(todo) == 1 or "fork" not in mp.get_all_start_methods():
        for m, s in todo:
            label = _label(m, s)
            progress.start(label)
            raw = run_ase_trajectory(m, s, eng.factory, config, tick=lambda n, label=label: progress.advance(label, n))
            progress.finish(label)
            yield (m, s), raw
        return
    context = mp.get_context("fork")
    ticks = context.SimpleQueue()  # (index, trajectory-steps) from the workers, drained here
    _WORKER.update(factory=eng.factory, config=config, todo=todo, ticks=ticks)

    def drain() -> None:
        while not ticks.empty():
            index, steps = ticks.get()
            label = _label(*todo[index])
            if label not in progress.units:
                progress.start(label)
            progress.advance(label, steps)

    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        pending = {pool.submit(_ase_in_worker, index) for index in range(len(todo))}
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            drain()
            for future in finished:
                index, raw = future.result()
                progress.finish(_label(*todo[index]))
                yield todo[index], raw
    drain()


def _ase_in_worker(index: int) -> tuple[int, RawTrajectory]:
    m, s = _WORKER["todo"][index]
    ticks = _WORKER["ticks"]
    return index, run_ase_trajectory(m, s, _WORKER["factory"], _WORKER["config"],
                                     tick=lambda n: ticks.put((index, n)))
