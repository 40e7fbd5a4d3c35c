"""The BSCT runner: evaluate a potential on every scan of a data set.

Scans are evaluated one call per scan (``Potential.predict`` on all its frames), optionally in
``jobs`` worker processes, optionally on one deterministic shard of the data set, with model
results cached per (potential, scan) so that an interrupted run resumes.

With ``jobs > 1``, ``isolate`` or ``timeout`` the scans run in watched worker processes
(:mod:`pesprobe.evaluate.isolation`): a crash or a hang fails that scan, not the run. Plain
``jobs=1`` stays in this process (no start-up cost, a GPU model's memory allocated once), where a
native crash of the calculator ends the run. Every process uses ``threads`` threads
(:mod:`pesprobe.evaluate.threadlimit`), and one run at a time writes into ``out``
(:mod:`pesprobe.evaluate.lock`).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pesprobe.data import ScanSet, load_scans
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.data.scan import Scan
from pesprobe.evaluate.cache import PredictionCache
from pesprobe.evaluate.calls import safe_predict
from pesprobe.evaluate.executors import ClusterExecutor, bsct_outcomes, cluster_executor, parse_cluster
from pesprobe.evaluate.isolation import TIMED_OUT, IsolatedPool, Outcome, start_context
from pesprobe.evaluate.lock import output_lock
from pesprobe.evaluate.refine import empty_predictions, refine
from pesprobe.evaluate.result import BSCTResult
from pesprobe.evaluate.threadlimit import thread_limit
from pesprobe.metrics import refinement_plan, scan_metrics
from pesprobe.potentials.base import Potential, Predictions
from pesprobe.potentials.elements import unseen_elements
from pesprobe.potentials.registry import as_potential, resolve
from pesprobe.potentials.threads import limit_threads

# Worker-process state, set before the workers fork (or in the initializer with spawn).
_WORKER: dict[str, Any] = {}


def _init_worker(potential: Potential | None, spec: str | None, scans: list[Scan] | None,
                 cached: dict[int, Predictions] | None, detect: bool, threads: int | None) -> None:
    if threads is not None:
        limit_threads(threads)
    if potential is None and spec is not None:
        potential = resolve(spec)
    _WORKER["detect"] = detect
    for key, value in (("potential", potential), ("scans", scans), ("cached", cached)):
        if value is not None:
            _WORKER[key] = value


def _evaluate_scan(potential: Potential, scan: Scan, cached: Predictions | None,
                   detect: bool) -> tuple[Predictions, Predictions | None]:
    """The potential on every frame of ``scan`` (unless ``cached``), then on the detector's refined frames."""
    pred = cached if cached is not None else safe_predict(potential, scan.numbers, scan.positions, scan.cell,
                                                          scan.pbc)
    return pred, refine(potential, scan, pred) if detect else None


def _predict_in_worker(index: int) -> Predictions:
    cached = _WORKER["cached"].get(index)
    if cached is not None:
        return cached
    scan = _WORKER["scans"][index]
    return safe_predict(_WORKER["potential"], scan.numbers, scan.positions, scan.cell, scan.pbc)


def _refine_in_worker(index: int, pred: Predictions) -> Predictions | None:
    return refine(_WORKER["potential"], _WORKER["scans"][index], pred) if _WORKER["detect"] else None


def _cuda_in_use() -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()


