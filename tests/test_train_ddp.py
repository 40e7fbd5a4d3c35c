"""Data-parallel training: 2 CPU ranks (gloo, via torchrun) give the weights of 1 rank with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import yaml

TINY_MODEL = {"d_model": 16, "n_heads": 2, "n_blocks": 1, "embed_dim": 8, "readout_dim": 8, "n_rbf": 8, "k": 6,
              "cutoff": 4.0}


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
                      "device": "cpu", "dtype": "float64", "lr": 2e-3, "out": str(out),
                      # a constant learning rate, so that stopping at step 2 and resuming to 4 follows
                      # the same schedule as 4 steps in one go
                      "warmup_steps": 0, "min_lr_ratio": 1.0}}


def _torchrun(config_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pesprobe", "train", str(config_path), "--no-progress", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def _weights(path) -> dict[str, torch.Tensor]:
    from pesprobe.models import load_checkpoint

    _, extra = load_checkpoint(path)
    return extra["train_state"]["model"]


def test_two_ranks_match_one_rank_and_resume_on_any_rank_count(toy_xyz, tmp_path):
    from pesprobe.train import read_log, train

    single = train(_config(toy_xyz, tmp_path / "single", steps=4), progress=False)

    # 2 ranks for 2 steps, then resume on 2 ranks to step 4
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump(_config(toy_xyz, tmp_path / "ddp", steps=2)))
    first = _torchrun(cfg)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "trained 2 steps" in first.stdout and first.stdout.count("trained") == 1, "only rank 0 reports"
    cfg.write_text(yaml.safe_dump(_config(toy_xyz, tmp_path / "ddp", steps=4)))
    second = _torchrun(cfg, "--resume")
    assert second.returncode == 0, second.stderr[-3000:]

    a, b = _weights(single.checkpoints["last"]), _weights(tmp_path / "ddp" / "last.pt")
    assert set(a) == set(b)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-7, atol=1e-9, msg=key)
    log = read_log(tmp_path / "ddp" / "log.jsonl")
    assert [r["step"] for r in log if r["event"] == "train"] == [1, 2, 3, 4]
    single_log = [r for r in read_log(tmp_path / "single" / "log.jsonl") if r["event"] == "train"]
    for mine, theirs in zip(single_log, [r for r in log if r["event"] == "train"], strict=True):
        assert theirs["loss"] == pytest.approx(mine["loss"], rel=1e-6)

    # the 2-rank checkpoint resumes in a single process
    one_more = _config(toy_xyz, tmp_path / "ddp", steps=5)
    assert train(one_more, resume=True, progress=False).steps == 5
