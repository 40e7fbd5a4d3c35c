"""MD engines: ASE and batched torch agree, failures are caught per trajectory, criteria fire."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.optimize import FIRE

from calcs import interrupting_morse

from pesprobe.md.ase_engine import run_ase_trajectory
from pesprobe.md.batched import BatchedIntegrator
from pesprobe.md.config import MDConfig
from pesprobe.md.monitor import FailureMonitor
from pesprobe.md.synthetic import SyntheticPairCalculator
from pesprobe.md.systems import Molecule
from pesprobe.md.torch_models import ModelCalculator, MorsePair


def _cluster(n: int, seed: int) -> Molecule:
    atoms = Atoms(f"C{n}", positions=np.random.default_rng(seed).normal(size=(n, 3)))
    atoms.calc = SyntheticPairCalculator()
    FIRE(atoms, logfile=None).run(fmax=1e-4, steps=3000)
    return Molecule(f"c{n}/{seed}", atoms.numbers, atoms.positions)


@pytest.fixture(scope="module")
def clusters() -> list[Molecule]:
    return [_cluster(4, 0), _cluster(6, 1), _cluster(5, 2)]


def test_batched_nve_reproduces_ase_velocity_verlet(clusters):
    cfg = MDConfig(length_ps=0.1, seeds=(0, 1), save_every=50)
    mols, seeds = clusters * 2, [0, 0, 0, 1, 1, 1]
    batched = BatchedIntegrator(MorsePair(), cfg).run(mols, seeds)
    for mol, seed, raw in zip(mols, seeds, batched):
        ref = run_ase_trajectory(mol, seed, SyntheticPairCalculator, cfg)
        assert raw.failure is None and ref.failure is None
        np.testing.assert_allclose(raw.log.total, ref.log.total, rtol=0, atol=1e-9)
        np.testing.assert_allclose(raw.log.temperature_K, ref.log.temperature_K, rtol=1e-9)
        assert len(raw.frames) == len(ref.frames) == 5
        np.testing.assert_allclose(raw.frames[-1].positions, ref.frames[-1].positions, atol=1e-9)
        # velocity Verlet conserves energy for a smooth potential: well inside 1 meV/atom
        assert np.ptp(raw.log.total) / mol.n_atoms < 1e-3
        assert raw.log.temperature_K[0] > 0


def test_initial_velocities_seeded_and_stationary(clusters):
    cfg = MDConfig(length_ps=0.001, seeds=(3,))
    a = run_ase_trajectory(clusters[1], 3, SyntheticPairCalculator, cfg)
    b = run_ase_trajectory(clusters[1], 3, SyntheticPairCalculator, cfg)
    c = run_ase_trajectory(clusters[1], 4, SyntheticPairCalculator, cfg)
    assert a.log.kinetic[0] == b.log.kinetic[0] != c.log.kinetic[0]
    from pesprobe.md.ase_engine import initial_atoms

    atoms, _ = initial_atoms(clusters[1], 3, cfg)
    np.testing.assert_allclose(atoms.get_momenta().sum(axis=0), 0.0, atol=1e-12)


def test_nvt_trajectory_does_not_depend_on_batch_companions(clusters):
    cfg = MDConfig(length_ps=0.05, seeds=(7,), ensemble="nvt", friction_per_fs=0.05, save_every=0)
    alone = BatchedIntegrator(MorsePair(), cfg).run([clusters[1]], [7])[0]
    together = BatchedIntegrator(MorsePair(), cfg).run([clusters[0], clusters[1], clusters[2]], [1, 7, 2])[1]
    np.testing.assert_allclose(alone.log.total, together.log.total, atol=1e-10)
    # the thermostat changes the total energy (unlike NVE)
    assert np.ptp(alone.log.total) > 1e-3


class _FlakyModel(torch.nn.Module):
    """MorsePair, but NaN forces for 5-atom systems after the 10th call."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = MorsePair()
        self.calls = 0

    def forward(self, positions, cell, system_index, atomic_numbers):
        self.calls += 1
        out = self.inner(positions, cell, system_index, atomic_numbers)
        if self.calls > 10:
            sizes = torch.bincount(system_index)
            bad = (sizes == 5)[system_index]
            out["forces"] = torch.where(bad[:, None], torch.full_like(out["forces"], float("nan")), out["forces"])
        return out


