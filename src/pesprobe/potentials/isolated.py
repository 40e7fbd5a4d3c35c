"""Run an ASE calculator in a child process, so that a native crash fails one frame, not the run."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import tempfile
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np
from ase import Atoms
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes


def _serve(conn: Connection, other_end: Connection, factory: Callable[[], Calculator], quiet: bool) -> None:
    """Child process: evaluate requests ``(numbers, positions, cell, pbc, changes)`` until None or EOF.

    Runs in a temporary working folder (removed on exit), with standard output sent to
    ``/dev/null`` when ``quiet``. ``other_end`` (the parent's end, inherited on fork) is closed
    first, so that the parent closing its end ends the loop.
    """
    other_end.close()
    if quiet:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the child
    with tempfile.TemporaryDirectory(prefix="pesprobe-calc-") as workdir:
        os.chdir(workdir)
        calc = factory()
        atoms: Atoms | None = None
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return
            if request is None:
                return
            numbers, positions, cell, pbc, changes = request
            try:
                if atoms is None or "numbers" in changes:
                    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
                    atoms.calc = calc
                atoms.positions = positions
                atoms.cell, atoms.pbc = cell, pbc
                calc.calculate(atoms, ["energy", "forces"], changes)
                conn.send((float(calc.results["energy"]), np.asarray(calc.results["forces"], dtype=float), None))
            except Exception as exc:  # noqa: BLE001 - reported to the parent as this frame's error
                conn.send((None, None, f"{type(exc).__name__}: {exc}"))


class IsolatedCalculator(Calculator):
    """An ASE calculator that lives in a child process.

    Parameters
    ----------
    factory : callable
        Zero-argument callable returning the real calculator; it is called in the child. It must
        be picklable where processes are spawned rather than forked (e.g. a module-level function
        or a :func:`functools.partial` of a class).
    quiet : bool
        Send the child's standard output (e.g. Fortran set-up banners) to ``/dev/null``.
    name : str, optional
        Recorded in ``parameters`` (the default cache identity).

    Notes
    -----
    The child runs in a temporary working folder, so files the calculator writes there never
    land in the caller's folder. It starts on the first calculation and keeps its calculator
    (and any state, such as a force-field topology) until :meth:`reset` or a crash. A crash
    (abort, segfault) raises :class:`~ase.calculators.calculator.CalculationFailed` with the
    child's exit status for that frame; the next calculation starts a new child.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, factory: Callable[[], Calculator], quiet: bool = True, name: str | None = None) -> None:
        super().__init__()
        self.factory = factory
        self.quiet = quiet
        self.parameters = {"calculator": name or getattr(factory, "__name__", repr(factory))}
        self._child: mp.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._owner = os.getpid()

    def _start(self) -> None:
        parent, child = mp.Pipe()
        self._child = mp.Process(target=_serve, args=(child, parent, self.factory, self.quiet), daemon=True)
        self._child.start()
        child.close()
        self._conn = parent
        self._owner = os.getpid()

    def _stop(self) -> None:
        """Ask the child to exit and wait for it. A copy of this object inherited by another
        process (a fork) only closes its copy of the pipe: the child is not its own."""
        if self._child is not None and self._owner == os.getpid():
            try:
                self._conn.send(None)  # explicit: other forks may hold copies of the pipe, so no EOF
            except OSError:
                pass
            self._child.join(timeout=5)
            if self._child.is_alive():
                self._child.kill()
                self._child.join()
        if self._conn is not None:
            self._conn.close()
        self._child, self._conn = None, None

    def reset(self) -> None:
        """Forget results and end the child: the next calculation starts from a new calculator."""
        super().reset()
        self._stop()

    def __del__(self) -> None:
        if getattr(self, "_child", None) is not None:
            self._stop()

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        """Energy (eV) and forces (eV/Å) from the child process."""
        super().calculate(atoms, properties, system_changes)
        changes = list(system_changes)
        if self._child is None or not self._child.is_alive():
            self._stop()
            self._start()
            changes = list(all_changes)
        a = self.atoms
        try:
            self._conn.send((a.numbers, a.positions, np.asarray(a.cell), a.pbc, changes))
            energy, forces, error = self._conn.recv()
        except (EOFError, OSError):
            self._child.join(timeout=5)
            code = self._child.exitcode
            self._stop()
            raise CalculationFailed(f"{self.parameters['calculator']} process died (exit status {code}) on "
                                    "this geometry") from None
        if error is not None:
            raise CalculationFailed(error)
        self.results = {"energy": energy, "forces": forces}
