"""SPEC strings -> potentials. Heavy imports happen only inside the branch that needs them.

Forms (:data:`SPEC_FORMS`, which every command's ``--help`` lists)
------------------------------------------------------------------
``pesprobe:default`` or ``pesprobe:PATH``
    The shipped pesprobe model or a pesprobe model checkpoint (batched torch path).
``gfn2-xtb``, ``gfn1-xtb``
    GFN2-/GFN1-xTB through tblite.
``gfn-ff``, ``7net-0``, ``chgnet``
    GFN-FF (xtb-python), SevenNet-0 and CHGNet 0.3.0 (optional extras ``pesprobe[xtb]``,
    ``pesprobe[sevenn]``, ``pesprobe[chgnet]``; :mod:`pesprobe.potentials.optional`).
``lj``, ``morse``
    ASE's Lennard-Jones and Morse calculators (demos and tests; parameters of the golden tests).
``pyscf:<functional>/<basis>``
    DFT through PySCF (optional extra ``pesprobe[pyscf]``).
``torchsim:MODULE:FACTORY``
    FACTORY returns a torch-sim ``ModelInterface`` (MACE, SevenNet, ORB, ... wrappers), run batched
    (:mod:`pesprobe.potentials.torchsim`; optional extra ``pesprobe[torchsim]``).
``MODULE:FACTORY``
    An importable module, or a path to a ``.py`` file, and a zero-argument callable that returns
    an ASE calculator (or a Potential).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pesprobe.potentials.ase_adapter import AseCalculatorPotential, describe_calculator, make_calculator
from pesprobe.potentials.base import Potential


class SpecError(ValueError):
    """A SPEC string that does not name a usable potential."""


def _tblite_factory(method: str) -> Callable[[], Any]:
    def factory():
        from tblite.ase import TBLite

        return TBLite(method=method, verbosity=0, max_iterations=250)

    factory.__name__ = method.lower()
    return factory


def _lj_factory():
    from ase.calculators.lj import LennardJones

    return LennardJones(sigma=1.5, epsilon=0.05, rc=4.0, smooth=False)


def _morse_factory():
    from ase.calculators.morse import MorsePotential

    return MorsePotential(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5)


def _adapter(module: str, function: str) -> Callable[[], Any]:
    """The factory of an optional third-party potential, imported only when its SPEC is used."""
    return getattr(importlib.import_module(f"pesprobe.potentials.{module}"), function)()


@dataclass(frozen=True)
class SpecForm:
    """One form of SPEC string.

    Attributes
    ----------
    form : str
        The SPEC itself (a built-in name) or its pattern (``pyscf:XC/BASIS``).
    about : str
        What it names, for ``--help``.
    factory : callable, optional
        Built-in names only: returns the zero-argument calculator factory.
    """

    form: str
    about: str
    factory: Callable[[], Callable[[], Any]] | None = None


#: Every SPEC form, in the order ``--help`` and error messages list them.
SPEC_FORMS: tuple[SpecForm, ...] = (
    SpecForm("pesprobe:default", "the shipped pesprobe model"),
    SpecForm("pesprobe:PATH", "a pesprobe checkpoint"),
    SpecForm("gfn2-xtb", "GFN2-xTB", lambda: _tblite_factory("GFN2-xTB")),
    SpecForm("gfn1-xtb", "GFN1-xTB", lambda: _tblite_factory("GFN1-xTB")),
    SpecForm("gfn-ff", "GFN-FF; extra xtb", lambda: _adapter("xtb_gfnff", "gfnff_factory")),
    SpecForm("7net-0", "SevenNet-0; extra sevenn", lambda: _adapter("sevennet", "sevennet_factory")),
    SpecForm("chgnet", "CHGNet 0.3.0; extra chgnet", lambda: _adapter("chgnet_calc", "chgnet_factory")),
    SpecForm("lj", "ASE Lennard-Jones; a demo", lambda: _lj_factory),
    SpecForm("morse", "ASE Morse; a demo", lambda: _morse_factory),
    SpecForm("pyscf:XC/BASIS", "DFT; extra pyscf"),
    SpecForm("torchsim:MODULE:FN", "a torch-sim model, batched: FN returns a ModelInterface; extra torchsim"),
    SpecForm("MODULE:FACTORY", "your model: a module or file.py whose zero-argument FACTORY returns an ASE "
                               "calculator"),
)

#: The potential a command uses when none is given (``bsct``, ``md``).
DEFAULT_SPEC = "pesprobe:default"

#: Built-in SPEC names -> factory of their calculator factory.
BUILTIN_FACTORIES: dict[str, Callable[[], Callable[[], Any]]] = {
    f.form: f.factory for f in SPEC_FORMS if f.factory is not None}


def spec_help(role: str = "Potential") -> str:
    """The ``--help`` text of a SPEC option, listing :data:`SPEC_FORMS` (``role``: what the SPEC is for)."""
    return f"{role} SPEC: " + "; ".join(f"{f.form} ({f.about})" for f in SPEC_FORMS) + "."


def _suggestion(key: str) -> str:
    """``" (did you mean 'x'?)"`` for the built-in name nearest to ``key``, or ``""``."""
    names = [f.form for f in SPEC_FORMS if f.factory is not None] + ["pesprobe:default"]
    near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def checkpoint_path(spec: str) -> Path:
    """The checkpoint file a ``pesprobe:PATH`` or ``pesprobe:default`` SPEC names.

    Raises
    ------
    SpecError
        If the file does not exist (for ``pesprobe:default``: if no default model is shipped).
    """
    from pesprobe.models import potential as models

    name = spec.strip().split(":", 1)[1]
    if name == "default":
        if not models.DEFAULT_MODEL.is_file():
            raise SpecError(f"no default model is shipped at {models.DEFAULT_MODEL}; pass a checkpoint path "
                            "(pesprobe:PATH)")
        return models.DEFAULT_MODEL
    path = Path(name)
    if not path.is_file():
        raise SpecError(f"SPEC {spec.strip()!r}: checkpoint {path} does not exist{_suggestion(spec.strip().lower())}")
    return path


def _pyscf_factory(spec: str) -> Callable[[], Any]:
    method = spec.split(":", 1)[1]
    if "/" not in method:
        raise SpecError(f"SPEC {spec!r}: expected pyscf:<functional>/<basis>, e.g. pyscf:pbe/def2-svp")
    from pesprobe.potentials.pyscf_calc import pyscf_factory

    xc, basis = method.split("/", 1)
    return pyscf_factory(xc=xc, basis=basis)


def _torchsim_factory(spec: str) -> Callable[[], Any]:
    """``torchsim:MODULE:FACTORY``: a factory of the batched :class:`~pesprobe.potentials.torchsim.TorchSimPotential`
    around FACTORY's torch-sim model (also a torch model for the batched MD engine)."""
    target = _import_target(spec.split(":", 1)[1])

    def factory():
        from pesprobe.potentials.torchsim import as_torchsim_potential

        return as_torchsim_potential(make_calculator(target), name=spec)

    factory.__qualname__ = f"torchsim:{getattr(target, '__qualname__', 'factory')}"
    return factory


