"""Potentials: the :class:`Potential` protocol, the ASE adapter and the SPEC registry."""

from pesprobe.potentials.base import Potential, Predictions

__all__ = ["Potential", "Predictions"]
