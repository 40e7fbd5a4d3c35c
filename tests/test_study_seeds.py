"""Studies with several training seeds: mean ± sd, steps judged against the seed spread, the layout, resuming,
the best-by-validation checkpoint, a one-seed study unchanged, and the shipped ablation study."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from pesprobe.study.config import StudyError, load_study, study_from_dict
from pesprobe.study.runner import StudyResult, VariantResult, run_study
from pesprobe.study.seeds import aggregate, judge, run_values, seed_findings, seed_stats, seed_steps, seed_table

from conftest import TINY_MODEL


# ------------------------------------------------------------------------------------ the statistics
def run(name: str, seed: int, fsd: float, failed: int = 0, extends: str | None = None) -> VariantResult:
    """A synthetic run whose full FSD is ``fsd`` and whose MD failed ``failed`` of 4 trajectories."""
    return VariantResult(
        name=name, label=f"label {name}", extends=extends, model={}, steps=10, key="k", identity="id",
        valid={"valid_energy_mae": 0.001 * fsd, "valid_forces_mae": 0.1},
        bsct={"full_smoothness": fsd, "compress_smoothness": fsd, "stretch_smoothness": fsd,
              "full_smoothness_skill": 1.0 - fsd / 50.0, "n_scans_with_discontinuities": 1},
        md={"n_trajectories": 4, "n_failed": failed}, seed=seed)


def test_seed_stats_are_the_mean_and_sample_sd():
    s = seed_stats([1.0, 2.0, 6.0], seeds=[0, 1, 2])
    assert s.mean == pytest.approx(3.0) and s.sd == pytest.approx(math.sqrt((4 + 1 + 9) / 2)) and s.n == 3
    assert s.text(".3g", ".2g") == "3 ± 2.6"
    partial = seed_stats([1.0, math.nan, 3.0])
    assert partial.n == 2 and partial.mean == pytest.approx(2.0) and partial.sd == pytest.approx(math.sqrt(2))
    assert partial.text(".3g", ".2g", n_runs=3) == "2 ± 1.4 (n = 2)"
    one = seed_stats([5.0])
    assert one.mean == 5.0 and math.isnan(one.sd) and one.text() == "5"
    assert seed_stats([math.nan]).text() == "–"


def test_run_values_in_the_table_units():
    values = run_values(run("a", 0, 40.0, failed=1))
    assert values["energy_mae"] == pytest.approx(40.0)  # 0.04 eV/atom -> meV/atom
    assert values["forces_mae"] == pytest.approx(0.1) and values["md_failure_fraction"] == pytest.approx(0.25)
    assert values["skill_full"] == pytest.approx(0.2) and values["discontinuity_scans"] == 1.0


def test_a_step_is_claimed_only_beyond_the_seed_spread():
    parent = seed_stats([40.0, 42.0, 44.0], [0, 1, 2])             # 42 ± 2
    clear = seed_stats([30.0, 31.0, 32.0], [0, 1, 2])
    delta, spread, paired, verdict = judge(parent, clear)
    assert delta == pytest.approx(-11.0) and spread == pytest.approx(2.0) and paired == [-10.0, -11.0, -12.0]
    assert verdict == "lowered"
    assert judge(parent, seed_stats([41.0, 42.0, 43.5], [0, 1, 2]))[3] == "within the seed spread"  # |Δ| < sd
    # |Δ| (4) above both sds (2), but seed 2 went the other way
    assert judge(parent, seed_stats([30.0, 34.0, 46.0], [0, 1, 2]))[3] == "within the seed spread"
    assert judge(parent, seed_stats([50.0, 52.0, 54.0], [0, 1, 2]))[3] == "raised"
    # beyond a tiny spread, but 1 % of the mean
    assert judge(seed_stats([42.0, 42.01], [0, 1]), seed_stats([42.4, 42.41], [0, 1]))[3] == "negligible"
    assert judge(seed_stats([0.0, 0.0], [0, 1]), seed_stats([0.5, 0.25], [0, 1]))[3] == "raised"
    assert judge(seed_stats([0.0, 0.0], [0, 1]), seed_stats([0.0, 0.0], [0, 1]))[3] == "unchanged"
    assert judge(seed_stats([1.0], [0]), seed_stats([9.0], [0]))[3] == "no spread (one seed)"


def test_findings_and_table_state_the_spread():
    runs = {"a": [run("a", s, f) for s, f in zip((0, 1, 2), (40.0, 42.0, 44.0))],
            "b": [run("b", s, f, extends="a") for s, f in zip((0, 1, 2), (30.0, 31.0, 32.0))],
            "c": [run("c", s, f, extends="b", failed=s) for s, f in zip((0, 1, 2), (29.0, 33.0, 30.0))]}
    rows = aggregate(runs)
    assert [r.variant for r in rows] == ["a", "b", "c"] and rows[1].seeds == [0, 1, 2]
    assert rows[0].stats["fsd_full"].mean == pytest.approx(42.0) and rows[0].stats["fsd_full"].sd == pytest.approx(2.0)
    assert rows[2].stats["md_failure_fraction"].mean == pytest.approx(0.25)
    verdicts = {(s.child, s.metric): s.verdict for s in seed_steps(rows)}
    assert verdicts[("b", "fsd_full")] == "lowered" and verdicts[("c", "fsd_full")] == "within the seed spread"
    assert verdicts[("b", "md_failure_fraction")] == "unchanged"
    lines = seed_findings(rows)
    assert lines[0].startswith("Mean ± sd over the training seeds")
    b_line = next(line for line in lines if line.startswith("b vs a (3 seeds): "))
    assert "FSD full (1/Å) 42 ± 2 → 31 ± 1 (Δ −11" in b_line.replace("-", "−") and ": lowered" in b_line
    c_line = next(line for line in lines if line.startswith("c vs b (3 seeds): "))
    assert "FSD full (1/Å) 31 ± 1 → 30.7 ± 2.1" in c_line and "within the seed spread" in c_line
    header, cells = seed_table(rows)
    assert header[:4] == ["variant", "change", "steps", "seeds"] and cells[0][3] == "3 (0, 1, 2)"
    assert cells[0][header.index("FSD full (1/Å)")] == "42 ± 2"


# ------------------------------------------------------------------------------------ the study file
def base(**changes) -> dict:
    raw = {"data": {"train": "train.xyz", "scans": "scans.npz"}, "budget": {"steps": 10},
           "model": {"d_model": 16, "n_heads": 2}, "variants": [{"name": "a", "model": {"graph": "knn"}}]}
    raw.update(changes)
    return raw


def test_seeds_in_the_study_file(tmp_path):
    config = study_from_dict(base(seeds=[3, 1, 2]), tmp_path)
    assert config.seeds == [3, 1, 2] and config.seed == 3 and config.to_dict()["seeds"] == [3, 1, 2]
    single = study_from_dict(base(seed=5), tmp_path)
    assert single.seeds == [] and single.seed == 5
    assert study_from_dict(base(), tmp_path).seeds == []
    for change, message in (({"seed": 0, "seeds": [0, 1]}, "not both"), ({"seeds": []}, "non-empty list"),
                            ({"seeds": [0, 0]}, "each seed once"), ({"seeds": [0, "1"]}, r"seeds\[1\]"),
                            ({"data": {"train": "t.xyz", "scans": "s.npz", "max_force": -1}}, "data.max_force")):
        with pytest.raises(StudyError, match=message):
            study_from_dict(base(**change), tmp_path)


def test_shipped_ablation_is_the_faithful_sequence():
    from pesprobe.models.layers import GaussianRBF

    config = load_study("ablation")
    assert config.seeds == [0, 1, 2] and config.steps == 1200 and config.train["batch_size"] == 8
    names = [v.name for v in config.variants]
    assert names == ["knn-narrow", "diffknn-and", "diffknn-or", "temperature", "broadened", "broad-16"]
    models = {v.name: v.model for v in config.variants}
    sigma = {n: GaussianRBF(m["cutoff"], m["n_rbf"], m["rbf_width"]).sigma for n, m in models.items()}
    assert sigma["knn-narrow"] == pytest.approx(5.0 / 255) and sigma["broadened"] == pytest.approx(10.0 / 255)
    assert sigma["broad-16"] == pytest.approx(2.0 / 3.0)
    assert models["knn-narrow"]["graph"] == "knn"
    assert models["diffknn-and"]["diffknn_combine"] == "and" and models["diffknn-or"]["diffknn_combine"] == "or"
    assert models["temperature"] == {**models["diffknn-and"], "attention_temperature": 2.0}
    assert models["broadened"] == {**models["temperature"], "rbf_width": 2.0}
    assert models["broad-16"] == {**models["broadened"], "n_rbf": 16}
    assert all(m["d_model"] == 32 and m["n_blocks"] == 2 and m["k"] == 12 and m["cutoff"] == 5.0
               for m in models.values())
    md = config.md_config()
    assert config.md_molecules == 12 and md.temperature_K == 500 and md.length_ps == 1.0 and md.seeds == (0,)
    assert md.ensemble == "nve"
    assert config.train_recipe.preset == "xtb-train-large" and config.scan_recipe.preset == "xtb-organic"


# ------------------------------------------------------------------------------------ tiny studies, run
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Toy EMT training/validation structures and two bond scans; yields their folder."""
    from pesprobe.data import write_compact
    from pesprobe.data.structures import write_extxyz
    from pesprobe.train.toy import toy_scans, toy_structures

    root = tmp_path_factory.mktemp("seed-data")
    write_extxyz(toy_structures(n_per_molecule=4, molecules=("CH4", "H2O", "NH3", "C2H6", "CH3OH", "HCN")),
                 root / "train.xyz")
    write_extxyz(toy_structures(n_per_molecule=2, molecules=("C2H4", "H2CO", "H3CNH2"), seed=1), root / "val.xyz")
    write_compact(toy_scans(molecules=("C2H6", "CH3OH"), n_frames=16), root / "scans.npz")
    return root


