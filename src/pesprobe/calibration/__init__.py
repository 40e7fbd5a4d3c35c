"""Calibration of the smoothness verdict: potentials with artifacts of known place and size.

``artifacts`` wraps any batched potential with an energy step, a force kink or a spurious well on
one atom pair; ``run`` measures what each BSCT figure detects (``benchmarks/calibration.py``).
"""
