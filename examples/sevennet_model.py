"""SevenNet for ``pesprobe bsct --calc examples/sevennet_model.py:make`` (also ``md``, ``leaderboard``).

Install: ``pip install 'pesprobe[sevenn]'`` (``sevenn==0.13.0``; it ships the pretrained 7net-0 weights, so
nothing is downloaded; checked to keep torch 2.13.0).

Settings (environment variables):

``PESPROBE_MODEL``
    A pretrained name ``sevenn`` ships (default ``7net-0``) or a SevenNet checkpoint file you have
    (``checkpoint_best.pth``, or a deployed ``.pt`` for ``file_type`` ``torchscript``).
``PESPROBE_DEVICE``
    ``cpu`` (default), ``cuda``, ``cuda:N``.
``PESPROBE_DTYPE``
    SevenNet computes in float32 whatever is asked; only ``float32`` (the default here) is accepted,
    so the results say what they are.

Periodic box: none needed. SevenNet builds its graph from the positions alone, so a molecule
(``pbc`` False) is evaluated as it is; ``--calc 7net-0`` gives the same numbers.

Elements: 7net-0 covers 89 elements (Z = 1-94 less five); an element outside the checkpoint's
``type_map`` fails that frame (so that scan) with ``... has no parameters for X (Z=..)`` instead of a
KeyError deep in SevenNet.
"""

from __future__ import annotations

import functools
import warnings

from pesprobe.potentials.adapters import AdapterSetupError, OnlyElements, need, settings


@functools.lru_cache(maxsize=2)
def _load(model: str, device: str):
    need("sevenn.calculator", "pip install 'pesprobe[sevenn]'", "examples/sevennet_model.py")
    from sevenn.calculator import SevenNetCalculator

    with warnings.catch_warnings():  # "no tensor product accelerator": none exists on CPU
        warnings.filterwarnings("ignore", message="No tensor product accelerator")
        return SevenNetCalculator(model=model, device=device)


def make():
    """A SevenNet calculator (energy eV, forces eV/Å) around the model, loaded once per process."""
    s = settings("a SevenNet pretrained name or checkpoint file", default_model="7net-0", default_dtype="float32")
    if s.dtype != "float32":
        raise AdapterSetupError("PESPROBE_DTYPE: SevenNet computes in float32 only; unset it or set float32")
    calc = _load(s.model, s.device)
    return OnlyElements(calc, calc.type_map, f"SevenNet model {s.model}")
