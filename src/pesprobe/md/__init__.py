"""MD stability test and its correlation with BSCT.

* :func:`run_stability` — NVE/NVT MD of molecules under a potential (ASE engine, or the batched
  torch engine for models meeting the torch-sim-style contract), failure criteria, stability measures.
* :func:`correlate` — BSCT and MD for several potentials; rank correlations of FSD with instability.

Torch is imported only by the batched engine.
"""

from pesprobe.md.config import MDConfig
from pesprobe.md.correlate import CorrelationResult, correlate
from pesprobe.md.monitor import CRITERIA, Failure
from pesprobe.md.record import TrajectoryResult
from pesprobe.md.study import StabilityResult, run_stability
from pesprobe.md.systems import Molecule, load_molecules

__all__ = ["CRITERIA", "CorrelationResult", "Failure", "MDConfig", "Molecule", "StabilityResult",
           "TrajectoryResult", "correlate", "load_molecules", "run_stability"]
