"""The xtb-train-large preset: size, chemistry, far-from-equilibrium settings, and no held-out molecule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pesprobe.data.presets import composition, held_out_smiles, molecule_keys
from pesprobe.scan.inputs import packaged_smiles
from pesprobe.scan.presets import sample_preset

ROOT = Path(__file__).resolve().parents[1]
PRESET = "xtb-train-large"


@pytest.fixture(scope="module")
def entries() -> list[tuple[str, str]]:
    return packaged_smiles(sample_preset(PRESET).smiles_file)


def _benchmark_md_molecules() -> tuple[str, ...]:
    """``MOLECULES`` of benchmarks/md_monitor_false_alarms.py, read without importing the benchmark."""
    tree = ast.parse((ROOT / "benchmarks" / "md_monitor_false_alarms.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "MOLECULES" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise AssertionError("MOLECULES not found in the benchmark")


def test_large_preset_composition(entries):
    c = composition(entries, held_out=set())
    assert c.n_molecules == c.n_distinct >= 400
    assert len({name for _, name in entries}) == len(entries)
    assert c.with_element["P"] >= 60 and c.with_element["S"] >= 60
    assert c.with_element["N"] >= 60 and c.with_element["O"] >= 60
    assert not c.bad_elements and not c.bad_size
    assert 3 <= c.atom_range[0] and c.atom_range[1] <= 40


def test_large_preset_is_disjoint_from_held_out_molecules(entries):
    held = held_out_smiles()
    bsct = packaged_smiles("bsct_xtb.smi")
    md_names = set(_benchmark_md_molecules())
    md = [s for s, name in bsct if name in md_names]
    assert len(md) == len(md_names)  # every MD test molecule is in the BSCT list, hence held out
    assert all(set(molecule_keys(s)) <= held for s, _ in bsct + [(m, "") for m in md])
    train = {key for s, _ in entries for key in molecule_keys(s)}
    assert not train & held
    assert composition(entries, held).held_out == []


def test_held_out_check_flags_a_planted_molecule(entries):
    smiles, name = packaged_smiles("bsct_xtb.smi")[0]
    # an atom-mapped, explicitly hydrogenated spelling of the same molecule is caught too
    from rdkit import Chem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    for atom in mol.GetAtoms():
        atom.SetAtomMapNum(atom.GetIdx() + 1)
    planted = entries[:5] + [(Chem.MolToSmiles(mol), "planted")]
    assert composition(planted).held_out == ["planted"]


def test_composition_flags_elements_and_sizes():
    c = composition([("CCl", "chloromethane"), ("[H][H]", "hydrogen"), ("CCO", "ethanol")], held_out=set())
    assert c.bad_elements == ["chloromethane"] and c.bad_size == ["hydrogen"]
    assert c.n_distinct == 3 and c.with_element["O"] == 1


def test_large_preset_holds_out_at_least_30_validation_molecules(entries):
    from pesprobe.data.sample import SampleSettings, split_molecules

    p = sample_preset(PRESET)
    assignment = split_molecules([name for _, name in entries], SampleSettings().split, p.seed)
    assert sum(split == "val" for split in assignment.values()) >= 30
    assert sum(split == "test" for split in assignment.values()) >= 30


def test_large_preset_samples_near_and_far_from_equilibrium():
    p = sample_preset(PRESET)
    assert min(p.temperatures) <= 300 and max(p.temperatures) >= 1200
    assert p.stretch_range[0] <= 0.5 and p.stretch_range[1] >= 2.0
    assert p.stretches > 0 and p.snapshots > 0


def test_sample_command_passes_the_presets_stretch_range(monkeypatch, tmp_path):
    """``pesprobe data sample --preset`` builds its settings from every sampling field of the preset."""
    from typer.testing import CliRunner

    import pesprobe.data.sample as sample
    import pesprobe.scan.commands as commands
    from pesprobe.cli import app
    from pesprobe.data.sample import SampleReport
    from pesprobe.scan.inputs import from_smiles

    seen = {}

    def fake_sample(structures, out, settings, **kwargs):
        seen["settings"] = settings
        return SampleReport(counts={}, molecules={})

    def fake_read(inputs, smiles, packaged, seed):
        seen["packaged"] = packaged
        return [from_smiles("CCO", "ethanol")], []

    monkeypatch.setattr(sample, "sample_dataset", fake_sample)
    monkeypatch.setattr(commands, "_read_inputs", fake_read)
    result = CliRunner().invoke(app, ["data", "sample", "--preset", PRESET, "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    p, s = sample_preset(PRESET), seen["settings"]
    assert s.stretch_range == p.stretch_range and s.equilibration == p.equilibration
    assert (s.temperatures, s.snapshots, s.interval, s.stretches) == (p.temperatures, p.snapshots, p.interval,
                                                                       p.stretches)
    assert seen["packaged"] == p.smiles_file
