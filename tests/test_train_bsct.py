"""BSCT in the training loop: FSD in the log beside the MAEs, best-by-FSD checkpoints, and a trained
model going through the BSCT engine."""

from __future__ import annotations

import numpy as np
import pytest

from pesprobe.train import read_log, train

from conftest import TINY_MODEL

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    from pesprobe.data import write_compact
    from pesprobe.data.structures import write_extxyz
    from pesprobe.train.toy import toy_scans, toy_structures

    root = tmp_path_factory.mktemp("toy")
    write_extxyz(toy_structures(n_per_molecule=4, molecules=("CH4", "H2O", "NH3", "C2H6", "CH3OH", "H3CNH2")),
                 root / "toy.xyz")
    write_compact(toy_scans(n_frames=16), root / "scans.npz")
    return root


def _config(root, out, steps: int, bsct_every: int) -> dict:
    return {"model": TINY_MODEL, "data": {"train": str(root / "toy.xyz"), "valid_fraction": 0.2},
            "train": {"steps": steps, "batch_size": 4, "eval_every": bsct_every, "ckpt_every": steps,
                      "log_every": 10, "device": "cpu", "lr": 3e-3, "warmup_steps": 10, "out": str(out),
                      "energy_share": None},  # fixed weights: the loss values are comparable across steps
            "bsct": {"scans": str(root / "scans.npz"), "every": bsct_every}}


def test_bsct_callback_logs_fsd_beside_maes_and_keeps_best_checkpoints(toy_data, tmp_path):
    from pesprobe.evaluate import evaluate
    from pesprobe.models import load_checkpoint

    result = train(_config(toy_data, tmp_path / "run", steps=6, bsct_every=3), progress=False)
    evals = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["event"] == "eval"]
    assert [r["step"] for r in evals] == [3, 6]
    for record in evals:
        for key in ("valid_energy_mae", "valid_forces_mae", "fsd_full", "fsd_stretch", "bsct_forces_mae"):
            assert record[key] is not None and record[key] > 0, key
        assert record["bsct_failed_frames"] == 0
        assert record["fsd_compress"] is not None  # the toy scans have their minimum inside
    best_fsd = min(r["fsd_full"] for r in evals)
    assert result.best["fsd_full"] == pytest.approx(best_fsd)
    for name in ("best_energy.pt", "best_forces.pt", "best_fsd.pt", "best_fsd_compress.pt", "best_fsd_stretch.pt"):
        assert (tmp_path / "run" / name).exists(), name
    assert result.checkpoints["fsd_full"] == tmp_path / "run" / "best_fsd.pt"
    # best_fsd.pt holds the model of the step with the lowest FSD, and BSCT gives that FSD again
    best = min(evals, key=lambda r: r["fsd_full"])
    _, extra = load_checkpoint(tmp_path / "run" / "best_fsd.pt")
    assert extra["train_state"]["step"] == best["step"]
    again = evaluate(f"pesprobe:{tmp_path / 'run' / 'best_fsd.pt'}", toy_data / "scans.npz", progress=False)
    assert again.summary["full_smoothness"] == pytest.approx(best["fsd_full"], rel=1e-4)


def test_model_trained_a_few_hundred_steps_runs_through_bsct(toy_data, tmp_path):
    from pesprobe.evaluate import evaluate
    from pesprobe.potentials.registry import resolve

    result = train(_config(toy_data, tmp_path / "run", steps=200, bsct_every=100), progress=False)
    records = read_log(tmp_path / "run" / "log.jsonl")
    evals = [r for r in records if r["event"] == "eval"]
    losses = [r["loss"] for r in records if r["event"] == "train"]
    assert len(losses) == 20
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    potential = resolve(f"pesprobe:{result.checkpoints['last']}")
    bsct = evaluate(potential, toy_data / "scans.npz", out=tmp_path / "bsct", progress=False)
    assert len(bsct.systems) == 3
    for metrics in bsct.systems.values():
        assert metrics["n_failed"] == 0
        assert np.isfinite(metrics["full_smoothness"]) and metrics["full_smoothness"] >= 0
    assert bsct.summary["full_smoothness"] == pytest.approx(evals[-1]["fsd_full"], rel=1e-4)
    assert (tmp_path / "bsct" / "results.json").exists()
