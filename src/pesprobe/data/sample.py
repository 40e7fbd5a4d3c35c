"""Training-data sampler: Langevin MD at several temperatures plus random bond stretches, labelled by a reference.

Output of :func:`sample_dataset` with ``out=DIR``:

``DIR/train.xyz``, ``DIR/val.xyz``, ``DIR/test.xyz``
    Extended XYZ (ASE conventions: ``energy`` in eV in the info line, ``forces`` in eV/Å as a
    per-atom array), split by molecule. Info keys: ``mol_id``, ``smiles``, ``config_type``
    (``equilibrium``, ``md``, ``stretch``), ``temperature_K``, ``seed``, ``method``, ``split``.
``DIR/provenance.json``
    Settings (method, temperatures, seeds ...), the molecule of each split, counts, problems.
``DIR/.work/``
    One finished file per molecule; a rerun skips those (resume).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

from pesprobe.data.atomic import atomic_write, atomic_write_json
from pesprobe.data.scan import LoadProblem
from pesprobe.scan.build import run_tasks
from pesprobe.scan.generate import PreparationError, ScanSettings, prepare
from pesprobe.scan.geometry import bond_scan, unit_vector
from pesprobe.scan.graph import bond_graph
from pesprobe.scan.inputs import Structure, unique_names
from pesprobe.scan.label import label_frames

SPLITS = ("train", "val", "test")


@dataclass
class SampleSettings:
    """Settings of :func:`sample_dataset`.

    Attributes
    ----------
    reference : str
        SPEC of the reference method.
    temperatures : tuple of float
        Langevin MD temperatures in K (one trajectory per temperature and molecule).
    snapshots : int
        Structures kept per trajectory.
    interval : int
        MD steps between kept structures.
    equilibration : int
        MD steps before the first kept structure.
    timestep : float
        MD time step in fs.
    friction : float
        Langevin friction in 1/fs.
    stretches : int
        Random bond stretches/compressions per molecule.
    stretch_range : tuple of float
        A stretched bond gets ``U(low, high)`` times its length in the base structure.
    split : tuple of float
        Fractions of molecules for train, validation and test.
    seed : int
        Master seed; trajectory ``t`` of molecule ``m`` uses ``(seed, m, t)``.
    fmax : float
        Relaxation threshold in eV/Å for SMILES-embedded molecules.
    """

    reference: str = "gfn2-xtb"
    temperatures: tuple[float, ...] = (300.0, 600.0, 1200.0)
    snapshots: int = 25
    interval: int = 10
    equilibration: int = 50
    timestep: float = 0.5
    friction: float = 0.01
    stretches: int = 25
    stretch_range: tuple[float, float] = (0.7, 1.6)
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    fmax: float = 0.05

    def __post_init__(self) -> None:
        if len(self.split) != 3 or min(self.split) < 0 or not np.isclose(sum(self.split), 1.0):
            raise ValueError(f"split must be three non-negative fractions summing to 1, got {self.split}")
        if not self.temperatures or min(self.temperatures) <= 0:
            raise ValueError(f"temperatures must be positive (K), got {self.temperatures}")
        low, high = self.stretch_range
        if not 0 < low < high:
            raise ValueError(f"stretch_range must satisfy 0 < low < high, got {self.stretch_range}")


def _labelled(atoms: Atoms, energy: float, forces: np.ndarray, info: dict[str, Any]) -> Atoms:
    out = Atoms(numbers=atoms.numbers, positions=atoms.positions.copy())
    out.info.update(info)
    out.calc = SinglePointCalculator(out, energy=float(energy), forces=np.array(forces, dtype=float))
    return out


def _trajectory(start: Atoms, factory: Callable[[], Any], settings: SampleSettings, temperature: float,
                seed: list[int]) -> tuple[list[tuple[Atoms, float, np.ndarray]], str]:
    """Snapshots (atoms, energy eV, forces eV/Å) of one Langevin run; a note if it stopped early."""
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    rng = np.random.default_rng(seed)
    atoms = start.copy()
    atoms.calc = factory()
    atoms.set_constraint(FixCom())
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    dyn = Langevin(atoms, timestep=settings.timestep * units.fs, temperature_K=temperature,
                   friction=settings.friction / units.fs, fixcm=False, rng=rng)
    snapshots = []
    try:
        dyn.run(settings.equilibration)
        for _ in range(settings.snapshots):
            dyn.run(settings.interval)
            snapshot = atoms.copy()
            snapshot.set_constraint()
            snapshots.append((snapshot, atoms.get_potential_energy(), atoms.get_forces(apply_constraint=False)))
    except Exception as exc:  # noqa: BLE001 - an SCF failure ends this trajectory only
        return snapshots, f"{temperature:g} K trajectory stopped after {len(snapshots)} snapshots: " \
                          f"{type(exc).__name__}: {exc}"
    return snapshots, ""


def _stretched(base: Atoms, rng: np.random.Generator, low: float, high: float) -> tuple[Atoms, str]:
    """``base`` with one random bond scaled by ``U(low, high)``: rigid fragments for bonds outside
    rings (each moves half the change), else only the second atom moves."""
    graph = bond_graph(base)
    edges = graph.edges()
    i, j = edges[int(rng.integers(len(edges)))]
    labels = graph.split(i, j)
    if labels is None:
        labels = np.zeros(len(base), dtype=np.int64)
        labels[j] = 1
    _, r0 = unit_vector(base.positions, i, j)
    factor = float(rng.uniform(low, high))
    frames, _ = bond_scan(base.positions, i, j, labels, np.array([factor * r0]))
    out = base.copy()
    out.positions = frames[0]
    return out, f"{i}-{j}x{factor:.3f}"


def sample_structure(structure: Structure, index: int, settings: SampleSettings,
                     factory: Callable[[], Any]) -> tuple[list[Atoms], list[str]]:
    """All labelled structures of one molecule, and notes on what went wrong.

    Raises
    ------
    PreparationError
        For crystals, unsupported elements, or a failed relaxation.
    """
    if structure.periodic:
        raise PreparationError(f"{structure.name}: the sampler handles molecules only (got a crystal)")
    ready = prepare(structure, ScanSettings(reference=settings.reference, fmax=settings.fmax), factory)
    base = ready.to_atoms()
    common = {"mol_id": ready.name, "smiles": ready.smiles, "method": settings.reference}
    labels = label_frames(factory, base.numbers, base.positions[None])
    if labels.errors:
        raise PreparationError(f"{ready.name}: reference failed on the equilibrium structure: {labels.errors[0]}")
    frames = [_labelled(base, labels.energy[0], labels.forces[0],
                        dict(common, config_type="equilibrium", temperature_K=0.0, seed=str(settings.seed)))]
    notes, pool = [], [base]
    for t, temperature in enumerate(settings.temperatures):
        seed = [settings.seed, index, t]
        snapshots, note = _trajectory(base, factory, settings, temperature, seed)
        if note:
            notes.append(f"{ready.name}: {note}")
        for atoms, energy, forces in snapshots:
            frames.append(_labelled(atoms, energy, forces, dict(common, config_type="md", temperature_K=temperature,
                                                                 seed="-".join(map(str, seed)))))
            pool.append(atoms)
    stretch_seed = [settings.seed, index, len(settings.temperatures)]
    rng = np.random.default_rng(stretch_seed)
    for _ in range(settings.stretches):
        stretched, what = _stretched(pool[int(rng.integers(len(pool)))], rng, *settings.stretch_range)
        result = label_frames(factory, stretched.numbers, stretched.positions[None])
        if result.errors:
            notes.append(f"{ready.name}: stretch {what} not labelled: {result.errors[0]}")
            continue
        frames.append(_labelled(stretched, result.energy[0], result.forces[0],
                                dict(common, config_type="stretch", temperature_K=0.0,
                                     seed="-".join(map(str, stretch_seed)), stretch=what)))
    return frames, notes


def _sample_task(structure: Structure, index: int, settings: SampleSettings,
                 factory: Callable[[], Any]) -> tuple[str, list[Atoms], list[str], str]:
    try:
        frames, notes = sample_structure(structure, index, settings, factory)
        return structure.name, frames, notes, ""
    except PreparationError as exc:
        return structure.name, [], [], str(exc)
    except Exception as exc:  # noqa: BLE001 - one molecule must not end the batch
        return structure.name, [], [], f"{structure.name}: sampling failed: {type(exc).__name__}: {exc}"


def extxyz_text(frames: list[Atoms]) -> str:
    """Frames as extended XYZ text (ASE writer)."""
    from ase.io import write

    buffer = io.StringIO()
    write(buffer, frames, format="extxyz")
    return buffer.getvalue()


def split_molecules(names: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Assign each molecule to ``train``/``val``/``test`` by a seeded permutation of the sorted names.

    With three or more molecules, validation and test get at least one molecule each when their
    fraction is positive.
    """
    names = sorted(names)
    order = [names[k] for k in np.random.default_rng(seed).permutation(len(names))]
    n = len(order)
    counts = [int(np.floor(f * n)) for f in fractions]
    if n >= 3:
        counts = [c if c or not f else 1 for c, f in zip(counts, fractions)]
    n_val, n_test = counts[1], counts[2]
    n_train = n - n_val - n_test
    assignment = {}
    for k, name in enumerate(order):
        assignment[name] = "train" if k < n_train else ("val" if k < n_train + n_val else "test")
    return assignment


