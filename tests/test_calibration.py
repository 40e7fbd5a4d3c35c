"""Fast subset of the calibration benchmark (benchmarks/calibration.py): the detector's targets."""

from __future__ import annotations

import numpy as np
from calcs import BatchedMorse

from pesprobe.calibration.artifacts import MemoPotential, pair_term
from pesprobe.calibration.markdown import markdown
from pesprobe.calibration.run import artifact_place, calibrate, rank_crossings
from pesprobe.data import load_scans
from pesprobe.data.embedded import embedded_scans_path


def test_pair_terms_are_what_they_claim():
    positions = np.zeros((200, 2, 3))
    positions[:, 1, 0] = np.linspace(1.0, 2.0, 200)
    e, f = pair_term("step", 0.01, 1.5, positions, 0, 1)
    assert set(np.round(e, 12)) == {0.0, 0.01} and not f.any()
    e, f = pair_term("kink", 0.2, 1.5, positions, 0, 1)
    assert np.abs(np.diff(e)).max() < 0.2 * 0.006 and set(np.round(f[:, 1, 0], 12)) == {0.0, -0.2}
    fine = np.zeros((4001, 2, 3))
    fine[:, 1, 0] = np.linspace(1.0, 2.0, 4001)
    e, f = pair_term("well", 0.05, 1.5, fine, 0, 1)
    assert e.min() == -0.05 and fine[np.argmin(e), 1, 0] == 1.5
    fd = -np.gradient(e, fine[:, 1, 0])
    assert np.allclose(f[:, 1, 0], fd, atol=1e-4) and np.allclose(f[:, 0, 0], -fd, atol=1e-4)


def test_memo_potential_calls_the_base_once_per_geometry():
    class Count(BatchedMorse):
        frames = 0

        def predict(self, numbers, positions, cell=None, pbc=None):
            Count.frames += len(positions)
            return super().predict(numbers, positions, cell, pbc)

    scan = next(iter(load_scans(embedded_scans_path())))
    memo = MemoPotential(Count())
    a = memo.predict(scan.numbers, scan.positions[:10])
    b = memo.predict(scan.numbers, scan.positions[5:12])
    assert Count.frames == 12
    assert np.array_equal(a.forces[5:], b.forces[:5])


def test_quick_calibration_meets_the_detector_targets(tmp_path):
    scans = [s for s in load_scans(embedded_scans_path())][:3]
    result = calibrate(scans, BatchedMorse(), out=tmp_path, quick=True, progress=False)
    assert result["detection"]["step"][0.01]["n_discontinuities"] == 1.0
    assert result["located"]["step"][0.01] == 1.0 and result["located"]["kink"][0.3] == 1.0
    assert result["detection"]["step"][0.01]["full_smoothness"] == 0.0  # the published FSD cannot see it
    assert result["clean_any_discontinuity"] == 0.0
    for control in ("zero", "forces*0.8"):
        assert result["false_alarm"][control]["any_discontinuity"] == 0.0
    crossing = {s.id: rank_crossings(s) for s in scans}
    assert all(crossing.values())
    assert result["random"]["knn"]["crossing"][0] >= 2 / 3
    assert result["random"]["diffknn"]["crossing"][0] == 0.0 and result["random"]["radius"]["crossing"][0] == 0.0
    assert result["extra_calls"]["clean"] <= 0.2
    assert (tmp_path / "variants" / "step_0.01.json").exists()
    assert "Detection rate vs amplitude" in markdown(result)
    again = calibrate(scans, BatchedMorse(), out=tmp_path, quick=True, progress=False)  # resumes from variants/
    assert again["detection"] == result["detection"]


def test_artifact_place_is_inside_the_scan_and_reproducible():
    scan = next(iter(load_scans(embedded_scans_path())))
    r_c, where, pair = artifact_place(scan)
    assert artifact_place(scan) == (r_c, where, pair)
    assert scan.coordinate.min() < where < scan.coordinate.max()
