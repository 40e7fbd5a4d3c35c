"""The worked adapters in examples/*_model.py: their settings errors, a missing package, and a real run
where the package installs here with a model that ships or that the test builds (else skipped with why)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from pesprobe.data import ScanSet, load_scans
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.potentials.adapters import AdapterSetupError, MissingPackage, UnsupportedElementError

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: example -> (module whose absence it reports, whether PESPROBE_MODEL is required)
ADAPTERS = {
    "mace": ("mace.calculators", True), "sevennet": ("sevenn.calculator", False),
    "chgnet": ("chgnet.model", False), "nequip": ("nequip.ase", True),
    "orb": ("orb_models.forcefield.pretrained", True), "fairchem": ("fairchem.core", True),
    "metatomic": ("metatomic_ase", True),
}
#: why the ones whose weights cannot be had offline here are not run on a real model: (not installed, installed)
NO_OFFLINE_MODEL = {
    "mace": ("mace-torch is not installed: 0.3.16 pins e3nn==0.4.4, which the sevenn extra's e3nn>=0.5 excludes",
             "MACE weights are downloaded at load time (no offline model file here)"),
    "nequip": ("nequip is not installed (pip install nequip)",
               "NequIP ships no model; a compiled model needs a trained one and nequip-compile"),
    "orb": ("orb-models is not installed (pip install orb-models)",
            "ORB weights are downloaded at load time (no offline checkpoint here)"),
    "fairchem": ("fairchem-core is not installed (it pulls CUDA toolkits; pip install fairchem-core)",
                 "UMA/eSEN weights are gated downloads (no offline checkpoint here)"),
}


def _load_example(name: str):
    path = EXAMPLES / f"{name}_model.py"
    spec = importlib.util.spec_from_file_location(f"pesprobe_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("PESPROBE_MODEL", "PESPROBE_DEVICE", "PESPROBE_DTYPE", "PESPROBE_BOX", "PESPROBE_TASK"):
        monkeypatch.delenv(var, raising=False)


def _one_scan(scan_id: str) -> ScanSet:
    scans = load_scans(embedded_scans_path())
    return ScanSet([s for s in scans if s.id == scan_id], source=scans.source)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_each_example_documents_device_dtype_box_and_elements(name):
    doc = _load_example(name).__doc__
    for word in ("PESPROBE_MODEL", "PESPROBE_DEVICE", "PESPROBE_DTYPE", "Periodic box", "Elements", "Install"):
        assert word in doc, (name, word)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_model_setting_errors_are_clear(name, tmp_path, monkeypatch):
    module = _load_example(name)
    required = ADAPTERS[name][1]
    if required:
        with pytest.raises(AdapterSetupError, match="set PESPROBE_MODEL to"):
            module.make()
    monkeypatch.setenv("PESPROBE_MODEL", str(tmp_path / "missing.model"))
    with pytest.raises(AdapterSetupError, match="missing.model: no such file"):
        module.make()
    (tmp_path / "x.model").write_bytes(b"")
    monkeypatch.setenv("PESPROBE_MODEL", str(tmp_path / "x.model"))
    monkeypatch.setenv("PESPROBE_DTYPE", "float16")
    with pytest.raises(AdapterSetupError, match="PESPROBE_DTYPE=float16"):
        module.make()


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_a_missing_package_names_the_install_command(name, tmp_path, monkeypatch):
    target = ADAPTERS[name][0]
    for key in [k for k in sys.modules if k == target.split(".")[0] or k.startswith(target.split(".")[0] + ".")]:
        monkeypatch.delitem(sys.modules, key)
    monkeypatch.setitem(sys.modules, target.split(".")[0], None)  # imports fail as if not installed
    model = tmp_path / "x.model"
    model.write_bytes(b"")
    monkeypatch.setenv("PESPROBE_MODEL", str(model))
    with pytest.raises(MissingPackage, match=r"needs .*pip install"):
        _load_example(name).make()


@pytest.mark.parametrize("name", sorted(NO_OFFLINE_MODEL))
def test_examples_without_an_offline_model(name):
    absent, present = NO_OFFLINE_MODEL[name]
    pytest.skip(present if _installed(ADAPTERS[name][0]) else absent)


@pytest.mark.parametrize("name, spec, dtype_env", [("sevennet", "7net-0", None), ("chgnet", "chgnet", None)])
def test_shipped_model_examples_match_their_builtin_spec(name, spec, dtype_env, monkeypatch):
    if not _installed(ADAPTERS[name][0]):
        extra = {"sevennet": "sevenn", "chgnet": "chgnet"}[name]
        pytest.skip(f"{extra} is not installed (pip install 'pesprobe[{extra}]')")
    from pesprobe.potentials.registry import resolve

    scan = _one_scan("N-O/4583")[0]  # 5 atoms; 8 of its frames, from compressed to stretched
    frames = scan.positions[::14]
    ours = resolve(f"{EXAMPLES / f'{name}_model.py'}:make").predict(scan.numbers, frames, scan.cell, scan.pbc)
    builtin = resolve(spec).predict(scan.numbers, frames, scan.cell, scan.pbc)
    assert not ours.failed.any() and np.isfinite(ours.forces).all() and np.ptp(ours.energy) > 0
    assert np.array_equal(ours.forces, builtin.forces) and np.array_equal(ours.energy, builtin.energy)
    calc = _load_example(name).make()
    outside = Atoms(numbers=[1, 99], positions=[[0, 0, 0], [0, 0, 1.5]])  # einsteinium: in neither model's set
    outside.calc = calc
    with pytest.raises(UnsupportedElementError, match=r"Es \(Z=99\)"):
        outside.get_potential_energy()
    monkeypatch.setenv("PESPROBE_DTYPE", "float64")
    with pytest.raises(AdapterSetupError, match="float32 only"):
        _load_example(name).make()


HARMONIC = """
from typing import Dict, List, Optional

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import AtomisticModel, ModelCapabilities, ModelMetadata, ModelOutput, System


