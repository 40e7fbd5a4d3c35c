"""Covalent bond graphs from geometry, and the fragments a bond or rotation splits a molecule into.

Bonds are detected with ASE's natural cutoffs: atoms ``i`` and ``j`` are bonded when their
distance is below ``BOND_SCALE * (r_cov(i) + r_cov(j))`` (``ase.data.covalent_radii``, Å), minimum image
convention for periodic structures.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.neighborlist import natural_cutoffs, neighbor_list

#: Bonds are detected up to ``BOND_SCALE * (r_cov(i) + r_cov(j))``: ASE's natural cutoffs alone (scale 1)
#: miss many C-H bonds (1.09 Å vs 1.07 Å), so a 20 % margin is used, as is customary.
BOND_SCALE = 1.2
#: The nine bond types of the published BSCT set.
PUBLISHED_BOND_TYPES = ("C-C", "C-N", "C-O", "C-P", "C-S", "N-N", "N-O", "N-P", "O-P")


def bond_type(z_a: int, z_b: int) -> str:
    """Bond-type label with element symbols in alphabetical order, as in the published set ("C-O", "O-P")."""
    return "-".join(sorted((chemical_symbols[int(z_a)], chemical_symbols[int(z_b)])))


def normalize_bond_type(text: str) -> str:
    """``"o-c"``/``"O-C"``/``"C-O"`` -> ``"C-O"``.

    Raises
    ------
    ValueError
        If ``text`` is not two element symbols joined by ``-``.
    """
    parts = [p.strip() for p in text.split("-")]
    if len(parts) != 2:
        raise ValueError(f"bond type {text!r}: expected two element symbols joined by '-', e.g. C-O")
    symbols = []
    for part in parts:
        symbol = part[:1].upper() + part[1:].lower()
        if symbol not in chemical_symbols[1:]:
            raise ValueError(f"bond type {text!r}: {part!r} is not an element symbol")
        symbols.append(symbol)
    return "-".join(sorted(symbols))


@dataclass
class BondGraph:
    """Undirected covalent bond graph of one structure.

    Attributes
    ----------
    numbers : ndarray, shape (n_atoms,)
        Atomic numbers.
    neighbors : list of set of int
        ``neighbors[i]`` holds the atoms bonded to atom ``i``.
    """

    numbers: np.ndarray
    neighbors: list[set[int]]

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.neighbors)

    def edges(self) -> list[tuple[int, int]]:
        """All bonds as ``(i, j)`` with ``i < j``, sorted."""
        return sorted((i, j) for i, nbrs in enumerate(self.neighbors) for j in nbrs if i < j)

    def side(self, start: int, other: int) -> np.ndarray:
        """Atoms reachable from ``start`` without crossing the bond ``start``-``other``.

        Returns
        -------
        ndarray, shape (n_atoms,), bool
            True for atoms reachable from ``start`` through any bond except ``start``-``other``;
            it includes ``other`` exactly when that bond is in a ring.
        """
        seen = np.zeros(self.n_atoms, dtype=bool)
        seen[start] = True
        queue = deque([start])
        while queue:
            atom = queue.popleft()
            for nbr in self.neighbors[atom]:
                if atom == start and nbr == other:
                    continue
                if not seen[nbr]:
                    seen[nbr] = True
                    queue.append(nbr)
        return seen

    def split(self, i: int, j: int) -> np.ndarray | None:
        """Fragment labels if removing bond ``i``-``j`` splits the molecule, else None (a ring bond).

        Returns
        -------
        ndarray, shape (n_atoms,), int, or None
            1 for atoms on ``j``'s side, 0 for the rest (``i``'s side and any other, disconnected,
            molecule); None when ``i`` stays reachable from ``j`` (the bond is in a ring).
        """
        if j not in self.neighbors[i]:
            raise ValueError(f"atoms {i} and {j} are not bonded")
        j_side = self.side(j, other=i)
        if j_side[i]:
            return None
        return j_side.astype(np.int64)


def bond_graph(atoms: Atoms, scale: float = BOND_SCALE) -> BondGraph:
    """The covalent bond graph of ``atoms`` (natural cutoffs times ``scale``; periodic if ``atoms.pbc``)."""
    cutoffs = natural_cutoffs(atoms, mult=scale)
    first, second = neighbor_list("ij", atoms, cutoffs, self_interaction=False)
    neighbors: list[set[int]] = [set() for _ in range(len(atoms))]
    for a, b in zip(first.tolist(), second.tolist()):
        if a != b:
            neighbors[a].add(b)
    return BondGraph(numbers=atoms.numbers.copy(), neighbors=neighbors)


@dataclass
class BondCandidate:
    """A scannable bond: removing it splits the molecule in two.

    Attributes
    ----------
    bond : str
        Bond type, e.g. ``"C-O"``.
    index : tuple of int
        The two bonded atoms ``(i, j)``, ``i < j``; ``labels[i] == 0``, ``labels[j] == 1``.
    labels : ndarray, shape (n_atoms,), int
        Fragment of each atom (1 = ``j``'s side).
    """

    bond: str
    index: tuple[int, int]
    labels: np.ndarray


def wanted_bond(z_a: int, z_b: int, wanted: set[str] | None) -> str | None:
    """The bond type of ``z_a``-``z_b`` if it is ``wanted`` (None: every type without hydrogen), else None."""
    kind = bond_type(z_a, z_b)
    if wanted is None:
        return kind if min(z_a, z_b) > 1 else None
    return kind if kind in wanted else None


def scannable_bonds(graph: BondGraph, types: tuple[str, ...] | None = None) -> list[BondCandidate]:
    """Bonds outside rings whose type is in ``types`` (None: every type without hydrogen), in index order."""
    wanted = None if types is None else {normalize_bond_type(t) for t in types}
    found = []
    for i, j in graph.edges():
        kind = wanted_bond(int(graph.numbers[i]), int(graph.numbers[j]), wanted)
        if kind is None:
            continue
        labels = graph.split(i, j)
        if labels is not None:
            found.append(BondCandidate(bond=kind, index=(i, j), labels=labels))
    return found
