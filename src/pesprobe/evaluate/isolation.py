"""Scans evaluated in worker processes that may crash or hang without taking the run with them.

Each worker process evaluates one scan at a time and answers over its own pipe, so the parent
always knows which scan a worker was on when it died (a segfault, an abort, the OOM killer) or
overran its deadline:

- A worker that dies is replaced; the scan it was on is retried once, alone (no other worker
  running), in a fresh process. If that worker dies too, the scan fails with the reason (the
  signal) on every frame and is reported as fatal, so the caller can cache it and a resumed run
  goes past it instead of crashing on it again.
- A worker still busy ``timeout`` seconds after it started a scan is killed and the scan fails
  with the reason (not retried: a hang would cost the timeout again).

If the worker dies after the scan's predictions arrived, during the detector's extra model calls,
the predictions are kept and only the refined frames fail.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from pesprobe.potentials.base import Predictions

#: ``kind`` of a fatal scan failure: the worker died twice on the scan.
CRASHED = "crashed"
#: ``kind`` of a fatal scan failure: the scan overran ``timeout``.
TIMED_OUT = "timeout"


@dataclass
class Outcome:
    """What a worker produced for one scan.

    Attributes
    ----------
    index : int
        The scan's index in the caller's list.
    pred : Predictions or None
        Predictions on the scan's frames (None if the worker died or hung before they arrived).
    extra : Predictions or None
        Predictions on the detector's refined frames (None if not run or not arrived).
    fatal : str
        ``""``; or :data:`CRASHED` / :data:`TIMED_OUT` when the worker died or was killed on this scan.
    reason : str
        The error text of a fatal outcome.
    """

    index: int
    pred: Predictions | None = None
    extra: Predictions | None = None
    fatal: str = ""
    reason: str = ""


def failed_predictions(n_frames: int, n_atoms: int, text: str) -> Predictions:
    """Predictions for ``n_frames`` frames, every one failed with ``text``."""
    return Predictions(energy=np.full(n_frames, np.nan), forces=np.full((n_frames, n_atoms, 3), np.nan),
                       failed=np.ones(n_frames, dtype=bool), errors={i: text for i in range(n_frames)})


def exit_reason(exitcode: int | None) -> str:
    """``killed by SIGSEGV`` / ``exited with status 3`` for a process's exit code."""
    if exitcode is None:
        return "died"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


# --- the worker side --------------------------------------------------------------------------------