def tiny_study(root, **top) -> dict:
    """2 variants, 4 training steps validated every 2 (best.pt can be either), 2 scans, 10 fs of MD on 1 molecule."""
    return {"name": "tiny", "device": "cpu", "data": {"train": "train.xyz", "valid": "val.xyz", "scans": "scans.npz"},
            "budget": {"steps": 4},
            "train": {"batch_size": 4, "lr": 0.005, "warmup_steps": 1, "dtype": "float32", "eval_every": 2},
            "model": {**TINY_MODEL}, "bsct": {"batch_frames": 16},
            "md": {"molecules": 1, "temperature_K": 300, "timestep_fs": 0.5, "length_ps": 0.01, "seeds": [0],
                   "save_every": 0},
            "variants": [{"name": "a", "model": {"graph": "knn"}},
                         {"name": "b", "extends": "a", "label": "+ diffknn", "model": {"graph": "diffknn"}}], **top}


def quiet_run(config, out, lines=None):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_study(config, out, progress=False, log=(lines.append if lines is not None else lambda line: None))
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def seeded(data):
    """The tiny study with seeds [0, 1], run once; yields (its result, output folder)."""
    config = study_from_dict(tiny_study(data, seeds=[0, 1]), data)
    out = data / "seeded"
    return quiet_run(config, out), out


