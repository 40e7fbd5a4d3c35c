"""run_stability: outputs, resume per trajectory, engine choice, CLI and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write
from ase.optimize import FIRE
from typer.testing import CliRunner

from pesprobe.cli import app
from pesprobe.md import MDConfig, Molecule, load_molecules, run_stability
from pesprobe.md.synthetic import SyntheticPairCalculator
from pesprobe.md.torch_models import MorsePair

SHARED = Path(__file__).parents[2] / "shared" / "data" / "bsct_spice_sample"


def _cluster(n: int, seed: int, name: str) -> Atoms:
    atoms = Atoms(f"C{n}", positions=np.random.default_rng(seed).normal(size=(n, 3)))
    atoms.calc = SyntheticPairCalculator()
    FIRE(atoms, logfile=None).run(fmax=1e-4, steps=3000)
    out = Atoms(atoms.numbers, atoms.positions)
    out.info["name"] = name
    return out


@pytest.fixture(scope="module")
def xyz(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("mols") / "clusters.xyz"
    write(path, [_cluster(4, 0, "c4"), _cluster(6, 1, "c6")])
    return path


CFG = MDConfig(length_ps=0.05, seeds=(0, 1), save_every=20, energy_tolerance_eV_atom=0.03)


def test_outputs_and_resume(xyz, tmp_path, monkeypatch):
    out = tmp_path / "md"
    first = run_stability(lambda: SyntheticPairCalculator(step_eV=0.08), xyz, CFG, out=out, progress=False, name="rough")
    assert [t.molecule for t in first.trajectories] == ["c4", "c4", "c6", "c6"]
    assert first.engine == "ase" and first.summary["n_trajectories"] == 4
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["length_ps"] == 0.05 and len(data["trajectories"]) == 4
    assert (out / "trajectories.csv").read_text().count("\n") == 5
    assert set(data["molecules"]) == {"c4", "c6"}
    for key in ("c4__seed0", "c6__seed1"):
        assert (out / "runs" / f"{key}.json").exists() and (out / "runs" / f"{key}.npz").exists()
        frames = read(out / "traj" / f"{key}.xyz", index=":")
        assert frames[0].info["step"] == 0 and frames[0].get_momenta().any()
    assert (out / "plots" / "c4.png").stat().st_size > 10_000
    # resume: nothing is integrated again
    import pesprobe.md.study as study

    def boom(*args, **kwargs):
        raise AssertionError("a finished trajectory was recomputed")

    monkeypatch.setattr(study, "run_ase_trajectory", boom)
    second = run_stability(lambda: SyntheticPairCalculator(step_eV=0.08), xyz, CFG, out=out, progress=False,
                           name="rough")
    assert [t.to_json() for t in second.trajectories] == [t.to_json() for t in first.trajectories]
    # a deleted result is redone; others are reused
    monkeypatch.undo()
    (out / "runs" / "c6__seed1.json").unlink()
    calls = []
    original = study.run_ase_trajectory
    monkeypatch.setattr(study, "run_ase_trajectory", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    run_stability(lambda: SyntheticPairCalculator(step_eV=0.08), xyz, CFG, out=out, progress=False, name="rough")
    assert calls == [1]
    # a different potential or setting does not reuse them
    calls.clear()
    run_stability(lambda: SyntheticPairCalculator(step_eV=0.02), xyz, CFG, out=out, progress=False, name="rough")
    assert len(calls) == 4


def test_changed_analysis_settings_remeasure_without_rerunning(xyz, tmp_path, monkeypatch):
    out = tmp_path / "md"
    first = run_stability(SyntheticPairCalculator, xyz, CFG, out=out, progress=False, plots=False)
    import pesprobe.md.study as study
    from pesprobe.md.record import RunStore, measure

    def boom(*args, **kwargs):
        raise AssertionError("re-measuring must not integrate again")

    monkeypatch.setattr(study, "run_ase_trajectory", boom)
    wider = MDConfig(**{**CFG.to_dict(), "spike_window_fs": 20.0, "spike_settle_fs": 0.0})
    second = run_stability(SyntheticPairCalculator, xyz, wider, out=out, progress=False, plots=False)
    store = RunStore(out)
    for a, b in zip(first.trajectories, second.trajectories):
        assert b.measures == measure(store.load_log(b.key), b.n_atoms, wider, b.failure)
        assert b.measures["temperature_jump_K"] >= a.measures["temperature_jump_K"]
        assert b.measures["energy_drift_meV_atom_ps"] == a.measures["energy_drift_meV_atom_ps"]
    assert any(b.measures["temperature_jump_K"] > a.measures["temperature_jump_K"]
               for a, b in zip(first.trajectories, second.trajectories))
    assert json.loads((out / "results.json").read_text())["config"]["spike_window_fs"] == 20.0


def test_a_batched_torch_potential_object_runs_its_model(xyz):
    from pesprobe.md.study import resolve_engine
    from pesprobe.models import ModelConfig, TorchPotential, build_model

    potential = TorchPotential(build_model(ModelConfig(d_model=16, n_heads=2, n_blocks=1, embed_dim=8,
                                                       readout_dim=8, n_rbf=8, k=6, cutoff=4.0)), name="tiny")
    engine = resolve_engine(potential)
    assert engine.kind == "batched" and engine.model is potential.model and engine.name == "tiny"
    cfg = MDConfig(length_ps=0.005, seeds=(0,), save_every=0, break_factor=1e6, clash_factor=0.0, clash_floor_A=0.0,
                   form_hold_fs=1e9, blowup_factor=1e6, fly_apart_A=1e6,
                   energy_tolerance_eV_atom=1e6)
    result = run_stability(potential, xyz, cfg, progress=False)
    assert result.engine == "batched" and all(t.steps_done == cfg.n_steps for t in result.trajectories)


def test_rougher_potential_is_less_stable(xyz):
    smooth = run_stability(SyntheticPairCalculator, xyz, CFG, progress=False)
    rough = run_stability(lambda: SyntheticPairCalculator(step_eV=0.08), xyz, CFG, progress=False)
    assert smooth.summary["n_failed"] == 0
    assert all(t.failure.criterion == "energy_band" for t in rough.trajectories)
    for mol in ("c4", "c6"):
        s, r = smooth.molecules[mol], rough.molecules[mol]
        assert r["energy_excursion_meV_atom"] > 30 > 10 * s["energy_excursion_meV_atom"]
        assert r["time_to_failure_ps"] < s["time_to_failure_ps"] == pytest.approx(0.05)


def test_torch_model_runs_batched_and_nvt_reports_no_drift(xyz, tmp_path):
    cfg = MDConfig(length_ps=0.02, seeds=(0, 1), ensemble="nvt", save_every=0)
    result = run_stability(MorsePair(), xyz, cfg, out=tmp_path / "t", progress=False, plots=False)
    assert result.engine == "batched" and len(result.trajectories) == 4
    assert not list((tmp_path / "t" / "runs").glob("_batch_*"))  # state files go once the results are saved
    assert all(np.isnan(t.measures["energy_drift_meV_atom_ps"]) for t in result.trajectories)
    assert all(t.measures["mean_temperature_K"] > 0 for t in result.trajectories)
    ase = run_stability(MorsePair(), xyz, cfg, engine="ase", progress=False)
    assert ase.engine == "ase"
    with pytest.raises(ValueError, match="not a torch model"):
        run_stability(SyntheticPairCalculator, xyz, cfg, engine="batched", progress=False)


def test_cli_md_with_module_factory(xyz, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["md", "--calc", "pesprobe.md.torch_models:MorsePair", "--data", str(xyz),
                                      "--out", str(out), "--length", "0.01", "--seeds", "0", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "batched engine" in result.output and "c6:" in result.output
    assert json.loads((out / "results.json").read_text())["engine"] == "batched"
    bad = CliRunner().invoke(app, ["md", "--calc", "lj", "--data", str(xyz), "--seeds", "a,b"])
    assert bad.exit_code != 0 and "--seeds" in bad.output


def test_bad_molecule_files_are_named(tmp_path):
    broken = tmp_path / "broken.xyz"
    broken.write_text("3\n\nC 0 0 0\nC 1 0\n")
    with pytest.raises(ValueError, match="broken.xyz"):
        load_molecules(broken)
    dup = tmp_path / "dup.xyz"
    a = Atoms("C2", positions=[[0, 0, 0], [1.4, 0, 0]])
    a.info["name"] = "same"
    write(dup, [a, a])
    with pytest.raises(ValueError, match="'same' occurs more than once"):
        load_molecules(dup)
    with pytest.raises(ValueError, match="needs at least 2 atoms"):
        Molecule("x", [6], [[0, 0, 0]])


@pytest.mark.skipif(not SHARED.exists(), reason="shared sample data not present")
def test_molecules_from_published_scans_use_unperturbed_geometry():
    from pesprobe.data import load_scans
    from pesprobe.md.systems import molecules_from_scans

    scans = load_scans(SHARED)
    mols = molecules_from_scans(scans)
    assert [m.id for m in mols] == scans.ids()
    scan = scans[0]
    ref = read(Path(scan.meta["source"]) / "unperturbed.xyz")
    np.testing.assert_allclose(mols[0].positions, ref.positions, atol=1e-6)
    np.testing.assert_array_equal(mols[0].numbers, ref.numbers)


def test_interrupted_batched_study_goes_on_from_its_state_file(xyz, tmp_path, monkeypatch):
    from functools import partialmethod

    import pesprobe.md.batched as batched
    from test_md_engines import _CountingModel

    monkeypatch.setattr(batched.BatchedIntegrator, "__init__",
                        partialmethod(batched.BatchedIntegrator.__init__, checkpoint_every_s=0.0))
    cfg = MDConfig(length_ps=0.02, seeds=(0, 1), save_every=0)
    clean = run_stability(_CountingModel(), xyz, cfg, progress=False)
    out = tmp_path / "md"
    with pytest.raises(KeyboardInterrupt):
        run_stability(_CountingModel(stop=21), xyz, cfg, out=out, progress=False, plots=False)
    assert len(list((out / "runs").glob("_batch_*.state"))) == 1
    model = _CountingModel()
    resumed = run_stability(model, xyz, cfg, out=out, progress=False, plots=False)
    assert model.calls == cfg.n_steps - 19
    assert [t.measures for t in resumed.trajectories] == [t.measures for t in clean.trajectories]
    assert not list((out / "runs").glob("_batch_*.state"))
