"""Elements a model never saw in training: the model knows its training elements, its calls warn once
per new set of unseen elements, and BSCT and MD results record them per scan and per molecule."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from ase import Atoms

from pesprobe.models import ModelConfig, PESProbeCalculator, TorchPotential, build_model, save_checkpoint
from pesprobe.potentials.elements import UnseenElementWarning, unseen_elements

from conftest import TINY_MODEL, make_scan

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hc_model():
    """A tiny model that knows H and C only (reference energies set as the trainer sets them)."""
    model = build_model(ModelConfig(**TINY_MODEL, dtype="float64"))
    model.set_element_references({1: -13.6, 6: -1030.0})
    return model


def caught(call) -> list[str]:
    """Messages of the UnseenElementWarnings that ``call()`` emits (every one, not Python's once-per-place)."""
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in found if issubclass(w.category, UnseenElementWarning)]


def molecule(symbols: str) -> Atoms:
    """A chain of the atoms of ``symbols`` ~1.1 Å apart (Å)."""
    atoms = Atoms(symbols)
    atoms.positions = np.cumsum(np.random.default_rng(0).uniform(0.9, 1.2, (len(atoms), 3)), axis=0) / np.sqrt(3)
    return atoms


def test_training_elements_from_the_stored_references(tmp_path):
    from pesprobe.models import load_checkpoint

    assert hc_model().training_elements == frozenset({1, 6})
    assert build_model(ModelConfig(**TINY_MODEL)).training_elements is None  # never trained: unknown
    model, _ = load_checkpoint(save_checkpoint(tmp_path / "m.pt", hc_model()))
    assert model.training_elements == frozenset({1, 6})
    assert unseen_elements({1, 6}, [6, 8, 1, 16, 8]) == ["O", "S"]
    assert unseen_elements(None, [6, 8]) == []


def test_trained_model_knows_its_training_elements(tmp_path):
    from pesprobe.data.structures import write_extxyz
    from pesprobe.models import load_checkpoint
    from pesprobe.train import train
    from pesprobe.train.toy import toy_structures

    data = write_extxyz(toy_structures(n_per_molecule=3, molecules=("CH4", "H2O", "C2H6")), tmp_path / "toy.xyz")
    loop = {"steps": 2, "batch_size": 4, "eval_every": 2, "ckpt_every": 2, "log_every": 1, "device": "cpu",
            "dtype": "float64", "out": str(tmp_path / "run")}
    result = train({"model": dict(TINY_MODEL), "data": {"train": str(data), "valid_fraction": 0.0}, "train": loop},
                   progress=False)
    model, _ = load_checkpoint(result.checkpoints["last"])
    assert model.training_elements == frozenset({1, 6, 8})


def test_potential_and_calculator_warn_once_per_new_element_set(tmp_path):
    potential = TorchPotential(hc_model(), dtype=torch.float64, name="tiny-hc")
    hc, cho, chno = molecule("CH3CH"), molecule("CH3OH"), molecule("CH2NOH")
    assert caught(lambda: potential.predict(hc.numbers, hc.positions[None])) == []
    first = caught(lambda: potential.predict(cho.numbers, cho.positions[None]))
    assert len(first) == 1 and "tiny-hc" in first[0] and "O" in first[0] and "H, C" in first[0]
    assert caught(lambda: potential.predict(cho.numbers, cho.positions[None])) == []  # the same set: already said
    again = caught(lambda: potential.evaluate_structures([hc, chno, cho]))
    assert len(again) == 1 and "N, O" in again[0]

    path = save_checkpoint(tmp_path / "hc.pt", hc_model())
    calc = PESProbeCalculator(path, dtype=torch.float64)
    hc.calc = calc
    assert caught(hc.get_potential_energy) == []
    cho.calc = calc
    said = caught(cho.get_forces)
    assert len(said) == 1 and str(path) in said[0] and "O" in said[0]
    # an old checkpoint without references (unknown elements): no warning
    blank = PESProbeCalculator(save_checkpoint(tmp_path / "blank.pt", build_model(ModelConfig(**TINY_MODEL))))
    cho.calc = blank
    assert caught(cho.get_forces) == []


def test_bsct_and_md_record_unseen_elements(tmp_path):
    from pesprobe.data import ScanSet
    from pesprobe.evaluate import evaluate
    from pesprobe.evaluate.result import BSCTResult
    from pesprobe.md import MDConfig, Molecule, run_stability

    potential = TorchPotential(hc_model(), dtype=torch.float64, name="tiny-hc")
    scans = ScanSet([make_scan(scan_id="C-C/hc"),
                     dataclasses.replace(make_scan(seed=1, scan_id="C-S/hs"), numbers=np.array([6, 16, 1]))],
                    source="test")
    said = caught(lambda: evaluate(potential, scans, out=tmp_path / "bsct", progress=False, detect=False))
    assert len(said) == 1 and "S" in said[0]
    systems = json.loads((tmp_path / "bsct" / "results.json").read_text())["systems"]
    assert systems["C-C/hc"]["unseen_elements"] == [] and systems["C-S/hs"]["unseen_elements"] == ["S"]
    assert "elements never seen in training: S in 1 scans (C-S/hs)" in (tmp_path / "bsct" / "summary.md").read_text()
    assert "elements never seen in training: S in 1 scans (C-S/hs)" in (tmp_path / "bsct" / "report.html").read_text()
    assert BSCTResult.read(tmp_path / "bsct").unseen_elements == {"C-S/hs": ["S"]}
    assert "unseen_elements" in (tmp_path / "bsct" / "results.csv").read_text().splitlines()[0]

    mols = [Molecule("hc", [6, 1], [[0, 0, 0], [1.1, 0, 0]]), Molecule("cs", [6, 16], [[0, 0, 0], [1.8, 0, 0]])]
    config = MDConfig(length_ps=0.002, seeds=(0,), save_every=0)
    said = caught(lambda: run_stability(potential, mols, config, out=tmp_path / "md", plots=False, progress=False))
    assert len(said) == 1 and "S" in said[0]
    data = json.loads((tmp_path / "md" / "results.json").read_text())
    assert data["molecules"]["hc"]["unseen_elements"] == [] and data["molecules"]["cs"]["unseen_elements"] == ["S"]
    assert data["summary"]["unseen_elements"] == {"cs": ["S"]}
    assert "unseen_elements" in (tmp_path / "md" / "molecules.csv").read_text().splitlines()[0]


def test_cli_prints_the_unseen_elements(tmp_path):
    from typer.testing import CliRunner

    from pesprobe.cli import app
    from pesprobe.data import ScanSet, write_compact

    path = save_checkpoint(tmp_path / "hc.pt", hc_model())
    data = tmp_path / "scans.npz"
    write_compact(ScanSet([dataclasses.replace(make_scan(scan_id="C-S/hs"), numbers=np.array([6, 16, 1]))],
                          source="test"), data)
    result = CliRunner().invoke(app, ["bsct", "--calc", f"pesprobe:{path}", "--data", str(data),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "elements never seen in training: S in 1 scans (C-S/hs)" in result.output
