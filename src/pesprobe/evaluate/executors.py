"""A distributed executor: BSCT scans and MD trajectories as tasks on a Dask cluster (``--cluster``).

``pesprobe bsct|md|leaderboard --cluster ADDRESS`` connects to a running Dask scheduler
(``tcp://host:8786``, e.g. one started by ``dask-jobqueue``'s ``SLURMCluster``), and
``--cluster local:N`` starts a :class:`distributed.LocalCluster` of ``N`` single-threaded worker
processes on this machine for the run. Needs the optional ``distributed`` package
(``pip install 'pesprobe[dask]'``) here and, for a remote scheduler, pesprobe and the potential's
packages on every worker (with the same files: a ``pesprobe:PATH`` checkpoint or a
``MODULE:FACTORY`` file must be readable there under the same path).

What stays as with ``--jobs``:

- **Results**: each task evaluates one scan (all its frames, then the detector's refined frames)
  or one trajectory, exactly as a local worker does, with the same thread count (``threads``),
  so the metrics are bit-identical to ``--jobs 1`` for a deterministic potential.
- **Cache, resume, output lock**: only this (the main) process reads and writes the output
  folder: the workers get the scans and the cached predictions in their task and hand the
  results back; the main process caches each one as it arrives, so an interrupted run resumes.
  The folder's lock (:mod:`pesprobe.evaluate.lock`) is held here for the whole run.
- **Crashes**: a worker that dies (segfault, OOM killer) fails only the task it was running: the
  scheduler runs that task again on another worker, and if that worker dies too the task fails
  (``KilledWorker``) and the scan is reported and cached as crashed (a trajectory as a
  ``calculator_error``), as :mod:`pesprobe.evaluate.isolation` does. At most one task per worker
  thread is in flight (the rest wait here), so a dying worker takes no innocent queued task with
  it. ``local:N`` sets the scheduler's ``distributed.scheduler.allowed-failures`` to 1 (one
  retry); a remote scheduler uses its own setting (Dask's default is 3: set
  ``DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=1`` where the scheduler starts, see the README).

``--timeout`` is not available with ``--cluster`` (a Dask task cannot be killed from outside).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

#: ``--cluster`` help text.
CLUSTER_HELP = ("Run the tasks on a Dask cluster: a scheduler address (tcp://HOST:8786) or local:N (a local "
                "cluster of N single-threaded worker processes). Needs pip install 'pesprobe[dask]'.")
#: A job larger than this (pickled, bytes) is scattered to the workers once instead of sent with each task.
SCATTER_BYTES = 1 << 20
SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "ucx://", "inproc://")


class ClusterError(ValueError):
    """A ``--cluster`` value that cannot be used (bad form, ``distributed`` missing, no scheduler)."""


def parse_cluster(text: str) -> tuple[str, int | str]:
    """``("local", N)`` for ``local:N``, ``("address", ADDRESS)`` for a scheduler address.

    Raises
    ------
    ClusterError
        For anything else (the message says what is expected).
    """
    value = text.strip()
    if value.lower().startswith("local:"):
        try:
            n = int(value.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise ClusterError(f"--cluster local:N needs N >= 1 workers, got {text!r}")
        return "local", n
    if value.lower().startswith(SCHEMES) and len(value.split("://", 1)[1]) > 0:
        return "address", value
    raise ClusterError(f"--cluster: expected a Dask scheduler address (tcp://HOST:PORT) or local:N, got {text!r}")


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError("--cluster needs the Dask 'distributed' package: pip install 'pesprobe[dask]'") from None
    return distributed


@dataclass
class TaskOutcome:
    """What came back for one task.

    Attributes
    ----------
    index : int
        The task's index in the submitted list.
    value : Any
        The task's return value (None unless ``error`` is empty).
    crashed : bool
        True when workers died running the task (the scheduler's ``KilledWorker``).
    error : str
        ``""``, or why the task produced no value.
    """

    index: int
    value: Any = None
    crashed: bool = False
    error: str = ""


class ClusterExecutor:
    """A Dask client for one or several runs; use as a context manager.

    Parameters
    ----------
    cluster : str
        ``local:N`` or a scheduler address (see :func:`parse_cluster`).
    """

    def __init__(self, cluster: str) -> None:
        self.kind, self.target = parse_cluster(cluster)
        self.cluster = cluster
        self._stack = contextlib.ExitStack()
        self.client: Any = None

    def __enter__(self) -> ClusterExecutor:
        distributed = _require_distributed()
        import dask

        try:
            if self.kind == "local":
                with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
                    local = self._stack.enter_context(distributed.LocalCluster(
                        n_workers=int(self.target), threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR))
                self.client = self._stack.enter_context(distributed.Client(local))
            else:
                self.client = self._stack.enter_context(distributed.Client(self.target, timeout="30s"))
        except (OSError, TimeoutError) as exc:
            self._stack.close()
            raise ClusterError(f"--cluster {self.cluster}: cannot reach the Dask scheduler ({exc})") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self.client = None

    def slots(self) -> int:
        """Worker threads of the cluster now (at least 1: a scaling cluster may have none yet)."""
        return max(1, sum(self.client.nthreads().values()))

    def run(self, fn: Callable[[Any, Any], Any], job: Any, items: list[Any]) -> Iterator[TaskOutcome]:
        """``fn(job, item)`` for every item on the cluster; one :class:`TaskOutcome` each, as they finish.

        ``job`` (the potential and settings: the same for every task) goes to the workers once;
        ``fn`` must be a module-level function of an importable module. At most :meth:`slots`
        tasks are in flight at a time.
        """
        if self.client is None:
            raise RuntimeError("ClusterExecutor.run outside its 'with' block")
        if not items:
            return
        import cloudpickle
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        try:
            size = len(cloudpickle.dumps(job))
        except Exception as exc:  # noqa: BLE001 - whatever pickling raises
            raise ValueError("--cluster: the potential cannot be sent to the workers (it does not pickle: "
                             f"{type(exc).__name__}: {exc}); give it as a SPEC string (e.g. MODULE:FACTORY)") from None
        # a small job travels with every task (it survives any worker's death); a large one (a model's
        # weights) is copied to every worker once
        shared = self.client.scatter(job, broadcast=True, hash=False) if size > SCATTER_BYTES else None
        run_id = uuid.uuid4().hex[:12]
        pending = deque(enumerate(items))
        index_of: dict[str, int] = {}
        flight = as_completed()

        def submit_more() -> None:
            limit = self.slots()
            while pending and flight.count() < limit:
                index, item = pending.popleft()
                future = self.client.submit(fn, job if shared is None else shared, item, key=f"pesprobe-{run_id}-{index}", pure=False)
                index_of[future.key] = index
                flight.add(future)

        try:
            submit_more()
            for future in flight:
                index = index_of.pop(future.key)
                if future.status == "error":
                    exc = future.exception()
                    if isinstance(exc, KilledWorker):
                        outcome = TaskOutcome(index, crashed=True, error="worker process died while running this "
                                              "task, twice (each time on a fresh worker)")
                    else:
                        outcome = TaskOutcome(index, error=f"{type(exc).__name__}: {exc}".strip())
                else:
                    outcome = TaskOutcome(index, value=future.result())
                future.release()
                yield outcome
                submit_more()
        finally:
            for future in list(flight.futures):
                future.cancel()
            if shared is not None:
                shared.release()


@contextlib.contextmanager
def cluster_executor(cluster: str | ClusterExecutor | None) -> Iterator[ClusterExecutor | None]:
    """``None`` for None; an open executor as it is (the caller closes it); a string opened and closed here."""
    if cluster is None or isinstance(cluster, ClusterExecutor):
        yield cluster
        return
    with ClusterExecutor(cluster) as executor:
        yield executor


# --- the worker side: one resolved potential per worker process, reused by every task of a run -------

_RESOLVED: dict[str, Any] = {}


def worker_cached(token: str, build: Callable[[], Any]) -> Any:
    """``build()`` once per worker process and ``token`` (the previous run's object is dropped)."""
    if token not in _RESOLVED:
        _RESOLVED.clear()
        _RESOLVED[token] = build()
    return _RESOLVED[token]


def new_token() -> str:
    """A token identifying one run's shared job on the workers."""
    return uuid.uuid4().hex


# --- BSCT: one task per scan ----------------------------------------------------------------------


@dataclass
class BSCTJob:
    """What every BSCT task of a run shares: the potential (a SPEC resolved on the worker, or the
    object itself) and the settings."""

    token: str
    spec: str | None
    potential: Any
    detect: bool
    threads: int | None


def _bsct_potential(job: BSCTJob) -> Any:
    from pesprobe.potentials.registry import resolve
    from pesprobe.potentials.threads import limit_threads

    if job.threads is not None:
        limit_threads(job.threads)
    return resolve(job.spec) if job.spec is not None else job.potential


def bsct_task(job: BSCTJob, item: tuple[Any, Any]) -> tuple[Any, Any]:
    """On a worker: ``(pred, extra)`` of one scan, as :func:`pesprobe.evaluate.runner._evaluate_scan`."""
    from pesprobe.evaluate.runner import _evaluate_scan

    potential = worker_cached(job.token, lambda: _bsct_potential(job))
    scan, cached = item
    return _evaluate_scan(potential, scan, cached, job.detect)


def bsct_outcomes(executor: ClusterExecutor, potential: Any, spec: str | None, scans: list[Any], todo: list[int],
                  cached: dict[int, Any], detect: bool, threads: int | None) -> Iterator[Any]:
    """One :class:`~pesprobe.evaluate.isolation.Outcome` per scan of ``todo``, evaluated on the cluster."""
    from pesprobe.evaluate.isolation import CRASHED, Outcome, failed_predictions
    from pesprobe.metrics import refinement_plan

    job = BSCTJob(new_token(), spec, None if spec is not None else potential, detect, threads)
    for task in executor.run(bsct_task, job, [(scans[i], cached.get(i)) for i in todo]):
        index = todo[task.index]
        if not task.error:
            yield Outcome(index, *task.value)
            continue
        scan = scans[index]
        reason = (f"{task.error} (--cluster): the calculator crashed; cached as failed, rerun with --no-resume "
                  "to try again" if task.crashed else f"task failed on the cluster: {task.error}")
        fatal = CRASHED if task.crashed else ""
        # with cached predictions only the refined frames failed
        pred = cached.get(index)
        pred = failed_predictions(scan.n_frames, scan.n_atoms, reason) if pred is None else pred
        extra = failed_predictions(refinement_plan(scan, pred).n_frames, scan.n_atoms, reason) if detect else None
        yield Outcome(index, pred, extra, fatal, reason)


# --- MD: one task per trajectory (ASE engine) or per batch (batched engine) -----------------------


@dataclass
class MDJob:
    """What every MD task of a run shares."""

    token: str
    spec: str | None
    kind: str
    name: str | None
    factory: Any
    model: Any
    config: Any
    device: str | None


def _md_engine(job: MDJob) -> Any:
    if job.kind == "ase":
        if job.spec is None:
            return job.factory
        from pesprobe.md.study import resolve_engine

        return resolve_engine(job.spec, "ase", job.name).factory
    from pesprobe.md.batched import BatchedIntegrator

    model = job.model
    if model is None:
        from pesprobe.md.study import resolve_engine

        model = resolve_engine(job.spec, "batched", job.name).model
    return BatchedIntegrator(model, job.config, device=job.device)


def md_task(job: MDJob, item: Any) -> Any:
    """On a worker: the RawTrajectory of one ``(molecule, seed)`` (ASE) or the list for a batch."""
    engine = worker_cached(job.token, lambda: _md_engine(job))
    if job.kind == "ase":
        from pesprobe.md.ase_engine import run_ase_trajectory

        molecule, seed = item
        return run_ase_trajectory(molecule, seed, engine, job.config)
    return engine.run([m for m, _ in item], [s for _, s in item])


def _crashed_trajectory(molecule: Any, config: Any, reason: str) -> Any:
    from pesprobe.md.analysis import LogBuffer
    from pesprobe.md.monitor import Failure
    from pesprobe.md.record import RawTrajectory

    return RawTrajectory(log=LogBuffer(config, molecule.n_atoms).log(),
                         failure=Failure(0, "calculator_error", reason, 0.0), steps_done=0)


def md_outcomes(executor: ClusterExecutor, eng: Any, spec: str | None, todo: list[tuple[Any, int]],
                chunks: list[tuple[list[tuple[Any, int]], str]], config: Any, device: str | None,
                progress: Any) -> Iterator[tuple[tuple[Any, int], Any]]:
    """``((molecule, seed), RawTrajectory)`` for every trajectory of ``todo``, integrated on the cluster.

    A task whose workers died gives its trajectories a ``calculator_error`` failure at step 0 (they
    are stored, so a resumed run goes past them); any other task error ends the run
    (:class:`ClusterError`; what finished before is stored).
    """
    job = MDJob(new_token(), spec, eng.kind, eng.name, None if spec is not None or eng.kind != "ase" else eng.factory,
                None if spec is not None or eng.kind == "ase" else eng.model, config, device)
    groups = [[t] for t in todo] if eng.kind == "ase" else [chunk for chunk, _ in chunks]
    items = [g[0] for g in groups] if eng.kind == "ase" else groups
    for task in executor.run(md_task, job, items):
        group = groups[task.index]
        if task.error and not task.crashed:
            raise ClusterError(f"a task failed on the cluster ({group[0][0].id} seed {group[0][1]}): {task.error}")
        if task.crashed:
            reason = f"{task.error} (--cluster): the calculator crashed the process"
            raws = [_crashed_trajectory(m, config, reason) for m, _ in group]
        else:
            raws = [task.value] if eng.kind == "ase" else task.value
        progress.advance(f"{len(group)} trajectories", len(group) * config.n_steps)
        progress.finish(f"{len(group)} trajectories", len(group))
        yield from zip(group, raws)
