"""GFN-FF (SPEC ``gfn-ff``) through xtb-python, via ``pip install 'pesprobe[xtb]'``.

xtb 22.1's GFN-FF has three habits that do not suit a batch tool, so its calculator runs in a
child process (:class:`~pesprobe.potentials.isolated.IsolatedCalculator`):

* on some geometries (e.g. a stretched bond that splits the molecule in two fragments) the
  force-field set-up aborts the whole process (``double free or corruption``); isolated, that
  becomes a failed frame;
* it prints its set-up to standard output whatever the verbosity: the child's goes to ``/dev/null``;
* it writes ``gfnff_topo`` and ``gfnff_adjacency`` into the working folder: the child works in a
  temporary folder.

The GFN-FF topology (bonds, angles, torsions) is set up once per calculator, from the first
geometry it evaluates, and kept while only positions change: in a BSCT scan, from frame 0 (the
most compressed), as when xtb-python's ASE calculator is used on the frames in order.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ase.calculators.calculator import Calculator

from pesprobe.potentials.isolated import IsolatedCalculator
from pesprobe.potentials.optional import require


def gfnff_factory() -> Callable[[], Calculator]:
    """A factory of isolated GFN-FF calculators (energy in eV, forces in eV/Å).

    Raises
    ------
    MissingExtra
        If ``xtb`` (xtb-python) does not import.
    """
    require("xtb.ase.calculator", "xtb")
    from xtb.ase.calculator import XTB

    def factory() -> Calculator:
        return IsolatedCalculator(partial(XTB, method="GFN-FF"), name="xtb-python GFN-FF")

    factory.__name__ = "gfn-ff"
    return factory
