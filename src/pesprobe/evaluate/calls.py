"""One guarded model call: whatever the potential does, the caller gets :class:`Predictions`."""

from __future__ import annotations

import numpy as np

from pesprobe.potentials.base import Potential, Predictions


def safe_predict(potential: Potential, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray | None,
                 pbc: np.ndarray) -> Predictions:
    """``potential.predict`` on ``positions`` (n_frames, n_atoms, 3) Å; if the call raises or returns
    the wrong shapes, every frame fails with the reason (the run goes on)."""
    n_frames, n_atoms = positions.shape[:2]
    try:
        pred = potential.predict(numbers, positions, cell, pbc)
        if pred.energy.shape != (n_frames,) or pred.forces.shape != (n_frames, n_atoms, 3):
            raise ValueError(f"returned energy {pred.energy.shape} and forces {pred.forces.shape}, expected "
                             f"({n_frames},) and ({n_frames}, {n_atoms}, 3)")
        return pred
    except Exception as exc:  # noqa: BLE001 - one bad call must not end the run
        text = f"{type(exc).__name__}: {exc}".strip()
        return Predictions(energy=np.full(n_frames, np.nan), forces=np.full((n_frames, n_atoms, 3), np.nan),
                           failed=np.ones(n_frames, dtype=bool), errors={i: text for i in range(n_frames)})
