"""MACE for ``pesprobe bsct --calc examples/mace_model.py:make`` (also ``md``, ``leaderboard``).

Install: ``pip install mace-torch`` (0.3.16 keeps torch 2.13.0 but pins ``e3nn==0.4.4``, which SevenNet's
``e3nn>=0.5`` excludes: use a separate environment if you need both). pesprobe ships no MACE
weights and downloads none: bring the model file.

Settings (environment variables):

``PESPROBE_MODEL`` (required)
    A MACE model file you have: a ``.model`` saved by ``mace_run_train`` or a downloaded foundation
    model (MACE-OFF for organic molecules, MACE-MP/MATPES/OMAT for materials).
``PESPROBE_DEVICE``
    ``cpu`` (default), ``cuda``, ``cuda:N``.
``PESPROBE_DTYPE``
    ``float64`` (default: BSCT differentiates forces along a scan, float32 noise shows up in
    the smoothness) or ``float32`` (faster, what MD usually uses).

Periodic box: none needed. MACE builds its graph with ASE's neighbour list, which handles
non-periodic structures, so a molecule is evaluated as it is, with a materials model too (whose
energies then have its own, non-molecular reference). Set ``PESPROBE_BOX=1`` to put the molecule
in pesprobe's cubic box instead (:class:`pesprobe.potentials.boxed.MoleculeInBox`, vacuum
``PESPROBE_VACUUM`` Å, default 20): same numbers for any cutoff below the vacuum.

Elements: a MACE model has parameters only for the elements of its training set
(``model.atomic_numbers``); a scan with another element fails with
``MACE model ... has no parameters for X (Z=..); it covers ...`` rather than MACE's KeyError.
"""

from __future__ import annotations

import functools
import os

from pesprobe.potentials.adapters import OnlyElements, need, settings
from pesprobe.potentials.boxed import DEFAULT_VACUUM, MoleculeInBox


@functools.lru_cache(maxsize=2)
def _load(model: str, device: str, dtype: str):
    need("mace.calculators", "pip install mace-torch", "examples/mace_model.py")
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=model, device=device, default_dtype=dtype)


def make():
    """A MACE calculator (energy eV, forces eV/Å) around the model file, loaded once per process."""
    s = settings("a MACE model file you have (.model; MACE-OFF for molecules)")
    calc = _load(s.model, s.device, s.dtype)
    zs = [int(z) for z in calc.models[0].atomic_numbers]
    inner = MoleculeInBox(calc, vacuum=float(os.environ.get("PESPROBE_VACUUM", DEFAULT_VACUUM))) \
        if os.environ.get("PESPROBE_BOX", "") not in ("", "0") else calc
    return OnlyElements(inner, zs, f"MACE model {os.path.basename(s.model)}")