def _predictions(potential: Potential, spec: str | None, scans: list[Scan], todo: list[int], jobs: int,
                 cached: dict[int, Predictions], detect: bool, isolate: bool = False,
                 timeout: float | None = None, threads: int | None = 1,
                 executor: ClusterExecutor | None = None) -> Iterator[Outcome]:
    """One :class:`Outcome` per scan of ``todo``: in this process, in worker processes when
    ``jobs > 1``, ``isolate`` or ``timeout`` (see :mod:`pesprobe.evaluate.isolation`), or as tasks
    on a Dask cluster with ``executor`` (see :mod:`pesprobe.evaluate.executors`)."""
    if not todo:
        return
    if executor is not None:
        yield from bsct_outcomes(executor, potential, spec, scans, todo, cached, detect, threads)
        return
    if jobs <= 1 and not isolate and timeout is None:
        for i in todo:
            yield Outcome(i, *_evaluate_scan(potential, scans[i], cached.get(i), detect))
        return
    ctx = start_context()
    if ctx.get_start_method() == "fork" and _cuda_in_use():
        ctx = mp.get_context("spawn")  # a forked child cannot use the parent's CUDA context
    if ctx.get_start_method() == "fork":
        # fork: the potential and the scans are inherited, nothing is pickled
        _WORKER.update(potential=potential, scans=scans, cached=cached, detect=detect)
        initargs = (None, None, None, None, detect, threads)
    else:
        initargs = (None if spec else potential, spec, scans, cached, detect, threads)

    def refined_frames(index: int, pred: Predictions) -> int | None:
        return refinement_plan(scans[index], pred).n_frames if detect else None

    pool = IsolatedPool(jobs=min(max(jobs, 1), len(todo)), ctx=ctx, init=_init_worker, initargs=initargs,
                        predict=_predict_in_worker, finish=_refine_in_worker, timeout=timeout,
                        shape=lambda i: (scans[i].n_frames, scans[i].n_atoms), refined_frames=refined_frames)
    try:
        yield from pool.run(todo)
    finally:
        _WORKER.clear()


def evaluate(calc: Any, data: str | Path | ScanSet, out: str | Path | None = None, jobs: int = 1,
             shard: tuple[int, int] | None = None, plots: bool = False, progress: bool = True,
             resume: bool = True, name: str | None = None, detect: bool = True, threads: int | None = 1,
             isolate: bool = False, timeout: float | None = None, report: bool = True,
             cluster: str | ClusterExecutor | None = None) -> BSCTResult:
    """Run BSCT: evaluate ``calc`` on every scan of ``data`` and score it.

    Parameters
    ----------
    calc : str, Potential, ASE Calculator or callable
        A SPEC string (``"gfn2-xtb"``, ``"MODULE:FACTORY"`` ...), an object implementing the
        batched :class:`~pesprobe.potentials.base.Potential` interface, an ASE calculator
        instance (``reset()`` between scans), or a zero-argument factory (a fresh calculator per scan).
    data : str, Path or ScanSet
        A scan set or anything :func:`pesprobe.data.load_scans` reads; None: the scans embedded in pesprobe.
    out : str or Path, optional
        Output folder: ``results.json``, ``results.csv``, ``summary.md``, ``report.html``,
        ``plots/`` and the prediction cache ``cache/`` (for resuming). Nothing is written if None.
        One run at a time per folder (:func:`~pesprobe.evaluate.lock.output_lock`).
    jobs : int
        Worker processes (each evaluates whole scans). With ``jobs > 1`` the scans always run in
        isolated workers (see ``isolate``).
    shard : (index, count), optional
        Evaluate only the ``index``-th (0-based) of ``count`` deterministic slices; combine the
        outputs with :func:`pesprobe.evaluate.merge`.
    plots : bool
        Write per-scan and summary figures into ``out/plots`` (requires ``out``).
    report : bool
        Write ``summary.md``, ``report.html`` and the summary figures (False: only ``results.json``,
        ``results.csv`` and the cache, for callers that aggregate many runs themselves).
    progress : bool
        Show a progress bar.
    resume : bool
        Reuse cached predictions in ``out/cache`` for this potential.
    name : str, optional
        Display name of the potential.
    detect : bool
        Run the discontinuity detector's extra model calls (refined frames around candidates; at
        most :data:`~pesprobe.metrics.discontinuity.MAX_CANDIDATES` × REFINE_POINTS frames per scan).
        Without them every candidate is reported unconfirmed.
    threads : int or None
        OpenMP and torch threads of this process and of every worker during the run (restored
        afterwards); the same count everywhere, so results do not depend on ``jobs``. None: leave
        the process's settings as they are.
    isolate : bool
        Evaluate scans in worker processes even with ``jobs=1``: a calculator that crashes the
        process (segfault, abort) fails its scan instead of ending the run.
    timeout : float, optional
        Seconds one scan (all its frames and refined frames) may take; a scan still running then
        is killed with its worker and fails with the reason. Implies worker processes.
    cluster : str or ClusterExecutor, optional
        Evaluate the scans as tasks on a Dask cluster instead (``jobs`` and ``isolate`` then do not
        apply): ``"local:N"``, a scheduler address ``"tcp://HOST:PORT"``, or an open
        :class:`~pesprobe.evaluate.executors.ClusterExecutor` (reused across runs). Results, cache
        and resume are as with ``jobs``; see :mod:`pesprobe.evaluate.executors`.

    Returns
    -------
    BSCTResult

    Raises
    ------
    OutputBusyError
        If another run is writing into ``out``.
    """
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    if cluster is not None:
        if timeout is not None:
            raise ValueError("--timeout is not available with --cluster (a Dask task cannot be stopped from "
                             "outside); use --jobs for it")
        if isinstance(cluster, str):
            parse_cluster(cluster)
    spec = calc if isinstance(calc, str) else None
    potential = resolve(calc) if spec else as_potential(calc, name=name)
    scanset = data if isinstance(data, ScanSet) else load_scans(embedded_scans_path() if data is None else data)
    with contextlib.ExitStack() as stack:
        if out is not None:
            stack.enter_context(output_lock(out))
        stack.enter_context(thread_limit(threads))
        executor = stack.enter_context(cluster_executor(cluster))
        return _run(potential, spec, scanset, out, jobs, shard, plots, progress, resume, name, detect, threads,
                    isolate, timeout, report, executor)