def _import_target(spec: str) -> Any:
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise SpecError(f"SPEC {spec!r}: expected MODULE:FACTORY")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise SpecError(f"SPEC {spec!r}: file {path} does not exist")
            name = "pesprobe_user_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
            module_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except SpecError:
        raise
    except Exception as exc:
        raise SpecError(f"SPEC {spec!r}: could not import {module_name}: {type(exc).__name__}: {exc}") from exc
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise SpecError(f"SPEC {spec!r}: {module_name} has no attribute {attr!r}") from None
    if not callable(target):
        raise SpecError(f"SPEC {spec!r}: {module_name}.{attr} is not callable")
    return target


def calculator_factory(spec: str) -> Callable[[], Any]:
    """A zero-argument callable that returns a fresh ASE calculator for ``spec``.

    Raises
    ------
    SpecError
        If the SPEC is unknown or its target cannot be imported.
    """
    key = spec.strip().lower()
    if key in BUILTIN_FACTORIES:
        return BUILTIN_FACTORIES[key]()
    if key.startswith("pyscf:"):
        return _pyscf_factory(spec.strip())
    if key.startswith("torchsim:"):
        return _torchsim_factory(spec.strip())
    if key.startswith("pesprobe:"):
        from pesprobe.models import PESProbeCalculator

        path = checkpoint_path(spec)
        return lambda: PESProbeCalculator(path)
    if ":" in spec:
        return _import_target(spec.strip())
    raise SpecError(f"unknown SPEC {spec!r}{_suggestion(key)}; known: {', '.join(f.form for f in SPEC_FORMS)}")


def resolve(spec: str) -> Potential:
    """The :class:`Potential` that ``spec`` names (batched for pesprobe models)."""
    key = spec.strip().lower()
    if key.startswith("pesprobe:"):
        from pesprobe.models import load_potential

        return load_potential(checkpoint_path(spec))
    factory = calculator_factory(spec)
    if key in BUILTIN_FACTORIES or key.startswith("pyscf:"):
        return AseCalculatorPotential(factory, name=key, identity=f"spec:{key}")
    return as_potential(factory, name=spec.strip())


def as_potential(obj: Any, name: str | None = None) -> Potential:
    """Wrap ``obj`` as a Potential: a Potential is returned as is; an ASE calculator or a
    zero-argument factory is wrapped in :class:`AseCalculatorPotential`. A factory that returns a
    Potential (a ``MODULE:FACTORY`` for a batched model) is called once and that Potential used.

    Raises
    ------
    PotentialError
        If the factory needs arguments or raises (one line naming it).
    """
    if not inspect.isclass(obj) and hasattr(obj, "predict") and hasattr(obj, "identity"):
        return obj
    if inspect.isclass(obj) or (callable(obj) and not hasattr(obj, "get_potential_energy")):
        probe = make_calculator(obj)
        if hasattr(probe, "predict") and hasattr(probe, "identity"):
            return probe
        label = name or getattr(obj, "__qualname__", "factory")
        return AseCalculatorPotential(obj, name=name, identity=f"{label}|{describe_calculator(probe)}")
    return AseCalculatorPotential(obj, name=name)
