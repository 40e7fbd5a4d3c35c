"""Stability measures against hand-made logs (units, magnitudes), initial temperature, result files."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pesprobe.md import MDConfig, Molecule
from pesprobe.md.analysis import EnergyLog, energy_drift, kinetic_temperature, stability_measures
from pesprobe.md.ase_engine import initial_atoms
from pesprobe.md.monitor import Failure
from pesprobe.md.record import TrajectoryResult
from pesprobe.md.stats import rank_correlation

PENTAMER = Molecule("c5", [6, 6, 6, 1, 1], [[0, 0, 0], [1.4, 0, 0], [2.8, 0.3, 0], [-1.0, 0.1, 0], [3.6, 1.0, 0]])


def _log(time_fs: np.ndarray, total_eV: np.ndarray, temperature_K: np.ndarray, n_atoms: int,
         ensemble: str = "nve") -> EnergyLog:
    """A log with the given total energy and temperature (kinetic energy back-computed)."""
    kinetic = temperature_K * kinetic_temperature(np.ones(1), n_atoms, ensemble)[0] ** -1
    step = np.round(time_fs / 0.5).astype(int)
    return EnergyLog(step=step, time_fs=time_fs, potential=total_eV - kinetic, kinetic=kinetic,
                     temperature_K=temperature_K)


def test_initial_kinetic_temperature_averages_t0_over_seeds():
    """Centre-of-mass removal must not rescale: T over 3N − 3 degrees of freedom has mean T0."""
    cfg = MDConfig(temperature_K=500.0)
    temps = []
    for seed in range(400):
        atoms, _ = initial_atoms(PENTAMER, seed, cfg)
        assert np.allclose(atoms.get_momenta().sum(axis=0), 0.0, atol=1e-10)
        temps.append(kinetic_temperature(atoms.get_kinetic_energy(), PENTAMER.n_atoms, "nve"))
    # 12 degrees of freedom: relative sd of one draw sqrt(2/12) = 0.41, of the mean 0.02
    assert np.mean(temps) == pytest.approx(500.0, rel=0.08)


def test_energy_drift_is_in_mev_per_atom_per_ps():
    time_fs = np.arange(0.0, 2000.0, 0.5)
    n_atoms = 8
    total = -10.0 + 0.003 * (time_fs / 1000.0) * n_atoms  # +3 meV/atom/ps
    assert energy_drift(time_fs, total, n_atoms) == pytest.approx(3.0, rel=1e-9)
    log = _log(time_fs, total, np.full(time_fs.shape, 300.0), n_atoms)
    cfg = MDConfig(length_ps=2.0)
    measures = stability_measures(log, n_atoms, cfg, failed=False, failure_time_fs=None)
    assert measures["energy_drift_meV_atom_ps"] == pytest.approx(3.0, rel=1e-9)
    assert measures["energy_excursion_meV_atom"] == pytest.approx(3.0 * 1.9995, rel=1e-9)
    assert measures["time_to_failure_ps"] == 2.0 and measures["early_failure"] == 0.0


def test_temperature_spike_skips_the_start_up_transient():
    """An NVE start from a minimum loses half its temperature in a few fs; that is not a spike."""
    time_fs = np.arange(0.0, 400.0, 0.5)
    temps = np.where(time_fs < 4.0, 500.0 - 62.5 * time_fs, 250.0)
    temps[(time_fs >= 200.0) & (time_fs < 202.0)] = 350.0     # a 100 K spike at 200 fs
    log = _log(time_fs, np.zeros_like(time_fs), temps, 10)
    settled = stability_measures(log, 10, MDConfig(length_ps=0.4), failed=False, failure_time_fs=None)
    assert settled["temperature_jump_K"] == pytest.approx(100.0)
    assert settled["temperature_peak_K"] == pytest.approx(350.0)
    assert settled["temperature_peak_ratio"] == pytest.approx(0.7)
    raw = stability_measures(log, 10, MDConfig(length_ps=0.4, spike_settle_fs=0.0), failed=False,
                             failure_time_fs=None)
    assert raw["temperature_jump_K"] == pytest.approx(250.0) and raw["temperature_peak_K"] == 500.0
    # a run that fails inside the settling time is measured over all its samples
    early = _log(time_fs[:20], np.zeros(20), temps[:20], 10)
    short = stability_measures(early, 10, MDConfig(length_ps=0.4), failed=True, failure_time_fs=9.5)
    assert short["temperature_jump_K"] == pytest.approx(250.0) and short["early_failure"] == pytest.approx(
        1 - 9.5 / 400.0)


def test_blown_up_energy_is_an_infinite_excursion_that_survives_the_json_file():
    time_fs = np.arange(0.0, 10.0, 0.5)
    total = np.zeros_like(time_fs)
    total[-1] = np.nan
    log = _log(time_fs, total, np.full(time_fs.shape, 300.0), 4)
    measures = stability_measures(log, 4, MDConfig(length_ps=0.1), failed=True, failure_time_fs=9.5)
    assert measures["energy_excursion_meV_atom"] == math.inf
    result = TrajectoryResult(molecule="m", key="m__seed0", seed=0, n_atoms=4, potential="p", engine="ase",
                              steps_done=19, n_steps=200, failure=Failure(19, "nonfinite", "energy NaN"),
                              measures=measures, wall_seconds=0.1, fingerprint="f")
    back = TrajectoryResult.from_json(result.to_json())
    assert back.measures["energy_excursion_meV_atom"] == math.inf
    assert math.isnan(back.measures["energy_drift_meV_atom_ps"]) == math.isnan(measures["energy_drift_meV_atom_ps"])


def test_infinite_measures_rank_as_least_stable_not_missing():
    fsd = [1.0, 2.0, 3.0, 4.0, 5.0]
    excursion = [0.1, 0.2, 0.3, 0.4, math.inf]
    rc = rank_correlation(fsd, excursion)
    assert rc.n == 5 and rc.value == pytest.approx(1.0)
    assert rank_correlation(fsd, [0.1, 0.2, math.nan, 0.4, math.inf]).n == 4


def test_analysis_settings_do_not_change_the_trajectory_fingerprint():
    base = MDConfig()
    assert MDConfig(spike_window_fs=20.0, spike_settle_fs=0.0).fingerprint(0) == base.fingerprint(0)
    assert MDConfig(temperature_K=300.0).fingerprint(0) != base.fingerprint(0)
    with pytest.raises(ValueError, match="spike_settle_fs"):
        MDConfig(spike_settle_fs=-1.0)


def test_a_run_failing_at_step_1_ranks_least_stable_in_every_measure():
    """Two samples: no drift can be fitted; the run must not drop out of the drift correlation."""
    cfg = MDConfig(length_ps=1.0)
    short = _log(np.array([0.0, 0.5]), np.array([0.0, np.nan]), np.array([500.0, np.nan]), 5)
    failed = stability_measures(short, 5, cfg, failed=True, failure_time_fs=0.5)
    for name in ("abs_energy_drift_meV_atom_ps", "energy_excursion_meV_atom", "temperature_jump_K",
                 "temperature_peak_ratio"):
        assert failed[name] == math.inf, name
    assert failed["early_failure"] == pytest.approx(1.0 - 0.5 / 1000.0)
    # the same log of a surviving run stays unmeasured (NaN), and NVT has no energy measures at all
    assert math.isnan(stability_measures(short, 5, cfg, failed=False, failure_time_fs=None)[
        "abs_energy_drift_meV_atom_ps"])
    nvt = stability_measures(short, 5, MDConfig(length_ps=1.0, ensemble="nvt"), failed=True, failure_time_fs=0.5)
    assert math.isnan(nvt["abs_energy_drift_meV_atom_ps"]) and nvt["temperature_jump_K"] == math.inf
    # five molecules, the step-1 failure among them: all five pair up, and it ranks worst
    time_fs = np.arange(0.0, 1000.0, 0.5)
    drifts = []
    for slope in (1.0, 2.0, 3.0, 4.0):
        log = _log(time_fs, slope * 1e-3 * 5 * time_fs / 1000.0, np.full(time_fs.shape, 300.0), 5)
        drifts.append(stability_measures(log, 5, cfg, failed=False, failure_time_fs=None)[
            "abs_energy_drift_meV_atom_ps"])
    drifts.append(failed["abs_energy_drift_meV_atom_ps"])
    rc = rank_correlation([1.0, 2.0, 3.0, 4.0, 5.0], drifts)
    assert rc.n == 5 and rc.value == pytest.approx(1.0)
