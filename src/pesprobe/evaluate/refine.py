"""The detector's extra model calls: candidates found on a scan's predictions are refined.

The maths (candidates, refined geometry, confirmation) is in
:mod:`pesprobe.metrics.discontinuity`; this module only calls the model, once per scan for all its
refined frames (a batched potential gets them in one ``predict`` call).
"""

from __future__ import annotations

import numpy as np

from pesprobe.data.scan import Scan
from pesprobe.evaluate.calls import safe_predict
from pesprobe.metrics import refinement_plan
from pesprobe.metrics.discontinuity import RefinementPlan
from pesprobe.potentials.base import Potential, Predictions


def empty_predictions(n_atoms: int) -> Predictions:
    """Predictions for zero frames (a scan with no candidate)."""
    return Predictions(energy=np.zeros(0), forces=np.zeros((0, n_atoms, 3)), failed=np.zeros(0, dtype=bool))


def refine(potential: Potential, scan: Scan, pred: Predictions, plan: RefinementPlan | None = None) -> Predictions:
    """The model on the refined frames of ``scan`` (given its predictions ``pred``).

    Returns
    -------
    Predictions
        One row per row of ``refinement_plan(scan, pred).positions`` (zero rows without candidates);
        frames on which the model failed are marked failed (their candidates are then unconfirmed).
    """
    plan = refinement_plan(scan, pred) if plan is None else plan
    if plan.n_frames == 0:
        return empty_predictions(scan.n_atoms)
    return safe_predict(potential, scan.numbers, plan.positions, scan.cell, scan.pbc)
