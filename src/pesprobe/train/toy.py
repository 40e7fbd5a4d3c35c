"""A small generated data set for smoke tests, demos and benchmarks (not for science).

Rattled small organic molecules and bond-stretch scans, labelled with ASE's EMT calculator
(fast, smooth, defined for H, C, N and O). EMT is not a quantum-chemistry method: use this set
to check that training and BSCT run, never to judge a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pesprobe.data.scan import Scan, ScanSet
from pesprobe.data.structures import Structure

#: Molecules of :func:`ase.build.molecule` made only of H, C, N and O.
TOY_MOLECULES = ("CH4", "H2O", "NH3", "C2H6", "C2H4", "CH3OH", "HCN", "CO2", "H2CO", "H3CNH2", "C2H2", "N2H4")


def toy_structures(n_per_molecule: int = 8, molecules: Sequence[str] = TOY_MOLECULES, rattle: float = 0.08,
                   seed: int = 0) -> list[Structure]:
    """Rattled copies of small molecules with EMT energies (eV) and forces (eV/Å).

    Parameters
    ----------
    n_per_molecule : int
        Structures per molecule.
    molecules : sequence of str
        Names known to :func:`ase.build.molecule`.
    rattle : float
        Standard deviation of the Gaussian displacement of every coordinate, Å.
    seed : int
    """
    from ase.build import molecule
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    calc = EMT()
    out = []
    for name in molecules:
        base = molecule(name)
        for i in range(n_per_molecule):
            atoms = base.copy()
            atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
            atoms.calc = calc
            out.append(Structure(numbers=atoms.numbers, positions=atoms.positions, energy=atoms.get_potential_energy(),
                                 forces=atoms.get_forces(), molecule=name, source=f"toy:{name}/{i}"))
    return out


def toy_scans(molecules: Sequence[str] = ("C2H6", "CH3OH", "H3CNH2"), n_frames: int = 24,
              scale: tuple[float, float] = (0.55, 1.5)) -> ScanSet:
    """Bond-stretch scans of the first heavy-atom bond of each molecule, labelled with EMT.

    The atoms on the far side of the bond (the second atom's fragment) move rigidly along the
    bond vector so the bond length goes from ``scale[0]`` to ``scale[1]`` times its
    equilibrium value, in ``n_frames`` evenly spaced frames.
    """
    from ase.build import molecule
    from ase.calculators.emt import EMT
    from ase.neighborlist import natural_cutoffs, neighbor_list

    calc = EMT()
    scans = []
    for name in molecules:
        atoms = molecule(name)
        heavy = [i for i, z in enumerate(atoms.numbers) if z > 1]
        a, b = heavy[0], heavy[1]
        i_list, j_list = neighbor_list("ij", atoms, natural_cutoffs(atoms))
        labels = _fragment(len(atoms), list(zip(i_list.tolist(), j_list.tolist(), strict=True)), a, b)
        vec = atoms.positions[b] - atoms.positions[a]
        r0 = float(np.linalg.norm(vec))
        unit = vec / r0
        lengths = np.linspace(scale[0] * r0, scale[1] * r0, n_frames)
        positions = np.repeat(atoms.positions[None], n_frames, axis=0)
        positions[:, labels == 1] += ((lengths - r0)[:, None] * unit)[:, None, :]
        energies, forces = [], []
        for frame in positions:
            atoms.positions = frame
            atoms.calc = calc
            energies.append(atoms.get_potential_energy())
            forces.append(atoms.get_forces())
        bond = "-".join(sorted((atoms.get_chemical_symbols()[a], atoms.get_chemical_symbols()[b])))
        scans.append(Scan(id=f"{bond}/{name}", kind="bond", numbers=atoms.numbers, positions=positions,
                          coordinate=lengths, ref_energy=np.array(energies), ref_forces=np.array(forces),
                          meta={"bond": bond, "bond_index": [a, b], "labels": labels.tolist(), "source": "toy/EMT"}))
    return ScanSet(scans, source="toy")


def _fragment(n_atoms: int, edges: list[tuple[int, int]], a: int, b: int) -> np.ndarray:
    """Labels (0/1) of the two fragments made by cutting bond a–b (1 = b's side)."""
    adjacency: dict[int, set[int]] = {i: set() for i in range(n_atoms)}
    for i, j in edges:
        if {i, j} != {a, b}:
            adjacency[i].add(j)
    labels = np.zeros(n_atoms, dtype=int)
    stack, seen = [b], {b}
    while stack:
        i = stack.pop()
        labels[i] = 1
        for j in adjacency[i] - seen:
            seen.add(j)
            stack.append(j)
    if labels[a]:
        raise ValueError(f"bond {a}-{b} is in a ring: cutting it does not split the molecule")
    return labels
