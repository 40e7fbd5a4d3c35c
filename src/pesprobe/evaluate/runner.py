"""The BSCT runner: evaluate a potential on every scan of a data set.

Scans are evaluated one call per scan (``Potential.predict`` on all its frames), optionally in
``jobs`` worker processes, optionally on one deterministic shard of the data set, with model
results cached per (potential, scan) so that an interrupted run resumes.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from pesprobe.data import ScanSet, load_scans
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.data.scan import Scan
from pesprobe.evaluate.cache import PredictionCache
from pesprobe.evaluate.calls import safe_predict
from pesprobe.evaluate.refine import empty_predictions, refine
from pesprobe.evaluate.result import BSCTResult
from pesprobe.metrics import refinement_plan, scan_metrics
from pesprobe.potentials.base import Potential, Predictions
from pesprobe.potentials.registry import as_potential, resolve
from pesprobe.potentials.threads import limit_threads

# Worker-process state, set before the pool forks (or in the initializer with spawn).
_WORKER: dict[str, Any] = {}


def _init_worker(potential: Potential | None, spec: str | None, scans: list[Scan] | None,
                 cached: dict[int, Predictions], detect: bool) -> None:
    limit_threads(1)
    if potential is None and spec is not None:
        potential = resolve(spec)
    _WORKER.update(potential=potential, cached=cached, detect=detect)
    if scans is not None:
        _WORKER["scans"] = scans


def _evaluate_scan(potential: Potential, scan: Scan, cached: Predictions | None,
                   detect: bool) -> tuple[Predictions, Predictions | None]:
    """The potential on every frame of ``scan`` (unless ``cached``), then on the detector's refined frames."""
    pred = cached if cached is not None else safe_predict(potential, scan.numbers, scan.positions, scan.cell,
                                                          scan.pbc)
    return pred, refine(potential, scan, pred) if detect else None


def _predict_in_worker(index: int) -> tuple[int, Predictions, Predictions | None]:
    return (index, *_evaluate_scan(_WORKER["potential"], _WORKER["scans"][index], _WORKER["cached"].get(index),
                                   _WORKER["detect"]))


def _predictions(potential: Potential, spec: str | None, scans: list[Scan], todo: list[int], jobs: int,
                 cached: dict[int, Predictions],
                 detect: bool) -> Iterator[tuple[int, Predictions, Predictions | None]]:
    if jobs <= 1 or len(todo) <= 1:
        for i in todo:
            yield (i, *_evaluate_scan(potential, scans[i], cached.get(i), detect))
        return
    if "fork" in mp.get_all_start_methods():
        # fork: the potential and the scans are inherited, nothing is pickled
        _WORKER.update(potential=potential, scans=scans, cached=cached, detect=detect)
        ctx, initargs = mp.get_context("fork"), (potential, None, None, cached, detect)
    else:
        ctx, initargs = mp.get_context("spawn"), (None if spec else potential, spec, scans, cached, detect)
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=initargs) as pool:
            yield from pool.map(_predict_in_worker, todo, chunksize=1)
    finally:
        _WORKER.clear()


def evaluate(calc: Any, data: str | Path | ScanSet, out: str | Path | None = None, jobs: int = 1,
             shard: tuple[int, int] | None = None, plots: bool = False, progress: bool = True,
             resume: bool = True, name: str | None = None, detect: bool = True) -> BSCTResult:
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
    jobs : int
        Worker processes (each evaluates whole scans).
    shard : (index, count), optional
        Evaluate only the ``index``-th (0-based) of ``count`` deterministic slices; combine the
        outputs with :func:`pesprobe.evaluate.merge`.
    plots : bool
        Write per-scan and summary figures into ``out/plots`` (requires ``out``).
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

    Returns
    -------
    BSCTResult
    """
    spec = calc if isinstance(calc, str) else None
    potential = resolve(calc) if spec else as_potential(calc, name=name)
    scanset = data if isinstance(data, ScanSet) else load_scans(embedded_scans_path() if data is None else data)
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
            pred = cache.get(scan)
            if pred is None:
                continue
            cached[i] = pred
            plan = refinement_plan(scan, pred) if detect else None
            if plan is None or plan.n_frames == 0:
                results[i], refined[i] = pred, (None if plan is None else empty_predictions(scan.n_atoms))
            elif (extra := cache.get_refined(scan, plan.positions)) is not None:
                results[i], refined[i] = pred, extra
    todo = [i for i in range(len(scans)) if i not in results]
    start = time.perf_counter()
    bar = tqdm(total=len(scans), initial=len(results), desc=f"BSCT {name or potential.name}", unit="scan",
               disable=not progress)
    with bar:
        for i, pred, extra in _predictions(potential, spec, scans, todo, jobs, cached, detect):
            results[i], refined[i] = pred, extra
            if cache is not None:
                cache.put(scans[i], pred)
                if extra is not None and len(extra.failed):
                    cache.put_refined(scans[i], refinement_plan(scans[i], pred).positions, extra)
            bar.update(1)
    metrics = [scan_metrics(scan, results[i], refined[i]) for i, scan in enumerate(scans)]
    result = BSCTResult(metrics=metrics, problems=list(scanset.problems), potential=name or potential.name,
                        identity=potential.identity(), source=scanset.source, order=order, shard=shard,
                        wall_seconds=time.perf_counter() - start,
                        predictions={scan.id: results[i] for i, scan in enumerate(scans)}, scans=scans)
    if out is not None:
        result.write(out, plots=plots)
    return result
