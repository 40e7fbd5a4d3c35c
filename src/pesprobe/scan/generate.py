"""Turn a prepared structure into scans: structure preparation (relaxation, supercells) and one scan from a plan."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from ase.data import covalent_radii

from pesprobe.data.scan import Scan
from pesprobe.scan.geometry import BOND_RANGE_FACTORS, angle_scan, bond_grid, bond_scan, crystal_bond_scan, torsion_scan
from pesprobe.scan.graph import bond_graph
from pesprobe.scan.inputs import Structure
from pesprobe.scan.label import check_elements, label_frames, relax
from pesprobe.scan.plan import ScanPlan


@dataclass
class ScanSettings:
    """Settings of scan generation.

    Attributes
    ----------
    reference : str
        SPEC of the reference method (``gfn2-xtb``, ``gfn1-xtb``, ``pyscf:pbe/def2-svp``, ``MODULE:FACTORY`` ...).
    n_points : int
        Frames per scan.
    angle_half_width : float
        Angle scans run over ``theta0 ± angle_half_width`` (degrees).
    relax_files : bool
        Relax structures read from files too (SMILES are always relaxed).
    fmax : float
        Relaxation force threshold in eV/Å.
    max_step : float
        Largest relaxation step in Å.
    cutoff : float
        Crystals: the supercell is at least ``2 * cutoff`` Å wide in every direction, and wider
        than twice the longest scanned distance (plus 0.5 Å), so the moved atom never meets its
        own image and the minimum-image distance to its neighbour is the scanned one.
    max_failed_fraction : float
        A scan with more failed frames than this fraction is dropped.
    dataset : str
        Written to every frame's ``dataset`` info key.
    """

    reference: str = "gfn2-xtb"
    n_points: int = 100
    angle_half_width: float = 60.0
    relax_files: bool = False
    fmax: float = 0.05
    max_step: float = 0.2
    cutoff: float = 6.0
    max_failed_fraction: float = 0.05
    dataset: str = "pesprobe"


class PreparationError(ValueError):
    """A structure that cannot be scanned; the message names it and says why."""


def supercell_repeats(cell: np.ndarray, min_width: float) -> tuple[int, int, int]:
    """Repeats along each cell vector so that every perpendicular width is at least ``min_width`` Å."""
    volume = abs(float(np.linalg.det(cell)))
    reps = []
    for k in range(3):
        width = volume / float(np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])))
        reps.append(max(1, math.ceil(min_width / width - 1e-9)))
    return tuple(reps)


def prepare(structure: Structure, settings: ScanSettings, factory: Callable[[], Any]) -> Structure:
    """Check elements, relax (SMILES, or all with ``relax_files``) and, for crystals, build the supercell
    (see :attr:`ScanSettings.cutoff`).

    Raises
    ------
    PreparationError
        Unsupported element, a failed relaxation, or connectivity changed by the relaxation.
    """
    try:
        check_elements(structure.numbers, settings.reference)
    except ValueError as exc:
        raise PreparationError(f"{structure.name}: {exc}") from None
    atoms = structure.to_atoms()
    if structure.needs_relax or settings.relax_files:
        before = bond_graph(atoms).edges()
        try:
            result = relax(atoms, factory, fmax=settings.fmax, max_step=settings.max_step)
        except Exception as exc:  # noqa: BLE001 - any reference failure
            raise PreparationError(f"{structure.name}: relaxation with {settings.reference} failed: "
                                   f"{type(exc).__name__}: {exc}") from None
        atoms.positions = result.positions
        if not structure.periodic and bond_graph(atoms).edges() != before:
            raise PreparationError(f"{structure.name}: bonds changed during relaxation with {settings.reference} "
                                   "(the embedded structure is not a minimum of the reference)")
        structure = replace(structure, positions=result.positions, needs_relax=False)
    if structure.periodic:
        longest = BOND_RANGE_FACTORS[1] * 2.0 * float(covalent_radii[structure.numbers].max())
        reps = supercell_repeats(structure.cell, max(2.0 * settings.cutoff, 2.0 * longest + 0.5))
        big = atoms.repeat(reps)
        structure = replace(structure, numbers=big.numbers.copy(), positions=big.positions.copy(),
                            cell=np.asarray(big.cell[:]))
    return structure


def crystal_grid(perturb: tuple[float, float, int], reach: float) -> tuple[float, float, int]:
    """The crystal grid: the published ``(start, end, n)`` with ``end`` cut to ``reach`` (Å, rounded
    down to 1e-6 Å), the longest distance at which the partner is still the moving atom's nearest atom.

    Raises
    ------
    ValueError
        The reach does not exceed the grid's start.
    """
    end = math.floor(reach * 1e6) / 1e6
    if end <= perturb[0]:
        raise ValueError(f"another atom comes closer to the moving atom than its partner beyond {reach:.3f} Å, "
                         f"before the scan's start at {perturb[0]:.3f} Å")
    return (perturb[0], end, perturb[2])


def _frames(plan: ScanPlan, settings: ScanSettings) -> tuple[np.ndarray, np.ndarray, dict]:
    """Frames (n, n_atoms, 3), coordinate (n,) and kind-specific metadata of ``plan``."""
    s, pos = plan.structure, plan.structure.positions
    if plan.kind == "bond":
        i, j = plan.atoms
        perturb = bond_grid(s.numbers[i], s.numbers[j], settings.n_points)
        if plan.max_length is not None and plan.max_length < perturb[1]:
            perturb = crystal_grid(perturb, plan.max_length)
        grid = np.linspace(*perturb)
        if plan.anchor is not None:
            frames, unit = crystal_bond_scan(pos, j, plan.anchor, grid)
        else:
            frames, unit = bond_scan(pos, i, j, plan.labels, grid)
        meta = {"bond": plan.group, "bond_index": np.array([i, j], dtype=np.int64),
                "perturb_range": np.array(perturb, dtype=float), "unit_vec": unit, "rotation": "0x,0y,0z"}
        return frames, grid, meta
    moving = plan.labels.astype(bool)
    if plan.kind == "angle":
        frames, grid = angle_scan(pos, *plan.atoms, moving=moving,
                                  half_width=np.radians(settings.angle_half_width), n=settings.n_points)
    else:
        frames, grid = torsion_scan(pos, *plan.atoms, moving=moving, n=settings.n_points)
    return frames, grid, {"atoms": np.array(plan.atoms, dtype=np.int64), "elements": plan.elements}


@dataclass
class ScanOutcome:
    """One generated scan, or the reason it was dropped; ``retried`` frames needed an SCF retry."""

    id: str
    scan: Scan | None
    message: str = ""
    retried: int = 0
    n_labelled: int = 0


def generate(plan: ScanPlan, settings: ScanSettings, factory: Callable[[], Any]) -> ScanOutcome:
    """Generate and label the scan of ``plan``; drop it if too many frames fail."""
    s = plan.structure
    try:
        frames, grid, meta = _frames(plan, settings)
    except ValueError as exc:
        return ScanOutcome(plan.id, None, f"scan {plan.id} dropped: {exc}")
    try:
        labels = label_frames(factory, s.numbers, frames, s.cell, s.pbc)
    except Exception as exc:  # noqa: BLE001 - e.g. a factory that cannot make a calculator
        return ScanOutcome(plan.id, None, f"scan {plan.id} dropped: reference {settings.reference} unusable: "
                                          f"{type(exc).__name__}: {exc}")
    n_failed = len(labels.errors)
    if labels.failed_fraction > settings.max_failed_fraction:
        first = min(labels.errors)
        return ScanOutcome(plan.id, None, f"scan {plan.id} dropped: {n_failed}/{len(grid)} frames failed "
                                          f"(limit {settings.max_failed_fraction:.0%}); frame {first}: "
                                          f"{labels.errors[first]}", labels.retried, len(grid))
    try:  # the reference at the unperturbed geometry, as the published unperturbed.xyz carries it
        start = label_frames(factory, s.numbers, s.positions[None], s.cell, s.pbc)
        meta.update(unperturbed_energy=float(start.energy[0]), unperturbed_forces=start.forces[0])
    except Exception:  # noqa: BLE001 - the scan itself is fine; unperturbed.xyz then has no labels
        pass
    meta.update({"labels": plan.labels.astype(np.int64), "smiles": s.smiles, "source": s.source,
                 "method": settings.reference, "dataset": settings.dataset, "unperturbed": s.positions.copy(),
                 "failures": {str(k): v for k, v in sorted(labels.errors.items())},
                 "retried_frames": int(labels.retried)})
    scan = Scan(id=plan.id, kind=plan.kind, numbers=s.numbers, positions=frames, coordinate=grid,
                ref_energy=labels.energy, ref_forces=labels.forces, cell=s.cell, pbc=s.pbc, meta=meta)
    note = f"{n_failed} frame(s) failed and are stored as NaN" if n_failed else ""
    return ScanOutcome(plan.id, scan, note, labels.retried, len(grid))
