"""CHGNet 0.3.0 (SPEC ``chgnet``), via ``pip install 'pesprobe[chgnet]'``.

The extra pins the ``chgnet`` package at 0.3.8: it ships the CHGNet 0.3.0 weights
(``chgnet_0.3.0_e29f68s314m37.pth.tar``) and imports with ASE 3.29. The ``chgnet==0.3.0``
package itself cannot be used offline: neither its wheel nor its sdist contains the weights
(they came with 0.3.1), and 0.3.0-0.3.1 import ``ase.constraints.ExpCellFilter``, which ASE 3.23+
no longer has.

CHGNet only evaluates periodic structures, so a molecule is put in a cubic box whose edge is
its largest extent + 20 Å of vacuum, with ``pbc=True`` (:class:`~pesprobe.potentials.boxed.MoleculeInBox`).
The vacuum is well beyond CHGNet's 5 Å (atom graph) and 3 Å (bond graph) cutoffs, so a molecule
never sees its periodic images and the energy and forces are those of the isolated molecule.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

from ase.calculators.calculator import Calculator

from pesprobe.potentials.boxed import DEFAULT_VACUUM, MoleculeInBox
from pesprobe.potentials.optional import require


def chgnet_factory(version: str = "0.3.0", device: str = "cpu",
                   vacuum: float = DEFAULT_VACUUM) -> Callable[[], Calculator]:
    """A factory of boxed CHGNet calculators sharing one loaded model.

    Parameters
    ----------
    version : str
        Pretrained model version shipped with the ``chgnet`` package (``"0.3.0"``).
    device : str
        Torch device.
    vacuum : float
        Vacuum added to the molecule's extent to get the box edge, Å.

    Returns
    -------
    callable
        Zero-argument factory; each call gives a fresh calculator (total energy in eV, forces in
        eV/Å) around the same model.

    Raises
    ------
    MissingExtra
        If ``chgnet`` does not import.
    FileNotFoundError
        If the installed ``chgnet`` lacks the weights of ``version``.
    """
    require("chgnet.model", "chgnet")
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    try:
        model = CHGNet.load(model_name=version, use_device=device, check_cuda_mem=False, verbose=False)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"the installed chgnet package has no weights for CHGNet {version} "
                                f"({exc.filename}); reinstall it with: pip install 'pesprobe[chgnet]'") from None

    def factory() -> Calculator:
        with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet will run on cpu", once per scan
            inner = CHGNetCalculator(model=model, use_device=device, check_cuda_mem=False,
                                     on_isolated_atoms="ignore")
        return MoleculeInBox(inner, vacuum=vacuum)

    factory.__name__ = f"chgnet-{version}"
    return factory
