"""The elements a potential was trained on, and the warning for structures with others.

A potential may declare ``training_elements``: the atomic numbers it saw in training, or None when
that is unknown (then nothing is checked). pesprobe models declare them
(:attr:`pesprobe.models.PESTransformer.training_elements`, also on
:class:`~pesprobe.models.TorchPotential` and :class:`~pesprobe.models.PESProbeCalculator`).
A structure with an element outside the set is extrapolation: the model's calls warn once per new
set of such elements (:class:`UnseenElementWarning`), and BSCT and MD results record the symbols
per scan and per molecule (``unseen_elements``; empty when every element was seen).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection

import numpy as np
from ase.data import chemical_symbols


class UnseenElementWarning(UserWarning):
    """A structure holds elements that the model never saw in training."""


def element_symbols(numbers: Collection[int]) -> list[str]:
    """Symbols of the distinct atomic numbers in ``numbers``, in order of Z (``[6, 1, 6]`` -> ``["H", "C"]``)."""
    return [chemical_symbols[z] for z in sorted({int(z) for z in numbers})]


def unseen_elements(known: Collection[int] | None, numbers: np.ndarray | Collection[int]) -> list[str]:
    """Symbols of the elements of ``numbers`` that are not in ``known``, in order of Z.

    Parameters
    ----------
    known : collection of int or None
        Atomic numbers seen in training; None: unknown (nothing is unseen).
    numbers : array-like of int, shape (n_atoms,)
        Atomic numbers of a structure.

    Returns
    -------
    list of str
        Empty when every element was seen, or when ``known`` is None.
    """
    if known is None:
        return []
    seen = {int(z) for z in known}
    return element_symbols([int(z) for z in np.unique(np.asarray(numbers)) if int(z) not in seen])


class UnseenElementCheck:
    """Warns once per new set of unseen elements (per instance: one per potential or calculator)."""

    def __init__(self) -> None:
        self._warned: set[tuple[str, ...]] = set()

    def __call__(self, name: str, known: Collection[int] | None, numbers: np.ndarray | Collection[int]) -> list[str]:
        """The unseen elements of ``numbers`` (see :func:`unseen_elements`); warns the first time a set occurs.

        Parameters
        ----------
        name : str
            The model's name, for the message.
        known : collection of int or None
            Atomic numbers seen in training (None: unknown, no warning).
        numbers : array-like of int, shape (n_atoms,)
        """
        unseen = unseen_elements(known, numbers)
        if unseen and tuple(unseen) not in self._warned:
            self._warned.add(tuple(unseen))
            warnings.warn(f"{name}: element(s) {', '.join(unseen)} never seen in training (trained on "
                          f"{', '.join(element_symbols(known))}); results for structures with them are "
                          "extrapolation", UnseenElementWarning, stacklevel=3)
        return unseen
