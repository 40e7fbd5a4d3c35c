"""Pair potentials of known, tunable roughness, as ASE calculators: a calibration family for
:func:`pesprobe.md.correlate` (does the test rank a rougher surface as rougher?).

Every pair of atoms (i < j, all pairs, no cutoff; molecules only) at distance r contributes

* a Morse term ``D[(1 − e^{−a(r − r0)})² − 1]`` (smooth reference);
* a **cutoff discontinuity** ``A_step · [r < r_c] · (1 + (r_c − r)/λ)``: the energy jumps by
  ``A_step`` and the force by ``A_step/λ`` where a pair crosses ``r_c`` (as in a model whose
  neighbour list ends at ``r_c`` without a smooth cutoff);
* a **smooth bump** ``A_smooth · exp(−((r − r_c)/σ)²)``: a control of similar size that is
  infinitely differentiable.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

#: Length scale λ of the cutoff discontinuity's linear ramp, Å.
STEP_RAMP_A = 0.1
#: Width σ of the smooth bump, Å.
BUMP_WIDTH_A = 0.5


def pair_terms(r: np.ndarray, depth_eV: float, alpha_per_A: float, r0_A: float, step_eV: float,
               smooth_eV: float, cutoff_A: float) -> tuple[np.ndarray, np.ndarray]:
    """Pair energies (eV) and their derivatives dE/dr (eV/Å) at distances ``r`` (Å), any shape."""
    x = np.exp(-alpha_per_A * (r - r0_A))
    energy = depth_eV * ((1.0 - x) ** 2 - 1.0)
    d_energy = 2.0 * depth_eV * alpha_per_A * (1.0 - x) * x
    if step_eV:
        inside = r < cutoff_A
        energy = energy + step_eV * inside * (1.0 + (cutoff_A - r) / STEP_RAMP_A)
        d_energy = d_energy - step_eV * inside / STEP_RAMP_A
    if smooth_eV:
        u = (r - cutoff_A) / BUMP_WIDTH_A
        bump = smooth_eV * np.exp(-u * u)
        energy = energy + bump
        d_energy = d_energy - 2.0 * u / BUMP_WIDTH_A * bump
    return energy, d_energy


class SyntheticPairCalculator(Calculator):
    """All-pairs Morse, plus an optional cutoff discontinuity or smooth bump (see module doc).

    Parameters
    ----------
    depth_eV, alpha_per_A, r0_A : float
        Morse well depth D (eV), stiffness a (1/Å) and minimum r0 (Å).
    step_eV : float
        Energy jump A_step at the cutoff, eV (0: none).
    smooth_eV : float
        Height A_smooth of the smooth bump, eV (0: none).
    cutoff_A : float
        r_c, Å: where the discontinuity sits and the bump is centred.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, depth_eV: float = 1.0, alpha_per_A: float = 4.0, r0_A: float = 1.4, step_eV: float = 0.0,
                 smooth_eV: float = 0.0, cutoff_A: float = 1.45, **kwargs) -> None:
        super().__init__(depth_eV=depth_eV, alpha_per_A=alpha_per_A, r0_A=r0_A, step_eV=step_eV,
                         smooth_eV=smooth_eV, cutoff_A=cutoff_A, **kwargs)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        p = self.parameters
        pos = self.atoms.positions
        i, j = np.triu_indices(len(pos), k=1)
        vec = pos[i] - pos[j]
        r = np.linalg.norm(vec, axis=1)
        energy, d_energy = pair_terms(r, p.depth_eV, p.alpha_per_A, p.r0_A, p.step_eV, p.smooth_eV, p.cutoff_A)
        pair_force = -(d_energy / r)[:, None] * vec
        forces = np.zeros_like(pos)
        np.add.at(forces, i, pair_force)
        np.add.at(forces, j, -pair_force)
        self.results = {"energy": float(energy.sum()), "forces": forces}
