"""The Dask executor (``--cluster``): the same results, cache and resume as ``--jobs``; a dying worker
fails only its task, retried once. The cluster tests need ``distributed`` (``pip install
'pesprobe[dask]'``, also in the test extra) and skip with the reason without it."""

from __future__ import annotations

import csv
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pesprobe.data import load_scans
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.evaluate import evaluate
from pesprobe.evaluate.executors import ClusterError, ClusterExecutor, parse_cluster

try:
    import distributed  # noqa: F401

    HAVE_DASK = True
except ImportError:
    HAVE_DASK = False

needs_dask = pytest.mark.skipif(not HAVE_DASK, reason="the Dask 'distributed' package is not installed "
                                "(pip install 'pesprobe[dask]')")


@pytest.fixture(scope="module")
def cluster():
    """One LocalCluster of 2 single-threaded worker processes for the module's tests."""
    if not HAVE_DASK:
        pytest.skip("the Dask 'distributed' package is not installed (pip install 'pesprobe[dask]')")
    with ClusterExecutor("local:2") as executor:
        yield executor


def _rows(folder: Path) -> list[dict]:
    """results.csv without the wall time."""
    with open(folder / "results.csv") as handle:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]


def _same_metrics(a, b) -> None:
    assert [m.id for m in a.metrics] == [m.id for m in b.metrics]
    for x, y in zip(a.metrics, b.metrics):
        assert x.values.keys() == y.values.keys()
        for key in x.values:  # bit-identical (NaN equal to NaN)
            assert np.array_equal(np.asarray(x.values[key]), np.asarray(y.values[key]), equal_nan=True), key
    for scan_id, pred in a.predictions.items():
        assert np.array_equal(pred.forces, b.predictions[scan_id].forces, equal_nan=True)
        assert np.array_equal(pred.energy, b.predictions[scan_id].energy, equal_nan=True)


