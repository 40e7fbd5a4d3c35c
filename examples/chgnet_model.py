"""CHGNet for ``pesprobe bsct --calc examples/chgnet_model.py:make`` (also ``md``, ``leaderboard``).

Install: ``pip install 'pesprobe[chgnet]'`` (``chgnet==0.3.8``; it ships the CHGNet 0.3.0 weights, nothing
is downloaded; checked to keep torch 2.13.0).

Settings (environment variables):

``PESPROBE_MODEL``
    A version the package ships (default ``0.3.0``) or a CHGNet checkpoint file you have
    (``.pth.tar``, e.g. a fine-tuned model).
``PESPROBE_DEVICE``
    ``cpu`` (default), ``cuda``, ``cuda:N``.
``PESPROBE_DTYPE``
    CHGNet computes in float32; only ``float32`` (the default here) is accepted.

Periodic box: CHGNet evaluates periodic structures only, so a molecule is put in a cubic box whose
edge is its largest extent + ``PESPROBE_VACUUM`` Å (default 20, far beyond CHGNet's 5 Å atom-graph
and 3 Å bond-graph cutoffs: the molecule never sees its images), with pesprobe's own boxing
(:class:`pesprobe.potentials.boxed.MoleculeInBox`); ``--calc chgnet`` gives the same numbers.

Elements: CHGNet's atom embedding covers Z = 1-94; a heavier element fails that frame (so that
scan) with ``... has no parameters for X (Z=..)``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os

from pesprobe.potentials.adapters import AdapterSetupError, OnlyElements, need, settings
from pesprobe.potentials.boxed import DEFAULT_VACUUM, MoleculeInBox


@functools.lru_cache(maxsize=2)
def _load(model: str, device: str):
    need("chgnet.model", "pip install 'pesprobe[chgnet]'", "examples/chgnet_model.py")
    from chgnet.model import CHGNet

    if os.path.isfile(model):
        return CHGNet.from_file(model)
    return CHGNet.load(model_name=model, use_device=device, check_cuda_mem=False, verbose=False)


def make():
    """A boxed CHGNet calculator (total energy eV, forces eV/Å) around the model, loaded once per process."""
    s = settings("a CHGNet version the package ships (0.3.0) or a checkpoint file", default_model="0.3.0",
                 default_dtype="float32")
    if s.dtype != "float32":
        raise AdapterSetupError("PESPROBE_DTYPE: CHGNet computes in float32 only; unset it or set float32")
    vacuum = float(os.environ.get("PESPROBE_VACUUM", DEFAULT_VACUUM))
    model = _load(s.model, s.device)
    from chgnet.model.dynamics import CHGNetCalculator

    with contextlib.redirect_stdout(io.StringIO()):  # "CHGNet will run on cpu"
        inner = CHGNetCalculator(model=model, use_device=s.device, check_cuda_mem=False, on_isolated_atoms="ignore")
    return OnlyElements(MoleculeInBox(inner, vacuum=vacuum), range(1, 95), f"CHGNet {s.model}")