class Harmonic(torch.nn.Module):
    def forward(self, systems: List[System], outputs: Dict[str, ModelOutput],
                selected_atoms: Optional[Labels] = None) -> Dict[str, TensorMap]:
        energies = []
        for system in systems:
            centred = system.positions - system.positions.mean(dim=0)
            energies.append(0.25 * (centred ** 2).sum())
        values = torch.stack(energies).reshape(-1, 1)
        samples = Labels("system", torch.arange(len(systems), dtype=torch.int32).reshape(-1, 1))
        block = TensorBlock(values=values, samples=samples, components=[],
                            properties=Labels("energy", torch.zeros((1, 1), dtype=torch.int32)))
        return {"energy": TensorMap(Labels("_", torch.zeros((1, 1), dtype=torch.int32)), [block])}


def export(path, types):
    capabilities = ModelCapabilities(outputs={"energy": ModelOutput(quantity="energy", unit="eV", per_atom=False)},
                                     atomic_types=types, interaction_range=0.0, length_unit="Angstrom",
                                     supported_devices=["cpu"], dtype="float64")
    AtomisticModel(Harmonic().eval(), ModelMetadata(), capabilities).save(path)
"""


CHECK = """
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harmonic

from pesprobe.data import load_scans
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.evaluate import evaluate

harmonic.export(os.environ["PESPROBE_MODEL"], [1, 6, 7, 8])
scans = load_scans(embedded_scans_path())
result = evaluate(sys.argv[1], scans, progress=False, detect=False)
scored = 0
for scan in scans:
    pred = result.predictions[scan.id]
    if set(scan.numbers.tolist()) <= {1, 6, 7, 8}:
        centred = scan.positions - scan.positions.mean(axis=1, keepdims=True)
        assert not pred.failed.any(), pred.errors
        np.testing.assert_allclose(pred.energy, 0.25 * (centred ** 2).sum(axis=(1, 2)), rtol=1e-12)
        np.testing.assert_allclose(pred.forces, -0.5 * centred, rtol=1e-10, atol=1e-12)
        scored += 1
    else:  # P, S, F or Cl: outside the model's set, named in every frame's error
        assert pred.failed.all(), scan.id
        assert "has no parameters for" in pred.errors[0] and "metatomic model harmonic.pt" in pred.errors[0], pred.errors[0]
assert 0 < scored < len(scans), scored
print("checked", scored, "scored and", len(scans) - scored, "refused scans")
"""


def test_metatomic_example_on_a_test_built_model(tmp_path):
    """Exported, loaded and run in a fresh process: once torch_geometric (sevenn, chgnet) is imported,
    TorchScript can no longer compile metatensor-operations in that process."""
    if not (_installed("metatomic_ase") and _installed("metatomic")):
        pytest.skip("metatomic-torch / metatomic-ase are not installed (pip install 'pesprobe[metatomic]')")
    (tmp_path / "harmonic.py").write_text(HARMONIC)
    (tmp_path / "check.py").write_text(CHECK)
    env = dict(os.environ, PESPROBE_MODEL=str(tmp_path / "harmonic.pt"), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(tmp_path / "check.py"), f"{EXAMPLES / 'metatomic_model.py'}:make"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "checked" in done.stdout