@dataclass
class SampleReport:
    """What :func:`sample_dataset` did: structures per split, molecules per split, problems, seconds."""

    counts: dict[str, int]
    molecules: dict[str, list[str]]
    problems: list[LoadProblem] = field(default_factory=list)
    reused: int = 0
    seconds: float = 0.0
    paths: dict[str, str] = field(default_factory=dict)


def _structure_fingerprint(s: Structure) -> str:
    """Hash of a molecule's atoms, geometry and SMILES: the work files of another molecule that got
    the same name are never reused."""
    h = hashlib.sha256(np.ascontiguousarray(s.numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(np.round(s.positions, 6)).tobytes())
    h.update((s.smiles or "").encode())
    return h.hexdigest()[:16]


def _molecule_key(s: Structure) -> str:
    """What makes two inputs the same molecule for the split: canonical SMILES (RDKit) when there is
    one, else the chemical formula and geometry."""
    if s.smiles:
        from rdkit import Chem

        mol = Chem.MolFromSmiles(s.smiles)
        if mol is not None:
            return Chem.MolToSmiles(mol)
    return _structure_fingerprint(s)


def _work_paths(out: Path, name: str) -> tuple[Path, Path]:
    return out / ".work" / f"{name}.xyz", out / ".work" / f"{name}.json"


def sample_dataset(structures: list[Structure], out: str | Path, settings: SampleSettings | None = None,
                   jobs: int = 1, problems: list[LoadProblem] | None = None, progress: bool = True,
                   threads: int = 1) -> SampleReport:
    """Sample, label and write a train/validation/test data set (see the module docstring for files).

    Parameters
    ----------
    structures : list of Structure
        Molecules (SMILES-embedded ones are relaxed first).
    out : str or Path
        Output folder.
    settings : SampleSettings, optional
    jobs : int
        Worker processes (one molecule per task).
    problems : list of LoadProblem, optional
        Problems met reading the inputs, carried into the report.
    threads : int
        OpenMP threads per job.
    """
    from ase.io import read

    settings = settings or SampleSettings()
    out = Path(out)
    problems = list(problems or [])
    structures = unique_names(list(structures))
    by_name = {s.name: s for s in structures}
    start = time.perf_counter()
    frames_by_mol: dict[str, list[Atoms]] = {}
    todo = []
    reused = 0
    for index, s in enumerate(structures):
        xyz, meta = _work_paths(out, s.name)
        if xyz.exists() and meta.exists():
            record = json.loads(meta.read_text())
            if (record.get("settings") == json.loads(json.dumps(asdict(settings)))
                    and record.get("structure") == _structure_fingerprint(s)):
                frames_by_mol[s.name] = read(xyz, index=":") if record["count"] else []
                problems += [LoadProblem(s.name, n) for n in record["notes"]]
                reused += 1
                continue
        todo.append((_sample_task, (s, index, settings)))
    for _, (name, frames, notes, error) in run_tasks(todo, settings.reference, jobs, "sample", progress, threads):
        if error:
            problems.append(LoadProblem(name, error))
            continue
        xyz, meta = _work_paths(out, name)
        atomic_write(xyz, extxyz_text(frames))
        atomic_write_json(meta, {"settings": asdict(settings), "count": len(frames), "notes": notes,
                                 "structure": _structure_fingerprint(by_name[name])})
        frames_by_mol[name] = frames
        problems += [LoadProblem(name, n) for n in notes]

    names = sorted(n for n, f in frames_by_mol.items() if f)
    # split by molecule, not by name: the same molecule given twice goes where its first name goes
    # (with no repeats this is exactly the split by name, so existing data sets are reproduced)
    assignment = split_molecules(names, settings.split, settings.seed)
    first_of: dict[str, str] = {}
    for n in names:
        assignment[n] = assignment[first_of.setdefault(_molecule_key(by_name[n]), n)]
    report = SampleReport(counts={}, molecules={}, problems=problems, reused=reused)
    for split in SPLITS:
        members = [n for n in names if assignment[n] == split]
        frames = []
        for name in members:
            for atoms in frames_by_mol[name]:
                atoms.info["split"] = split
                frames.append(atoms)
        path = out / f"{split}.xyz"
        atomic_write(path, extxyz_text(frames))
        report.counts[split], report.molecules[split], report.paths[split] = len(frames), members, str(path)
    report.seconds = time.perf_counter() - start
    atomic_write_json(out / "provenance.json", {
        "generator": "pesprobe data sample", "method": settings.reference, "settings": asdict(settings),
        "temperatures_K": list(settings.temperatures),
        "seeds": {"master": settings.seed, "trajectory": "(seed, molecule index, temperature index)",
                  "stretches": "(seed, molecule index, n_temperatures)", "split": settings.seed},
        "molecules": {n: {"split": assignment[n], "structures": len(frames_by_mol[n]),
                          "smiles": frames_by_mol[n][0].info.get("smiles", "")} for n in names},
        "counts": report.counts, "problems": [str(p) for p in problems], "seconds": report.seconds,
    })
    report.paths["provenance"] = str(out / "provenance.json")
    return report
