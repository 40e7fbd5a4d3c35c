"""Validation beside the baselines, best-by-validation checkpoints, early stopping, learning curves."""

from __future__ import annotations

import numpy as np
import pytest

from pesprobe.data.structures import Structure
from pesprobe.train import ConfigError, read_log, train
from pesprobe.train.baselines import energy_breakdown, validation_baselines, validation_score
from pesprobe.train.curves import MAX_ROWS, learning_curves_markdown
from pesprobe.train.stopping import EarlyStopping

from conftest import TINY_MODEL
from test_train_loop import config, toy_xyz  # noqa: F401 - the module fixture

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Per-element energies (eV) of the synthetic structures.
EPS = {1: -13.0, 6: -1030.0, 8: -2040.0}


def _structure(numbers: list[int], molecule: str, offset_per_atom: float, rng: np.random.Generator) -> Structure:
    n = len(numbers)
    energy = sum(EPS[z] for z in numbers) + offset_per_atom * n
    return Structure(numbers=np.array(numbers), positions=rng.normal(size=(n, 3)), energy=float(energy),
                     forces=rng.normal(size=(n, 3)), molecule=molecule, source="synthetic")


def test_energy_breakdown_separates_offsets_from_shape():
    errors = np.array([0.10, 0.12, 0.08, -0.05, -0.05, np.nan])
    molecules = ["a", "a", "a", "b", "b", "c"]
    b = energy_breakdown(errors, molecules)
    assert b.n_molecules == 2  # the unlabelled structure of c is skipped
    assert b.offset_mae == pytest.approx((0.10 + 0.05) / 2)
    assert b.within_mae == pytest.approx((0 + 0.02 + 0.02 + 0 + 0) / 5)
    assert b.mae == pytest.approx(np.mean(np.abs(errors[:5])))
    with pytest.raises(ValueError, match="3 errors for 2"):
        energy_breakdown(np.zeros(3), ["a", "b"])


def test_linear_baseline_is_fitted_on_the_training_split_only():
    rng = np.random.default_rng(0)
    train_set = [_structure(n, f"t{k}", 0.0, rng) for k, n in enumerate([[6, 1, 1, 1, 1], [8, 1, 1], [6, 8, 1, 1],
                                                                          [6, 6, 1, 1, 1, 1, 1, 1]])]
    # validation molecules sit 0.02 and -0.04 eV/atom off the element sum: exactly the linear fit's error
    valid = [_structure([6, 8, 8, 1, 1], "v1", 0.02, rng), _structure([6, 8, 8, 1, 1], "v1", 0.02, rng),
             _structure([8, 8, 1, 1], "v2", -0.04, rng)]
    b = validation_baselines(train_set, valid)
    assert b.n_molecules == 2
    assert b.linear.offset_mae == pytest.approx(0.03, abs=1e-6)
    assert b.linear.within_mae == pytest.approx(0.0, abs=1e-6)
    forces = np.concatenate([s.forces.ravel() for s in valid])
    assert b.zero_forces_mae == pytest.approx(np.mean(np.abs(forces)))
    assert validation_score(b.linear.mae, b.zero_forces_mae, b) == pytest.approx(2.0)
    assert validation_score(0.5 * b.linear.mae, float("nan"), b) == pytest.approx(0.5)


def test_validation_is_reported_beside_the_baselines_and_best_pt_is_the_best(toy_xyz, tmp_path):  # noqa: F811
    from pesprobe.models import load_checkpoint
    from pesprobe.train import TrainConfig, load_datasets

    cfg = config(toy_xyz, tmp_path / "run", steps=8, eval_every=2, ckpt_every=8, lr=5e-3)
    result = train(cfg, progress=False)
    records = read_log(tmp_path / "run" / "log.jsonl")
    (base,) = [r for r in records if r["event"] == "baselines"]
    train_set, valid_set = load_datasets(TrainConfig.from_dict(cfg))
    expected = validation_baselines(train_set, valid_set).as_record()
    assert base["step"] == 0 and base["valid_molecules"] == len({s.molecule for s in valid_set})
    for key, value in expected.items():
        assert base[key] == pytest.approx(value)
    evals = [r for r in records if r["event"] == "eval"]
    for r in evals:
        assert r["valid_energy_offset_mae"] <= r["valid_energy_mae"] + 1e-12
        assert r["valid_score"] == pytest.approx(r["valid_energy_mae"] / base["baseline_linear_energy_mae"]
                                                 + r["valid_forces_mae"] / base["baseline_zero_forces_mae"])
    best = min(evals, key=lambda r: r["valid_score"])
    state = load_checkpoint(result.checkpoints["valid_score"])[1]["train_state"]
    assert result.checkpoints["valid_score"].name == "best.pt" and state["step"] == best["step"]
    assert result.baselines["valid_molecules"] == base["valid_molecules"]
    (data,) = [r for r in records if r["event"] == "data"]
    assert (data["train_structures"], data["valid_structures"]) == (len(train_set), len(valid_set))
    assert data["dropped_max_force"] == 0


def test_max_force_drops_structures_with_large_forces(toy_xyz):  # noqa: F811
    from pesprobe.train import TrainConfig
    from pesprobe.train.loop import read_datasets

    cfg = config(toy_xyz, "unused")
    everything = read_datasets(TrainConfig.from_dict(cfg))
    largest = np.array([np.abs(s.forces).max() for s in everything.train + everything.valid])
    limit = float(np.median(largest))
    cfg["data"]["max_force"] = limit
    split = read_datasets(TrainConfig.from_dict(cfg))
    assert split.dropped == int(np.sum(largest > limit)) > 0
    assert all(np.abs(s.forces).max() <= limit for s in split.train + split.valid)
    assert {s.molecule for s in split.valid} <= {s.molecule for s in everything.valid}  # the split is kept
    cfg["data"]["max_force"] = 1e-9
    with pytest.raises(ConfigError, match="no training structure"):
        read_datasets(TrainConfig.from_dict(cfg))


