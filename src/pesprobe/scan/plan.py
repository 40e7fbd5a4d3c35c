"""Which scans to make: candidate bonds, angles and torsions of prepared structures, and a seeded selection.

A :class:`ScanPlan` holds everything needed to generate one scan's frames; planning is pure and
deterministic (same structures, settings and seed -> same plans, in the same order).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

import numpy as np
from ase.data import chemical_symbols, covalent_radii

from pesprobe.scan.geometry import BOND_RANGE_FACTORS, angle, crystal_reach
from pesprobe.scan.graph import BondGraph, bond_graph, normalize_bond_type, scannable_bonds, wanted_bond
from pesprobe.scan.inputs import Structure

LINEAR_LIMIT = np.radians(175.0)


@dataclass
class ScanPlan:
    """One scan to generate.

    Attributes
    ----------
    id : str
        Scan id: ``"<A>-<B>/<name>"`` for bonds, ``"angle/<name>"``, ``"torsion/<name>"``.
    kind : str
        ``"bond"``, ``"angle"`` or ``"torsion"``.
    group : str
        Selection group: the bond type (``"C-O"``) or the kind for angles and torsions.
    structure : Structure
        The prepared (relaxed; for crystals, supercell) structure.
    atoms : tuple of int
        Bond ``(i, j)``, angle ``(a, b, c)`` or torsion ``(a, b, c, d)`` atom indices (0-based).
    labels : ndarray, shape (n_atoms,), int
        1 for the atoms that move (bond: ``j``'s fragment; angle/torsion: the rotating fragment).
    anchor : ndarray, shape (3,), optional
        Crystals: position (Å) of the neighbour ``atoms[0]`` that ``atoms[1]`` moves away from; the
        structure holds ``atoms[1]`` unwrapped, next to it (see :func:`crystal_plans`).
    max_length : float, optional
        Crystals: the longest distance (Å) the scan may reach while no other atom is closer to the
        moving atom than its partner (:func:`pesprobe.scan.geometry.crystal_reach`).
    """

    id: str
    kind: str
    group: str
    structure: Structure
    atoms: tuple[int, ...]
    labels: np.ndarray
    anchor: np.ndarray | None = field(default=None, repr=False)
    max_length: float | None = None

    @property
    def elements(self) -> str:
        """Element symbols of :attr:`atoms` joined by ``-``."""
        return "-".join(chemical_symbols[int(self.structure.numbers[k])] for k in self.atoms)


def _heavy(graph: BondGraph, atom: int) -> bool:
    return int(graph.numbers[atom]) > 1


def _pick_end(graph: BondGraph, center: int, exclude: int) -> int | None:
    """The neighbour of ``center`` (not ``exclude``) with the highest Z, lowest index on ties."""
    options = [n for n in graph.neighbors[center] if n != exclude]
    if not options:
        return None
    return min(options, key=lambda n: (-int(graph.numbers[n]), n))


def bond_plans(structure: Structure, types: tuple[str, ...] | None) -> list[ScanPlan]:
    """Bond plans for a molecule: every scannable bond of the requested ``types`` (None: no X-H bonds)."""
    plans = []
    for cand in scannable_bonds(bond_graph(structure.to_atoms()), types):
        i, j = cand.index
        plans.append(ScanPlan(id=f"{cand.bond}/{structure.name}_{i}-{j}", kind="bond", group=cand.bond,
                              structure=structure, atoms=(i, j), labels=cand.labels))
    return plans


def angle_plans(structure: Structure) -> list[ScanPlan]:
    """Angle plans a-b-c over heavy atoms where b-c is outside rings (c's side rotates about b)."""
    graph = bond_graph(structure.to_atoms())
    plans = []
    for b, c in [(i, j) for i, j in graph.edges()] + [(j, i) for i, j in graph.edges()]:
        if not (_heavy(graph, b) and _heavy(graph, c)):
            continue
        labels = graph.split(b, c)
        if labels is None:
            continue
        for a in sorted(graph.neighbors[b] - {c}):
            if not _heavy(graph, a) or angle(structure.positions, a, b, c) > LINEAR_LIMIT:
                continue
            plans.append(ScanPlan(id=f"angle/{structure.name}_{a}-{b}-{c}", kind="angle", group="angle",
                                  structure=structure, atoms=(a, b, c), labels=labels))
    return sorted(plans, key=lambda p: p.atoms)


def torsion_plans(structure: Structure) -> list[ScanPlan]:
    """Torsion plans about heavy-atom bonds b-c outside rings with further neighbours on both ends."""
    graph = bond_graph(structure.to_atoms())
    plans = []
    for b, c in graph.edges():
        if not (_heavy(graph, b) and _heavy(graph, c)):
            continue
        labels = graph.split(b, c)
        a, d = _pick_end(graph, b, c), _pick_end(graph, c, b)
        if labels is None or a is None or d is None:
            continue
        pos = structure.positions
        if angle(pos, a, b, c) > LINEAR_LIMIT or angle(pos, b, c, d) > LINEAR_LIMIT:
            continue
        plans.append(ScanPlan(id=f"torsion/{structure.name}_{a}-{b}-{c}-{d}", kind="torsion", group="torsion",
                              structure=structure, atoms=(a, b, c, d), labels=labels))
    return plans


def crystal_plans(structure: Structure, types: tuple[str, ...] | None, n_primitive: int) -> list[ScanPlan]:
    """Bond plans for a crystal supercell: each of the first ``n_primitive`` atoms (one primitive cell)
    moves along the line from its nearest neighbour, if that pair's type is requested.

    The plan's structure holds the moving atom unwrapped: shifted by the lattice vector that puts it
    next to its partner, so the raw distance between the two (what any BSCT reader computes from the
    positions) is the scanned one. :attr:`ScanPlan.max_length` is how far the scan may stretch before
    another atom comes closer to the moving atom than its partner."""
    from ase.neighborlist import neighbor_list

    wanted = None if types is None else {normalize_bond_type(t) for t in types}
    atoms = structure.to_atoms()
    first, second, dist, vec = neighbor_list("ijdD", atoms, cutoff=6.0)
    plans = []
    for mover in range(n_primitive):
        mask = first == mover
        if not mask.any():
            continue
        k = np.flatnonzero(mask)[np.argmin(dist[mask])]
        neighbor = int(second[k])
        kind = wanted_bond(int(structure.numbers[mover]), int(structure.numbers[neighbor]), wanted)
        if kind is None:
            continue
        labels = np.zeros(len(atoms), dtype=np.int64)
        labels[mover] = 1
        positions = structure.positions.copy()
        positions[mover] = positions[neighbor] - vec[k]  # the mover's image next to the neighbour
        longest = BOND_RANGE_FACTORS[1] * float(covalent_radii[structure.numbers[mover]]
                                                + covalent_radii[structure.numbers[neighbor]])
        reach = crystal_reach(positions, structure.cell, neighbor, mover, -vec[k] / dist[k], longest)
        plans.append(ScanPlan(id=f"{kind}/{structure.name}_{neighbor}-{mover}", kind="bond", group=kind,
                              structure=replace(structure, positions=positions), atoms=(neighbor, mover),
                              labels=labels, anchor=positions[neighbor].copy(), max_length=reach))
    return plans


def select(plans: list[ScanPlan], per_type: int | None, seed: int) -> tuple[list[ScanPlan], dict[str, int]]:
    """Choose up to ``per_type`` plans per group, spread over as many structures as possible.

    Within a group the plans are shuffled with a generator seeded by ``(seed, group)``; then the first
    plan of every structure comes before the second of any, and so on.

    Returns
    -------
    chosen : list of ScanPlan
        Sorted by id.
    available : dict[str, int]
        Number of candidates per group (to report groups with fewer than ``per_type``).
    """
    groups: dict[str, list[ScanPlan]] = {}
    for plan in plans:
        groups.setdefault(plan.group, []).append(plan)
    chosen, available = [], {}
    for group in sorted(groups):
        items = sorted(groups[group], key=lambda p: p.id)
        available[group] = len(items)
        if per_type is None:
            chosen.extend(items)
            continue
        rng = np.random.default_rng([seed, zlib.crc32(group.encode())])
        seen: dict[str, int] = {}
        keyed = []
        for position, index in enumerate(rng.permutation(len(items))):
            plan = items[index]
            rank = seen.get(plan.structure.name, 0)
            seen[plan.structure.name] = rank + 1
            keyed.append((rank, position, plan))
        keyed.sort(key=lambda t: (t[0], t[1]))
        chosen.extend(plan for _, _, plan in keyed[:per_type])
    return sorted(chosen, key=lambda p: p.id), available
