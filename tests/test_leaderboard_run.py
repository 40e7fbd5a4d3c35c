"""``run_leaderboard`` and ``pesprobe leaderboard`` on real sample scans: skips, outputs, resume, CLI."""

import json
import sys

import pytest
from typer.testing import CliRunner

from pesprobe.bsct import BSCTResult, evaluate, load_scans
from pesprobe.cli import app
from pesprobe.data import Scan, ScanSet
from pesprobe.leaderboard.runner import run_leaderboard
from pesprobe.potentials.ase_adapter import AseCalculatorPotential
from pesprobe.potentials.threads import limit_threads

EXTRAS = {"7net-0": ("sevenn", "pesprobe[sevenn]"), "chgnet": ("chgnet", "pesprobe[chgnet]"),
          "gfn-ff": ("xtb", "pesprobe[xtb]")}


@pytest.fixture
def no_extras(monkeypatch, tmp_path):
    """Every optional package fails to import, and no default pesprobe model is shipped."""
    for module, _ in EXTRAS.values():
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr("pesprobe.models.potential.DEFAULT_MODEL", tmp_path / "absent" / "default.pt")


@pytest.fixture
def two_small(sample_dir):
    """The two smallest sample scans (5 and 10 atoms), as a ScanSet."""
    scans = load_scans(sample_dir)
    scans.scans = [scans["N-O/4583"], scans["C-S/713"]]
    return scans


@pytest.fixture
def two_short(two_small):
    """The same two scans cut to 25 frames around the minimum (keeps GFN2-xTB fast)."""
    cut = []
    for scan in two_small:
        keep = slice(20, 45)
        cut.append(Scan(id=scan.id, kind=scan.kind, numbers=scan.numbers, positions=scan.positions[keep],
                        coordinate=scan.coordinate[keep], ref_energy=scan.ref_energy[keep],
                        ref_forces=scan.ref_forces[keep], meta=scan.meta))
    return ScanSet(cut, source=two_small.source)


def test_unavailable_potentials_are_skipped_with_install_hint(no_extras, two_small, tmp_path):
    lines = []
    board = run_leaderboard(two_small, tmp_path / "lb", progress=False, log=lines.append,
                            names=["morse", "7net-0", "chgnet", "gfn-ff", "pesprobe:default", "no.such.module:f"])
    assert [e.name for e in board.entries] == ["morse"]
    reasons = {s.name: s.reason for s in board.skipped}
    for name, (module, extra) in EXTRAS.items():
        assert f"{module} is not usable (not installed)" in reasons[name] and extra in reasons[name]
    assert "no default model is shipped" in reasons["pesprobe:default"]
    assert "could not import no.such.module" in reasons["no.such.module_f"]
    assert len(lines) == 5 and all(line.startswith("skipping ") for line in lines)
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "pip install 'pesprobe[chgnet]'" in md and not (tmp_path / "lb" / "7net-0").exists()


def test_board_matches_bsct_and_ranks_real_potentials(no_extras, two_short, tmp_path):
    limit_threads(1)  # tblite's busy-waiting OpenMP threads are very slow on a loaded 2-core machine
    board = run_leaderboard(two_short, tmp_path / "lb", names=["morse", "gfn2-xtb"], progress=False)
    assert [e.rank for e in board.entries] == [1, 2]
    assert board.entries[0].fsd_full <= board.entries[1].fsd_full
    by_name = {e.name: e for e in board.entries}
    direct = BSCTResult.read(tmp_path / "lb" / "gfn2-xtb").summary
    g = by_name["gfn2-xtb"]
    assert g.fsd_full == pytest.approx(direct["full_smoothness"])
    assert g.fsd_stretch_median == pytest.approx(direct["stats"]["stretch_smoothness"]["median"])
    assert g.forces_mae == pytest.approx(direct["full_forces_mae"]) and g.n_frames == 50 and g.ms_per_frame > 0
    morse = evaluate("morse", two_short, progress=False).summary
    assert by_name["morse"].fsd_full == pytest.approx(morse["full_smoothness"])
    # GFN2-xTB reproduces DFT forces far better than a Morse toy with made-up parameters
    assert g.forces_mae < by_name["morse"].forces_mae
    data = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    assert data["scan_ids"] == ["N-O/4583", "C-S/713"] and [e["name"] for e in data["entries"]] == \
        [e.name for e in board.entries]
    assert data["by_group"]["gfn2-xtb"]["N-O"] == pytest.approx(direct["by_group"]["N-O"]["full_smoothness"])
    assert json.loads((tmp_path / "lb" / "gfn2-xtb" / "results.json").read_text())["potential"] == "gfn2-xtb"
    assert not list((tmp_path / "lb").glob(".*.tmp"))


def test_rerun_reuses_each_potentials_cache(no_extras, two_small, tmp_path, monkeypatch):
    first = run_leaderboard(two_small, tmp_path / "lb", names=["morse", "lj"], progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("model called although its results are cached")

    monkeypatch.setattr(AseCalculatorPotential, "predict", refuse)
    again = run_leaderboard(two_small, tmp_path / "lb", names=["lj", "morse"], progress=False)
    assert not again.skipped
    assert {e.name: e.fsd_full for e in again.entries} == {e.name: e.fsd_full for e in first.entries}
    assert {e.name: e.ms_per_frame for e in again.entries} == {e.name: e.ms_per_frame for e in first.entries}


def test_a_potential_that_breaks_the_run_is_reported_and_others_kept(no_extras, two_small, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("class Broken:\n    name = 'broken'\n    def identity(self):\n        return 'broken'\n"
                      "    def predict(self, *a, **k):\n        raise MemoryError('out of memory')\n"
                      "def make():\n    return Broken()\n")
    board = run_leaderboard(two_small, tmp_path / "lb", names=[f"{broken}:make", "morse"], progress=False,
                            log=lambda line: None)
    assert [e.name for e in board.entries] == ["morse"]
    assert "BSCT failed: every frame failed (MemoryError: out of memory)" in board.skipped[0].reason


def test_cli_leaderboard(no_extras, small_copy, tmp_path):
    runner = CliRunner()
    out = tmp_path / "lb"
    res = runner.invoke(app, ["leaderboard", "--data", str(small_copy), "--out", str(out), "--max-scans", "1",
                              "--potentials", "morse,7net-0", "--rank-by", "stretch", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "| 1 | morse |" in res.output and "1 potentials ranked on 1 scans, 1 skipped" in res.output
    assert "skipping 7net-0" in res.output and "pesprobe[sevenn]" in res.output
    data = json.loads((out / "leaderboard.json").read_text())
    assert data["rank_by"] == "stretch" and data["scan_ids"] == ["C-O/101"]
    for ext in ("md", "html", "csv"):
        assert (out / f"leaderboard.{ext}").stat().st_size > 200
    res = runner.invoke(app, ["leaderboard", "--data", str(small_copy), "--out", str(out), "--potentials", "chgnet"])
    assert res.exit_code == 1 and "0 potentials ranked" in res.output
    res = runner.invoke(app, ["leaderboard", "--data", str(small_copy), "--rank-by", "speed", "--out", str(out)])
    assert res.exit_code == 2 and "speed" in res.output
    res = runner.invoke(app, ["leaderboard", "--data", str(tmp_path / "nope"), "--out", str(out)])
    assert res.exit_code == 2 and "not found" in res.output
