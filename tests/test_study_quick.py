"""The --quick study end to end (the CI smoke test of every stage), resuming, and the CLI's errors."""

from __future__ import annotations

import csv
import json
import os
import re
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from pesprobe.cli import app
from pesprobe.study.config import StudyError, load_study
from pesprobe.study.runner import run_study

VARIANTS = ["knn", "diffknn", "temperature", "smearing", "direct"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Run ``pesprobe study --quick --build-data`` once in a fresh folder; yield (folder, output)."""
    root = tmp_path_factory.mktemp("quick")
    threads, cwd = torch.get_num_threads(), os.getcwd()
    torch.set_num_threads(1)
    os.chdir(root)
    try:
        result = CliRunner().invoke(app, ["study", "--quick", "--build-data", "--out", "out", "--no-progress"])
        assert result.exit_code == 0, result.output
        yield root, result.output
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)


def test_quick_study_exercises_every_stage(quick):
    root, output = quick
    out = root / "out"
    assert (root / "study-data" / "quick-train" / "train.xyz").exists()
    assert (root / "study-data" / "quick-scans.npz").exists()
    study = json.loads((out / "study.json").read_text())
    assert study["complete"] and [v["name"] for v in study["variants"]] == VARIANTS
    assert len(study["bsct_scans"]) == 3 and len(study["md_molecules"]) == 2
    for v in study["variants"]:
        assert v["steps"] == 24
        assert v["valid"]["valid_energy_mae"] > 0 and v["valid"]["valid_forces_mae"] > 0
        assert v["valid"]["n_train"] > 0 and v["valid"]["n_valid"] > 0
        assert v["valid"]["baseline_linear_energy_mae"] > 0 and v["valid"]["valid_molecules"] >= 1
        assert 0 < v["valid"]["valid_energy_offset_mae"] <= v["valid"]["valid_energy_mae"]
        assert v["bsct"]["n_scans"] == 3 and v["bsct"]["full_smoothness"] > 0
        assert set(v["scans"]) == set(study["bsct_scans"])
        assert v["md"]["n_trajectories"] == 2 and set(v["molecules"]) == set(study["md_molecules"])
        assert all(v["seconds"][part] > 0 for part in ("train", "bsct", "md"))
        assert (out / "variants" / v["name"] / "train" / "last.pt").exists()
    # the direct head's energy and forces disagree; the conservative heads' agree up to the trapezoid error
    consistency = {v["name"]: v["bsct"]["energy_force_consistency"] for v in study["variants"]}
    assert consistency["direct"] > max(consistency[n] for n in VARIANTS[:-1])
    models = {v["name"]: v["model"] for v in study["variants"]}
    assert models["knn"]["graph"] == "knn" and models["direct"]["graph"] == "diffknn"
    assert len(study["steps"]) == 4 and study["findings"]
    assert any(line.startswith("diffknn vs knn: FSD ") for line in study["findings"])
    rows = list(csv.DictReader((out / "study.csv").open()))
    assert [r["variant"] for r in rows] == VARIANTS
    page = (out / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 4
    assert "| knn | hard kNN baseline | 24 |" in output


def test_rerun_reuses_every_variant(quick):
    root, _ = quick
    out = root / "out"
    before = json.loads((out / "study.json").read_text())
    lines: list[str] = []
    config = load_study("quick", base_dir=root)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        result = run_study(config, out, progress=False, log=lines.append, report=False)
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    assert sum("reusing" in line for line in lines) == 5, lines
    assert elapsed < 30
    for old, new in zip(before["variants"], result.variants):
        assert old["bsct"]["full_smoothness"] == pytest.approx(new.bsct["full_smoothness"])
        assert old["key"] == new.key


def test_a_lost_result_is_recomputed_from_the_trained_model(quick, monkeypatch):
    """Without result.json the finished training is resumed (not redone) and BSCT/MD reuse their caches."""
    # patched where pesprobe.train's lazy attribute finds it: patching pesprobe.train itself would leave a
    # plain attribute behind on undo, which later patches of pesprobe.train.loop.train (test_cli_interrupt) miss
    import pesprobe.train.loop as loop

    root, _ = quick
    out = root / "out"
    before = json.loads((out / "variants" / "direct" / "result.json").read_text())
    (out / "variants" / "direct" / "result.json").unlink()
    calls = []
    real = loop.train

    def spy(config, resume=False, progress=True):
        calls.append((Path(config.train.out).parent.name, resume))
        return real(config, resume=resume, progress=progress)

    monkeypatch.setattr(loop, "train", spy)
    config = load_study("quick", base_dir=root)
    config.variants = [config.variant("direct")]
    result = run_study(config, out, progress=False, log=lambda line: None, report=False)
    assert calls == [("direct", True)]
    after = result.variants[0]
    assert after.bsct["full_smoothness"] == pytest.approx(before["bsct"]["full_smoothness"])
    assert after.md["mean"]["temperature_jump_K"] == pytest.approx(before["md"]["mean"]["temperature_jump_K"])
    assert (out / "variants" / "direct" / "result.json").exists()


def test_changed_training_settings_are_refused(quick):
    root, _ = quick
    config = load_study("quick", base_dir=root)
    config.train["lr"] = 0.001
    config.variants = [config.variant("knn")]
    with pytest.raises(StudyError, match="knn: its training settings or data changed.*delete"):
        run_study(config, root / "out", progress=False, log=lambda line: None, report=False)


def test_same_data_elsewhere_and_device_spelled_out_still_resume(quick, tmp_path):
    import shutil

    root, _ = quick
    config = load_study("quick", base_dir=root)
    copy = tmp_path / "data"
    for attr in ("train_path", "valid_path"):
        path = getattr(config, attr)
        if path is not None:
            target = copy / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            setattr(config, attr, target)
    config.device = "cpu"  # was auto, on a CPU-only machine the same thing
    config.variants = [config.variant("knn")]
    lines: list[str] = []
    run_study(config, root / "out", progress=False, log=lines.append, report=False)
    assert any("[knn] reusing" in line for line in lines), lines


def test_minutes_budget_is_measured_per_variant(quick):
    from pesprobe.study.budget import STEP_SHARE, seconds_per_step, steps_for_minutes

    root, _ = quick
    config = load_study("quick", base_dir=root)
    from pesprobe.study.runner import _Study

    study = _Study(config, root / "budget-probe", progress=False, log=lambda line: None)
    train_config = study.train_config(config.variant("knn"), 1)
    seconds = seconds_per_step(train_config, probe_steps=2)
    assert 0 < seconds < 10
    steps, measured = steps_for_minutes(train_config, 0.5)
    assert steps == max(1, int(STEP_SHARE * 30.0 / measured))
    assert steps_for_minutes(train_config, 1e-6)[0] == 1
    assert not (root / "budget-probe").exists()


def test_cli_reports_missing_data_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["study", "default", "--no-progress"])
    assert result.exit_code == 2
    assert "missing data" in result.output and "pesprobe data sample" in result.output
    assert "--preset xtb-organic" in result.output and "--build-data" in result.output
    result = runner.invoke(app, ["study", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "cannot read study file" in result.output
    result = runner.invoke(app, ["study", "default", "--quick"])
    assert result.exit_code != 0 and "not both" in result.output


def test_an_md_engine_change_reevaluates_and_restarts_the_clocks(quick, monkeypatch):
    """A new MD engine version is part of the result key; the re-evaluation's times replace the old ones."""
    import pesprobe.study.runner as runner

    root, _ = quick
    out = root / "out"
    before = json.loads((out / "variants" / "direct" / "result.json").read_text())
    # an earlier evaluation that took 1000 s of MD: a re-evaluation must restart that clock, not add to it
    # (a stored time far above any real one keeps the check independent of the machine's load)
    timing_path = out / "variants" / "direct" / "timing.json"
    timing = json.loads(timing_path.read_text())
    timing_path.write_text(json.dumps({**timing, "md": 1000.0}))
    monkeypatch.setattr(runner, "MD_ENGINE_VERSION", "test-engine")
    config = load_study("quick", base_dir=root)
    config.variants = [config.variant("direct")]
    lines: list[str] = []
    result = run_study(config, out, progress=False, log=lines.append, report=False)
    assert not any("reusing" in line for line in lines)
    after = result.variants[0]
    assert after.key != before["key"]
    assert after.md["mean"]["temperature_jump_K"] == pytest.approx(before["md"]["mean"]["temperature_jump_K"])
    # the re-evaluation's own MD time (trajectories reused: a few seconds at most), not 1000 s plus it
    assert 0 < after.seconds["md"] < 1000.0
    assert after.seconds["train"] >= before["seconds"]["train"]
