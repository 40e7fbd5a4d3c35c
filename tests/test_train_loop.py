"""The training loop: loss goes down, checkpoints and resume, the JSON-lines log, config errors, the CLI."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from pesprobe.train import ConfigError, TrainConfig, read_log, train

from conftest import TINY_MODEL

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_xyz(tmp_path_factory):
    from pesprobe.data.structures import write_extxyz
    from pesprobe.train.toy import toy_structures

    path = tmp_path_factory.mktemp("toy") / "toy.xyz"
    write_extxyz(toy_structures(n_per_molecule=4, molecules=("CH4", "H2O", "NH3", "C2H6", "CH3OH", "HCN")), path)
    return path


def config(toy_xyz, out, **train) -> dict:
    loop = {"steps": 10, "batch_size": 4, "eval_every": 5, "ckpt_every": 5, "log_every": 1, "device": "cpu",
            "dtype": "float64", "lr": 2e-3, "warmup_steps": 2, "out": str(out)}
    loop.update(train)
    return {"model": dict(TINY_MODEL), "data": {"train": str(toy_xyz), "valid_fraction": 0.15}, "train": loop}


def test_training_steps_lower_the_loss(toy_xyz, tmp_path):
    # full batch (the 20 training structures), no augmentation, no averaging, fixed weights: plain descent
    cfg = config(toy_xyz, tmp_path / "run", steps=40, batch_size=20, rotate=False, ema_decay=0.0, lr=2e-2,
                 eval_every=40, ckpt_every=40, warmup_steps=0, energy_share=None)
    result = train(cfg, progress=False)
    losses = [r["loss"] for r in read_log(tmp_path / "run" / "log.jsonl") if r["event"] == "train"]
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.5 * losses[0]
    assert result.steps == 40 and result.n_train == 20 and result.n_valid == 4


def test_log_records_and_checkpoint_contents(toy_xyz, tmp_path):
    from pesprobe.models import load_checkpoint

    result = train(config(toy_xyz, tmp_path / "run"), progress=False)
    records = read_log(tmp_path / "run" / "log.jsonl")
    train_records = [r for r in records if r["event"] == "train"]
    evals = [r for r in records if r["event"] == "eval"]
    assert [r["step"] for r in train_records] == list(range(1, 11))
    assert [r["step"] for r in evals] == [5, 10]
    for key in ("loss", "energy_mse", "forces_mse", "grad_norm", "lr", "epoch", "structures_per_s"):
        assert np.isfinite(train_records[-1][key]), key
    for key in ("valid_energy_mae", "valid_forces_mae", "valid_energy_rmse", "valid_forces_rmse"):
        assert evals[-1][key] > 0
    # warm-up then cosine: the learning rate rises for 2 steps, then falls
    lrs = [r["lr"] for r in train_records]
    assert lrs[0] < lrs[1] < lrs[2] and lrs[2] > lrs[-1]
    assert result.metrics["valid_forces_mae"] == evals[-1]["valid_forces_mae"]
    assert {"last", "valid_energy_mae", "valid_forces_mae"} <= set(result.checkpoints)
    model, extra = load_checkpoint(result.checkpoints["last"])
    state = extra["train_state"]
    assert state["step"] == 10
    assert set(state) >= {"model", "optimizer", "scheduler", "ema", "config", "best"}
    assert state["best"]["valid_forces_mae"] == min(r["valid_forces_mae"] for r in evals)
    # the element references were fitted and are stored with the weights
    assert set(model.element_references()) == {1, 6, 7, 8}
    assert (tmp_path / "run" / "config.yaml").exists()
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_resume_continues_from_the_same_step(toy_xyz, tmp_path, monkeypatch):
    from pesprobe.models import load_checkpoint
    from pesprobe.train import loop

    straight = train(config(toy_xyz, tmp_path / "straight"), progress=False)

    original = loop._Trainer._train_step

    def crash_at_step_7(self):
        if self.step == 7:
            raise KeyboardInterrupt("simulated crash")
        return original(self)

    monkeypatch.setattr(loop._Trainer, "_train_step", crash_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train(config(toy_xyz, tmp_path / "crashed"), progress=False)
    assert load_checkpoint(tmp_path / "crashed" / "last.pt")[1]["train_state"]["step"] == 5
    monkeypatch.setattr(loop._Trainer, "_train_step", original)
    resumed = train(config(toy_xyz, tmp_path / "crashed"), resume=True, progress=False)
    assert resumed.steps == 10
    steps = [r["step"] for r in read_log(tmp_path / "crashed" / "log.jsonl") if r["event"] == "train"]
    assert steps == list(range(1, 11)), "records after the checkpoint are dropped and written once"
    a = load_checkpoint(straight.checkpoints["last"])[1]["train_state"]["model"]
    b = load_checkpoint(resumed.checkpoints["last"])[1]["train_state"]["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-10, atol=1e-12, msg=key)


def test_existing_run_needs_resume_and_resume_needs_a_run(toy_xyz, tmp_path):
    cfg = config(toy_xyz, tmp_path / "run", steps=2, ckpt_every=2, eval_every=2)
    with pytest.raises(FileNotFoundError, match="no checkpoint .*last.pt"):
        train(cfg, resume=True, progress=False)
    train(cfg, progress=False)
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(cfg, progress=False)


def test_epochs_set_the_number_of_steps(toy_xyz, tmp_path):
    cfg = config(toy_xyz, tmp_path / "run", epochs=1.5)
    del cfg["train"]["steps"]
    assert train(cfg, progress=False).steps == 8  # 20 training structures, batch 4: 5 steps per epoch


@pytest.mark.parametrize(("section", "key", "value", "message"), [
    ("train", "lr_rate", 1e-3, r"train\.lr_rate: unknown key"),
    ("train", "lr", -1.0, r"train\.lr: must be > 0, got -1\.0"),
    ("train", "lr", "fast", r"train\.lr: must be a number, got 'fast'"),
    ("train", "batch_size", 2.5, r"train\.batch_size: must be an integer"),
    ("train", "dtype", "float16", r"train\.dtype: must be 'float32' or 'float64'"),
    ("train", "device", "tpu", r"train\.device: must be 'cpu'"),
    ("train", "rotate", "yes", r"train\.rotate: must be true or false"),
    ("train", "ema_decay", 1.0, r"train\.ema_decay: must be in \[0, 1\)"),
    ("data", "valid_fraction", 1.5, r"data\.valid_fraction: must be in \[0, 1\)"),
    ("data", "train", 3, r"data\.train: must be a path or a list of paths"),
    ("model", "d_model", -4, r"model: .*d_model"),
    ("model", "no_such_field", 1, r"model: .*no_such_field"),
    ("model", "dtype", "float32", r"model\.dtype: 'float32' contradicts train\.dtype 'float64'"),
    ("bsct", "every", 0, r"bsct\.every: must be >= 1"),
    ("train", "energy_share", 1.0, r"train\.energy_share: must be in \(0, 1\) or null"),
    ("train", "energy_share_ramp", 1.5, r"train\.energy_share_ramp: must be in \[0, 1\]"),
    ("train", "forces_weight", 0.0, r"train\.forces_weight: must be > 0 with train\.energy_share"),
    ("train", "patience", 0, r"train\.patience: must be >= 1 or null"),
    ("train", "min_delta", 1.0, r"train\.min_delta: must be in \[0, 1\)"),
    ("data", "max_force", -1.0, r"data\.max_force: must be > 0"),
])
def test_bad_config_values_name_the_key(toy_xyz, tmp_path, section, key, value, message):
    cfg = config(toy_xyz, tmp_path / "run")
    if section == "bsct":
        cfg["bsct"] = {"scans": "scans.npz"}
    cfg[section][key] = value
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(cfg)


def test_config_structure_errors(toy_xyz, tmp_path):
    cfg = config(toy_xyz, tmp_path / "run")
    with pytest.raises(ConfigError, match=r"optimizer: unknown section"):
        TrainConfig.from_dict({**cfg, "optimizer": {}})
    both = copy.deepcopy(cfg)
    both["train"]["epochs"] = 2
    with pytest.raises(ConfigError, match="give exactly one of them"):
        TrainConfig.from_dict(both)
    with pytest.raises(ConfigError, match=r"data\.train: at least one training file"):
        TrainConfig.from_dict({"train": {"steps": 1}})
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        TrainConfig.from_yaml(bad_yaml)


def test_yaml_paths_are_relative_to_the_file_and_round_trip(toy_xyz, tmp_path):
    import yaml

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "cfg.yaml").write_text(yaml.safe_dump(
        {"model": TINY_MODEL, "data": {"train": "data.xyz"}, "train": {"steps": 3, "lr": "1e-3", "out": "runs/a"}}))
    cfg = TrainConfig.from_yaml(tmp_path / "sub" / "cfg.yaml")
    assert cfg.data.train == [str(tmp_path / "sub" / "data.xyz")]
    assert cfg.train.out == str(tmp_path / "sub" / "runs" / "a")
    assert cfg.train.lr == 1e-3  # YAML reads 1e-3 as a string; it is coerced
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_bad_data_gets_a_clear_error(tmp_path):
    from pesprobe.data.structures import StructureFormatError

    bad = tmp_path / "bad.xyz"
    bad.write_text("2\nProperties=species:S:1:pos:R:3 energy=1.0\nH 0 0 0\nH 0 0 x\n")
    cfg = {"model": TINY_MODEL, "data": {"train": str(bad)}, "train": {"steps": 1, "out": str(tmp_path / "o")}}
    with pytest.raises(StructureFormatError, match=r"bad\.xyz"):
        train(cfg, progress=False)


def test_cli_trains_and_reports(toy_xyz, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from pesprobe.cli import app

    cfg = config(toy_xyz, tmp_path / "run", steps=3, eval_every=3, ckpt_every=3)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(tmp_path / "cfg.yaml"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "trained 3 steps on 20 structures (4 for validation)" in result.output
    assert "valid_forces_mae" in result.output and "last.pt" in result.output
    assert "baseline_linear_energy_mae" in result.output and "best.pt" in result.output
    again = runner.invoke(app, ["train", str(tmp_path / "cfg.yaml"), "--no-progress"])
    assert again.exit_code == 2 and "pass --resume" in again.output
