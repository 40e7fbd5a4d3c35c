"""Study files: the shipped studies, variant chains, every validation error, data checks and subsets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from pesprobe.data import ScanSet
from pesprobe.study.config import StudyError, load_study, study_from_dict
from pesprobe.study.data import MissingDataError, check_data, md_molecules, spread


def base(**changes) -> dict:
    raw = {"data": {"train": "train.xyz", "scans": "scans.npz"}, "budget": {"steps": 10},
           "model": {"d_model": 16, "n_heads": 2},
           "variants": [{"name": "a", "model": {"graph": "knn"}},
                        {"name": "b", "extends": "a", "label": "+ diffknn", "model": {"graph": "diffknn"}}]}
    raw.update(changes)
    return raw


def test_shipped_default_is_the_papers_sequence():
    config = load_study("default")
    names = [v.name for v in config.variants]
    assert names == ["knn", "diffknn", "temperature", "smearing", "direct"]
    models = {v.name: v.model for v in config.variants}
    assert models["knn"]["graph"] == "knn" and models["diffknn"]["graph"] == "diffknn"
    # each step changes one thing on top of the previous design
    assert models["temperature"]["attention_temperature"] > models["diffknn"]["attention_temperature"]
    assert models["smearing"]["rbf_width"] > models["temperature"]["rbf_width"]
    assert models["direct"]["force_head"] == "direct" and models["smearing"]["force_head"] == "conservative"
    assert {k: v for k, v in models["direct"].items() if k != "force_head"} == \
        {k: v for k, v in models["smearing"].items() if k != "force_head"}
    # shipped studies resolve data against the current folder and say how to build them
    assert config.train_path == Path.cwd() / "data" / "xtb-train" / "train.xyz"
    assert config.scan_recipe.preset == "xtb-organic" and config.train_recipe.preset == "xtb-train"


def test_shipped_quick_study_loads_with_inline_recipes():
    config = load_study("quick")
    assert len(config.variants) == 5 and config.steps is not None and config.steps <= 50
    assert config.md_config().n_steps <= 500
    assert config.train_recipe.smiles and config.scan_recipe.smiles


def test_extends_chain_merges_overrides(tmp_path):
    raw = base()
    raw["variants"].append({"name": "c", "extends": "b", "model": {"rbf_width": 3.0}})
    config = study_from_dict(raw, tmp_path)
    c = config.variant("c")
    assert c.model == {"d_model": 16, "n_heads": 2, "graph": "diffknn", "rbf_width": 3.0}
    assert c.overrides == {"rbf_width": 3.0} and c.extends == "b"
    assert config.train_path == tmp_path / "train.xyz" and config.valid_path is None


@pytest.mark.parametrize("change, message", [
    ({"modle": {}}, "modle: unknown key"),
    ({"budget": {"steps": 5, "minutes": 2}}, "exactly one of steps or minutes"),
    ({"budget": {}}, "exactly one of steps or minutes"),
    ({"budget": {"minutes": -1}}, "budget.minutes"),
    ({"train": {"steps": 5}}, "train.steps: set by the study"),
    ({"train": {"lr": -1.0}}, "train.lr"),
    ({"md": {"temperature_K": -5}}, "md: invalid MD settings"),
    ({"md": {"molecules": 0}}, "md.molecules"),
    ({"bsct": {"max_scan": 3}}, "bsct.max_scan: unknown key"),
    ({"device": "tpu"}, "device"),
    ({"threads": 0}, "threads: must be >= 1"),
    ({"data": {"scans": "s.npz"}}, "data.train"),
    ({"variants": []}, "variants: must be a non-empty list"),
    ({"variants": [{"name": "a"}, {"name": "a"}]}, "used twice"),
    ({"variants": [{"name": "a", "extends": "z"}]}, "variants[0].extends: 'z' is not an earlier variant"),
    ({"variants": [{"name": "a b"}]}, "variants[0].name"),
    ({"variants": [{"name": "a", "model": {"graph": "mesh"}}]}, "variants (a): model: ModelConfig.graph"),
    ({"variants": [{"name": "a", "modle": {}}]}, "variants[0].modle: unknown key"),
    ({"build": {"scans": {"out": "x"}}}, "build.scans: give a preset or a smiles list"),
    ({"build": {"train": {"preset": "xtb-train"}}}, "build.train.out"),
    ({"build": {"train": {"preset": "xtb-train", "out": "d", "split": [0.5, 0.5, 0.5]}}}, "build.train: split"),
])
def test_bad_study_names_the_key(tmp_path, change, message):
    with pytest.raises(StudyError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        study_from_dict(base(**change), tmp_path)


def test_bad_file_is_named(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("variants: [unclosed")
    with pytest.raises(StudyError, match="s.yaml: not valid YAML"):
        load_study(path)
    path.write_text(yaml.safe_dump(base(budget={"steps": 0})))
    with pytest.raises(StudyError, match=r"s.yaml: budget.steps: must be >= 1"):
        load_study(path)
    with pytest.raises(StudyError, match="cannot read"):
        load_study(tmp_path / "absent.yaml")


def test_missing_data_says_which_command_makes_it(tmp_path):
    raw = base(data={}, build={"train": {"preset": "xtb-train", "out": "d/train", "snapshots": 3},
                               "scans": {"preset": "xtb-organic", "out": "d/scans", "per_type": 2}})
    config = study_from_dict(raw, tmp_path)
    assert config.scans_path == tmp_path / "d" / "scans.npz"
    assert config.valid_path == tmp_path / "d" / "train" / "val.xyz"
    with pytest.raises(MissingDataError) as info:
        check_data(config)
    text = str(info.value)
    assert "pesprobe data sample" in text and "--preset xtb-train" in text and "--snapshots 3" in text
    assert "pesprobe scan build" in text and "--per-type 2" in text and "--build-data" in text
    # present files are not reported
    (tmp_path / "d" / "scans.npz").parent.mkdir(parents=True)
    (tmp_path / "d" / "scans.npz").write_bytes(b"")
    with pytest.raises(MissingDataError) as info:
        check_data(config)
    assert "scan build" not in str(info.value)


def _scans() -> ScanSet:
    from conftest import make_scan

    scans = []
    for group in ("C-C", "C-O", "N-O"):
        for k in range(3):
            s = make_scan(n_frames=8, seed=k, scan_id=f"{group}/m{k}")
            s.meta["bond"] = group
            s.meta["unperturbed"] = s.positions[3] + 0.01 * k + {"C-C": 0.0, "C-O": 0.1, "N-O": 0.2}[group]
            scans.append(s)
    return ScanSet(scans, source="generated")


def test_spread_and_md_molecules_pick_across_bond_types():
    scans = _scans()
    picked = spread(scans, 4)
    assert sorted(s.id for s in picked) == ["C-C/m0", "C-C/m1", "C-O/m0", "N-O/m0"]
    assert spread(scans, None) is scans
    mols = md_molecules(scans, 3)
    assert [m.id for m in mols] == ["C-C/m0", "C-O/m0", "N-O/m0"]
    np.testing.assert_allclose(mols[1].positions, scans["C-O/m0"].meta["unperturbed"])
    assert [m.id for m in md_molecules(scans, ["N-O/m2"])] == ["N-O/m2"]
    with pytest.raises(ValueError, match="md.molecules: scan id.*X/1"):
        md_molecules(scans, ["X/1"])


def test_md_molecules_skip_repeated_geometries():
    scans = _scans()
    for s in scans:  # every scan of a group starts from the same molecule
        s.meta["unperturbed"] = scans[0].meta["unperturbed"] + (0.5 if s.group == "C-O" else 0.0)
    assert [m.id for m in md_molecules(scans, 5)] == ["C-C/m0", "C-O/m0"]
