"""Adapter: any ASE calculator as a :class:`~pesprobe.potentials.base.Potential`."""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes

from pesprobe.data.files import update_hash
from pesprobe.potentials.base import PotentialError, Predictions, real_array

CalculatorOrFactory = Calculator | Callable[[], Calculator]


#: Attributes of ASE calculators that hold run state or file locations, not settings.
_STATE_ATTRIBUTES = frozenset({"atoms", "results", "parameters", "_directory", "directory", "prefix", "label",
                               "use_cache", "state", "todo"})


def source_digest(obj: object) -> str:
    """First 12 hex digits of the SHA-256 of the source file defining ``obj`` (a class or function).

    Returns ``""`` when ``obj`` has no source file (built-ins, C extensions, objects made in an
    interactive session). Part of the cache identity, so that editing a calculator's or factory's
    source (a module constant, a formula) never reuses predictions of the old code.
    """
    try:
        path = inspect.getsourcefile(obj) or inspect.getfile(obj)
    except TypeError:
        return ""
    h = hashlib.sha256()
    update_hash(h, path)
    return h.hexdigest()[:12]


def describe_calculator(calc: Calculator) -> str:
    """Class path, parameters, plain-valued settings and source file digest of an ASE calculator: a
    default cache identity.

    Besides ``calc.parameters``, every instance attribute holding a number, string, flag, plain
    list/tuple/dict of those, or a NumPy array (a model path, a threshold, weights) enters as a
    digest, so two instances of one class configured differently never share cached results; so
    does the file that defines the class (:func:`source_digest`), so edited code never does either.
    """
    params = getattr(calc, "parameters", None) or {}
    items = ",".join(f"{k}={params[k]!r}" for k in sorted(params))
    settings = hashlib.sha256()
    for key, value in sorted(getattr(calc, "__dict__", {}).items()):
        data = None if key in _STATE_ATTRIBUTES else _plain_bytes(value)
        if data is not None:
            settings.update(key.encode() + b"=" + data + b";")
    return (f"{type(calc).__module__}.{type(calc).__qualname__}({items})#{settings.hexdigest()[:12]}"
            f"@{source_digest(type(calc))}")


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


def _callable_name(factory: Callable[..., object]) -> str:
    return getattr(factory, "__qualname__", None) or getattr(factory, "__name__", None) or repr(factory)


def check_factory(factory: Callable[..., object]) -> None:
    """Raise :class:`PotentialError` unless ``factory`` can be called with no arguments.

    A callable whose signature cannot be read (some built-ins) is accepted.
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    try:
        signature.bind()
    except TypeError:
        raise PotentialError(f"calculator factory {_callable_name(factory)}{signature} needs arguments; "
                             "a factory must take none (wrap it, e.g. in functools.partial)") from None


def make_calculator(factory: Callable[[], Calculator]) -> Calculator:
    """Call a zero-argument calculator factory; any failure becomes one :class:`PotentialError` line.

    Raises
    ------
    PotentialError
        If ``factory`` needs arguments or raises; the message names the factory and the first
        line of its error.
    """
    check_factory(factory)
    try:
        return factory()
    except Exception as exc:  # noqa: BLE001 - any error of user code, reported in one line
        text = str(exc).strip().splitlines()
        detail = f": {text[0]}" if text else ""
        raise PotentialError(f"calculator factory {_callable_name(factory)} raised "
                             f"{type(exc).__name__}{detail}") from exc


def checked_results(energy: object, forces: object, n_atoms: int) -> tuple[float, np.ndarray]:
    """One frame's energy (eV) and forces (eV/Å) after checking their types and shapes.

    Parameters
    ----------
    energy : number or size-1 array
        The calculator's energy, eV (NaN for a calculator that gives none).
    forces : array-like, shape (n_atoms, 3)
        The calculator's forces, eV/Å.
    n_atoms : int
        Atoms in the frame.

    Raises
    ------
    PotentialError
        If either is not real-valued, the energy is not one number, or the forces are not
        ``(n_atoms, 3)`` (a ``(1, 3)`` array is never broadcast to every atom).
    """
    e = real_array("energy", energy)
    if e.size != 1:
        raise PotentialError(f"energy must be one number, got shape {e.shape}")
    f = real_array("forces", forces)
    if f.shape != (n_atoms, 3):
        raise PotentialError(f"forces have shape {f.shape}, expected ({n_atoms}, 3)")
    return float(e.reshape(())), f


def _energy_forces(calc, atoms: Atoms, changes: list[str]) -> tuple[float, np.ndarray]:
    """One energy+forces evaluation, checked by :func:`checked_results`.

    For :class:`ase.calculators.calculator.Calculator` subclasses, ``calculate`` is called once with
    the known ``changes`` (only positions after the first frame, so an SCF code keeps its guess, as
    it would through ``get_forces``) — skipping ASE's per-property ``check_state`` comparison, which
    costs more than a cheap model. Other calculators go through ``get_forces`` /
    ``get_potential_energy``.
    """
    if isinstance(calc, Calculator):
        wanted = ["energy", "forces"] if _gives_energy(calc) else ["forces"]
        calc.calculate(atoms, wanted, changes)
        return checked_results(calc.results.get("energy", np.nan), calc.results["forces"], len(atoms))
    return checked_results(atoms.get_potential_energy(), atoms.get_forces(), len(atoms))


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
        Cache key; defaults to the class, its ``parameters`` and settings and the source files of
        the class and of the factory (:func:`describe_calculator`, :func:`source_digest`). Pass
        one explicitly when these do not capture everything that changes results (e.g. a model file).

    Raises
    ------
    PotentialError
        If ``calc`` is a factory that needs arguments.

    Notes
    -----
    A frame on which the calculator raises, or returns non-finite energy or forces, or results
    of the wrong type or shape, is marked failed with the error text; the other frames are still
    evaluated.
    """

    def __init__(self, calc: CalculatorOrFactory, name: str | None = None,
                 identity: str | None = None) -> None:
        if not inspect.isclass(calc) and (isinstance(calc, Calculator) or hasattr(calc, "get_potential_energy")):
            self._instance: Calculator | None = calc
            self._factory: Callable[[], Calculator] | None = None
        elif callable(calc):
            check_factory(calc)
            self._instance = None
            self._factory = calc
        else:
            raise TypeError(f"expected an ASE calculator or a zero-argument factory, got {type(calc).__name__}")
        self._identity = identity
        self.name = name or (type(calc).__name__ if self._instance is not None
                             else getattr(calc, "__name__", "calculator"))

    def _calculator(self) -> Calculator:
        if self._factory is not None:
            return make_calculator(self._factory)
        assert self._instance is not None
        if hasattr(self._instance, "reset"):
            self._instance.reset()
        return self._instance

    def identity(self) -> str:
        """Cache key: the explicit identity, or the calculator's description and the factory's source digest.

        Raises
        ------
        PotentialError
            If the factory raises (it is called once to describe its calculator).
        """
        if self._identity is None:
            if self._instance is not None:
                self._identity = describe_calculator(self._instance)
            else:
                self._identity = f"{describe_calculator(self._calculator())}|factory@{source_digest(self._factory)}"
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
