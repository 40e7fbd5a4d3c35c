"""The reference-free discontinuity detector, the null ceiling and the skill score."""

from __future__ import annotations

import json

import numpy as np
import pytest
from calcs import BatchedMorse
from conftest import make_scan

from pesprobe.calibration.artifacts import (
    ArtifactPotential,
    ScaledForces,
    ZeroPotential,
)
from pesprobe.data import Scan, ScanSet
from pesprobe.evaluate.runner import evaluate
from pesprobe.metrics import discontinuity as D
from pesprobe.potentials.base import Predictions


def _scan(n_frames: int = 100) -> Scan:
    return make_scan(n_frames=n_frames, seed=1)


def _bond_length(scan: Scan) -> np.ndarray:
    return np.linalg.norm(scan.positions[:, 1] - scan.positions[:, 0], axis=1)


class Counting:
    """Counts frames evaluated by ``base``; fails (NaN forces) on frames that are not scan frames when ``fail_new``."""

    def __init__(self, base, scan: Scan | None = None) -> None:
        self.base, self.frames = base, 0
        self.name = "counting"
        self.known = None if scan is None else {p.tobytes() for p in scan.positions}

    def identity(self) -> str:
        return "counting|" + self.base.identity() + ("|fail-new" if self.known else "")

    def predict(self, numbers, positions, cell=None, pbc=None) -> Predictions:
        self.frames += len(positions)
        pred = self.base.predict(numbers, positions, cell, pbc)
        if self.known is None:
            return pred
        forces = pred.forces.copy()
        for k, p in enumerate(positions):
            if p.tobytes() not in self.known:
                forces[k] = np.nan
        return Predictions.from_arrays(pred.energy, forces)


def _run(potential, scan: Scan, tmp_path=None):
    result = evaluate(potential, ScanSet([scan], source="test"), out=tmp_path, progress=False)
    return result.metrics[0]


def test_energy_step_is_found_and_located():
    scan = _scan()
    d = _bond_length(scan)
    r_c = float(d[37] + 0.3 * (d[38] - d[37]))
    m = _run(ArtifactPotential(BatchedMorse(), "step", 0.01, r_c, (0, 1)), scan)
    found = [x for x in m.discontinuities if x["confirmed"]]
    assert m.values["n_discontinuities"] == 1 and len(found) == 1
    assert found[0]["quantity"] == "energy"
    assert abs(found[0]["jump"] - 0.01) < 1e-3
    assert abs(found[0]["coordinate"] - scan.coordinate[37] - 0.3 * (scan.coordinate[38] - scan.coordinate[37])) \
        < scan.coordinate[1] - scan.coordinate[0]


def test_force_kink_is_found():
    scan = _scan()
    d = _bond_length(scan)
    r_c = float(0.5 * (d[60] + d[61]))
    m = _run(ArtifactPotential(BatchedMorse(), "kink", 0.2, r_c, (0, 1)), scan)
    found = [x for x in m.discontinuities if x["confirmed"]]
    assert [x["quantity"] for x in found] == ["forces"]
    assert found[0]["jump"] == pytest.approx(0.2 * np.sqrt(2), rel=0.2)  # two atoms feel the jump
    assert m.values["roughness"] > 0.1


def test_smooth_models_have_none_and_cost_little():
    scan = _scan()
    for base in (BatchedMorse(), ArtifactPotential(BatchedMorse(), "well", 0.05, 1.9, (0, 1)),
                 ScaledForces(BatchedMorse(), 0.8)):
        counting = Counting(base)
        m = _run(counting, scan)
        assert m.values["n_discontinuities"] == 0, base
        assert counting.frames <= 1.2 * scan.n_frames
        assert m.n_refined == counting.frames - scan.n_frames


def test_a_model_failing_on_refined_frames_leaves_the_candidate_unconfirmed():
    scan = _scan()
    r_c = float(_bond_length(scan)[50] + 0.001)
    m = _run(Counting(ArtifactPotential(BatchedMorse(), "step", 0.05, r_c, (0, 1)), scan=scan), scan)
    assert m.values["n_discontinuities"] == 0
    assert m.values["n_unconfirmed"] >= 1
    assert all(not x["confirmed"] and "failed on a refined frame" in x["note"] for x in m.discontinuities)


def test_refined_frames_are_cached_and_written(tmp_path):
    scan = _scan()
    r_c = float(_bond_length(scan)[40] + 0.002)
    first = Counting(ArtifactPotential(BatchedMorse(), "step", 0.02, r_c, (0, 1)))
    _run(first, scan, tmp_path)
    assert first.frames > scan.n_frames
    again = Counting(ArtifactPotential(BatchedMorse(), "step", 0.02, r_c, (0, 1)))
    m = _run(again, scan, tmp_path)
    assert again.frames == 0 and m.values["n_discontinuities"] == 1
    data = json.loads((tmp_path / "results.json").read_text())
    row = data["systems"][scan.id]
    assert row["n_discontinuities"] == 1 and row["discontinuities"][0]["quantity"] == "energy"
    assert "energy@" in (tmp_path / "results.csv").read_text()


