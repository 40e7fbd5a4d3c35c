"""The training-data sampler: a valid train/val/test split by molecule, provenance, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.io import read

from pesprobe.data.sample import SampleSettings, sample_dataset, split_molecules
from pesprobe.scan.inputs import embed_all


def test_split_molecules_is_seeded_and_disjoint():
    names = [f"m{k}" for k in range(20)]
    split = split_molecules(names, (0.8, 0.1, 0.1), seed=3)
    assert split == split_molecules(list(reversed(names)), (0.8, 0.1, 0.1), seed=3)
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 16, "val": 2, "test": 2}
    assert sorted(split_molecules(names[:3], (0.8, 0.1, 0.1), seed=0).values()) == ["test", "train", "val"]


def test_settings_are_validated():
    with pytest.raises(ValueError, match="split"):
        SampleSettings(split=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="temperatures"):
        SampleSettings(temperatures=(-5.0,))


def test_sampler_writes_a_valid_split(tmp_path):
    structures, problems = embed_all([("CCO", "ethanol"), ("CC(C)=O", "acetone"), ("CN", "methylamine"),
                                      ("CC(=O)O", "acetic_acid"), ("C1CC", "broken")])
    settings = SampleSettings(temperatures=(300.0, 1200.0), snapshots=3, interval=4, equilibration=4,
                              stretches=3, seed=7)
    report = sample_dataset(structures, tmp_path / "ds", settings, problems=problems, progress=False)
    assert sum(report.counts.values()) == 4 * (1 + 2 * 3 + 3)
    assert any("broken" in str(p) for p in report.problems)
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        frames = read(tmp_path / "ds" / f"{split}.xyz", index=":")
        assert len(frames) == report.counts[split] > 0
        for atoms in frames:
            assert atoms.info["split"] == split and atoms.info["method"] == "gfn2-xtb"
            assert seen.setdefault(atoms.info["mol_id"], split) == split  # a molecule lives in one split
            energy, forces = atoms.get_potential_energy(), atoms.get_forces()
            assert np.isfinite(energy) and forces.shape == (len(atoms), 3) and np.isfinite(forces).all()
        kinds = {a.info["config_type"] for a in frames}
        assert kinds == {"equilibrium", "md", "stretch"}
        assert {a.info["temperature_K"] for a in frames if a.info["config_type"] == "md"} == {300.0, 1200.0}
    assert len(seen) == 4
    provenance = json.loads((tmp_path / "ds" / "provenance.json").read_text())
    assert provenance["method"] == "gfn2-xtb" and provenance["temperatures_K"] == [300.0, 1200.0]
    assert provenance["seeds"]["master"] == 7 and set(provenance["molecules"]) == set(seen)

    # equilibrium labels are the reference's: forces nearly vanish at the relaxed geometry
    eq = [a for s in ("train", "val", "test") for a in read(tmp_path / "ds" / f"{s}.xyz", index=":")
          if a.info["config_type"] == "equilibrium"]
    assert max(np.abs(a.get_forces()).max() for a in eq) < 0.06

    again = sample_dataset(structures, tmp_path / "ds", settings, problems=problems, progress=False)
    assert again.reused == 4 and again.counts == report.counts


def test_cli_data_sample(tmp_path):
    from typer.testing import CliRunner

    from pesprobe.cli import app

    result = CliRunner().invoke(app, ["data", "sample", "--smiles", "CO", "--smiles", "CC", "--smiles", "CN",
                                      "--temperatures", "500", "--snapshots", "2", "--interval", "2",
                                      "--stretches", "1", "--out", str(tmp_path / "d"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "12 structures" in result.output
    assert sum(len(read(tmp_path / "d" / f"{s}.xyz", index=":")) for s in ("train", "val", "test")) == 12


def test_sampler_keeps_a_repeated_molecule_in_one_split_and_never_reuses_another_molecule(tmp_path):
    settings = SampleSettings(temperatures=(300.0,), snapshots=1, interval=2, equilibration=2, stretches=1,
                              split=(0.34, 0.33, 0.33), seed=3)
    names = [("CO", "m1"), ("CCO", "m2"), ("CC", "m3"), ("CO", "m4"), ("CN", "m5"), ("CCC", "m6")]
    structures, _ = embed_all(names)
    report = sample_dataset(structures, tmp_path / "ds", settings, progress=False)
    where = {name: split for split, members in report.molecules.items() for name in members}
    assert where["m1"] == where["m4"]  # methanol twice: one split
    # a new molecule under an old name is sampled, not taken from the old one's work files
    renamed, _ = embed_all([("CCCC", "m3")] + [n for n in names if n[1] != "m3"])
    again = sample_dataset(renamed, tmp_path / "ds", settings, progress=False)
    assert again.reused == 5
    m3 = [a for s in ("train", "val", "test") if again.counts[s]
          for a in read(tmp_path / "ds" / f"{s}.xyz", index=":") if a.info["mol_id"] == "m3"]
    assert m3 and all(len(a) == 14 for a in m3)  # butane, not ethane
