"""Bad scan inputs fail their own scan, named, and never abort, hang or mislead the run (issue 13, Inputs)."""

from __future__ import annotations

import builtins
import os
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pesprobe.bsct import evaluate
from pesprobe.data import ScanSet, load_scans, write_published, write_scans_extxyz
from pesprobe.data.scan import DATA_PROBLEMS

from conftest import make_scan

N_FRAMES = 20


def _messages(scans: ScanSet) -> str:
    return "\n".join(str(p) for p in scans.problems)


@pytest.fixture
def root(tmp_path) -> Path:
    """Two 20-frame published-layout scans, C-C/a and C-C/b."""
    scans = []
    for name, seed in (("a", 0), ("b", 1)):
        scan = make_scan(n_frames=N_FRAMES, seed=seed, scan_id=f"C-C/{name}")
        scan.meta["perturb_range"] = np.array([scan.coordinate[0], scan.coordinate[-1], N_FRAMES])
        scans.append(scan)
    write_published(scans, tmp_path / "data")
    return tmp_path / "data"


def _load_within(path: Path, seconds: float = 10.0) -> ScanSet:
    """``load_scans(path)`` in a thread; fail (not hang) if it has not returned in ``seconds``."""
    out: dict[str, object] = {}

    def target() -> None:
        try:
            out["scans"] = load_scans(path)
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the test thread
            out["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        for fifo in path.rglob("*"):  # unblock a reader stuck opening a FIFO
            if fifo.is_fifo():
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail(f"load_scans({path}) hung")
    if "error" in out:
        raise out["error"]
    return out["scans"]


def _symlink_loop(path: Path) -> None:
    os.symlink(path.name, path)


def _dangling(path: Path) -> None:
    os.symlink(path.parent / "no_such_file.xyz", path)


def _directory(path: Path) -> None:
    path.mkdir()


def _fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize("make, reason", [(_symlink_loop, "symlink loop"), (_dangling, "dangling symlink"),
                                          (_directory, "a directory"), (_fifo, "FIFO")])
def test_a_frame_path_that_is_not_a_regular_file_fails_only_its_scan(root, make, reason):
    frame = root / "C-C" / "a" / "atoms_4.xyz"
    frame.unlink()
    make(frame)
    scans = _load_within(root)
    assert scans.ids() == ["C-C/b"]
    problem = next(p for p in scans.problems if p.path == str(frame))
    assert "scan C-C/a skipped" in problem.message and reason in problem.message


def test_an_unreadable_frame_file_fails_only_its_scan(root, monkeypatch):
    # tests run as root, for whom chmod 000 changes nothing: the OS refusal is simulated
    frame = root / "C-C" / "a" / "atoms_4.xyz"
    real_open = builtins.open

    def refusing_open(file, *args, **kwargs):
        if str(file) == str(frame):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    scans = load_scans(root)
    assert scans.ids() == ["C-C/b"]
    problem = next(p for p in scans.problems if p.path == str(frame))
    assert "scan C-C/a skipped" in problem.message and "permission denied" in problem.message


def test_a_fifo_anywhere_in_the_data_is_never_opened(root):
    os.mkfifo(root / "C-C" / "a" / "notes.pipe")
    os.mkfifo(root / "C-C" / "b" / "partition.npz.tmp")
    (root / "C-C" / "b" / "partition.npz").unlink()
    os.mkfifo(root / "C-C" / "b" / "partition.npz")
    scans = _load_within(root)
    assert scans.ids() == ["C-C/a"]
    text = _messages(scans)
    assert "notes.pipe: stray entry" in text
    assert "C-C/b/partition.npz: scan C-C/b skipped: unreadable partition.npz (a FIFO" in text


def test_two_files_for_one_frame_fail_the_scan_naming_both(root):
    folder = root / "C-C" / "a"
    (folder / "atoms_01.xyz").write_bytes((folder / "atoms_1.xyz").read_bytes())
    scans = load_scans(root)
    assert scans.ids() == ["C-C/b"]
    problem = next(p for p in scans.problems if "C-C/a" in p.path)
    assert "atoms_01.xyz" in problem.message and "atoms_1.xyz" in problem.message and "frame 1" in problem.message


@pytest.mark.parametrize("perturb_range, words", [([3.0, 0.75, N_FRAMES], "start < end"),
                                                  ([-0.5, 3.0, N_FRAMES], "bond length <= 0")])
def test_reversed_or_negative_perturb_range_is_refused(root, perturb_range, words):
    path = root / "C-C" / "a" / "partition.npz"
    data = dict(np.load(path))
    data["perturb_range"] = np.array(perturb_range)
    np.savez(path, **data)
    scans = load_scans(root)
    assert scans.ids() == ["C-C/b"]
    problem = next(p for p in scans.problems if p.path == str(path))
    assert "field 'perturb_range'" in problem.message and words in problem.message


def _edit_frame(path: Path, line: int, old: str, new: str) -> None:
    lines = path.read_text().splitlines()
    assert old in lines[line]
    lines[line] = lines[line].replace(old, new, 1)
    path.write_text("\n".join(lines) + "\n")


def _set_coordinate(path: Path, value: str) -> None:
    lines = path.read_text().splitlines()
    fields = lines[3].split()
    fields[2] = value
    lines[3] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_coordinates_are_a_data_problem_not_a_calculator_failure(root, value):
    frame = root / "C-C" / "a" / "atoms_7.xyz"
    _set_coordinate(frame, value)
    scans = load_scans(root)
    scan = scans["C-C/a"]
    assert scan.n_frames == N_FRAMES - 1 and 7 not in scan.meta["frame_index"]
    problem = next(p for p in scans.problems if p.path == str(frame))
    assert "frame 7 skipped" in problem.message and "non-finite coordinates" in problem.message
    m = {x.id: x for x in evaluate("morse", scans, progress=False).metrics}["C-C/a"]
    assert m.n_failed == 0 and m.flagged


def test_non_finite_coordinates_in_multiframe_extxyz_are_a_data_problem(tmp_path):
    path = write_scans_extxyz([make_scan(n_frames=10)], tmp_path / "s.xyz")
    lines = path.read_text().splitlines()
    fields = lines[5 * 5 + 2].split()  # frame 5, first atom
    fields[1] = "nan"
    lines[5 * 5 + 2] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    scans = load_scans(path)
    assert scans["C-C/gen"].n_frames == 9
    assert f"{path}#frame5: frame skipped: non-finite coordinates" in _messages(scans)


def test_nan_reference_energies_flag_the_scan_and_count_as_data_problems(root, tmp_path):
    folder = root / "C-C" / "a"
    for i in (9, 10):
        path = folder / f"atoms_{i}.xyz"
        energy = path.read_text().splitlines()[1].split("energy=")[1].split()[0]
        _edit_frame(path, 1, f"energy={energy}", "energy=nan")
    scans = load_scans(root)
    scan = scans["C-C/a"]
    assert scan.n_frames == N_FRAMES and np.isnan(scan.ref_energy[[9, 10]]).all()
    assert scan.meta[DATA_PROBLEMS] and "frames 9-10" in scan.meta[DATA_PROBLEMS][0]
    result = evaluate("morse", root, out=tmp_path / "out", progress=False)
    m = {x.id: x for x in result.metrics}
    assert m["C-C/a"].flagged and not m["C-C/b"].flagged
    assert np.isfinite(m["C-C/a"].values["full_smoothness"])
    problem = next(p for p in result.problems if p.path == str(folder))
    assert "non-finite reference energy in frames 9-10 (atoms_9.xyz, atoms_10.xyz)" in problem.message
    assert "1 data problems" in (tmp_path / "out" / "summary.md").read_text()


def test_missing_frame_files_flag_the_scan(root):
    (root / "C-C" / "a" / "atoms_12.xyz").unlink()
    m = {x.id: x for x in evaluate("morse", root, progress=False).metrics}
    assert m["C-C/a"].flagged and m["C-C/a"].n_frames == N_FRAMES - 1 and not m["C-C/b"].flagged


def _extxyz_with(tmp_path: Path, n_frames: int = 100):
    scan = make_scan(n_frames=n_frames)
    path = write_scans_extxyz([scan, make_scan(n_frames=8, seed=2, scan_id="C-C/other")], tmp_path / "s.xyz")
    return path, path.read_text().splitlines(keepends=True), scan.n_atoms + 2


@pytest.mark.parametrize("cut", ["mid-frame", "at a frame boundary"])
def test_truncated_multiframe_extxyz_flags_the_scan_that_lost_frames(tmp_path, cut):
    path, lines, per_frame = _extxyz_with(tmp_path)
    keep = 73 * per_frame + (4 if cut == "mid-frame" else 0)
    path.write_text("".join(lines[:keep]))
    scans = load_scans(path)
    assert scans.ids() == ["C-C/gen"] and scans["C-C/gen"].n_frames == 73
    assert "scan C-C/gen: 73 of 100 frames read" in _messages(scans)
    m = evaluate("morse", scans, progress=False).metrics[0]
    assert m.flagged and m.n_failed == 0


def test_truncated_extxyz_without_a_frame_list_still_flags_the_last_scan(tmp_path):
    path, lines, per_frame = _extxyz_with(tmp_path, n_frames=30)
    text = "".join(lines[:20 * per_frame + 4]).replace(', \\"frame_index\\": [', ', \\"old_index\\": [')
    path.write_text(text)
    scans = load_scans(path)
    assert scans["C-C/gen"].n_frames == 20 and scans["C-C/gen"].meta[DATA_PROBLEMS]
    assert "ends in an unreadable frame after 20 frames of this scan" in _messages(scans)


def test_a_complete_extxyz_has_no_data_problems(tmp_path):
    path, _, _ = _extxyz_with(tmp_path, n_frames=12)
    scans = load_scans(path)
    assert not scans.problems and DATA_PROBLEMS not in scans["C-C/gen"].meta


@pytest.mark.parametrize("head", [b"", b"5\n"])
def test_a_large_junk_frame_file_is_not_read_whole(root, head):
    size = 64 << 20
    junk = root / "C-C" / "a" / "atoms_4.xyz"
    with open(junk, "wb") as fh:
        fh.write(head)
        fh.truncate(size)  # sparse: NUL bytes, no newline after the head
    tracemalloc.start()
    try:
        scans = load_scans(root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak / 2**20:.0f} MiB for a {size >> 20} MiB junk file"
    assert scans["C-C/a"].n_frames == N_FRAMES - 1
    problem = next(p for p in scans.problems if p.path == str(junk))
    assert "frame skipped" in problem.message and "longer than" in problem.message