def test_null_ceiling_and_skill():
    scan = _scan()
    zero = _run(ZeroPotential(), scan)
    assert zero.values["full_smoothness"] == pytest.approx(zero.values["null_full_smoothness"])
    assert zero.values["full_smoothness_skill"] == pytest.approx(0.0, abs=1e-12)

    class Reference:
        name = "reference"

        def identity(self):
            return "reference"

        def predict(self, numbers, positions, cell=None, pbc=None):
            return Predictions.from_arrays(scan.ref_energy, scan.ref_forces)

    exact = _run(Reference(), scan)
    assert exact.values["full_smoothness"] == 0.0
    assert exact.values["full_smoothness_skill"] == 1.0
    assert exact.values["null_full_smoothness"] > 0


def test_unlabelled_scan_gets_reference_free_figures_only():
    scan = _scan()
    bare = Scan(id="C-C/bare", kind="bond", numbers=scan.numbers, positions=scan.positions,
                coordinate=scan.coordinate, ref_energy=np.full(scan.n_frames, np.nan),
                ref_forces=np.full(scan.ref_forces.shape, np.nan), meta=scan.meta)
    r_c = float(_bond_length(scan)[30] + 0.004)
    m = _run(ArtifactPotential(BatchedMorse(), "step", 0.02, r_c, (0, 1)), bare)
    assert not m.labelled and not m.flagged
    assert np.isnan(m.values["full_smoothness"]) and np.isnan(m.values["null_full_smoothness"])
    assert m.values["n_discontinuities"] == 1 and np.isfinite(m.values["roughness"])


def test_residuals_separate_continuous_from_discontinuous():
    x = np.linspace(1.0, 2.0, 50)
    positions = np.zeros((50, 2, 3))
    positions[:, 1, 0] = x
    energy = np.sin(3 * x)
    forces = np.zeros((50, 2, 3))
    forces[:, 1, 0] = -3 * np.cos(3 * x)
    forces[:, 0, 0] = 3 * np.cos(3 * x)
    assert np.abs(D.energy_residuals(positions, energy, forces)).max() < 1e-4
    stepped = energy + 0.05 * (x > 1.5)
    assert np.argmax(np.abs(D.energy_residuals(positions, stepped, forces))) == np.searchsorted(x, 1.5) - 1
    assert D.scan_candidates(positions, energy, forces) == []
    assert [c.quantity for c in D.scan_candidates(positions, stepped, forces)] == ["energy"]


def test_unlabelled_extxyz_runs_through_the_cli(tmp_path):
    from typer.testing import CliRunner

    from pesprobe.cli import app
    from pesprobe.data import load_scans, write_scans_extxyz

    scan = _scan(40)
    bare = Scan(id="C-C/mine", kind="bond", numbers=scan.numbers, positions=scan.positions,
                coordinate=scan.coordinate, ref_energy=np.full(scan.n_frames, np.nan),
                ref_forces=np.full(scan.ref_forces.shape, np.nan), meta=scan.meta)
    write_scans_extxyz(ScanSet([bare], source="mine"), tmp_path / "mine.xyz")
    loaded = load_scans(tmp_path / "mine.xyz")
    assert len(loaded) == 1 and not loaded.problems and not loaded[0].data_problems
    res = CliRunner().invoke(app, ["bsct", "--data", str(tmp_path / "mine.xyz"), "--calc", "morse",
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "no reference labels" in res.output
    row = json.loads((tmp_path / "o" / "results.json").read_text())["systems"]["C-C/mine"]
    assert row["labelled"] is False and row["full_smoothness"] is None and row["roughness"] is not None
    assert "no reference labels" in (tmp_path / "o" / "summary.md").read_text()


def test_refined_frames_of_a_scan_go_to_a_batched_potential_in_one_call():
    scan = _scan()
    d = _bond_length(scan)
    calls = []

    class Recording(ArtifactPotential):
        def predict(self, numbers, positions, cell=None, pbc=None):
            calls.append(len(positions))
            return super().predict(numbers, positions, cell, pbc)

    kinked = Recording(BatchedMorse(), "kink", 0.3, float(d[70] + 0.001), (0, 1))
    both = ArtifactPotential(kinked, "step", 0.02, float(d[20] + 0.001), (0, 1))
    m = _run(both, scan)
    assert m.values["n_discontinuities"] == 2
    assert calls == [scan.n_frames, 2 * D.REFINE_POINTS]  # the scan, then every refined frame at once


def test_leaderboard_entry_carries_the_verdict():
    from pesprobe.leaderboard.runner import Candidate, entry_from_result

    scans = ScanSet([make_scan(scan_id=f"C-C/{i}", seed=i) for i in range(3)], source="test")
    result = evaluate(ZeroPotential(), scans, progress=False)
    entry = entry_from_result(Candidate(name="zero", spec="zero", label="zero"), result)
    assert entry.skill_full == pytest.approx(0.0, abs=1e-12) and np.isfinite(entry.roughness_median)
    assert entry.n_discontinuity_scans == 0
