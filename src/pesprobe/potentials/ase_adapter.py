"""Adapter: any ASE calculator as a :class:`~pesprobe.potentials.base.Potential`."""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from pesprobe.potentials.base import Predictions

CalculatorOrFactory = Calculator | Callable[[], Calculator]


#: Attributes of ASE calculators that hold run state or file locations, not settings.
_STATE_ATTRIBUTES = frozenset({"atoms", "results", "parameters", "_directory", "directory", "prefix", "label",
                               "use_cache", "state", "todo"})


def describe_calculator(calc: Calculator) -> str:
    """Class path, parameters and plain-valued settings of an ASE calculator: a default cache identity.

    Besides ``calc.parameters``, every instance attribute holding a number, string, flag, plain
    list/tuple/dict of those, or a NumPy array (a model path, a threshold, weights) enters as a
    digest, so two instances of one class configured differently never share cached results.
    """
    params = getattr(calc, "parameters", None) or {}
    items = ",".join(f"{k}={params[k]!r}" for k in sorted(params))
    settings = hashlib.sha256()
    for key, value in sorted(getattr(calc, "__dict__", {}).items()):
        data = None if key in _STATE_ATTRIBUTES else _plain_bytes(value)
        if data is not None:
            settings.update(key.encode() + b"=" + data + b";")
    return f"{type(calc).__module__}.{type(calc).__qualname__}({items})#{settings.hexdigest()[:12]}"


def _plain_bytes(value: object) -> bytes | None:
    """A byte form of a plain value (None for anything else: objects, functions, open handles)."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return repr(value).encode()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return f"{value.dtype.str}{value.shape}".encode() + np.ascontiguousarray(value).tobytes()
    if isinstance(value, list | tuple):
        parts = [_plain_bytes(v) for v in value]
        return None if any(p is None for p in parts) else b"[" + b",".join(parts) + b"]"
    if isinstance(value, dict):
        pairs = [(_plain_bytes(k), _plain_bytes(v)) for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))]
        if any(k is None or v is None for k, v in pairs):
            return None
        return b"{" + b",".join(k + b":" + v for k, v in pairs) + b"}"
    return None


def _energy_forces(calc, atoms: Atoms, changes: list[str]) -> tuple[float, np.ndarray]:
    """One energy+forces evaluation.

    For :class:`ase.calculators.calculator.Calculator` subclasses, ``calculate`` is called once with
    the known ``changes`` (only positions after the first frame, so an SCF code keeps its guess, as
    it would through ``get_forces``) — skipping ASE's per-property ``check_state`` comparison, which
    costs more than a cheap model. Other calculators go through ``get_forces`` /
    ``get_potential_energy``.
    """
    if isinstance(calc, Calculator):
        wanted = ["energy", "forces"] if _gives_energy(calc) else ["forces"]
        calc.calculate(atoms, wanted, changes)
        return float(calc.results.get("energy", np.nan)), np.asarray(calc.results["forces"], dtype=np.float64)
    return float(atoms.get_potential_energy()), np.asarray(atoms.get_forces(), dtype=np.float64)


def _gives_energy(calc) -> bool:
    return "energy" in getattr(calc, "implemented_properties", ("energy",))


class AseCalculatorPotential:
    """Evaluate frames one by one, in index order, through an ASE calculator.

    Parameters
    ----------
    calc : Calculator or callable
        An ASE calculator instance, or a zero-argument factory returning one. With a factory a
        fresh calculator is made for every :meth:`predict` call (one scan); with an instance,
        ``calc.reset()`` is called first, so a stateful SCF guess cannot carry over between scans.
    name : str, optional
        Short name for reports; defaults to the calculator class name.
    identity : str, optional
        Cache key; defaults to the class and its ``parameters``. Pass one explicitly when the
        parameters do not capture everything that changes results (e.g. a model file).

    Notes
    -----
    A frame on which the calculator raises, or returns non-finite energy or forces, is marked
    failed with the error text; the other frames are still evaluated.
    """

    def __init__(self, calc: CalculatorOrFactory, name: str | None = None,
                 identity: str | None = None) -> None:
        if not inspect.isclass(calc) and (isinstance(calc, Calculator) or hasattr(calc, "get_potential_energy")):
            self._instance: Calculator | None = calc
            self._factory: Callable[[], Calculator] | None = None
        elif callable(calc):
            self._instance = None
            self._factory = calc
        else:
            raise TypeError(f"expected an ASE calculator or a zero-argument factory, got {type(calc).__name__}")
        self._identity = identity
        self.name = name or (type(calc).__name__ if self._instance is not None
                             else getattr(calc, "__name__", "calculator"))

    def _calculator(self) -> Calculator:
        if self._factory is not None:
            return self._factory()
        assert self._instance is not None
        if hasattr(self._instance, "reset"):
            self._instance.reset()
        return self._instance

    def identity(self) -> str:
        """Cache key: the explicit identity, or the calculator class and parameters."""
        if self._identity is None:
            calc = self._instance if self._instance is not None else self._calculator()
            self._identity = describe_calculator(calc)
        return self._identity

    def predict(self, numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray | None = None,
                pbc: np.ndarray | None = None) -> Predictions:
        """Energies (eV) and forces (eV/Å) of ``positions`` (n_frames, n_atoms, 3), frame by frame."""
        n_frames, n_atoms = positions.shape[:2]
        energy = np.full(n_frames, np.nan)
        forces = np.full((n_frames, n_atoms, 3), np.nan)
        failed = np.zeros(n_frames, dtype=bool)
        errors: dict[int, str] = {}
        start = time.perf_counter()
        try:
            calc = self._calculator()
        except Exception as exc:  # noqa: BLE001 - a broken factory fails every frame, not the run
            failed[:] = True
            errors = {i: f"calculator could not be created: {type(exc).__name__}: {exc}" for i in range(n_frames)}
            return Predictions(energy, forces, failed, errors, time.perf_counter() - start)
        atoms = Atoms(numbers=numbers, positions=positions[0], cell=cell,
                      pbc=False if pbc is None else pbc)
        atoms.calc = calc
        changes = list(all_changes)
        for i in range(n_frames):
            try:
                atoms.positions = positions[i]
                e, f = _energy_forces(calc, atoms, changes)
                changes = ["positions"]
                if not np.isfinite(f).all() or np.isinf(e) or (np.isnan(e) and _gives_energy(calc)):
                    raise FloatingPointError("calculator returned non-finite energy or forces")
                energy[i], forces[i] = e, f
            except Exception as exc:  # noqa: BLE001 - one bad frame must not end the scan
                failed[i] = True
                errors[i] = f"{type(exc).__name__}: {exc}".strip()
                if hasattr(calc, "reset"):
                    calc.reset()
                changes = list(all_changes)
        return Predictions(energy, forces, failed, errors, time.perf_counter() - start)