def test_energy_share_gives_energies_their_share_of_the_loss(toy_xyz, tmp_path):  # noqa: F811
    def fractions(**train_options) -> np.ndarray:
        out = tmp_path / str(len(list(tmp_path.iterdir())))
        train(config(toy_xyz, out, steps=20, eval_every=20, ckpt_every=20, **train_options), progress=False)
        return np.array([r["energy_fraction"] for r in read_log(out / "log.jsonl") if r["event"] == "train"])

    fixed = fractions(energy_share=None)
    shared = fractions(energy_share=0.5, energy_share_ramp=0.0)
    assert np.mean(shared[5:]) == pytest.approx(0.5, abs=0.15)
    assert np.mean(fixed[5:]) < 0.5 * np.mean(shared[5:])
    ramped = fractions(energy_share=0.5, energy_share_ramp=1.0)
    assert np.mean(ramped[:10]) < np.mean(ramped[-10:])


def test_loss_balance_weight_hits_the_share_and_ramps():
    from pesprobe.train.balance import LossBalance

    balance = LossBalance(energy_weight=1.0, forces_weight=10.0, share=0.25, decay=0.5, ramp=0.5)
    energy_mse, forces_mse = 1e-4, 0.04
    for _ in range(3):
        w = balance.weight(energy_mse, forces_mse, progress=0.9)
    assert w * energy_mse / (w * energy_mse + 10.0 * forces_mse) == pytest.approx(0.25)
    half = balance.weight(energy_mse, forces_mse, progress=0.25)  # half-way up the ramp: share 0.125
    assert half * energy_mse / (half * energy_mse + 10.0 * forces_mse) == pytest.approx(0.125)
    assert balance.weight(energy_mse, forces_mse, progress=0.0) == 1.0  # never below the fixed weight
    restored = LossBalance(energy_weight=1.0, forces_weight=10.0, share=0.25, decay=0.5, ramp=0.5)
    restored.load_state_dict(balance.state_dict())
    assert restored.weight(2e-4, 0.04, 1.0) == balance.weight(2e-4, 0.04, 1.0)
    with pytest.raises(ValueError, match="positive forces weight"):
        LossBalance(energy_weight=1.0, forces_weight=0.0, share=0.5)


def test_early_stopping_counts_evaluations_without_improvement():
    stopping = EarlyStopping(patience=2, min_delta=0.1)
    assert [stopping.update({"valid_score": v}) for v in (3.0, 2.0, 1.9, 2.5)] == [False, False, False, True]
    assert stopping.best == 2.0
    assert EarlyStopping(patience=2).update({"fsd_full": 1.0}) is False  # other metrics are not counted


def test_patience_stops_the_run_and_resume_keeps_it_stopped(toy_xyz, tmp_path, monkeypatch):  # noqa: F811
    from pesprobe.models import load_checkpoint
    from pesprobe.train import callbacks

    scores = iter([3.0, 2.0, 2.5, 2.6, 2.7, 1.0, 1.0, 1.0])
    original = callbacks.Validation.__call__

    def scripted(self, model, step):
        return {**original(self, model, step), "valid_score": next(scores)}

    monkeypatch.setattr(callbacks.Validation, "__call__", scripted)
    cfg = config(toy_xyz, tmp_path / "run", steps=16, eval_every=2, ckpt_every=16, patience=2)
    result = train(cfg, progress=False)
    assert result.stopped_early and result.steps == 8  # scores at steps 2, 4, 6, 8: no gain after step 4
    records = read_log(tmp_path / "run" / "log.jsonl")
    (stop,) = [r for r in records if r["event"] == "stop"]
    assert stop["step"] == 8 and stop["best"] == 2.0
    assert load_checkpoint(result.checkpoints["last"])[1]["train_state"]["step"] == 8
    assert load_checkpoint(result.checkpoints["valid_score"])[1]["train_state"]["step"] == 4
    assert "Stopped early at step 8" in (tmp_path / "run" / "learning_curves.md").read_text()
    again = train(cfg, resume=True, progress=False)
    assert again.steps == 8 and again.stopped_early


def test_learning_curves_table(toy_xyz, tmp_path):  # noqa: F811
    train(config(toy_xyz, tmp_path / "run", steps=6, eval_every=2, ckpt_every=6), progress=False)
    text = (tmp_path / "run" / "learning_curves.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [int(line.split()[1]) for line in rows] == [2, 4, 6]
    assert "held-out molecules" in text and "zero forces" in text and text.count("(best)") == 1
    records = [{"event": "baselines", "valid_molecules": 3, "baseline_linear_energy_mae": 0.1}]
    records += [{"event": "eval", "step": s, "valid_energy_mae": 0.05, "valid_score": 1.0 + abs(s - 17) * 0.01}
                for s in range(1, 61)]
    thinned = [line for line in learning_curves_markdown(records).splitlines() if line[:3] in ("| 1", "| 6")
               or "(best)" in line]
    assert len([line for line in learning_curves_markdown(records).splitlines() if line.startswith("| ")
                and line[2].isdigit()]) <= MAX_ROWS
    assert any(line.startswith("| 1 ") for line in thinned) and any(line.startswith("| 60 ") for line in thinned)
    assert any(line.startswith("| 17 (best)") for line in thinned)
    with pytest.raises(ValueError, match="no validation record"):
        learning_curves_markdown([{"event": "train", "step": 1, "loss": 1.0}])
