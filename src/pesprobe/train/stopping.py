"""Early stopping on a validation metric."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass
class EarlyStopping:
    """Stop a run when ``metric`` has not improved for ``patience`` evaluations.

    An evaluation improves on the best value ``b`` when its value is below ``b · (1 − min_delta)``.

    Attributes
    ----------
    patience : int, optional
        Evaluations without improvement before stopping; None never stops.
    metric : str
        Metric of the evaluation records to watch (lower is better).
    min_delta : float
        Relative improvement that counts, in [0, 1).
    best : float
        Best value so far.
    since_best : int
        Evaluations since the best value.
    """

    patience: int | None
    metric: str = "valid_score"
    min_delta: float = 0.0
    best: float = math.inf
    since_best: int = 0

    def __post_init__(self) -> None:
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if not 0.0 <= self.min_delta < 1.0:
            raise ValueError(f"min_delta must be in [0, 1), got {self.min_delta}")

    @property
    def stop(self) -> bool:
        """True once ``patience`` evaluations in a row did not improve."""
        return self.patience is not None and self.since_best >= self.patience

    def update(self, metrics: dict[str, float]) -> bool:
        """Count one evaluation (ignored if it lacks a finite ``metric``); return :attr:`stop`."""
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return self.stop
        if value < self.best * (1.0 - self.min_delta):
            self.best, self.since_best = float(value), 0
        else:
            self.since_best += 1
        return self.stop

    def state_dict(self) -> dict[str, Any]:
        """Best value and count, for a checkpoint."""
        return {"best": self.best, "since_best": self.since_best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.best, self.since_best = float(state["best"]), int(state["since_best"])
