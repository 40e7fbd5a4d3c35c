"""The batch scan builder: prepare structures, plan, label in worker processes, write, resume.

Output of :func:`build_scans` with ``out=DIR``:

``DIR/<bond>/<name>/``
    Bond scans in the published BSCT layout (``atoms_<i>.xyz``, ``unperturbed.xyz``, ``partition.npz``).
``DIR.npz`` (or ``compact=``)
    All scans (bond, angle, torsion) in the pesprobe compact format.
``DIR/build.json``
    Settings, the scans made, dropped scans and input problems, timings.
``DIR.build/`` (beside ``DIR``, like ``DIR.npz``; :func:`work_folder_path`)
    Per-structure and per-scan work files; a rerun skips every scan found there (resume). It is kept
    out of ``DIR`` so that ``DIR`` holds the published layout only (other BSCT readers take every
    sub-folder for scans). Earlier builds kept it in ``DIR/.build/``: the next build
    moves such a folder to ``DIR.build/`` and resumes from it.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pesprobe.data.atomic import atomic_write, atomic_write_json
from pesprobe.data.compact import read_compact, write_compact
from pesprobe.data.published import write_published
from pesprobe.data.scan import LoadProblem, Scan, ScanSet
from pesprobe.potentials.threads import limit_threads
from pesprobe.scan.generate import PreparationError, ScanOutcome, ScanSettings, generate, prepare
from pesprobe.scan.inputs import Structure, unique_names
from pesprobe.scan.plan import ScanPlan, angle_plans, bond_plans, crystal_plans, select, torsion_plans

KINDS = ("bond", "angle", "torsion")
_WORKER: dict[str, Any] = {}


def _init_worker(reference: str, threads: int) -> None:
    from pesprobe.potentials.registry import calculator_factory

    limit_threads(threads)
    _WORKER["factory"] = calculator_factory(reference)


def _call(task: tuple[Callable, tuple]) -> Any:
    function, args = task
    return function(*args, _WORKER["factory"])


def run_tasks(tasks: list[tuple[Callable, tuple]], reference: str, jobs: int, desc: str,
              progress: bool, threads: int = 1) -> Iterator[tuple[int, Any]]:
    """Run ``function(*args, factory)`` for each task, in ``jobs`` processes of ``threads`` threads;
    yield ``(index, result)`` as each finishes. ``factory`` makes reference calculators for ``reference``."""
    bar = tqdm(total=len(tasks), desc=desc, disable=not progress or not tasks, unit="task")
    try:
        if jobs <= 1 or len(tasks) <= 1:
            _init_worker(reference, threads)
            for k, task in enumerate(tasks):
                yield k, _call(task)
                bar.update()
            return
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context(method), initializer=_init_worker,
                                 initargs=(reference, threads)) as pool:
            futures = {pool.submit(_call, task): k for k, task in enumerate(tasks)}
            for future in as_completed(futures):
                yield futures[future], future.result()
                bar.update()
    finally:
        bar.close()


@dataclass
class BuildReport:
    """What :func:`build_scans` did.

    Attributes
    ----------
    scans : ScanSet
        The scans kept (sorted by id); ``problems`` holds input problems and dropped scans.
    dropped : dict[str, str]
        Scan id -> reason it was dropped.
    notes : dict[str, str]
        Scan id -> note for kept scans with NaN frames.
    reused : int
        Scans taken from the work folder (resumed), not recomputed.
    seconds : dict[str, float]
        Wall time of the ``prepare`` and ``label`` phases.
    n_labelled : int
        Reference calculations made for scan frames in this run.
    """

    scans: ScanSet
    dropped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    reused: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    n_labelled: int = 0


def _structure_key(s: Structure, settings: ScanSettings) -> str:
    h = hashlib.sha256()
    for arr in (s.numbers.astype(np.int64), np.round(s.positions, 8), s.pbc):
        h.update(np.ascontiguousarray(arr).tobytes())
    if s.cell is not None:
        h.update(np.ascontiguousarray(np.round(s.cell, 8)).tobytes())
    h.update(json.dumps([settings.reference, settings.fmax, settings.max_step, settings.cutoff,
                         s.needs_relax or settings.relax_files]).encode())
    return f"{s.name}-{h.hexdigest()[:16]}"


def _plan_key(plan: ScanPlan, settings: ScanSettings) -> str:
    """Hash of everything that shapes one scan: its structure, atoms, moving fragment and settings."""
    h = hashlib.sha256(_structure_key(plan.structure, settings).encode())
    for arr in (np.asarray(plan.atoms, dtype=np.int64), np.asarray(plan.labels, dtype=np.int64)):
        h.update(np.ascontiguousarray(arr).tobytes())
    if plan.anchor is not None:  # crystal scans: unwrapped mover, grid cut at the neighbour shell (v2)
        h.update(np.ascontiguousarray(np.round(plan.anchor, 8)).tobytes())
        h.update(json.dumps(["crystal-v2", round(float(plan.max_length or 0.0), 8)]).encode())
    h.update(json.dumps([plan.kind, asdict(settings)], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _prepare_task(structure: Structure, settings: ScanSettings, factory) -> tuple[Structure | None, str]:
    try:
        return prepare(structure, settings, factory), ""
    except PreparationError as exc:
        return None, str(exc)


def _generate_task(plan: ScanPlan, settings: ScanSettings, factory) -> ScanOutcome:
    return generate(plan, settings, factory)


def _remove_stale_folders(out: Path, kept: set[str]) -> None:
    """Delete the published scan folders an earlier build of ``out`` wrote (listed in its
    ``build.json``) that this build does not keep, so ``out`` holds exactly this build's scans."""
    try:
        earlier = json.loads((out / "build.json").read_text()).get("scans", [])
    except (OSError, ValueError):
        return
    for scan_id in set(earlier) - kept:
        folder = out / scan_id.split("/")[0] / scan_id.split("/")[-1]
        if "/" in scan_id and (folder / "partition.npz").exists():
            shutil.rmtree(folder)
            if not any(folder.parent.iterdir()):
                folder.parent.rmdir()  # the bond-type folder, now empty