def test_batched_failure_ends_only_that_trajectory(clusters):
    cfg = MDConfig(length_ps=0.02, seeds=(0,), save_every=0)
    raws = BatchedIntegrator(_FlakyModel(), cfg).run(clusters, [0, 0, 0])
    assert raws[0].failure is None and raws[1].failure is None
    assert raws[2].failure.criterion == "nonfinite" and raws[2].failure.step == 10
    assert raws[2].steps_done == 10 and raws[0].steps_done == cfg.n_steps
    assert len(raws[0].log.step) == cfg.n_steps + 1


def test_progress_counts_trajectory_steps_to_the_total(clusters):
    """Both engines tick trajectory-steps; a batch with an early failure still ends at the total."""
    cfg = MDConfig(length_ps=0.05, seeds=(0,), save_every=0)
    ticks: list[int] = []
    BatchedIntegrator(_FlakyModel(), cfg).run(clusters, [0, 0, 0], tick=ticks.append)
    assert sum(ticks) == 3 * cfg.n_steps and len(ticks) > 2 and min(ticks) >= 0
    ase_ticks: list[int] = []
    run_ase_trajectory(clusters[0], 0, SyntheticPairCalculator, cfg, tick=ase_ticks.append)
    assert sum(ase_ticks) == cfg.n_steps


