"""ORB for ``pesprobe bsct --calc examples/orb_model.py:make`` (also ``md``, ``leaderboard``).

Install: ``pip install orb-models`` (0.5.5 keeps torch 2.13.0 but pulls boto3 and Google Cloud
clients). Its pretrained loaders download weights unless given a file: here the weights file is
required, so nothing is downloaded at run time.

Settings (environment variables):

``PESPROBE_MODEL`` (required)
    The checkpoint file you have (``orb-v3-conservative-inf-omat-*.ckpt`` ...).
``PESPROBE_ORB_ARCH``
    The architecture of that checkpoint: a key of ``orb_models.forcefield.pretrained.ORB_PRETRAINED_MODELS``
    (default ``orb-v3-conservative-inf-omat``; ``orb-v3-conservative-omol`` for the molecular model).
``PESPROBE_DEVICE``
    ``cpu`` (default), ``cuda``, ``cuda:N``.
``PESPROBE_DTYPE``
    ``float64`` (default; ORB's ``precision="float64"``) or ``float32`` (``"float32-high"``).

Periodic box: the materials models (``omat``, ``mpa``) were trained on periodic cells, so a
molecule is put in pesprobe's cubic box (:class:`pesprobe.potentials.boxed.MoleculeInBox`, vacuum
``PESPROBE_VACUUM`` Å, default 20, beyond ORB's 6 Å graph cutoff); the ``omol`` models take it as
it is. ``PESPROBE_BOX=0``/``1`` overrides.

Elements: ORB embeds every element Z = 1-118, so none is refused; one absent from the training
data gives numbers, not an error (check the model card). Z > 118 cannot occur.
"""

from __future__ import annotations

import functools
import os

from pesprobe.potentials.adapters import AdapterSetupError, OnlyElements, need, settings
from pesprobe.potentials.boxed import DEFAULT_VACUUM, MoleculeInBox


@functools.lru_cache(maxsize=2)
def _load(model: str, arch: str, device: str, dtype: str):
    need("orb_models.forcefield.pretrained", "pip install orb-models", "examples/orb_model.py")
    from orb_models.forcefield import pretrained
    from orb_models.forcefield.calculator import ORBCalculator

    if arch not in pretrained.ORB_PRETRAINED_MODELS:
        raise AdapterSetupError(f"PESPROBE_ORB_ARCH={arch}: not an ORB architecture; known: "
                                f"{', '.join(sorted(pretrained.ORB_PRETRAINED_MODELS))}")
    precision = "float64" if dtype == "float64" else "float32-high"
    orbff = pretrained.ORB_PRETRAINED_MODELS[arch](weights_path=model, device=device, precision=precision)
    return ORBCalculator(orbff, device=device)


def make():
    """An ORB calculator (energy eV, forces eV/Å) around the checkpoint file, loaded once per process."""
    s = settings("an ORB checkpoint file you have (.ckpt)")
    arch = os.environ.get("PESPROBE_ORB_ARCH", "").strip() or "orb-v3-conservative-inf-omat"
    calc = _load(s.model, arch, s.device, s.dtype)
    box = os.environ.get("PESPROBE_BOX", "").strip()
    if (box not in ("", "0")) or (box == "" and "omol" not in arch):
        calc = MoleculeInBox(calc, vacuum=float(os.environ.get("PESPROBE_VACUUM", DEFAULT_VACUUM)))
    return OnlyElements(calc, range(1, 119), f"ORB model {arch}")