def _run(potential: Potential, spec: str | None, scanset: ScanSet, out: str | Path | None, jobs: int,
         shard: tuple[int, int] | None, plots: bool, progress: bool, resume: bool, name: str | None, detect: bool,
         threads: int | None, isolate: bool, timeout: float | None, report: bool,
         executor: ClusterExecutor | None = None) -> BSCTResult:
    order = scanset.ids()
    if shard is not None:
        scanset = scanset.shard(*shard)
    scans = list(scanset)
    cache = PredictionCache(Path(out) / "cache", potential.identity()) if out is not None else None
    results: dict[int, Predictions] = {}
    refined: dict[int, Predictions | None] = {}
    cached: dict[int, Predictions] = {}
    if cache is not None and resume:
        for i, scan in enumerate(scans):
            pred = cache.get(scan, timeout=timeout)
            if pred is None:
                continue
            cached[i] = pred
            plan = refinement_plan(scan, pred) if detect else None
            if plan is None or plan.n_frames == 0:
                results[i], refined[i] = pred, (None if plan is None else empty_predictions(scan.n_atoms))
            elif (extra := cache.get_refined(scan, plan.positions, timeout=timeout)) is not None:
                results[i], refined[i] = pred, extra
    todo = [i for i in range(len(scans)) if i not in results]
    start = time.perf_counter()
    bar = tqdm(total=len(scans), initial=len(results), desc=f"BSCT {name or potential.name}", unit="scan",
               disable=not progress)
    with bar:
        for outcome in _predictions(potential, spec, scans, todo, jobs, cached, detect, isolate=isolate,
                                    timeout=timeout, threads=threads, executor=executor):
            i, pred, extra = outcome.index, outcome.pred, outcome.extra
            results[i], refined[i] = pred, extra
            if cache is not None:
                fatal = f"{TIMED_OUT}:{timeout:g}" if outcome.fatal == TIMED_OUT else outcome.fatal
                cache.put(scans[i], pred, fatal=fatal)
                if extra is not None and len(extra.failed):
                    cache.put_refined(scans[i], refinement_plan(scans[i], pred).positions, extra, fatal=fatal)
            bar.update(1)
    metrics = [scan_metrics(scan, results[i], refined[i]) for i, scan in enumerate(scans)]
    known = getattr(potential, "training_elements", None)
    for m, scan in zip(metrics, scans, strict=True):
        m.unseen_elements = unseen_elements(known, scan.numbers)
    result = BSCTResult(metrics=metrics, problems=list(scanset.problems), potential=name or potential.name,
                        identity=potential.identity(), source=scanset.source, order=order, shard=shard,
                        wall_seconds=time.perf_counter() - start,
                        predictions={scan.id: results[i] for i, scan in enumerate(scans)}, scans=scans)
    if out is not None:
        result.write(out, plots=plots, report=report)
    return result
