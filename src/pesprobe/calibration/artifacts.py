"""Potentials with a known artifact on one atom pair, and simple smooth-but-wrong controls.

Each wrapper adds a term that depends on one distance d = |R_j − R_i| (Å) to a base batched
:class:`~pesprobe.potentials.base.Potential`:

``step``    E += A·[d > r_c]                        energy step of A eV, forces unchanged (a cutoff)
``kink``    E += A·max(0, d − r_c)                  energy continuous, force jump of A eV/Å at r_c
``well``    E −= A·exp(−(d − r_c)² / (2 w²))        a smooth spurious minimum of depth A eV, width w Å

``ScaledForces`` multiplies the base forces (energy unchanged): smooth, but not conservative.
``ZeroPotential`` predicts zero energy and forces. ``MemoPotential`` remembers the base model's
results per geometry, so many artifact variants share one set of expensive reference calls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from pesprobe.potentials.base import Potential, Predictions

KINDS = ("step", "kink", "well")
#: Width of the spurious well, Å.
WELL_WIDTH_A = 0.05


def pair_term(kind: str, amplitude: float, r_c: float, positions: np.ndarray, i: int, j: int,
              width: float = WELL_WIDTH_A) -> tuple[np.ndarray, np.ndarray]:
    """Energy (n,) eV and forces (n, n_atoms, 3) eV/Å of the artifact term on frames ``positions``.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    amplitude : float
        A: eV for ``step`` and ``well``, eV/Å for ``kink``.
    r_c : float
        Where along d the artifact sits, Å.
    positions : (n, n_atoms, 3) Å
    i, j : int
        The atom pair.
    """
    vec = positions[:, j] - positions[:, i]
    d = np.linalg.norm(vec, axis=1)
    unit = vec / d[:, None]
    if kind == "step":
        energy, dedd = amplitude * (d > r_c), np.zeros_like(d)
    elif kind == "kink":
        energy, dedd = amplitude * np.maximum(0.0, d - r_c), amplitude * (d > r_c)
    elif kind == "well":
        g = np.exp(-0.5 * ((d - r_c) / width) ** 2)
        energy, dedd = -amplitude * g, amplitude * g * (d - r_c) / width ** 2
    else:
        raise ValueError(f"unknown artifact kind {kind!r}; expected one of {KINDS}")
    forces = np.zeros_like(positions)
    forces[:, j] = -dedd[:, None] * unit
    forces[:, i] = dedd[:, None] * unit
    return energy, forces


@dataclass
class ArtifactPotential:
    """``base`` plus one artifact term (see the module docstring).

    Attributes
    ----------
    base : Potential
    kind : str
    amplitude : float
        eV (step, well) or eV/Å (kink).
    r_c : float
        Location along the pair distance, Å.
    pair : tuple of int
        The two atoms.
    """

    base: Potential
    kind: str
    amplitude: float
    r_c: float
    pair: tuple[int, int]
    name: str = field(default="")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown artifact kind {self.kind!r}; expected one of {KINDS}")
        self.name = self.name or f"{self.base.name}+{self.kind}({self.amplitude:g})"

    def identity(self) -> str:
        """Base identity plus the artifact's parameters."""
        return f"{self.base.identity()}|{self.kind}:{self.amplitude!r}:{self.r_c!r}:{self.pair}"

    def predict(self, numbers, positions, cell=None, pbc=None) -> Predictions:
        """Base predictions plus the artifact term (failed base frames stay failed)."""
        pred = self.base.predict(numbers, positions, cell, pbc)
        e, f = pair_term(self.kind, self.amplitude, self.r_c, np.asarray(positions, dtype=float), *self.pair)
        return Predictions(energy=pred.energy + e, forces=pred.forces + f, failed=pred.failed.copy(),
                           errors=dict(pred.errors), seconds=pred.seconds)


@dataclass
class ScaledForces:
    """``base`` with its forces multiplied by ``factor`` (energies unchanged)."""

    base: Potential
    factor: float = 0.8

    @property
    def name(self) -> str:
        """Display name."""
        return f"{self.base.name}*F{self.factor:g}"

    def identity(self) -> str:
        """Base identity plus the factor."""
        return f"{self.base.identity()}|forces*{self.factor!r}"

    def predict(self, numbers, positions, cell=None, pbc=None) -> Predictions:
        """Base predictions with scaled forces."""
        pred = self.base.predict(numbers, positions, cell, pbc)
        return Predictions(energy=pred.energy, forces=pred.forces * self.factor, failed=pred.failed,
                           errors=dict(pred.errors), seconds=pred.seconds)


class ZeroPotential:
    """Zero energy and zero forces everywhere: the null model of the FSD ceiling."""

    name = "zero"

    def identity(self) -> str:
        """Constant identity."""
        return "zero-potential-v1"

    def predict(self, numbers, positions, cell=None, pbc=None) -> Predictions:
        """Zeros of the right shapes."""
        positions = np.asarray(positions, dtype=float)
        return Predictions.from_arrays(np.zeros(len(positions)), np.zeros_like(positions))


class MemoPotential:
    """Remembers ``base``'s predictions frame by frame (keyed by atoms and geometry bytes).

    Frames seen before are not recomputed; new frames go to ``base`` in one call.
    """

    def __init__(self, base: Potential) -> None:
        self.base = base
        self.name = base.name
        self._memo: dict[str, tuple[float, np.ndarray, bool, str]] = {}

    def identity(self) -> str:
        """The base identity (memoisation does not change results)."""
        return self.base.identity()

    @staticmethod
    def _key(numbers: np.ndarray, frame: np.ndarray, cell, pbc) -> str:
        h = hashlib.sha256(np.ascontiguousarray(numbers, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(frame, dtype=np.float64).tobytes())
        h.update(repr((None if cell is None else np.asarray(cell).tolist(), None if pbc is None
                       else np.asarray(pbc).tolist())).encode())
        return h.hexdigest()

    def predict(self, numbers, positions, cell=None, pbc=None) -> Predictions:
        """Base predictions, from memory where possible."""
        positions = np.asarray(positions, dtype=float)
        keys = [self._key(numbers, p, cell, pbc) for p in positions]
        new = [k for k, key in enumerate(keys) if key not in self._memo]
        seconds = 0.0
        if new:
            pred = self.base.predict(numbers, positions[new], cell, pbc)
            seconds = pred.seconds
            for row, k in enumerate(new):
                self._memo[keys[k]] = (float(pred.energy[row]), pred.forces[row].copy(), bool(pred.failed[row]),
                                       pred.errors.get(row, ""))
        items = [self._memo[key] for key in keys]
        return Predictions(energy=np.array([e for e, *_ in items]), forces=np.stack([f for _, f, *_ in items]),
                           failed=np.array([bad for *_, bad, _ in items]),
                           errors={k: text for k, (*_, bad, text) in enumerate(items) if bad}, seconds=seconds)