class _RaisingModel(MorsePair):
    """Raises for any batch that holds a 4-atom system after the 5th call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, positions, cell, system_index, atomic_numbers):
        self.calls += 1
        if self.calls > 5 and bool((torch.bincount(system_index) == 4).any()):
            raise RuntimeError("model exploded")
        return super().forward(positions, cell, system_index, atomic_numbers)


def test_batched_exception_is_pinned_on_the_culprit(clusters):
    cfg = MDConfig(length_ps=0.01, seeds=(0,), save_every=0)
    raws = BatchedIntegrator(_RaisingModel(), cfg).run(clusters, [0, 0, 0])
    assert raws[0].failure.criterion == "calculator_error"
    assert "model exploded" in raws[0].failure.detail
    assert raws[1].failure is None and raws[2].failure is None


class _BreaksAfter(Calculator):
    implemented_properties = ["energy", "forces"]

    def __init__(self, calls: int, mode: str) -> None:
        super().__init__()
        self.inner, self.left, self.mode = SyntheticPairCalculator(), calls, mode

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.left -= 1
        if self.left < 0 and self.mode == "raise":
            raise RuntimeError("SCF did not converge")
        self.inner.calculate(atoms, properties, system_changes)
        self.results = dict(self.inner.results)
        if self.left < 0:
            self.results["forces"] = self.results["forces"] * np.nan


@pytest.mark.parametrize("mode,criterion", [("raise", "calculator_error"), ("nan", "nonfinite")])
def test_ase_engine_turns_calculator_trouble_into_failures(clusters, mode, criterion):
    cfg = MDConfig(length_ps=0.05, seeds=(0,), save_every=10)
    raw = run_ase_trajectory(clusters[1], 0, lambda: _BreaksAfter(20, mode), cfg)
    assert raw.failure is not None and raw.failure.criterion == criterion
    assert 15 <= raw.failure.step <= 21
    assert raw.steps_done == raw.failure.step
    if mode == "raise":
        assert "SCF did not converge" in raw.failure.detail


def test_model_calculator_matches_batched_forces(clusters):
    mol = clusters[1]
    atoms = mol.to_atoms()
    atoms.calc = ModelCalculator(MorsePair())
    ref = SyntheticPairCalculator()
    np.testing.assert_allclose(atoms.get_forces(), ref.get_forces(mol.to_atoms()), atol=1e-12)
    assert atoms.get_potential_energy() == pytest.approx(ref.get_potential_energy(mol.to_atoms()))


def test_monitor_criteria_fire_and_name_the_cause():
    mol = Molecule("h2o", [8, 1, 1], [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    cfg = MDConfig(fly_apart_A=3.0, energy_tolerance_eV_atom=0.05)
    zeros = np.zeros((3, 3))

    def check(pos, energy=0.0, step=10):
        monitor = FailureMonitor([mol.numbers], [mol.positions], cfg)
        monitor.check(0, mol.positions, np.array([0.0]), np.array([0.0]), zeros)
        return monitor.check(step, np.asarray(pos, float), np.array([energy]), np.array([0.0]), zeros)

    assert check(mol.positions) == {}
    stretched = mol.positions.copy()
    stretched[1, 0] = 1.6                             # O-H 1.6 Å > 1.5 × (0.66 + 0.31) Å
    found = check(stretched)[0]
    assert found.criterion == "bond_broken" and "0-1 (O-H)" in found.detail and found.atoms == [0, 1]
    far = mol.positions * 20.0
    assert check(far)[0].criterion == "bond_broken"
    assert {e.criterion for e in check(far, step=20)[0].events} == {"bond_broken", "fly_apart"}
    assert check(mol.positions, energy=0.2)[0].criterion == "energy_band"
    assert check(mol.positions, energy=np.nan)[0].criterion == "nonfinite"
    # a non-bonded atom (a ligand-like He nearby) that drifts away: fly-apart
    pair = Molecule("o-he", [8, 2], [[0, 0, 0], [2.5, 0, 0]])
    monitor = FailureMonitor([pair.numbers], [pair.positions], cfg)
    gone = monitor.check(10, np.array([[0, 0, 0], [6.0, 0, 0]], float), np.zeros(1), np.zeros(1), np.zeros((2, 3)))
    assert gone[0].criterion == "fly_apart" and gone[0].atoms == [0] and gone[0].symbols == ["O"]
    assert monitor.check(11, np.array([[0, 0, 0], [6.0, 0, 0]], float), np.zeros(1), np.zeros(1),
                         np.zeros((2, 3))) == {}, "fly-apart is only checked every FLY_APART_EVERY steps"


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="ensemble"):
        MDConfig(ensemble="npt")
    with pytest.raises(ValueError, match="timestep_fs"):
        MDConfig(timestep_fs=0)
    with pytest.raises(ValueError, match="distinct"):
        MDConfig(seeds=(1, 1))
    with pytest.raises(ValueError, match="break_factor"):
        MDConfig(break_factor=1.1)
    with pytest.raises(ValueError, match="blowup_factor"):
        MDConfig(blowup_factor=1.0)
    with pytest.raises(ValueError, match="unknown MD setting"):
        MDConfig.from_dict({"temprature_K": 300})
    assert MDConfig(length_ps=1.0, timestep_fs=0.5).n_steps == 2000


_CountingModel = interrupting_morse


@pytest.mark.parametrize("ensemble", ["nve", "nvt"])
def test_interrupted_batched_run_resumes_from_its_checkpoint(clusters, tmp_path, ensemble):
    cfg = MDConfig(length_ps=0.03, seeds=(0, 1), ensemble=ensemble, save_every=10)
    mols, seeds = clusters + clusters[:1], [0, 0, 0, 1]
    reference = BatchedIntegrator(_CountingModel(), cfg).run(mols, seeds)
    path = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        BatchedIntegrator(_CountingModel(stop=31), cfg, checkpoint_every_s=0.0).run(
            mols, seeds, checkpoint=path, checkpoint_key="batch-a")
    assert path.is_file()
    model = _CountingModel()
    resumed = BatchedIntegrator(model, cfg, checkpoint_every_s=0.0).run(mols, seeds, checkpoint=path,
                                                                        checkpoint_key="batch-a")
    assert model.calls == cfg.n_steps - 29  # steps 0..29 were done before the interruption
    for ref, got in zip(reference, resumed):
        np.testing.assert_array_equal(got.log.total, ref.log.total)
        np.testing.assert_array_equal(got.log.temperature_K, ref.log.temperature_K)
        assert len(got.frames) == len(ref.frames) == 7
        np.testing.assert_array_equal(got.frames[-1].positions, ref.frames[-1].positions)
        assert got.steps_done == ref.steps_done and got.failure == ref.failure
    # a state file written for other trajectories is not used
    model = _CountingModel()
    BatchedIntegrator(model, cfg, checkpoint_every_s=0.0).run(mols, seeds, checkpoint=path, checkpoint_key="other")
    assert model.calls == cfg.n_steps + 1