#: Where builds before the work folder moved beside the output kept it, relative to the output folder.
LEGACY_WORK_FOLDER = ".build"


def work_folder_path(out: str | Path) -> Path:
    """The work folder of output folder ``out``: ``<out>.build`` beside it (absolute)."""
    out = Path(os.path.abspath(out))
    return out.with_name(out.name + ".build")


def adopt_legacy_work_folder(out: Path, work: Path) -> bool:
    """Move the work files of an older build from ``out/.build`` into ``work`` (files already in
    ``work`` win) and remove ``out/.build``; True if there was one. A symlink there is left alone."""
    legacy = out / LEGACY_WORK_FOLDER
    if not legacy.is_dir() or legacy.is_symlink():
        return False
    for path in sorted(legacy.rglob("*")):
        if path.is_file() and not path.is_symlink():
            target = work / path.relative_to(legacy)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), str(target))
    shutil.rmtree(legacy)
    return True


class WorkFolder:
    """Per-structure and per-scan work files under ``<out>.build`` (atomic writes; presence = done).

    Scan files are named by scan id and :func:`_plan_key`, so a scan is reused only for the same
    structure, atoms and settings, never for another molecule that got the same name."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _structure_path(self, key: str) -> Path:
        return self.root / "structures" / f"{key}.npz"

    def _scan_path(self, scan_id: str, key: str) -> Path:
        return self.root / "scans" / (scan_id.replace("/", "__") + f"-{key}.npz")

    def _dropped_path(self, scan_id: str, key: str) -> Path:
        return self.root / "scans" / (scan_id.replace("/", "__") + f"-{key}.dropped.json")

    def load_structure(self, key: str, original: Structure) -> Structure | None:
        """The prepared structure stored under ``key``, or None."""
        path = self._structure_path(key)
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as data:
            cell = data["cell"]
            return Structure(name=original.name, numbers=data["numbers"], positions=data["positions"],
                             cell=None if np.isnan(cell).all() else cell, pbc=data["pbc"],
                             smiles=original.smiles, source=original.source, needs_relax=False)

    def save_structure(self, key: str, s: Structure) -> None:
        """Store a prepared structure."""
        cell = s.cell if s.cell is not None else np.full((3, 3), np.nan)
        atomic_write(self._structure_path(key), {"numbers": s.numbers, "positions": s.positions,
                                                 "cell": cell, "pbc": s.pbc})

    def load_scan(self, scan_id: str, key: str) -> tuple[Scan | None, str] | None:
        """``(scan, note)`` or ``(None, reason dropped)`` if done before with ``key``; None if not done."""
        if self._scan_path(scan_id, key).exists():
            scan = read_compact(self._scan_path(scan_id, key)).scans[0]
            return scan, ""
        if self._dropped_path(scan_id, key).exists():
            return None, json.loads(self._dropped_path(scan_id, key).read_text())["reason"]
        return None

    def save_outcome(self, outcome: ScanOutcome, key: str) -> None:
        """Store a generated scan, or the reason it was dropped."""
        if outcome.scan is not None:
            write_compact(ScanSet([outcome.scan], source="pesprobe scan build"), self._scan_path(outcome.id, key))
        else:
            atomic_write_json(self._dropped_path(outcome.id, key), {"id": outcome.id, "reason": outcome.message})


def plan_scans(structures: list[Structure], kinds: tuple[str, ...], bond_types: tuple[str, ...] | None,
               n_primitive: dict[str, int]) -> tuple[list[ScanPlan], list[LoadProblem]]:
    """All candidate plans of ``kinds`` for prepared structures; a structure with none is a problem."""
    plans, problems = [], []
    for s in structures:
        found = []
        if "bond" in kinds:
            found += (crystal_plans(s, bond_types, n_primitive[s.name]) if s.periodic
                      else bond_plans(s, bond_types))
        if not s.periodic and "angle" in kinds:
            found += angle_plans(s)
        if not s.periodic and "torsion" in kinds:
            found += torsion_plans(s)
        if not found:
            parts = [f"bond of type {'/'.join(bond_types)}" if k == "bond" and bond_types else k for k in kinds]
            problems.append(LoadProblem(s.source or s.name, f"{s.name}: no scannable {' or '.join(parts)} "
                                                            "(bonds in rings are not scannable)"))
        plans += found
    return plans, problems


def build_scans(structures: list[Structure], out: str | Path, settings: ScanSettings | None = None,
                kinds: tuple[str, ...] = ("bond",), bond_types: tuple[str, ...] | None = None,
                per_type: int | None = None, seed: int = 0, jobs: int = 1, compact: str | Path | None = None,
                problems: list[LoadProblem] | None = None, progress: bool = True, threads: int = 1) -> BuildReport:
    """Generate, label and write scans of ``structures``.

    Parameters
    ----------
    structures : list of Structure
        Inputs (SMILES-embedded ones are relaxed with the reference first).
    out : str or Path
        Output folder (published layout for bond scans, ``build.json``); work files go to
        ``<out>.build`` beside it (:func:`work_folder_path`).
    settings : ScanSettings, optional
        Reference SPEC, points per scan, failure limit ...
    kinds : tuple of str
        Any of ``"bond"``, ``"angle"``, ``"torsion"``.
    bond_types : tuple of str, optional
        Bond types to scan (``("C-C", "C-O")``); all types if None.
    per_type : int, optional
        At most this many scans per bond type (and per angle/torsion kind), chosen with ``seed``;
        all candidates if None.
    jobs : int
        Worker processes.
    threads : int
        OpenMP threads per job (this process's setting changes too when ``jobs == 1``).
    compact : str or Path, optional
        Compact output file; default ``<out>.npz``.
    problems : list of LoadProblem, optional
        Problems already met reading the inputs (carried into the report).

    Returns
    -------
    BuildReport
    """
    settings = settings or ScanSettings()
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown scan kind(s) {sorted(unknown)}; choose from {', '.join(KINDS)}")
    out = Path(out)
    compact = Path(compact) if compact is not None else out.with_name(out.name + ".npz")
    work = WorkFolder(work_folder_path(out))
    adopt_legacy_work_folder(out, work.root)
    problems = list(problems or [])
    structures = unique_names(list(structures))
    n_primitive = {s.name: len(s.numbers) for s in structures}

    start = time.perf_counter()
    prepared: list[Structure | None] = [None] * len(structures)
    keys = [_structure_key(s, settings) for s in structures]
    todo = []
    for k, (s, key) in enumerate(zip(structures, keys)):
        prepared[k] = work.load_structure(key, s)
        if prepared[k] is None:
            todo.append(k)
    tasks = [(_prepare_task, (structures[k], settings)) for k in todo]
    for index, (result, message) in run_tasks(tasks, settings.reference, jobs, "prepare", progress, threads):
        k = todo[index]
        if result is None:
            problems.append(LoadProblem(structures[k].source or structures[k].name, message))
            continue
        work.save_structure(keys[k], result)
        prepared[k] = result
    ready = [s for s in prepared if s is not None]
    prepare_s = time.perf_counter() - start

    plans, plan_problems = plan_scans(ready, kinds, bond_types, n_primitive)
    problems += plan_problems
    chosen, available = select(plans, per_type, seed)
    if per_type is not None:
        wanted = [t for t in (bond_types or ()) if "bond" in kinds] + [k for k in kinds if k != "bond"]
        for group in wanted:
            if available.get(group, 0) < per_type:
                problems.append(LoadProblem(group, f"only {available.get(group, 0)} candidate scan(s) of "
                                                   f"{group}, {per_type} requested"))

    report = BuildReport(scans=ScanSet([], source=str(out)))
    outcomes: dict[str, tuple[Scan | None, str]] = {}
    pending = []
    plan_keys = {plan.id: _plan_key(plan, settings) for plan in chosen}
    for plan in chosen:
        done = work.load_scan(plan.id, plan_keys[plan.id])
        if done is None:
            pending.append(plan)
        else:
            outcomes[plan.id] = done
            report.reused += 1
    start = time.perf_counter()
    tasks = [(_generate_task, (plan, settings)) for plan in pending]
    for _, outcome in run_tasks(tasks, settings.reference, jobs, "scans", progress, threads):
        work.save_outcome(outcome, plan_keys[outcome.id])
        report.n_labelled += outcome.n_labelled
        outcomes[outcome.id] = (outcome.scan, outcome.message)
        if outcome.scan is not None and outcome.scan.kind == "bond":
            write_published([outcome.scan], out)
    label_s = time.perf_counter() - start

    kept = []
    for scan_id in sorted(outcomes):
        scan, message = outcomes[scan_id]
        if scan is None:
            report.dropped[scan_id] = message
            problems.append(LoadProblem(scan_id, message))
            continue
        kept.append(scan)
        failures = scan.meta.get("failures") or {}
        if failures:
            report.notes[scan_id] = f"{len(failures)} frame(s) failed and are stored as NaN"
        if scan.kind == "bond" and not (out / scan.group / scan.id.split("/")[-1] / "partition.npz").exists():
            write_published([scan], out)
    _remove_stale_folders(out, {s.id for s in kept if s.kind == "bond"})
    report.scans = ScanSet(kept, source=str(out), problems=problems)
    report.seconds = {"prepare": prepare_s, "label": label_s}
    write_compact(report.scans, compact)
    atomic_write_json(out / "build.json", {
        "settings": asdict(settings), "kinds": list(kinds), "bond_types": list(bond_types or []),
        "per_type": per_type, "seed": seed, "structures": len(structures), "prepared": len(ready),
        "scans": [s.id for s in kept], "dropped": report.dropped, "notes": report.notes,
        "problems": [str(p) for p in problems], "reused": report.reused, "n_labelled": report.n_labelled,
        "seconds": report.seconds, "compact": str(compact), "work_folder": str(work.root),
    })
    return report
