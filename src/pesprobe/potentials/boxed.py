"""Evaluate a molecule with a calculator that only handles periodic cells (e.g. CHGNet)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from pesprobe.potentials.ase_adapter import describe_calculator

#: Vacuum added to the molecule's largest extent to get the cubic box edge, Å.
DEFAULT_VACUUM = 20.0


def boxed_copy(atoms: Atoms, vacuum: float = DEFAULT_VACUUM) -> Atoms:
    """A copy of a non-periodic ``atoms`` centred in a periodic cubic box.

    Parameters
    ----------
    atoms : Atoms
        A molecule (``pbc`` all False).
    vacuum : float
        Box edge = largest extent of the molecule along x, y or z + ``vacuum``, Å. With a vacuum
        larger than the model's cutoff, no atom sees a periodic image.

    Returns
    -------
    Atoms
        Same numbers, positions shifted so the molecule's bounding box is centred, cubic cell,
        ``pbc=True``.
    """
    positions = atoms.get_positions()
    low, high = positions.min(axis=0), positions.max(axis=0)
    edge = float((high - low).max()) + vacuum
    boxed = Atoms(numbers=atoms.numbers, positions=positions - (low + high) / 2 + edge / 2,
                  cell=np.eye(3) * edge, pbc=True)
    return boxed


class MoleculeInBox(Calculator):
    """Wrap a periodic-only calculator so that it accepts molecules.

    A non-periodic structure is put in a cubic box (:func:`boxed_copy`) before ``inner`` sees it;
    a periodic one is passed unchanged. Energies (eV) and forces (eV/Å) do not depend on where the
    molecule sits in the box, so they are returned as they are.

    Parameters
    ----------
    inner : Calculator
        The calculator that needs a cell (CHGNet).
    vacuum : float
        Added to the molecule's largest extent to get the box edge, Å (default 20).
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, inner: Calculator, vacuum: float = DEFAULT_VACUUM) -> None:
        if vacuum <= 0:
            raise ValueError(f"vacuum must be positive (Å), got {vacuum}")
        super().__init__()
        self.inner = inner
        self.parameters = {"vacuum": float(vacuum), "inner": describe_calculator(inner)}

    def reset(self) -> None:
        """Forget results here and in the wrapped calculator."""
        super().reset()
        self.inner.reset()

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        """Energy and forces of ``atoms``, boxed first if it is not periodic."""
        super().calculate(atoms, properties, system_changes)
        target = self.atoms.copy() if self.atoms.pbc.any() else boxed_copy(self.atoms, self.parameters["vacuum"])
        target.calc = self.inner
        self.results = {"energy": float(target.get_potential_energy()),
                        "forces": np.asarray(target.get_forces(), dtype=np.float64)}
