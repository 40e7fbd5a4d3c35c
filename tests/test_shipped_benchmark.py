"""benchmarks/shipped_model.py and tools/make_model_card.py on a tiny case: synthetic Morse-labelled data
(H, C, S), a tiny model trained for a few steps, two scans (one with P, which the model never saw), MD of
three molecules for a few fs."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY_MODEL, make_scan

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def load(path: Path):
    """Import a script of benchmarks/ or tools/ as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def write_split(path: Path, names: tuple[str, ...], split: str) -> None:
    """Per molecule an equilibrium, two rattled ("md") and a stretched frame, labelled with ASE's Morse."""
    from ase.build import molecule
    from ase.calculators.morse import MorsePotential
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    rng = np.random.default_rng(len(split))
    frames = []
    for name in names:
        base = molecule(name)
        for kind, shift in (("equilibrium", 0.0), ("md", 0.05), ("md", 0.05), ("stretch", 0.0)):
            atoms = base.copy()
            atoms.positions += rng.normal(scale=shift, size=atoms.positions.shape) if shift else 0.0
            if kind == "stretch":
                atoms.positions *= 1.1
            atoms.calc = MorsePotential(epsilon=1.0, r0=1.4, rho0=6.0)
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
            atoms.info.update(mol_id=name, config_type=kind, split=split)
            frames.append(atoms)
    write(path, frames, format="extxyz")


@pytest.fixture(scope="module")
def tiny_case(tmp_path_factory):
    """Data, scans, a trained tiny model, a compared potential's BSCT, and the benchmark's outputs."""
    import torch

    from pesprobe.data import ScanSet, write_compact
    from pesprobe.evaluate import evaluate
    from pesprobe.train import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("shipped")
    data = root / "data"
    data.mkdir()
    write_split(data / "train.xyz", ("CH4", "C2H6", "CH3SH"), "train")
    write_split(data / "val.xyz", ("C2H4",), "val")
    write_split(data / "test.xyz", ("C3H8", "CH3SCH3"), "test")
    scans = root / "scans.npz"
    write_compact(ScanSet([make_scan(scan_id="C-C/cc"),
                           dataclasses.replace(make_scan(seed=1, scan_id="C-P/cp"), numbers=np.array([6, 15, 1]))],
                          source="test"), scans)
    loop = {"steps": 4, "batch_size": 4, "eval_every": 2, "ckpt_every": 2, "log_every": 1, "device": "cpu",
            "dtype": "float32", "warmup_steps": 1, "out": str(root / "run")}
    train({"model": dict(TINY_MODEL), "data": {"train": str(data / "train.xyz"), "valid": str(data / "val.xyz")},
           "train": loop}, progress=False)
    evaluate("morse", scans, out=root / "variant", progress=False, report=False)
    out = root / "bench"
    with pytest.warns(UserWarning, match="P never seen in training"):
        report = load(ROOT / "benchmarks" / "shipped_model.py").main([
            "--model", str(root / "run" / "last.pt"), "--data", str(data), "--scans", str(scans), "--out", str(out),
            "--compare", f"variant={root / 'variant'}", "--gfn-ff-spec", "lj", "--md-molecules", "3",
            "--min-p", "1", "--min-s", "1", "--seeds", "1", "--length-ps", "0.004"])
    return root, out, report


def test_benchmark_measures_every_target(tiny_case):
    root, out, report = tiny_case
    assert json.loads((out / "shipped_model.json").read_text()) == report
    assert not list(out.glob("*.tmp"))
    assert report["checkpoint"]["elements"] == ["H", "C", "S"] and report["checkpoint"]["parameters"] > 0
    acc = report["accuracy"]
    assert acc["test_molecules"] == 2 and acc["test_structures"] == 8 and acc["failed_structures"] == 0
    assert set(acc["by_config_type"]) == {"equilibrium", "md", "stretch"}
    for block, key in ((acc["model"], "mae"), (acc["model"], "forces_mae"), (acc["linear"], "mae"),
                       (acc["zero_forces"], "forces_mae")):
        assert block[key] > 0
    md = report["md"]
    # both test molecules (CH3SCH3 has S), topped up with the P molecule of the scans
    assert [(r["molecule"], r["source"]) for r in md["molecules"]] == [("C-P/cp", "scans"), ("CH3SCH3", "test"),
                                                                       ("C3H8", "test")]
    assert md["n_with_p"] == 1 and md["n_with_s"] == 1 and md["n_trajectories"] == 3
    assert md["molecules"][0]["unseen_elements"] == ["P"] and md["molecules"][1]["unseen_elements"] == []
    assert (out / "md" / "results.json").is_file()
    bsct = report["bsct"]
    assert bsct["model"]["unseen_elements"] == {"C-P/cp": ["P"]}
    assert set(bsct["others"]) == {"variant", "gfn-ff"} and "computed: lj" in bsct["others"]["gfn-ff"]["source"]
    assert all(r["paired"]["n_scans"] == 2 and r["same_scans"] for r in bsct["others"].values())
    assert len(report["targets"]) == 7
    for t in report["targets"]:
        assert set(t) == {"target", "measured", "passed", "margin"} and t["margin"]
    md_row = next(t for t in report["targets"] if t["target"].startswith("MD"))
    # a few fs on 3 molecules is not the target's test: never a pass
    assert md_row["passed"] is (False if md["n_failed"] else None)
    size = report["targets"][-1]
    assert size["passed"] is True and size["margin"].startswith("met by")
    text = (out / "shipped_model.md").read_text()
    for heading in ("## Held-out accuracy", "## BSCT-xTB", "## MD stability", "## Targets"):
        assert heading in text
    assert "python benchmarks/shipped_model.py --model" in text and "P in 1 scans (C-P/cp)" in text


def test_skip_flags_leave_targets_unmeasured(tiny_case):
    root, _, _ = tiny_case
    report = load(ROOT / "benchmarks" / "shipped_model.py").main([
        "--model", str(root / "run" / "last.pt"), "--data", str(root / "data"), "--out", str(root / "quick"),
        "--skip-md", "--skip-bsct"])
    assert "md" not in report and "bsct" not in report
    assert [t["passed"] for t in report["targets"]][3:6] == [None, None, None]


def test_model_card_from_the_tiny_outputs(tiny_case):
    root, out, report = tiny_case
    card = root / "card" / "MODEL_CARD.md"
    load(ROOT / "tools" / "make_model_card.py").main(["--run", str(root / "run"), "--benchmark",
                                                      str(out / "shipped_model.json"), "--out", str(card)])
    text = card.read_text()
    for section in ("# Model card: `pesprobe:", "## Design", "## Training data and training", "## Held-out accuracy",
                    "## BSCT-xTB", "## MD stability", "## Targets", "## Learning curves", "## Limitations",
                    "## Reproduce"):
        assert section in text, section
    assert "demonstration and research model" in text
    assert "elements seen in training | H, C, S" in text and "UnseenElementWarning" in text
    assert f"{report['checkpoint']['parameters']:,} parameters" in text
    assert "| step | train loss |" in text  # the learning-curve table of the run
    assert f"pesprobe train {root / 'run' / 'config.yaml'}" in text and report["command"] in text
    assert "python tools/make_model_card.py --run" in text
