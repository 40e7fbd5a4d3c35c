"""Any metatomic model for ``pesprobe bsct --calc examples/metatomic_model.py:make`` (also ``md``, ``leaderboard``).

Install: ``pip install 'pesprobe[metatomic]'`` (metatomic-torch 0.1.19, metatomic-ase 0.1.4: they keep
torch 2.13.0, checked with pip). pesprobe downloads no weights: bring the exported model file
(``AtomisticModel.save``, e.g. metatrain's ``mtt export``: PET-MAD, or models of other codes exported to
metatomic). Do not import ``torch_geometric`` (SevenNet, CHGNet) in the same process first: TorchScript
then fails to compile metatensor-operations.

Settings (environment variables):

``PESPROBE_MODEL`` (required)
    The exported model file (``.pt``).
``PESPROBE_EXTENSIONS``
    Folder of the model's TorchScript extensions, if it has any (``mtt export`` writes ``extensions/``).
``PESPROBE_DEVICE``
    ``cpu`` (default), ``cuda``, ``mps`` ...; must be one of the model's ``supported_devices``.
``PESPROBE_DTYPE``
    Fixed by the model (``capabilities().dtype``); the variable is not used.

Periodic box: none needed: the calculator builds the neighbour lists the model requests from the
structure's own ``pbc``, so a molecule is evaluated as it is. A materials model that needs a cell:
``PESPROBE_BOX=1`` (pesprobe's cubic box, :class:`pesprobe.potentials.boxed.MoleculeInBox`, vacuum
``PESPROBE_VACUUM`` Å, default 20: keep it above the model's ``interaction_range``).

Elements: the model's ``capabilities().atomic_types``; another element fails that scan with
``metatomic model ... has no parameters for X (Z=..); it covers ...``.
"""

from __future__ import annotations

import functools
import os

from pesprobe.potentials.adapters import OnlyElements, need, settings
from pesprobe.potentials.boxed import DEFAULT_VACUUM, MoleculeInBox


@functools.lru_cache(maxsize=2)
def _load(model: str, device: str, extensions: str | None):
    need("metatomic_ase", "pip install 'pesprobe[metatomic]'", "examples/metatomic_model.py")
    from metatomic_ase import MetatomicCalculator

    return MetatomicCalculator(model, device=device, extensions_directory=extensions)


def make():
    """A metatomic calculator (energy eV, forces eV/Å) around the model file, loaded once per process."""
    s = settings("an exported metatomic model file (.pt)")
    calc = _load(s.model, s.device, os.environ.get("PESPROBE_EXTENSIONS") or None)
    types = [int(z) for z in calc._model.capabilities().atomic_types]
    inner = MoleculeInBox(calc, vacuum=float(os.environ.get("PESPROBE_VACUUM", DEFAULT_VACUUM))) \
        if os.environ.get("PESPROBE_BOX", "") not in ("", "0") else calc
    return OnlyElements(inner, types, f"metatomic model {os.path.basename(s.model)}")