def _worker_main(conn: Connection, init: Callable[..., None] | None, initargs: tuple,
                 predict: Callable[[int], Predictions],
                 finish: Callable[[int, Predictions], Predictions | None]) -> None:
    """Worker loop: receive a scan index, send ``("pred", i, predict(i))`` then ``("done", i, finish(i, pred))``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if init is not None:
        init(*initargs)
    while True:
        try:
            index = conn.recv()
        except (EOFError, OSError):
            return
        if index is None:
            return
        pred = predict(index)
        conn.send(("pred", index, pred))
        conn.send(("done", index, finish(index, pred)))


# --- the parent side --------------------------------------------------------------------------------


@dataclass
class _Slot:
    process: Any
    conn: Connection
    index: int | None = None
    started: float = 0.0
    pred: Predictions | None = None
    retry: bool = False


@dataclass
class IsolatedPool:
    """Up to ``jobs`` worker processes evaluating scans one at a time each (see the module doc).

    Parameters
    ----------
    jobs : int
        Worker processes.
    ctx : multiprocessing context
        ``fork`` (the caller's state is inherited) or ``spawn``.
    init, initargs
        Called first in every worker.
    predict, finish : callable
        Module-level functions run in the worker: ``predict(index) -> Predictions`` on the scan's
        frames, then ``finish(index, pred) -> Predictions | None`` (the detector's refined frames).
    timeout : float, optional
        Seconds a worker may spend on one scan.
    shape : callable
        ``shape(index) -> (n_frames, n_atoms)`` of a scan, for the failed predictions.
    refined_frames : callable
        ``refined_frames(index, pred) -> int``: frames the detector refines for ``pred``.
    """

    jobs: int
    ctx: Any
    init: Callable[..., None] | None
    initargs: tuple
    predict: Callable[[int], Predictions]
    finish: Callable[[int, Predictions], Predictions | None]
    timeout: float | None
    shape: Callable[[int], tuple[int, int]]
    refined_frames: Callable[[int, Predictions], int]
    _slots: list[_Slot] = field(default_factory=list)

    def _start(self) -> _Slot:
        parent, child = self.ctx.Pipe()
        process = self.ctx.Process(target=_worker_main, daemon=True,
                                   args=(child, self.init, self.initargs, self.predict, self.finish))
        process.start()
        child.close()
        slot = _Slot(process, parent)
        self._slots.append(slot)
        return slot

    def _stop(self, slot: _Slot, kill: bool = False) -> None:
        """End a worker: an idle one is told to stop (its pipe closed), a busy or hung one is killed."""
        if kill and slot.process.is_alive():
            slot.process.kill()
        else:
            try:
                slot.conn.send(None)
            except OSError:
                pass
        slot.conn.close()
        slot.process.join(timeout=5)
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()
        self._slots.remove(slot)

    def _assign(self, slot: _Slot, index: int, retry: bool) -> _Slot:
        slot.index, slot.retry, slot.started, slot.pred = index, retry, time.monotonic(), None
        slot.conn.send(index)
        return slot

    def _fail(self, slot: _Slot, kind: str, reason: str) -> Outcome:
        n_frames, n_atoms = self.shape(slot.index)
        if slot.pred is None:
            return Outcome(slot.index, failed_predictions(n_frames, n_atoms, reason), None, kind, reason)
        extra = failed_predictions(self.refined_frames(slot.index, slot.pred), n_atoms, reason)
        return Outcome(slot.index, slot.pred, extra, kind, reason)

    def run(self, todo: list[int]) -> Iterator[Outcome]:
        """Evaluate the scans ``todo``; yields one :class:`Outcome` per scan as they finish."""
        pending = deque(todo)
        retry: deque[int] = deque()
        try:
            while pending or retry or any(s.index is not None for s in self._slots):
                busy = [s for s in self._slots if s.index is not None]
                # hand out work: up to ``jobs`` workers for first attempts; a retry runs alone in a fresh one
                while pending:
                    idle = next((s for s in self._slots if s.index is None), None)
                    if idle is None and len(self._slots) >= self.jobs:
                        break
                    busy.append(self._assign(idle or self._start(), pending.popleft(), retry=False))
                if not pending and retry and not busy:
                    for idle in list(self._slots):
                        self._stop(idle)
                    busy.append(self._assign(self._start(), retry.popleft(), retry=True))
                wait_for = None
                if self.timeout is not None:
                    now = time.monotonic()
                    wait_for = max(0.0, min(s.started + self.timeout for s in busy) - now)
                ready = wait([s.conn for s in busy] + [s.process.sentinel for s in busy], timeout=wait_for)
                for slot in busy:
                    if slot.conn in ready or slot.process.sentinel in ready:
                        outcome = self._receive(slot, retry)
                        if outcome is not None:
                            yield outcome
                    elif self.timeout is not None and time.monotonic() - slot.started >= self.timeout:
                        outcome = self._fail(slot, TIMED_OUT, f"timed out: no result after {self.timeout:g} s "
                                             "(--timeout); the worker process was killed")
                        self._stop(slot, kill=True)
                        yield outcome
        finally:
            for slot in list(self._slots):
                self._stop(slot, kill=slot.index is not None)

    def _receive(self, slot: _Slot, retry: deque[int]) -> Outcome | None:
        """Read what ``slot`` sent; a dead worker is replaced and its scan retried or failed."""
        while True:
            try:
                if not slot.conn.poll():
                    if slot.process.is_alive():
                        return None
                    raise EOFError
                stage, index, value = slot.conn.recv()
            except (EOFError, OSError):
                break
            if stage == "pred":
                slot.pred = value
                continue
            outcome = Outcome(index, slot.pred, value)
            slot.index, slot.pred = None, None
            return outcome
        slot.process.join()
        how = exit_reason(slot.process.exitcode)
        index = slot.index
        if not slot.retry:
            self._stop(slot)
            retry.append(index)
            return None
        outcome = self._fail(slot, CRASHED, f"worker process {how} while evaluating this scan (twice, the second "
                             "time alone): the calculator crashed; cached as failed, rerun with --no-resume "
                             "to try again")
        self._stop(slot)
        return outcome


def start_context() -> Any:
    """``fork`` where available (nothing is pickled), else ``spawn``."""
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
