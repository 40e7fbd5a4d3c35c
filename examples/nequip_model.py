"""NequIP / Allegro for ``pesprobe bsct --calc examples/nequip_model.py:make`` (also ``md``, ``leaderboard``).

Install: ``pip install nequip`` (and ``allegro`` for Allegro models). pesprobe downloads no weights:
bring the model file.

Settings (environment variables):

``PESPROBE_MODEL`` (required)
    A compiled model (``nequip-compile``: ``.nequip.pt2`` AOT or ``.nequip.pth`` TorchScript; NequIP
    >= 0.7) or a deployed model (``nequip-deploy``, ``.pth``; NequIP < 0.7).
``PESPROBE_DEVICE``
    ``cpu`` (default), ``cuda``, ``cuda:N``; an AOT-compiled ``.pt2`` runs only on the device it was
    compiled for.
``PESPROBE_DTYPE``
    Fixed when the model is compiled or deployed (``model_dtype``); the variable is not used.

Periodic box: none needed for a model trained on molecules: the NequIP calculator builds its
neighbour list from ``pbc``. For a materials model that insists on a cell, ``PESPROBE_BOX=1``
boxes the molecule (:class:`pesprobe.potentials.boxed.MoleculeInBox`, vacuum ``PESPROBE_VACUUM`` Å,
default 20 — keep it above the model's cutoff).

Elements: the model's ``type_names`` / chemical species; another element fails that scan with
``NequIP model ... has no parameters for X (Z=..)``.
"""

from __future__ import annotations

import functools
import os

from ase.data import atomic_numbers

from pesprobe.potentials.adapters import OnlyElements, need, settings
from pesprobe.potentials.boxed import DEFAULT_VACUUM, MoleculeInBox


@functools.lru_cache(maxsize=2)
def _load(model: str, device: str):
    need("nequip.ase", "pip install nequip", "examples/nequip_model.py")
    from nequip.ase import NequIPCalculator

    if hasattr(NequIPCalculator, "from_compiled_model"):  # NequIP >= 0.7
        return NequIPCalculator.from_compiled_model(model, device=device)
    return NequIPCalculator.from_deployed_model(model, device=device)  # NequIP < 0.7


def _species(calc) -> list[int] | None:
    """Atomic numbers the model covers, where the calculator says (else None: no check)."""
    for attr in ("chemical_species_to_atom_type_map", "species_to_type_name"):
        mapping = getattr(calc, attr, None)
        if isinstance(mapping, dict) and mapping:
            return [atomic_numbers[s] for s in mapping if s in atomic_numbers]
    return None


def make():
    """A NequIP calculator (energy eV, forces eV/Å) around the model file, loaded once per process."""
    s = settings("a NequIP/Allegro compiled (.nequip.pt2/.nequip.pth) or deployed (.pth) model file")
    calc = _load(s.model, s.device)
    inner = MoleculeInBox(calc, vacuum=float(os.environ.get("PESPROBE_VACUUM", DEFAULT_VACUUM))) \
        if os.environ.get("PESPROBE_BOX", "") not in ("", "0") else calc
    species = _species(calc)
    return inner if species is None else OnlyElements(inner, species, f"NequIP model {os.path.basename(s.model)}")
