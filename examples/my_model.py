"""Your model for ``pesprobe bsct --calc examples/my_model.py:make``: a zero-argument factory returning an ASE
calculator.

Replace the body of :func:`make` with your model (README, "Evaluating your own model"). ASE's EMT stands in
here because it ships with ASE and scores the six embedded scans in seconds: a crude effective-medium
potential with parameters for H, C, N and O (and a few metals) only. The three embedded scans with P, S, F or
Cl therefore fail, which shows what pesprobe does with elements outside a model's training set: every frame
of such a scan fails with the model's error message, is counted and reported, and the scan is left unscored.
"""

from __future__ import annotations

from ase.calculators.calculator import Calculator


def make() -> Calculator:
    """A fresh calculator. pesprobe calls this once to identify the model and once per scan (in every worker
    process with ``--jobs``), so import and build inside it, and cache anything slow to load."""
    from ase.calculators.emt import EMT

    return EMT()
