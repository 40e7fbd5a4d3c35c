"""FSD vs MD stability: a family of potentials of known roughness, a smooth control, the statistics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase import Atoms
from ase.optimize import FIRE
from scipy import stats

from pesprobe.data.scan import Scan, ScanSet
from pesprobe.md import MDConfig, correlate
from pesprobe.md.stats import rank_correlation
from pesprobe.md.synthetic import SyntheticPairCalculator
from pesprobe.potentials.ase_adapter import AseCalculatorPotential

STEPS = (0.0, 0.01, 0.02, 0.04, 0.08)       # cutoff-discontinuity heights, eV
BUMPS = (0.02, 0.04, 0.08)                  # smooth-bump heights, eV (control)


def _bond_scan(n: int, seed: int, rank: int = 0) -> Scan:
    """Stretch the shortest bond (``rank`` 1: the next shortest ...) of a relaxed C_n cluster; reference =
    the smooth Morse potential."""
    atoms = Atoms(f"C{n}", positions=np.random.default_rng(seed).normal(size=(n, 3)))
    atoms.calc = SyntheticPairCalculator()
    FIRE(atoms, logfile=None).run(fmax=1e-5, steps=5000)
    pos, d = atoms.positions, atoms.get_all_distances()
    i, j = np.unravel_index(np.argsort((d + 9 * np.eye(n) + np.tril(np.full((n, n), 99.0))).ravel())[rank], d.shape)
    unit = (pos[j] - pos[i]) / d[i, j]
    grid = np.arange(-0.25, 0.5001, 0.01)
    frames = np.stack([pos + np.outer(np.arange(n) == j, unit) * g for g in grid])
    ref = AseCalculatorPotential(lambda: SyntheticPairCalculator()).predict(atoms.numbers, frames)
    return Scan(id=f"C-C/{n}{seed}" + ("" if rank == 0 else f"b{rank}"), kind="bond", numbers=atoms.numbers, positions=frames, coordinate=d[i, j] + grid,
                ref_energy=ref.energy, ref_forces=ref.forces, meta={"unperturbed": pos.copy(), "bond": "C-C"})


@pytest.fixture(scope="module")
def scans() -> ScanSet:
    return ScanSet([_bond_scan(5, 1), _bond_scan(6, 1), _bond_scan(7, 3)])


CFG = MDConfig(length_ps=0.1, seeds=(0,), save_every=0, energy_tolerance_eV_atom=0.03)


@pytest.fixture(scope="module")
def rough(scans, tmp_path_factory):
    family = {f"step{a}": (lambda a=a: SyntheticPairCalculator(step_eV=a)) for a in STEPS}
    out = tmp_path_factory.mktemp("corr") / "rough"
    return correlate(family, scans, CFG, out=out, n_bootstrap=300, n_permutations=500, progress=False), out


@pytest.fixture(scope="module")
def control(scans):
    family = {"ref": lambda: SyntheticPairCalculator()}
    family.update({f"bump{a}": (lambda a=a: SyntheticPairCalculator(smooth_eV=a)) for a in BUMPS})
    return correlate(family, scans, CFG, n_bootstrap=300, n_permutations=500, progress=False, plots=False)


def _per_potential(result, key):
    out = {}
    for row in result.pairs:
        out.setdefault(row["potential"], []).append(row[key])
    return {k: float(np.mean(v)) for k, v in out.items()}


def test_fsd_and_instability_grow_with_roughness(rough):
    result, _ = rough
    fsd = _per_potential(result, "full_smoothness")
    excursion = _per_potential(result, "energy_excursion_meV_atom")
    early = _per_potential(result, "early_failure")
    names = [f"step{a}" for a in STEPS]
    assert fsd[names[0]] == 0.0
    assert all(fsd[a] < fsd[b] for a, b in zip(names, names[1:])), fsd
    assert excursion[names[0]] < 1.0 < excursion[names[1]]
    assert all(excursion[a] < excursion[b] for a, b in zip(names[:3], names[1:3])), excursion
    assert early[names[0]] == early[names[1]] == 0.0 and early[names[-1]] > 0.9


def test_reported_correlation_is_strongly_positive(rough, monkeypatch):
    result, out = rough
    # early_failure is 0 for every surviving trajectory: many ties, so a weaker (still clear) signal
    for measure, floor in (("energy_excursion_meV_atom", 0.8), ("abs_energy_drift_meV_atom_ps", 0.7),
                           ("early_failure", 0.5)):
        row = result.get("pooled", "full_smoothness", measure, "spearman")
        assert row["n"] == 15 and row["value"] > floor and row["ci_low"] > 0.1 and row["p_value"] < 0.05, row
        assert result.get("pooled", "full_smoothness", measure, "kendall")["value"] > 0.4
    # per molecule, across the five potentials: perfectly ordered excursion
    for mol in ("C-C/51", "C-C/61", "C-C/73"):
        row = result.get(f"molecule={mol}", "full_smoothness", "energy_excursion_meV_atom", "spearman")
        assert row["n"] == 5 and row["value"] > 0.85
    assert result.cost["ratio"] > 1.0 and result.cost["md_seconds"] > 0
    data = json.loads((out / "correlation.json").read_text())
    assert len(data["pairs"]) == 15 and data["cost"]["per_potential"].keys() == set(f"step{a}" for a in STEPS)
    assert (out / "plots" / "scatter.png").stat().st_size > 20_000
    assert (out / "step0.08" / "md" / "results.json").exists() and (out / "step0.08" / "bsct" / "results.json").exists()
    # the saved results are read back: a second call integrates nothing
    import pesprobe.md.study as study

    def boom(*args, **kwargs):
        raise AssertionError("a saved trajectory was integrated again")

    monkeypatch.setattr(study, "run_ase_trajectory", boom)
    again = correlate({f"step{a}": (lambda a=a: SyntheticPairCalculator(step_eV=a)) for a in STEPS}, result_scans(out),
                      CFG, out=out, n_bootstrap=300, n_permutations=500, progress=False, plots=False)
    assert again.pairs == result.pairs


def result_scans(out):
    """The scan set the rough fixture used (rebuilt: scans are deterministic)."""
    return ScanSet([_bond_scan(5, 1), _bond_scan(6, 1), _bond_scan(7, 3)])


def test_smooth_control_shows_no_spurious_signal(control, rough):
    fsd = _per_potential(control, "full_smoothness")
    excursion = _per_potential(control, "energy_excursion_meV_atom")
    assert all(r["failure_fraction"] == 0 for r in control.pairs)
    # MD is as stable as the reference for every smooth potential
    assert max(excursion.values()) < 1.0
    # the smooth term moves FSD far less than the smallest discontinuity does
    rough_fsd = _per_potential(rough[0], "full_smoothness")
    assert max(fsd.values()) < 0.5 * rough_fsd["step0.01"]
    # constant instability measures give no correlation at all, not a spurious one
    for measure in ("failure_fraction", "early_failure"):
        assert np.isnan(control.get("pooled", "full_smoothness", measure, "spearman")["value"])
    # and the continuous ones show no significant positive association with FSD
    for measure in ("energy_excursion_meV_atom", "abs_energy_drift_meV_atom_ps", "temperature_jump_K"):
        row = control.get("pooled", "full_smoothness", measure, "spearman")
        assert row["n"] == 12 and np.isfinite(row["value"]), (measure, row)
        assert not (row["value"] > 0 and row["p_value"] < 0.05), (measure, row)


def test_rank_correlation_matches_scipy_and_calibrates():
    rng = np.random.default_rng(1)
    x = rng.normal(size=25)
    y = x + rng.normal(size=25)
    y[:3] = y[3]  # ties
    for method, ref in (("spearman", stats.spearmanr), ("kendall", stats.kendalltau)):
        rc = rank_correlation(x, y, method, n_bootstrap=400, n_permutations=400)
        assert rc.value == pytest.approx(ref(x, y).statistic, abs=1e-12)
        assert rc.ci_low < rc.value < rc.ci_high and rc.p_value < 0.05
        null = rank_correlation(x, rng.normal(size=25), method, n_bootstrap=400, n_permutations=400)
        assert null.ci_low < 0 < null.ci_high and null.p_value > 0.05
    exact = rank_correlation([1, 2, 3, 4, 5], [2, 4, 6, 8, 11])
    assert exact.value == 1.0 and exact.p_value == pytest.approx(2 / 120)
    with_nan = rank_correlation([1, 2, np.nan, 4, 5], [1, 2, 3, 4, 5])
    assert with_nan.n == 4 and with_nan.value == 1.0 and with_nan.p_value == pytest.approx(2 / 24)
    assert np.isnan(with_nan.ci_low) and np.isnan(with_nan.ci_high)  # too few pairs for a bootstrap interval
    assert np.isnan(rank_correlation([1, 2, 3], [5, 5, 5]).value)
    with pytest.raises(ValueError, match="method"):
        rank_correlation([1, 2, 3], [1, 2, 3], "pearson")


def test_cli_correlate_writes_its_tables(tmp_path):
    from typer.testing import CliRunner

    from pesprobe.cli import app

    out = tmp_path / "corr"
    result = CliRunner().invoke(app, ["correlate", "lj", "morse", "--out", str(out), "--length", "0.005", "--seeds",
                                      "0", "--bootstrap", "20", "--permutations", "20", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "pooled Spearman rho" in result.output and "energy_excursion_meV_atom" in result.output
    assert "cost: MD" in result.output
    data = json.loads((out / "correlation.json").read_text())
    assert {row["potential"] for row in data["pairs"]} == {"lj", "morse"} and len(data["pairs"]) == 12
    for name in ("correlations.csv", "pairs.csv", "lj/md/results.json", "morse/bsct/results.json"):
        assert (out / name).is_file(), name
    bad = CliRunner().invoke(app, ["correlate", "lj", "no-such-potential", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "error" in bad.output


def test_scans_of_one_molecule_share_one_md_run(scans):
    """Two scans of the C5 cluster (different bonds, same start) are one molecule: one MD per seed,
    and the pair's FSD is the mean over both scans."""
    from pesprobe.md.systems import molecules_from_scans

    first, twin = scans[0], _bond_scan(5, 1, rank=3)
    data = ScanSet([first, twin, scans[1]])
    molecules = molecules_from_scans(data)
    assert [m.scans for m in molecules] == [("C-C/51", "C-C/51b3"), ("C-C/61",)]
    cfg = MDConfig(length_ps=0.01, seeds=(0, 1, 2), save_every=0)
    result = correlate({"s": lambda: SyntheticPairCalculator(step_eV=0.02)}, data, cfg, n_bootstrap=20,
                       n_permutations=20, progress=False, plots=False)
    assert [(r["molecule"], r["n_scans"]) for r in result.pairs] == [("C-C/51", 2), ("C-C/61", 1)]
    from pesprobe.evaluate import evaluate

    fsd = {k: v["full_smoothness"] for k, v in evaluate(lambda: SyntheticPairCalculator(step_eV=0.02), data,
                                                          progress=False).systems.items()}
    assert fsd["C-C/51"] != fsd["C-C/51b3"]
    assert result.pairs[0]["full_smoothness"] == pytest.approx((fsd["C-C/51"] + fsd["C-C/51b3"]) / 2)


def test_correlate_answers_its_primary_question_and_adjusts_the_secondary_table(rough):
    result, out = rough
    a = result.primary
    assert (a["predictor"], a["outcome"], a["unit"], a["control"]) == ("full_smoothness", "failure_fraction",
                                                                       "potential", "full_forces_mae")
    assert a["n_units"] == 5 and a["permutation"] == "exact over 120 label permutations"
    assert a["rho"] > 0.5 and a["ci_low"] <= a["rho"] <= a["ci_high"]
    assert all("full_forces_mae" in row for row in result.pairs)
    rows = [r for r in result.correlations if not math.isnan(r["p_value"])]
    assert all(r["p_holm"] >= r["p_value"] for r in rows) and max(r["p_holm"] for r in rows) <= 1.0
    assert any(r["p_holm"] > r["p_value"] for r in rows)
    assert json.loads((out / "correlation.json").read_text())["primary"]["rho"] == pytest.approx(a["rho"])
    assert result.cost["label_note"].startswith("labelling time not recorded")
    assert result.cost["ratio_full_length"] >= result.cost["ratio"]
