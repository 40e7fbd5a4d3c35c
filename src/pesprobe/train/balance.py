"""Energy weighting that gives energies a fixed share of the loss.

With fixed weights the energy term of ``w_E · MSE_E + w_F · MSE_F`` shrinks to a few per cent of the
loss once the per-atom energy errors fall below ~10 meV/atom (its unit, (eV/atom)², is tiny beside
(eV/Å)²), and the energies stop being learned. :class:`LossBalance` instead sets

    w_E(t) = w_F · s / (1 − s) · m_F(t) / m_E(t)

where ``m_E``, ``m_F`` are exponential running means of the global-batch MSEs, so that on average the
energy term is the fraction ``s`` of the loss. The share ramps up linearly over the first ``ramp``
fraction of the run (forces first, then a growing share for the energies), and the weight never
drops below the fixed ``energy_weight``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Running means below this are treated as zero (no such labels in the batches so far).
_TINY = 1e-30


@dataclass
class LossBalance:
    """The energy weight of each step.

    Attributes
    ----------
    energy_weight : float
        The fixed weight (1/(eV/atom)²) used when ``share`` is None, and until both running means exist.
    forces_weight : float
        Fixed weight of the force MSE, 1/(eV/Å)².
    share : float, optional
        Target fraction of the loss carried by the energy term, in (0, 1); None keeps ``energy_weight``.
    decay : float
        Decay of the running means per step, in [0, 1).
    ramp : float
        Fraction of the run over which the share grows linearly from 0 to ``share``, in [0, 1].
    mean_energy, mean_forces : float, optional
        Running means of the energy-per-atom MSE, (eV/atom)², and the force MSE, (eV/Å)².
    """

    energy_weight: float
    forces_weight: float
    share: float | None = None
    decay: float = 0.99
    ramp: float = 0.2
    mean_energy: float | None = None
    mean_forces: float | None = None

    def __post_init__(self) -> None:
        if self.share is not None:
            if not 0.0 < self.share < 1.0:
                raise ValueError(f"energy share must be in (0, 1), got {self.share}")
            if self.forces_weight <= 0:
                raise ValueError("an energy share needs a positive forces weight to be relative to")
        if not 0.0 <= self.decay < 1.0:
            raise ValueError(f"balance decay must be in [0, 1), got {self.decay}")
        if not 0.0 <= self.ramp <= 1.0:
            raise ValueError(f"share ramp must be in [0, 1], got {self.ramp}")

    def target(self, progress: float) -> float:
        """The share aimed at a fraction ``progress`` (0-1) into the run (0 without a share)."""
        if self.share is None:
            return 0.0
        return self.share if self.ramp == 0 else self.share * min(1.0, max(progress, 0.0) / self.ramp)

    def _running(self, old: float | None, new: float) -> float:
        return new if old is None else self.decay * old + (1.0 - self.decay) * new

    def weight(self, energy_mse: float, forces_mse: float, progress: float = 1.0) -> float:
        """Update the running means with this step's global-batch MSEs and return its energy weight.

        Parameters
        ----------
        energy_mse : float
            Energy-per-atom MSE of the global batch, (eV/atom)².
        forces_mse : float
            Force MSE of the global batch, (eV/Å)².
        progress : float
            Fraction of the run done before this step, 0-1 (for the ramp).

        Returns
        -------
        float
            ``w_E`` for this step, 1/(eV/atom)².
        """
        if self.share is None:
            return self.energy_weight
        self.mean_energy = self._running(self.mean_energy, energy_mse)
        self.mean_forces = self._running(self.mean_forces, forces_mse)
        share = self.target(progress)
        if self.mean_energy < _TINY or self.mean_forces < _TINY:
            return self.energy_weight
        adapted = self.forces_weight * share / (1.0 - share) * self.mean_forces / self.mean_energy
        return max(self.energy_weight, adapted)

    def state_dict(self) -> dict[str, Any]:
        """The running means (and settings), for a checkpoint."""
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the running means of a checkpoint (settings come from the configuration)."""
        self.mean_energy, self.mean_forces = state.get("mean_energy"), state.get("mean_forces")
