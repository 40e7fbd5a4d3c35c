"""fairchem (UMA, eSEN ...) for ``pesprobe bsct --calc examples/fairchem_model.py:make`` (also ``md``,
``leaderboard``).

Install: ``pip install fairchem-core`` (2.x; large: it pulls CUDA toolkits, numba, hydra). Its
``pretrained_mlip.get_predict_unit("uma-s-1p1")`` downloads gated weights from a hub; here a local
checkpoint file is required (``load_predict_unit``), so nothing is downloaded at run time.

Settings (environment variables):

``PESPROBE_MODEL`` (required)
    The checkpoint file you have (``uma-s-1p1.pt`` ...).
``PESPROBE_TASK``
    UMA task head: ``omol`` (default: molecules; charge ``atoms.info["charge"]`` 0 and spin
    multiplicity ``atoms.info["spin"]`` 1 unless set), ``omat`` (inorganic materials), ``oc20``,
    ``odac``, ``omc``.
``PESPROBE_DEVICE``
    ``cpu`` (default), ``cuda``.
``PESPROBE_DTYPE``
    Not used: fairchem's predict unit runs the checkpoint's own precision.

Periodic box: with ``omat``/``omc``/``odac`` (periodic training data) a molecule is put in
pesprobe's cubic box (:class:`pesprobe.potentials.boxed.MoleculeInBox`, vacuum ``PESPROBE_VACUUM`` Å,
default 20, beyond UMA's 6 Å cutoff); ``omol`` and ``oc20`` take it as it is. ``PESPROBE_BOX=0``/``1``
overrides.

Elements: UMA's element embedding covers Z = 1-100 (``max_num_elements`` of its backbone, read
from the model where it says); a heavier element fails that scan with ``... has no parameters
for X (Z=..)``.
"""

from __future__ import annotations

import functools
import os

from pesprobe.potentials.adapters import OnlyElements, need, settings
from pesprobe.potentials.boxed import DEFAULT_VACUUM, MoleculeInBox

PERIODIC_TASKS = ("omat", "omc", "odac")


@functools.lru_cache(maxsize=2)
def _load(model: str, device: str):
    need("fairchem.core", "pip install fairchem-core", "examples/fairchem_model.py")
    from fairchem.core import pretrained_mlip

    return pretrained_mlip.load_predict_unit(model, device=device)


def _max_element(predictor) -> int:
    model = getattr(predictor, "model", None)
    for path in (("module", "backbone"), ("backbone",)):
        obj = model
        for name in path:
            obj = getattr(obj, name, None)
        if isinstance(getattr(obj, "max_num_elements", None), int):
            return int(obj.max_num_elements)
    return 100


def make():
    """A fairchem calculator (energy eV, forces eV/Å) around the checkpoint file, loaded once per process."""
    s = settings("a fairchem checkpoint file you have (e.g. uma-s-1p1.pt)")
    task = os.environ.get("PESPROBE_TASK", "").strip() or "omol"
    predictor = _load(s.model, s.device)
    from fairchem.core import FAIRChemCalculator

    calc = FAIRChemCalculator(predictor, task_name=task)
    box = os.environ.get("PESPROBE_BOX", "").strip()
    if (box not in ("", "0")) or (box == "" and task in PERIODIC_TASKS):
        calc = MoleculeInBox(calc, vacuum=float(os.environ.get("PESPROBE_VACUUM", DEFAULT_VACUUM)))
    return OnlyElements(calc, range(1, _max_element(predictor) + 1), f"fairchem model {os.path.basename(s.model)}")
