"""Metric definitions on synthetic scans: FSD construction, ranges, NaN frames, diagnostics."""

import numpy as np

from pesprobe.metrics import integrated_potential, scan_metrics, smoothness
from pesprobe.metrics.diagnostics import local_minima, spurious_minima
from pesprobe.potentials.base import Predictions

from conftest import make_scan


def _pred(energy, forces):
    return Predictions.from_arrays(energy, forces)


def test_perfect_model_has_zero_fsd_and_errors():
    scan = make_scan()
    m = scan_metrics(scan, _pred(scan.ref_energy, scan.ref_forces))
    for name in ("full", "compress", "stretch"):
        assert m.values[f"{name}_smoothness"] == 0.0
        assert m.values[f"{name}_forces_mae"] == 0.0
    assert m.values["aligned_energy_mae"] == 0.0
    assert m.values["spurious_minima"] == 0


def test_fsd_matches_hand_computation():
    scan = make_scan(n_frames=12)
    rng = np.random.default_rng(3)
    forces = scan.ref_forces + rng.normal(scale=2.0, size=scan.ref_forces.shape)
    m = scan_metrics(scan, _pred(scan.ref_energy, forces))
    q = int(np.argmin(scan.ref_energy))
    fq = scan.ref_forces[q]
    mdev = np.maximum(((forces - fq) ** 2).sum(axis=(1, 2)), 1.0)
    gdev = np.maximum(((scan.ref_forces - fq) ** 2).sum(axis=(1, 2)), 1.0)
    r = np.log(mdev) - np.log(gdev)
    x = scan.coordinate
    slopes = np.abs(np.diff(r) / np.diff(x))
    assert np.isclose(m.values["full_smoothness"], slopes.max())
    assert np.isclose(m.values["compress_smoothness"], slopes[:q].max())
    assert np.isclose(m.values["stretch_smoothness"], slopes[q:].max())
    assert m.equilibrium_index == q


def test_nan_reference_frames_are_dropped():
    scan = make_scan(n_frames=30)
    rng = np.random.default_rng(1)
    forces = scan.ref_forces + rng.normal(scale=1.0, size=scan.ref_forces.shape)
    full = scan_metrics(scan, _pred(scan.ref_energy, forces))
    scan.ref_energy[[5, 20]] = np.nan
    dropped = scan_metrics(scan, _pred(scan.ref_energy, forces))
    keep = np.setdiff1d(np.arange(30), [5, 20])
    sub = make_scan(n_frames=30)
    from pesprobe.data import Scan

    sub = Scan(id="x", kind="bond", numbers=sub.numbers, positions=sub.positions[keep], coordinate=sub.coordinate[keep],
               ref_energy=sub.ref_energy[keep], ref_forces=sub.ref_forces[keep])
    expected = scan_metrics(sub, _pred(sub.ref_energy, forces[keep]))
    for name in ("full_smoothness", "compress_smoothness", "stretch_smoothness", "full_forces_mae"):
        assert dropped.values[name] == expected.values[name]
    assert dropped.values["full_forces_mae"] != full.values["full_forces_mae"]


def test_failed_frames_are_excluded_and_scan_flagged():
    scan = make_scan(n_frames=25)
    forces = scan.ref_forces.copy()
    forces[7] = np.nan
    m = scan_metrics(scan, _pred(scan.ref_energy, forces))
    assert m.flagged and m.n_failed == 1 and 7 in m.errors
    assert m.values["full_smoothness"] == 0.0  # remaining frames are exact


def test_failure_at_the_equilibrium_frame_leaves_the_errors_finite():
    scan = make_scan(n_frames=25)
    q = int(np.argmin(scan.ref_energy))
    rng = np.random.default_rng(2)
    energy = scan.ref_energy + rng.normal(scale=0.1, size=25)
    forces = scan.ref_forces + rng.normal(scale=0.3, size=scan.ref_forces.shape)
    energy[q], forces[q] = np.nan, np.nan
    m = scan_metrics(scan, _pred(energy, forces))
    assert m.n_failed == 1 and q in m.errors and m.equilibrium_index == q
    ok = np.arange(25) != q
    assert m.values["full_energy_mae"] == np.mean(np.abs(energy[ok] - scan.ref_energy[ok]))
    assert m.values["full_forces_mae"] == np.mean(np.abs(forces[ok] - scan.ref_forces[ok]))
    compress = np.arange(q)
    assert np.isclose(m.values["compress_forces_mae"], np.mean(np.abs(forces[compress] - scan.ref_forces[compress])))
    assert np.isfinite(m.values["full_smoothness"])


def test_too_few_frames_unscored():
    scan = make_scan(n_frames=5)
    forces = scan.ref_forces.copy()
    forces[[0, 1, 2]] = np.nan
    m = scan_metrics(scan, _pred(scan.ref_energy, forces))
    assert m.flagged and np.isnan(m.values["full_smoothness"])
    assert "usable frames" in m.errors[-1]


def test_integrated_potential_of_exact_forces_matches_energy():
    scan = make_scan(n_frames=400)
    q = int(np.argmin(scan.ref_energy))
    u = integrated_potential(scan.positions, scan.ref_forces, q)
    np.testing.assert_allclose(u, scan.ref_energy - scan.ref_energy[q], atol=2e-3)


def test_energy_force_consistency_detects_nonconservative_model():
    scan = make_scan(n_frames=60)
    good = scan_metrics(scan, _pred(scan.ref_energy, scan.ref_forces))
    bad = scan_metrics(scan, _pred(scan.ref_energy, 0.5 * scan.ref_forces))
    assert good.values["energy_force_consistency"] < 0.05
    assert bad.values["energy_force_consistency"] > 0.2


def test_spurious_minima_and_jumps():
    x = np.linspace(-1, 1, 41)
    ref = x ** 2
    wiggly = ref + 0.05 * np.sin(40 * x)
    assert list(local_minima(ref)) == [20]
    assert spurious_minima(wiggly, ref) >= 2
    assert spurious_minima(ref, ref) == 0
    scan = make_scan(n_frames=40)
    energy = scan.ref_energy.copy()
    energy[30:] += 100.0  # a step larger than any reference step
    m = scan_metrics(scan, _pred(energy, scan.ref_forces))
    assert m.values["energy_jump_ratio"] > 2


def test_smoothness_needs_two_points():
    assert np.isnan(smoothness(np.array([1.0]), np.array([0.0])))