def test_seeded_layout_and_study_json(seeded):
    result, out = seeded
    for name in ("a", "b"):
        for seed in (0, 1):
            folder = out / "variants" / name / f"seed{seed}"
            assert (folder / "result.json").exists() and (folder / "train" / "last.pt").exists()
            assert (folder / "bsct" / "results.json").exists() and (folder / "md" / "results.json").exists()
        assert not (out / "variants" / name / "result.json").exists()
    assert [v.name for v in result.variants] == ["a", "b"] and all(v.seed == 0 for v in result.variants)
    assert {k: [r.seed for r in v] for k, v in result.runs.items()} == {"a": [0, 1], "b": [0, 1]}
    # different seeds, different models
    assert result.runs["a"][0].identity != result.runs["a"][1].identity
    study = json.loads((out / "study.json").read_text())
    assert study["complete"] and study["seeds"]["training_seeds"] == [0, 1] and len(study["runs"]) == 4
    table = {row["variant"]: row for row in study["seeds"]["table"]}
    fsd = [r.bsct["full_smoothness"] for r in result.runs["b"]]
    assert table["b"]["stats"]["fsd_full"]["mean"] == pytest.approx(np.mean(fsd))
    assert table["b"]["stats"]["fsd_full"]["sd"] == pytest.approx(np.std(fsd, ddof=1))
    assert table["b"]["stats"]["fsd_full"]["n"] == 2
    assert {s["metric"] for s in study["seeds"]["steps"]} >= {"fsd_full", "md_failure_fraction", "energy_mae"}
    assert study["findings"][0].startswith("Mean ± sd over the training seeds")
    assert any(line.startswith("b vs a (2 seeds): ") for line in study["findings"])
    summary = (out / "summary.md").read_text()
    assert "## Mean ± sd over training seeds" in summary and " ± " in summary and "best.pt in 4 of 4 runs" in summary
    page = (out / "report.html").read_text()
    assert "Mean ± sd over training seeds" in page and "training seeds 0, 1" in page and "Results (seed 0)" in page


