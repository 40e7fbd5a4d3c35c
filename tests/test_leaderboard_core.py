"""Leaderboard logic without running potentials: candidates, scan subsets, rows, ranking, rendering."""

import csv
import io
import json
import math

import pytest
from conftest import make_scan

from pesprobe.data import ScanSet
from pesprobe.evaluate import BSCTResult
from pesprobe.leaderboard.report import csv_text, html_page, markdown
from pesprobe.leaderboard.runner import (
    CANDIDATES,
    Candidate,
    Entry,
    Leaderboard,
    Skipped,
    candidates,
    entry_from_result,
    rank,
    slug,
    subset,
)
from pesprobe.metrics import DIAGNOSTICS, PUBLISHED, ScanMetrics


def _entry(name, full, median=1.0, forces=0.1):
    nan = math.nan
    return Entry(name=name, spec=name, label=name.upper(), identity=name, n_scans=2, n_scored=2, n_frames=200,
                 n_failed_frames=0, fsd_full=full, fsd_full_median=median, fsd_compress=nan,
                 fsd_compress_median=nan, fsd_stretch=nan, fsd_stretch_median=nan, aligned_energy_mae=nan,
                 forces_mae=forces, ms_per_frame=1.0)


def _metrics(scan_id, full, seconds, n_failed=0):
    values = {name: math.nan for name in PUBLISHED + DIAGNOSTICS}
    values.update(full_smoothness=full, compress_smoothness=2 * full, stretch_smoothness=3 * full,
                  aligned_energy_mae=0.5 * full, full_forces_mae=0.1 * full)
    return ScanMetrics(id=scan_id, group=scan_id.split("/")[0], values=values, equilibrium_index=3, n_frames=10,
                       n_failed=n_failed, flagged=n_failed > 0, seconds=seconds)


def test_candidates_known_names_specs_and_errors():
    assert [c.name for c in candidates()] == [c.name for c in CANDIDATES]
    assert {"gfn2-xtb", "gfn1-xtb", "gfn-ff", "7net-0", "chgnet", "pesprobe:default"} <= {c.name for c in CANDIDATES}
    chosen = candidates(["gfn2-xtb", " pesprobe:default", "pesprobe:runs/a b.pt", ""])
    assert [c.name for c in chosen] == ["gfn2-xtb", "pesprobe:default", "pesprobe_runs_a_b.pt"]
    assert [c.folder for c in chosen] == ["gfn2-xtb", "pesprobe_default", "pesprobe_runs_a_b.pt"]
    assert chosen[2].spec == "pesprobe:runs/a b.pt"
    assert slug("../x") == "x" and slug("???") == "potential"
    with pytest.raises(ValueError, match="listed twice: gfn2-xtb"):
        candidates(["gfn2-xtb", "gfn2-xtb"])
    with pytest.raises(ValueError, match="no potentials"):
        candidates([" ", ""])


def test_subset_round_robin_over_bond_types():
    ids = ["A-A/1", "A-A/2", "A-A/3", "B-B/1", "C-C/1", "C-C/2"]
    scans = ScanSet([make_scan(n_frames=5, seed=i, scan_id=s) for i, s in enumerate(ids)], source="gen")
    for scan in scans:
        scan.meta["bond"] = scan.id.split("/")[0]
    assert subset(scans, 4).ids() == ["A-A/1", "A-A/2", "B-B/1", "C-C/1"]  # A1 B1 C1 then A2; data order kept
    assert subset(scans, 100).ids() == ids
    assert subset(scans, 1).source == "gen"
    with pytest.raises(ValueError, match="at least 1"):
        subset(scans, 0)


def test_entry_aggregates_means_medians_time_and_unscored():
    result = BSCTResult(metrics=[_metrics("C-C/1", 1.0, 0.02), _metrics("C-C/2", 2.0, 0.04),
                                 _metrics("N-O/1", 6.0, 0.06, n_failed=2), _metrics("N-O/2", math.nan, 0.08)],
                        identity="id-1")
    e = entry_from_result(Candidate("x", "x-spec", "X"), result)
    assert (e.name, e.spec, e.label, e.identity) == ("x", "x-spec", "X", "id-1")
    assert e.n_scans == 4 and e.n_scored == 3 and e.n_frames == 40 and e.n_failed_frames == 2
    assert e.fsd_full == pytest.approx(3.0) and e.fsd_full_median == pytest.approx(2.0)
    assert e.fsd_compress == pytest.approx(6.0) and e.fsd_stretch_median == pytest.approx(6.0)
    assert e.aligned_energy_mae == pytest.approx(1.5) and e.forces_mae == pytest.approx(0.3)
    assert e.ms_per_frame == pytest.approx(1000 * 0.2 / 40)


def test_rank_orders_ascending_nan_last_and_breaks_ties():
    entries = [_entry("c", math.nan), _entry("b", 2.0, median=5.0), _entry("a", 2.0, median=5.0),
               _entry("d", 2.0, median=1.0, forces=9.0), _entry("e", 0.5, forces=5.0)]
    ranked = rank(entries)
    assert [e.name for e in ranked] == ["e", "d", "a", "b", "c"]
    assert [e.rank for e in ranked] == [1, 2, 3, 4, 5]
    # forces: a, b, c tie at 0.1 -> median full FSD (c: 1 < 5), then name
    assert [e.name for e in rank(entries, by="forces")] == ["c", "a", "b", "e", "d"]
    with pytest.raises(ValueError, match="rank_by must be one of"):
        rank(entries, by="speed")


def test_reports_contain_table_groups_and_skips():
    board = Leaderboard(entries=rank([_entry("slow<b>", 2.0), _entry("smooth", 1.0)]),
                        skipped=[Skipped("7net-0", "7net-0", "sevenn is not usable; pip install 'pesprobe[sevenn]'")],
                        source="/data/x", scan_ids=["C-C/1", "N-O/2"], by_group={"smooth": {"C-C": 0.5, "N-O": None}})
    md = markdown(board)
    assert "2 scans" in md and "Ranked by mean full FSD" in md
    table = [line for line in md.splitlines() if line.startswith("| 1 ")]
    assert table and "smooth" in table[0] and "1 (1)" in table[0] and "0/200" in table[0]
    assert "| C-C | 0.5 | — |" in md and "| N-O | — | — |" in md
    assert "**7net-0** (`7net-0`): sevenn is not usable" in md
    page = html_page(board)
    assert page.startswith("<!DOCTYPE html>") and "slow&lt;b&gt;" in page and "slow<b>" not in page
    assert "pesprobe[sevenn]" in page
    rows = list(csv.DictReader(io.StringIO(csv_text(board))))
    assert [r["name"] for r in rows] == ["smooth", "slow<b>"] and rows[0]["fsd_compress"] == ""
    assert float(rows[1]["fsd_full"]) == 2.0
    data = json.loads(json.dumps(board.to_json(), allow_nan=False))
    assert data["entries"][0]["fsd_stretch"] is None and data["n_scans"] == 2
    assert data["skipped"][0]["name"] == "7net-0"


def test_empty_board_says_so():
    board = Leaderboard(entries=[], skipped=[Skipped("gfn-ff", "gfn-ff", "xtb missing")], source="s", scan_ids=["a"])
    assert "No potential could be run." in markdown(board) and "xtb missing" in markdown(board)
    assert "No potential could be run." in html_page(board)
    assert csv_text(board).count("\n") == 1
