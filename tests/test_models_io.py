"""Checkpoints, the batched Potential, the ASE calculator and the rotation helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.calculators.fd import calculate_numerical_stress
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet

from pesprobe.models import (
    CheckpointError,
    ModelConfig,
    PESProbeCalculator,
    TorchPotential,
    build_model,
    calculator,
    load_checkpoint,
    load_potential,
    random_rotation,
    random_rotation_matrices,
    save_checkpoint,
)
from pesprobe.models.potential import DEFAULT_MODEL
from pesprobe.potentials.base import Potential

ETHANOL = Atoms("C2OH6", positions=[
    [-0.0086, -0.5547, 0.0], [1.2084, 0.3507, 0.0], [-1.1736, 0.2538, 0.0], [0.0319, -1.1968, 0.8855],
    [0.0319, -1.1968, -0.8855], [1.1715, 1.0117, 0.8732], [1.1715, 1.0117, -0.8732], [2.1353, -0.2243, 0.0],
    [-1.9460, -0.3173, 0.0]])


def tiny(dtype: str = "float64", **overrides):
    torch.manual_seed(1)
    params = dict(cutoff=4.0, k=6, d_model=16, n_heads=2, n_blocks=2, embed_dim=8, readout_dim=8, n_rbf=8,
                  dtype=dtype)
    params.update(overrides)
    return build_model(ModelConfig(**params))


def scan_frames(n_frames: int = 12) -> np.ndarray:
    """Stretch the C-C bond of ethanol: frames (n_frames, 9, 3) in Å."""
    frames = np.repeat(ETHANOL.get_positions()[None], n_frames, axis=0)
    bond = frames[0, 1] - frames[0, 0]
    for f, extra in enumerate(np.linspace(-0.2, 0.6, n_frames)):
        frames[f, [1, 5, 6, 7]] += extra * bond / np.linalg.norm(bond)
    return frames


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = tiny(graph="knn", learnable_temperature=True)
    model.set_element_references({1: -13.6, 6: -1030.0, 8: -2040.0})
    model.set_normalization(scale=0.7, shift=-0.1)
    extra = {"epoch": 3, "optimizer": {"lr": torch.tensor(1e-3), "betas": (0.9, 0.99)}, "note": None}
    path = save_checkpoint(tmp_path / "sub" / "model.pt", model, extra=extra)
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    loaded, extra_back = load_checkpoint(path)
    assert loaded.config == model.config
    assert extra_back["epoch"] == 3 and extra_back["optimizer"]["betas"] == (0.9, 0.99)
    assert loaded.element_references() == model.element_references()
    pos = torch.tensor(ETHANOL.get_positions())
    z = torch.tensor(ETHANOL.numbers)
    idx = torch.zeros(len(z), dtype=torch.long)
    a, b = model(pos, None, idx, z), loaded(pos, None, idx, z)
    assert torch.equal(a["energy"], b["energy"]) and torch.equal(a["forces"], b["forces"])


def test_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file at all")
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        load_checkpoint(corrupt)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a pesprobe model"):
        load_checkpoint(other)
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, tiny())
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)
    with pytest.raises(TypeError, match="extra\\['arr'\\]"):
        save_checkpoint(tmp_path / "bad.pt", tiny(), extra={"arr": np.zeros(3)})
    assert not (tmp_path / "bad.pt").exists()


def test_torch_potential_batches_and_matches_model() -> None:
    model = tiny(dtype="float32")
    potential = TorchPotential(model, batch_frames=5)
    assert isinstance(potential, Potential)
    frames = scan_frames()
    before = frames.copy()
    pred = potential.predict(ETHANOL.numbers, frames)
    assert np.array_equal(frames, before)
    assert pred.energy.shape == (12,) and pred.forces.shape == (12, 9, 3) and pred.n_failed == 0
    one = model(torch.tensor(frames[3], dtype=torch.float32), None, torch.zeros(9, dtype=torch.long),
                torch.tensor(ETHANOL.numbers))
    assert pred.energy[3] == pytest.approx(one["energy"].item(), abs=1e-5)
    np.testing.assert_allclose(pred.forces[3], one["forces"].detach().numpy(), atol=1e-5)


def test_torch_potential_marks_bad_frames_failed_without_raising() -> None:
    potential = TorchPotential(tiny(dtype="float32"))
    frames = scan_frames(6)
    frames[2, 0] = np.nan
    frames[4, 3] = frames[4, 4]  # two atoms on top of each other
    pred = potential.predict(ETHANOL.numbers, frames)
    assert pred.failed.tolist() == [False, False, True, False, True, False]
    assert set(pred.errors) == {2, 4}
    assert np.isfinite(pred.forces[[0, 1, 3, 5]]).all()


def test_identity_tracks_weights_and_dtype() -> None:
    model = tiny(dtype="float32")
    first = TorchPotential(model).identity()
    assert TorchPotential(model).identity() == first
    assert TorchPotential(model, dtype=torch.float64).identity() != first
    with torch.no_grad():
        model.energy_head[0].bias[0] += 0.01
    assert TorchPotential(model).identity() != first


def test_evaluate_structures_of_different_sizes() -> None:
    model = tiny(dtype="float64")
    potential = TorchPotential(model, dtype=torch.float64, max_atoms=12)
    crystal = Atoms("Si2", scaled_positions=[[0, 0, 0], [0.25, 0.25, 0.25]], cell=np.eye(3) * 3.9, pbc=True)
    water = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    structures = [ETHANOL, water, crystal, water.copy()]
    result = potential.evaluate_structures(structures, compute_stress=True)
    assert not result.failed.any()
    assert [f.shape for f in result.forces] == [(9, 3), (3, 3), (2, 3), (3, 3)]
    assert np.isnan(result.stress[1]).all() and np.isfinite(result.stress[2]).all()
    for atoms, energy, forces in zip(structures, result.energy, result.forces, strict=True):
        atoms = atoms.copy()
        atoms.calc = PESProbeCalculator(model, dtype=torch.float64)
        assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)
        np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-10)


def test_calculator_in_ase_md_and_numerical_stress(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", tiny())
    atoms = ETHANOL.copy()
    atoms.calc = calculator(path, dtype=torch.float64)
    forces = atoms.get_forces()
    assert forces.shape == (9, 3) and np.isfinite(forces).all()
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    start = atoms.get_total_energy()
    VelocityVerlet(atoms, timestep=0.25 * units.fs).run(5)
    assert abs(atoms.get_total_energy() - start) < 1e-3
    with pytest.raises(ValueError, match="periodic"):
        atoms.get_stress()
    crystal = Atoms("CO", positions=[[0, 0, 0], [1.2, 0.3, 0.1]], cell=[[3.6, 0, 0], [0.4, 3.8, 0], [0, 0, 4.1]],
                    pbc=True)
    crystal.calc = PESProbeCalculator(path, dtype=torch.float64)
    stress = crystal.get_stress()
    numeric = calculate_numerical_stress(crystal, eps=1e-5)
    np.testing.assert_allclose(stress, numeric, atol=1e-8)


def test_load_potential_from_path_and_default(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "mine.pt", tiny(dtype="float32"))
    potential = load_potential(path)
    assert potential.name == "pesprobe:mine"
    assert potential.predict(ETHANOL.numbers, scan_frames(2)).n_failed == 0
    assert DEFAULT_MODEL.exists(), "the shipped default model is missing"
    default = load_potential("default")
    pred = default.predict(ETHANOL.numbers, scan_frames(3))
    assert pred.n_failed == 0 and np.isfinite(pred.energy).all()


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    from pesprobe.models.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="nowhere.pt does not exist"):
        load_potential(tmp_path / "nowhere.pt")


def test_random_rotation_preserves_geometry_and_rotates_consistently() -> None:
    gen = torch.Generator().manual_seed(0)
    rot = random_rotation_matrices(50, generator=gen, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand(50, 3, 3)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), eye)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(50, dtype=torch.float64))
    pos = torch.randn(7, 3, dtype=torch.float64)
    forces = torch.randn(7, 3, dtype=torch.float64)
    idx = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    cell = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1) * 4
    stress = torch.randn(2, 3, 3, dtype=torch.float64)
    stress = stress + stress.transpose(1, 2)
    out = random_rotation(pos, idx, forces=forces, cell=cell, stress=stress, generator=gen)
    torch.testing.assert_close(torch.cdist(out.positions[:3], out.positions[:3]), torch.cdist(pos[:3], pos[:3]))
    torch.testing.assert_close((out.positions * out.forces).sum(1), (pos * forces).sum(1))
    torch.testing.assert_close(out.cell[1], cell[1] @ out.rotations[1].T)
    torch.testing.assert_close(torch.linalg.eigvalsh(out.stress), torch.linalg.eigvalsh(stress))
    assert not torch.equal(out.rotations[0], out.rotations[1])