def test_the_best_by_validation_checkpoint_is_evaluated(seeded):
    result, out = seeded
    for runs in result.runs.values():
        for r in runs:
            assert r.checkpoint == "best.pt" and r.checkpoint_step in (2, 4)
            log = [json.loads(line) for line in (out / "variants" / r.name / f"seed{r.seed}" / "train" / "log.jsonl")
                   .read_text().splitlines()]
            evals = [e for e in log if e["event"] == "eval"]
            best = min(evals, key=lambda e: e["valid_score"])
            assert r.checkpoint_step == best["step"]
            assert r.valid["valid_energy_mae"] == pytest.approx(best["valid_energy_mae"])


def test_a_rerun_trains_nothing(seeded, monkeypatch):
    import pesprobe.train.loop as loop  # patched where pesprobe.train's lazy attribute finds it

    result, out = seeded
    calls = []
    monkeypatch.setattr(loop, "train", lambda *a, **k: calls.append(a))
    # a train() call on a finished run would still rewrite learning_curves.md
    files = {p: p.stat().st_mtime_ns for p in out.glob("variants/*/seed*/train/*")}
    config = study_from_dict(tiny_study(out.parent, seeds=[0, 1]), out.parent)
    lines: list[str] = []
    again = quiet_run(config, out, lines)
    assert calls == [] and sum("reusing" in line for line in lines) == 4, lines
    assert files and {p: p.stat().st_mtime_ns for p in files} == files
    assert [r.key for r in again.runs["b"]] == [r.key for r in result.runs["b"]]


def test_the_cli_prints_the_seed_table(seeded):
    import yaml
    from typer.testing import CliRunner

    from pesprobe.cli import app

    _, out = seeded
    path = out.parent / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_study(out.parent, seeds=[0, 1])))
    result = CliRunner().invoke(app, ["study", str(path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "| variant | change | steps | seeds | E MAE (meV/atom) |" in result.output
    assert "| b | + diffknn | 4 | 2 (0, 1) | " in result.output and "2 variants (4 runs)" in result.output


def test_a_one_seed_study_keeps_its_layout_and_numbers(seeded, data):
    result, _ = seeded
    config = study_from_dict(tiny_study(data, seed=0), data)
    out = data / "single"
    single = quiet_run(config, out)
    assert all(v.seed is None for v in single.variants) and single.seed_runs() == {v.name: [v] for v in single.variants}
    for name in ("a", "b"):
        assert (out / "variants" / name / "result.json").exists() and (out / "variants" / name / "train").is_dir()
        assert not (out / "variants" / name / "seed0").exists()
    study = json.loads((out / "study.json").read_text())
    assert "seeds" not in study and "runs" not in study and study["complete"]
    assert [r["variant"] for r in study["table"]] == ["a", "b"]
    assert any(line.startswith("b vs a: FSD ") for line in study["findings"])
    # seed 0 of the seeded study is the same model, trained and evaluated the same way
    for v in single.variants:
        twin = result.runs[v.name][0]
        assert v.identity == twin.identity and v.bsct["full_smoothness"] == pytest.approx(twin.bsct["full_smoothness"])


def test_results_written_by_hand_have_one_run_per_variant(tmp_path):
    config = study_from_dict(base(), tmp_path)
    result = StudyResult(config=config, variants=[run("a", 0, 1.0)], scans=None, md_molecules=[], out=tmp_path)
    assert list(result.seed_runs()) == ["a"]


def test_the_ablation_runs_shrunk_to_two_steps(data, tmp_path):
    """The shipped ablation, every variant and seed with its real model, on toy data for 2 steps."""
    config = load_study("ablation")
    config.train_path, config.valid_path, config.scans_path = data / "train.xyz", data / "val.xyz", data / "scans.npz"
    config.device, config.steps, config.seeds = "cpu", 2, [0, 1]
    config.bsct_max_scans, config.md_molecules = 1, 1
    config.md.update(length_ps=0.005)
    result = quiet_run(config, tmp_path / "ablation")
    assert [v.name for v in result.variants] == [v.name for v in config.variants]
    assert all(len(runs) == 2 and all(r.steps == 2 and r.bsct["n_scans"] == 1 for r in runs)
               for runs in result.runs.values())
    study = json.loads((tmp_path / "ablation" / "study.json").read_text())
    assert study["complete"] and len(study["runs"]) == 12
    assert "temperature vs diffknn-and (2 seeds)" in "\n".join(study["findings"])