def test_parse_cluster_forms() -> None:
    assert parse_cluster("local:3") == ("local", 3)
    assert parse_cluster("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    for bad in ("local:0", "local:x", "10.0.0.5:8786", "tcp://", ""):
        with pytest.raises(ClusterError):
            parse_cluster(bad)


def test_cluster_without_distributed_is_one_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails as if not installed
    with pytest.raises(ClusterError, match=r"pip install 'pesprobe\[dask\]'"):
        with ClusterExecutor("local:1"):
            pass


def test_cli_rejects_bad_cluster_values(tmp_path) -> None:
    from typer.testing import CliRunner

    from pesprobe.cli import app

    runner = CliRunner()
    outcome = runner.invoke(app, ["bsct", "--calc", "lj", "--out", str(tmp_path / "a"), "--cluster", "nowhere"])
    assert outcome.exit_code == 2 and "local:N" in outcome.output
    outcome = runner.invoke(app, ["bsct", "--calc", "lj", "--out", str(tmp_path / "b"), "--cluster", "local:2",
                                  "--timeout", "5"])
    assert outcome.exit_code == 2 and "--timeout is not available with --cluster" in outcome.output
    outcome = runner.invoke(app, ["md", "--calc", "lj", "--out", str(tmp_path / "c"), "--cluster", "local:0"])
    assert outcome.exit_code == 2 and "N >= 1" in outcome.output


@needs_dask
def test_cluster_bsct_is_bit_identical_to_jobs_1_and_resumes(cluster, tmp_path) -> None:
    spec = "morse"
    local = evaluate(spec, None, out=tmp_path / "local", progress=False, jobs=1, report=False)
    remote = evaluate(spec, None, out=tmp_path / "cluster", progress=False, cluster=cluster, report=False)
    _same_metrics(local, remote)
    assert _rows(tmp_path / "local") == _rows(tmp_path / "cluster") and len(_rows(tmp_path / "local")) == 6
    # the main process cached every scan; a resumed run recomputes only what is missing
    cached = sorted((tmp_path / "cluster" / "cache").glob("*/*.npz"))
    assert len([p for p in cached if ".refined-" not in p.name]) == 6
    kept, dropped = cached[1:], cached[0]
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    dropped.unlink()
    again = evaluate(spec, None, out=tmp_path / "cluster", progress=False, cluster=cluster, report=False)
    _same_metrics(local, again)
    assert dropped.exists() and all(p.stat().st_mtime_ns == stamps[p] for p in kept)


@needs_dask
def test_cli_bsct_on_a_scheduler_address_matches_jobs_1(cluster, tmp_path) -> None:
    from typer.testing import CliRunner

    from pesprobe.cli import app

    address = cluster.client.scheduler.address  # a running scheduler, as dask-jobqueue gives one
    assert address.startswith("tcp://")
    evaluate("lj", None, out=tmp_path / "jobs", progress=False, jobs=1, report=False)
    outcome = CliRunner().invoke(app, ["bsct", "--calc", "lj", "--out", str(tmp_path / "dask"), "--no-plots",
                                       "--cluster", address])
    assert outcome.exit_code == 0, outcome.output
    assert _rows(tmp_path / "jobs") == _rows(tmp_path / "dask") and len(_rows(tmp_path / "jobs")) == 6


@needs_dask
def test_cluster_md_is_identical_to_jobs_1(cluster, tmp_path) -> None:
    from pesprobe.md.config import MDConfig
    from pesprobe.md.study import run_stability

    scans = load_scans(embedded_scans_path())
    config = MDConfig(length_ps=0.05, seeds=(0, 1), save_every=20)
    local = run_stability("morse", scans, config, out=tmp_path / "local", engine="ase", plots=False, progress=False)
    remote = run_stability("morse", scans, config, out=tmp_path / "cluster", engine="ase", plots=False,
                           progress=False, cluster=cluster)
    assert len(local.trajectories) == len(remote.trajectories) == 12
    for a, b in zip(local.trajectories, remote.trajectories):
        assert (a.molecule, a.seed) == (b.molecule, b.seed)
        assert a.failed == b.failed and a.steps_done == b.steps_done
        assert a.measures.keys() == b.measures.keys()
        for key in a.measures:
            assert np.array_equal(a.measures[key], b.measures[key], equal_nan=True), key
    for key in (t.key for t in local.trajectories):
        log_a = np.load(tmp_path / "local" / "runs" / f"{key}.npz")
        log_b = np.load(tmp_path / "cluster" / "runs" / f"{key}.npz")
        for name in log_a.files:
            assert np.array_equal(log_a[name], log_b[name], equal_nan=True), name


CRASHER = """
import os
import signal
from pathlib import Path

from ase.calculators.morse import MorsePotential

MARKS = Path({marks!r})


class Crasher(MorsePotential):
    '''Morse; in a worker process it kills its process (SIGKILL, as the OOM killer does) on the N-O scan
    (5 atoms) every time, and on the C-S scan (first atom S) the first time only.'''

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        if str(os.getpid()) != os.environ.get("PESPROBE_TEST_MAIN_PID"):
            if len(atoms) == 5:
                (MARKS / f"no-{{os.getpid()}}").touch()
                os.kill(os.getpid(), signal.SIGKILL)
            if atoms.numbers[0] == 16 and not (MARKS / "cs").exists():
                (MARKS / "cs").touch()
                os.kill(os.getpid(), signal.SIGKILL)
        super().calculate(atoms, properties, system_changes or ["positions"])


def make():
    return Crasher(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5)
"""


@needs_dask
def test_a_dying_worker_fails_only_its_task_which_is_retried_once(cluster, tmp_path, monkeypatch) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    module = tmp_path / "crasher.py"
    module.write_text(textwrap.dedent(CRASHER.format(marks=str(marks))))
    spec = f"{module}:make"
    monkeypatch.setenv("PESPROBE_TEST_MAIN_PID", str(os.getpid()))
    reference = evaluate(spec, None, progress=False)  # in this process: never crashes
    result = evaluate(spec, None, out=tmp_path / "out", progress=False, cluster=cluster, report=False)
    by_id = {m.id: m for m in result.metrics}
    crashed = by_id["N-O/4583"]
    assert crashed.n_failed == crashed.n_frames == 100
    assert "died" in next(iter(crashed.errors.values()))
    assert len(list(marks.glob("no-*"))) == 2  # tried, then retried once on a fresh worker, then failed
    assert (marks / "cs").exists()  # the C-S scan's worker died once: its retry gave the right answer
    for ref, got in zip(reference.metrics, result.metrics):
        if ref.id != "N-O/4583":
            assert got.n_failed == 0
            assert np.array_equal(reference.predictions[ref.id].forces, result.predictions[got.id].forces)
    # cached as crashed: a resumed run goes past it without sending it to a worker again
    again = evaluate(spec, None, out=tmp_path / "out", progress=False, cluster=cluster, report=False)
    assert len(list(marks.glob("no-*"))) == 2
    assert {m.id: m.n_failed for m in again.metrics} == {m.id: m.n_failed for m in result.metrics}


@needs_dask
def test_cluster_leaderboard_matches_local(cluster, tmp_path) -> None:
    from pesprobe.leaderboard.runner import run_leaderboard

    scans = load_scans(embedded_scans_path())
    local = run_leaderboard(scans, tmp_path / "local", names=["morse"], max_scans=2, progress=False, log=print)
    remote = run_leaderboard(scans, tmp_path / "cluster", names=["morse"], max_scans=2, progress=False, log=print,
                             cluster=cluster.client.scheduler.address)
    assert [e.name for e in remote.entries] == ["morse"] and not remote.skipped
    for field in ("fsd_full", "fsd_compress", "fsd_stretch", "forces_mae", "aligned_energy_mae", "n_scored"):
        assert getattr(local.entries[0], field) == getattr(remote.entries[0], field), field
