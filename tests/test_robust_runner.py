"""The runner survives its calculator and its neighbours: crashes, hangs, threads, determinism,
concurrent runs into one folder, hostile scan ids, and a bounded scan cache (issue 13)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.morse import MorsePotential
from typer.testing import CliRunner

from pesprobe.bsct import evaluate, load_scans
from pesprobe.cli import app
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.data.scan import ScanSet
from pesprobe.potentials.base import Predictions

#: The test process: the crashing calculators refuse to crash it (they raise instead).
MAIN_PID = os.getpid()
#: Scans of this many atoms make the misbehaving calculators misbehave: N-O/4583 of the embedded set.
VICTIM_ATOMS = 5


def embedded(*ids: str) -> ScanSet:
    scans = load_scans(embedded_scans_path())
    return ScanSet([scans[i] for i in ids], source="embedded subset")


def two_scans() -> ScanSet:
    return embedded("N-O/4583", "C-S/713")


class Misbehaving(MorsePotential):
    """Morse, except on the 4th frame of a 5-atom scan: ``mode`` "segv" kills its process with SIGSEGV,
    "hang" sleeps for a minute. Every attempt leaves a file in ``MARKS`` (counted by the tests)."""

    MARKS: Path | None = None
    mode = "segv"

    def __init__(self):
        super().__init__(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5)
        self.frame = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        if len(atoms) == VICTIM_ATOMS:
            self.frame += 1
            if self.frame == 4:
                (self.MARKS / f"{self.mode}-{os.getpid()}-{time.monotonic_ns()}").touch()
                if os.getpid() == MAIN_PID:
                    raise RuntimeError("the runner called a crashing calculator in the test process")
                if self.mode == "segv":
                    os.kill(os.getpid(), signal.SIGSEGV)
                time.sleep(60)
        super().calculate(atoms, properties, system_changes)


def crashing(marks: Path, mode: str) -> type:
    return type(f"Misbehaving_{mode}", (Misbehaving,), {"MARKS": marks, "mode": mode})


@pytest.mark.parametrize("jobs, isolate", [(2, False), (1, True)])
def test_segfault_on_one_frame_fails_that_scan_and_resume_goes_past_it(tmp_path, jobs, isolate):
    marks = tmp_path / "marks"
    marks.mkdir()
    calc = crashing(marks, "segv")
    out = tmp_path / "out"
    result = evaluate(calc, two_scans(), out=out, jobs=jobs, isolate=isolate, progress=False, detect=False)
    by_id = {m.id: m for m in result.metrics}
    victim = by_id["N-O/4583"]
    assert victim.n_failed == victim.n_frames and "SIGSEGV" in victim.errors[0] and "twice" in victim.errors[0]
    assert by_id["C-S/713"].n_failed == 0 and np.isfinite(by_id["C-S/713"].values["full_smoothness"])
    assert len(list(marks.iterdir())) == 2  # first attempt, then once more alone
    failures = json.loads((out / "results.json").read_text())["failures"]
    assert any(f["scan"] == "N-O/4583" and "SIGSEGV" in f["error"] for f in failures)
    again = evaluate(calc, two_scans(), out=out, jobs=jobs, isolate=isolate, progress=False, detect=False)
    assert len(list(marks.iterdir())) == 2  # cached as failed: the resumed run does not crash on it again
    assert [m.n_failed for m in again.metrics] == [m.n_failed for m in result.metrics]


def test_cli_isolate_and_timeout_options(tmp_path):
    module = tmp_path / "segv_calc.py"
    module.write_text(
        "import os, signal\nfrom ase.calculators.morse import MorsePotential\n"
        "class Calc(MorsePotential):\n"
        "    def calculate(self, atoms=None, properties=('energy',), system_changes=()):\n"
        f"        if len(atoms) == {VICTIM_ATOMS} and os.getpid() != {MAIN_PID}:\n"
        "            os.kill(os.getpid(), signal.SIGSEGV)\n"
        "        super().calculate(atoms, properties, system_changes)\n"
        "def make():\n    return Calc(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5)\n")
    data = tmp_path / "scans.npz"
    from pesprobe.data.compact import write_compact

    write_compact(two_scans(), data)
    res = CliRunner().invoke(app, ["bsct", "--data", str(data), "--calc", f"{module}:make", "--out",
                                   str(tmp_path / "o"), "--isolate", "--timeout", "60", "--threads", "1"])
    assert res.exit_code == 0, res.output
    systems = json.loads((tmp_path / "o" / "results.json").read_text())["systems"]
    assert systems["N-O/4583"]["n_failed"] == 100 and systems["C-S/713"]["n_failed"] == 0


def test_hanging_frame_times_out_and_fails_its_scan(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    calc = crashing(marks, "hang")
    start = time.monotonic()
    result = evaluate(calc, two_scans(), out=tmp_path / "o", timeout=3, progress=False, detect=False)
    assert time.monotonic() - start < 15
    by_id = {m.id: m for m in result.metrics}
    assert by_id["N-O/4583"].n_failed == 100 and "timed out" in by_id["N-O/4583"].errors[0]
    assert "3 s" in by_id["N-O/4583"].errors[0]
    assert by_id["C-S/713"].n_failed == 0
    assert len(list(marks.iterdir())) == 1  # a hang is not retried


def test_cached_timeouts_are_retried_only_with_more_time(tmp_path):
    from pesprobe.evaluate.cache import PredictionCache
    from pesprobe.evaluate.isolation import failed_predictions

    scan = two_scans()[0]
    cache = PredictionCache(tmp_path, "x")
    cache.put(scan, failed_predictions(scan.n_frames, scan.n_atoms, "timed out"), fatal="timeout:3")
    assert cache.get(scan, timeout=3) is not None and cache.get(scan, timeout=2) is not None
    assert cache.get(scan, timeout=10) is None and cache.get(scan) is None
    cache.put(scan, failed_predictions(scan.n_frames, scan.n_atoms, "crashed"), fatal="crashed")
    assert cache.get(scan) is not None
    cache.put(scan, failed_predictions(scan.n_frames, scan.n_atoms, "licence server down"))
    assert cache.get(scan) is None  # an ordinary all-failed scan is still evaluated again


def test_every_scan_failing_gives_one_clear_line_and_nonzero_exit(tmp_path):
    module = tmp_path / "broken_calc.py"
    module.write_text(
        "from ase.calculators.calculator import Calculator\n"
        "class Broken(Calculator):\n    implemented_properties = ['energy', 'forces']\n"
        "    def calculate(self, atoms=None, properties=None, system_changes=None):\n"
        "        raise RuntimeError('licence expired')\n"
        "def make():\n    return Broken()\n")
    data = tmp_path / "scans.npz"
    from pesprobe.data.compact import write_compact

    write_compact(embedded("N-O/4583"), data)
    res = CliRunner().invoke(app, ["bsct", "--data", str(data), "--calc", f"{module}:make",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 1, res.output
    assert not isinstance(res.exception, TypeError) and "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "no scan could be scored" in lines[0]
    assert "N-O/4583 frame 0" in lines[0] and "RuntimeError: licence expired" in lines[0]
    assert (tmp_path / "o" / "results.json").is_file()  # the outputs say what failed


class ThreadProbe:
    """A batched Morse-free potential that records the OpenMP/torch thread counts it runs with."""

    name = "thread-probe"

    def __init__(self, record: Path) -> None:
        self.record = record

    def identity(self) -> str:
        return "thread-probe-v1"

    def predict(self, numbers, positions, cell=None, pbc=None) -> Predictions:
        import torch

        with open(self.record, "a") as fh:
            fh.write(f"{torch.get_num_threads()} {os.environ.get('OMP_NUM_THREADS')}\n")
        n_frames, n_atoms = positions.shape[:2]
        return Predictions.from_arrays(np.zeros(n_frames), np.zeros((n_frames, n_atoms, 3)))


@pytest.mark.parametrize("jobs", [1, 2])
def test_threads_are_limited_in_the_main_process_and_in_workers(tmp_path, jobs):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        record = tmp_path / f"threads-{jobs}.txt"
        evaluate(ThreadProbe(record), two_scans(), jobs=jobs, progress=False, detect=False)
        assert set(record.read_text().split("\n")[:-1]) == {"1 1"}
        assert torch.get_num_threads() == 2  # the caller's setting is restored
        record.unlink()
        evaluate(ThreadProbe(record), two_scans(), jobs=jobs, threads=2, progress=False, detect=False)
        assert set(record.read_text().split("\n")[:-1]) == {"2 2"}
    finally:
        torch.set_num_threads(before)


def test_shipped_model_results_do_not_depend_on_jobs():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a machine's default: more than one thread in the main process
    try:
        scans = embedded("C-O/101", "N-N/2793", "N-O/4583")
        one = evaluate("pesprobe:default", scans, jobs=1, progress=False)
        two = evaluate("pesprobe:default", scans, jobs=2, progress=False)
    finally:
        torch.set_num_threads(before)
    for a, b in zip(one.metrics, two.metrics):
        assert a.id == b.id
        pa, pb = one.predictions[a.id], two.predictions[b.id]
        assert np.array_equal(pa.energy, pb.energy) and np.array_equal(pa.forces, pb.forces)
        assert json.dumps(a.values) == json.dumps(b.values)


def test_two_runs_into_one_folder_the_second_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(out / '.pesprobe.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'pid %d' % os.getpid()); print('held', flush=True)\n"
         "time.sleep(60)\n"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        res = CliRunner().invoke(app, ["bsct", "--data", str(embedded_scans_path()), "--calc", "morse",
                                       "--out", str(out)])
        assert res.exit_code == 2, res.output
        assert "in use by another pesprobe run" in res.output and f"pid {holder.pid}" in res.output
        assert not (out / "results.json").exists() and not (out / "cache").exists()
    finally:
        holder.kill()
        holder.wait()
    evaluate("morse", embedded("N-O/4583"), out=out, progress=False)  # released with its process
    assert (out / "results.json").is_file()


def test_hostile_scan_ids_are_escaped_in_markdown_and_figures(tmp_path):
    from pesprobe.data.published import write_published

    scans = embedded("N-O/4583", "C-S/713")
    hostile = ["N-O/$\\undefinedx$", "C-S/<b>x<i>|y*z_"]
    renamed = [dataclasses.replace(s, id=new) for s, new in zip(scans, hostile)]
    write_published(renamed, tmp_path / "data")
    assert (tmp_path / "data" / "N-O" / "$\\undefinedx$").is_dir()
    loaded = load_scans(tmp_path / "data")
    assert sorted(loaded.ids()) == sorted(hostile)
    out = tmp_path / "o"
    evaluate("morse", loaded, out=out, plots=True, progress=False)
    text = (out / "summary.md").read_text()
    assert "<b>" not in text and "&lt;b&gt;x&lt;i&gt;\\|y\\*z\\_" in text
    assert "\\$\\\\undefinedx\\$" in text
    unescaped_pipes = lambda line: len(re.findall(r"(?<!\\)\|", line))  # noqa: E731
    header = "| scan | FSD full |"
    worst = text.split(header)[1].strip().splitlines()[1:3]
    assert len(worst) == 2 and all(unescaped_pipes(line) == 3 for line in worst)  # the table keeps its 2 columns
    assert (out / "plots" / "N-O__$\\undefinedx$.png").stat().st_size > 10_000
    assert "&lt;b&gt;" in (out / "report.html").read_text()


def test_scan_cache_is_bounded(tmp_path, monkeypatch):
    from pesprobe.data.published import write_published

    cache = tmp_path / "cache"
    monkeypatch.setenv("PESPROBE_CACHE_DIR", str(cache))
    cache.mkdir()
    stale = cache / f"scans-{'0' * 64}.npz"
    stale.write_bytes(b"x" * 1000)
    month_ago = time.time() - 40 * 86400
    os.utime(stale, (month_ago, month_ago))
    scans = embedded("N-O/4583")
    copies = []
    for k in range(4):
        copies.append(tmp_path / f"copy{k}")
        write_published(scans, copies[-1])
    load_scans(copies[0])
    assert not stale.exists()  # unused for longer than PESPROBE_CACHE_MAX_DAYS (30)
    size = next(cache.glob("scans-*.npz")).stat().st_size
    monkeypatch.setenv("PESPROBE_CACHE_MAX_MB", str(2.5 * size / 2**20))
    for copy in copies[1:]:
        load_scans(copy)  # one entry per copy, but no more than the bound allows
    entries = sorted(cache.glob("scans-*.npz"), key=lambda p: p.stat().st_mtime)
    assert len(entries) == 2
    assert sum(p.stat().st_size for p in entries) <= 2.5 * size
    again = load_scans(copies[-1])  # the newest entry is kept and used
    assert again.ids() == ["N-O/4583"] and len(list(cache.glob("scans-*.npz"))) == 2


def test_merge_into_a_folder_in_use_is_refused(tmp_path):
    from pesprobe.bsct import merge
    from pesprobe.evaluate.lock import OutputBusyError, output_lock

    evaluate("morse", embedded("N-O/4583"), out=tmp_path / "s0", progress=False)
    with output_lock(tmp_path / "merged"):
        with pytest.raises(OutputBusyError, match="in use by another pesprobe run"):
            merge([tmp_path / "s0"], out=tmp_path / "merged")
    assert not (tmp_path / "merged" / "results.json").exists()
    merge([tmp_path / "s0"], out=tmp_path / "merged")
    assert (tmp_path / "merged" / "results.json").is_file()
