"""Data-parallel training: 2 CPU ranks (gloo, via torchrun) give the weights of 1 rank with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import TINY_MODEL

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_xyz(tmp_path_factory):
    from pesprobe.data.structures import write_extxyz
    from pesprobe.train.toy import toy_structures

    path = tmp_path_factory.mktemp("toy") / "toy.xyz"
    write_extxyz(toy_structures(n_per_molecule=3, molecules=("CH4", "H2O", "NH3", "C2H6", "CH3OH")), path)
    return path


def _config(toy_xyz, out, steps: int) -> dict:
    return {"model": TINY_MODEL, "data": {"train": str(toy_xyz), "valid_fraction": 0.2},
            "train": {"steps": steps, "batch_size": 4, "eval_every": 2, "ckpt_every": 2, "log_every": 1,
                      "device": "cpu", "dtype": "float64", "lr": 2e-3, "warmup_steps": 1, "out": str(out)}}


def _torchrun(config_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pesprobe", "train", str(config_path), "--no-progress", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def _weights(path) -> dict[str, torch.Tensor]:
    from pesprobe.models import load_checkpoint

    _, extra = load_checkpoint(path)
    return extra["train_state"]["model"]


def test_two_ranks_match_one_rank_and_resume_on_another_rank_count(toy_xyz, tmp_path):
    from pesprobe.train import read_log, train

    single = train(_config(toy_xyz, tmp_path / "single", steps=4), progress=False)
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump(_config(toy_xyz, tmp_path / "ddp", steps=4)))
    run = _torchrun(cfg)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "trained 4 steps" in run.stdout and run.stdout.count("trained") == 1, "only rank 0 reports"

    a, b = _weights(single.checkpoints["last"]), _weights(tmp_path / "ddp" / "last.pt")
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-7, atol=1e-9, msg=key)
    log = [r for r in read_log(tmp_path / "ddp" / "log.jsonl") if r["event"] == "train"]
    single_log = [r for r in read_log(tmp_path / "single" / "log.jsonl") if r["event"] == "train"]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    for mine, theirs in zip(single_log, log, strict=True):
        assert theirs["loss"] == pytest.approx(mine["loss"], rel=1e-6)
    evals = [r for r in read_log(tmp_path / "ddp" / "log.jsonl") if r["event"] == "eval"]
    single_evals = [r for r in read_log(tmp_path / "single" / "log.jsonl") if r["event"] == "eval"]
    assert evals[-1]["valid_forces_mae"] == pytest.approx(single_evals[-1]["valid_forces_mae"], rel=1e-6)

    # the 2-rank checkpoint resumes in a single process
    assert train(_config(toy_xyz, tmp_path / "ddp", steps=5), resume=True, progress=False).steps == 5
