"""Helpers of the worked adapters in ``examples/*_model.py`` (MACE, SevenNet, CHGNet, NequIP, ORB, fairchem,
metatomic): their settings from environment variables, and a clear error for elements outside a model's set.

Each example is a ``make()`` for ``pesprobe bsct --calc examples/X.py:make`` (also ``md``, ``leaderboard``
and ``--cluster``, where every worker calls it), configured by

``PESPROBE_MODEL``
    The model: a file the user has (MACE ``.model``, NequIP compiled/deployed model, ORB or fairchem
    checkpoint, metatomic ``.pt``) or a name the package ships (SevenNet ``7net-0``, CHGNet ``0.3.0``).
``PESPROBE_DEVICE``
    Torch device, default ``cpu`` (``cuda``, ``cuda:1`` ...).
``PESPROBE_DTYPE``
    ``float64`` or ``float32`` where the package lets one choose (default: the example's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from ase.data import chemical_symbols

from pesprobe.potentials.ase_adapter import describe_calculator

DTYPES = ("float64", "float32")


class AdapterSetupError(ValueError):
    """A worked adapter cannot start: a missing or wrong setting (the message says which variable)."""


@dataclass(frozen=True)
class AdapterSettings:
    """``PESPROBE_MODEL``, ``PESPROBE_DEVICE`` and ``PESPROBE_DTYPE`` as read by :func:`settings`."""

    model: str
    device: str
    dtype: str


def settings(what: str, default_model: str | None = None, default_dtype: str = "float64",
             model_is_file: bool = True) -> AdapterSettings:
    """The adapter's settings from the environment.

    Parameters
    ----------
    what : str
        What ``PESPROBE_MODEL`` should name, for the error message (``"a MACE model file (.model)"``).
    default_model : str, optional
        Used when ``PESPROBE_MODEL`` is unset (a model the package ships); None: the variable is required.
    default_dtype : str
        ``PESPROBE_DTYPE`` when unset.
    model_is_file : bool
        ``PESPROBE_MODEL`` must name an existing file (checked here, so the error says so).

    Raises
    ------
    AdapterSetupError
        ``PESPROBE_MODEL`` unset (without a default) or not a file; ``PESPROBE_DTYPE`` not one of :data:`DTYPES`.
    """
    model = os.environ.get("PESPROBE_MODEL", "").strip() or default_model
    if not model:
        raise AdapterSetupError(f"set PESPROBE_MODEL to {what}, e.g. PESPROBE_MODEL=/path/to/model "
                                "pesprobe bsct --calc examples/...:make (optionally PESPROBE_DEVICE=cuda, "
                                "PESPROBE_DTYPE=float32)")
    if model_is_file and model != default_model and not os.path.isfile(os.path.expanduser(model)):
        raise AdapterSetupError(f"PESPROBE_MODEL={model}: no such file (expected {what})")
    dtype = os.environ.get("PESPROBE_DTYPE", "").strip().lower() or default_dtype
    if dtype not in DTYPES:
        raise AdapterSetupError(f"PESPROBE_DTYPE={dtype}: expected one of {', '.join(DTYPES)}")
    device = os.environ.get("PESPROBE_DEVICE", "").strip() or "cpu"
    return AdapterSettings(os.path.expanduser(model) if model != default_model else model, device, dtype)


class UnsupportedElementError(ValueError):
    """A structure holds an element the model has no parameters for (the message names it)."""


class OnlyElements(Calculator):
    """Pass structures to ``inner`` only if all their elements are in ``allowed``; else raise
    :class:`UnsupportedElementError` naming the element (in BSCT: every frame of that scan fails with
    this message, the scan is reported unscored, the run goes on).

    Parameters
    ----------
    inner : Calculator
    allowed : iterable of int
        Atomic numbers the model covers.
    label : str
        The model, for the message (``"MACE model mace.model"``).
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, inner: Calculator, allowed: Iterable[int], label: str) -> None:
        super().__init__()
        self.inner = inner
        self.allowed = frozenset(int(z) for z in allowed)
        self.label = label
        self.parameters = {"inner": describe_calculator(inner), "allowed": sorted(self.allowed)}

    def reset(self) -> None:
        """Forget results here and in the wrapped calculator."""
        super().reset()
        self.inner.reset()

    def check(self, numbers: Iterable[int]) -> None:
        """Raise :class:`UnsupportedElementError` if any atomic number is outside the model's set."""
        outside = sorted({int(z) for z in numbers} - self.allowed)
        if outside:
            names = ", ".join(f"{chemical_symbols[z]} (Z={z})" for z in outside)
            covered = ", ".join(chemical_symbols[z] for z in sorted(self.allowed)) if len(self.allowed) <= 30 else \
                f"Z = {min(self.allowed)}-{max(self.allowed)}"
            raise UnsupportedElementError(f"{self.label} has no parameters for {names}; it covers {covered}")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        """Energy and forces from ``inner``, after the element check."""
        super().calculate(atoms, properties, system_changes)
        self.check(self.atoms.numbers)
        target = self.atoms.copy()
        target.calc = self.inner
        self.results = {"energy": float(target.get_potential_energy()),
                        "forces": np.asarray(target.get_forces(), dtype=np.float64)}


class MissingPackage(ImportError):
    """The package a worked adapter needs is not installed (the message says how to install it)."""


def need(module: str, install: str, example: str) -> None:
    """Import ``module`` or raise :class:`MissingPackage` with the ``install`` command.

    Any import failure counts (not installed, or installed but broken against this torch).
    """
    import importlib

    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - every import failure means "not usable here"
        absent = isinstance(exc, ImportError) and getattr(exc, "name", None) in (module, module.split(".")[0], None)
        reason = "is not installed" if absent and isinstance(exc, ModuleNotFoundError) else \
            f"does not import ({type(exc).__name__}: {exc})"
        raise MissingPackage(f"{example} needs {module.split('.')[0]}, which {reason}: {install}") from exc


def torch_dtype(name: str):
    """``torch.float64`` / ``torch.float32`` for ``"float64"`` / ``"float32"``."""
    import torch

    return {"float64": torch.float64, "float32": torch.float32}[name]
