"""SevenNet-0 (SPEC ``7net-0``): the pretrained SevenNet model, via ``pip install 'pesprobe[sevenn]'``.

The weights ship inside the ``sevenn`` wheel (``sevenn/pretrained_potentials``), so nothing is
downloaded. Molecules are evaluated as they are (SevenNet builds its graph without a cell).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from ase.calculators.calculator import Calculator

from pesprobe.potentials.optional import require


def sevennet_factory(model: str = "7net-0", device: str = "cpu") -> Callable[[], Calculator]:
    """A factory of SevenNet calculators sharing one loaded model.

    Parameters
    ----------
    model : str
        A pretrained model name of ``sevenn`` (``"7net-0"``) or a checkpoint path.
    device : str
        Torch device.

    Returns
    -------
    callable
        Zero-argument factory; each call gives a fresh calculator (energy in eV, forces in eV/Å)
        around the same model, so the weights are loaded once.

    Raises
    ------
    MissingExtra
        If ``sevenn`` does not import.
    """
    require("sevenn.calculator", "sevenn")
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():  # "no tensor product accelerator": none exists on CPU
        warnings.filterwarnings("ignore", message="No tensor product accelerator")
        loaded = SevenNetCalculator(model=model, device=device)

    def factory() -> Calculator:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No tensor product accelerator")
            return SevenNetCalculator(model=loaded.model, file_type="model_instance", device=device)

    factory.__name__ = model
    return factory
