"""The model-zoo experiment: members, contract artifacts, a tiny resumable run end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pesprobe.data import load_scans
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.md.torch_models import MorsePair
from pesprobe.zoo.contract import ContractPotential, CutoffArtifact, ZeroModel
from pesprobe.zoo.members import default_members, quick_members
from pesprobe.zoo.runner import ZooProfile, pick_molecules, run_zoo


def test_default_roster_has_24_potentials_of_every_family():
    members = default_members()
    assert len(members) >= 24 and len({m.name for m in members}) == len(members)
    families = {m.family for m in members}
    assert families == {"trained", "third_party", "artifact", "shipped"}
    trained = [m for m in members if m.family == "trained"]
    assert {m.model.get("graph", "diffknn") for m in trained} == {"knn", "diffknn", "radius"}
    assert len({m.seed for m in trained}) >= 2 and len({m.steps for m in trained}) >= 3


def _two_h2(d1: float, d2: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pos = torch.tensor([[0, 0, 0], [d1, 0, 0], [0, 0, 0], [d2, 0, 0]], dtype=torch.float64, requires_grad=False)
    return pos, torch.tensor([0, 0, 1, 1]), torch.tensor([1, 1, 1, 1])


def test_cutoff_step_changes_energy_only_and_kink_changes_forces_by_its_amplitude():
    base = MorsePair()
    pos, sys, z = _two_h2(2.9, 3.1)
    ref = base(pos, None, sys, z)
    step = CutoffArtifact(base, "step", 0.1, 3.0)(pos, None, sys, z)
    assert torch.allclose(step["forces"], ref["forces"])
    assert torch.allclose(step["energy"] - ref["energy"], torch.tensor([0.1, 0.0], dtype=torch.float64))
    kink = CutoffArtifact(base, "kink", 0.5, 3.0)(pos, None, sys, z)
    extra = kink["forces"] - ref["forces"]
    assert torch.allclose(extra[0], torch.tensor([-0.5, 0, 0], dtype=torch.float64))  # pushed apart
    assert torch.allclose(extra[1], torch.tensor([0.5, 0, 0], dtype=torch.float64))
    assert torch.allclose(extra[2:], torch.zeros(2, 3, dtype=torch.float64))
    e = CutoffArtifact(base, "kink", 0.5, 3.0)  # the energy is A·(r_c − d) inside
    assert torch.allclose(e(pos, None, sys, z)["energy"] - ref["energy"], torch.tensor([0.05, 0.0], dtype=torch.float64))
    from pesprobe.md.torch_models import model_identity

    assert model_identity(CutoffArtifact(base, "step", 0.1, 3.0)) != model_identity(CutoffArtifact(base, "kink", 0.1, 3.0))


def test_contract_potential_scores_a_scan_like_the_model():
    scan = next(iter(load_scans(embedded_scans_path())))
    pot = ContractPotential(MorsePair(), "morse-pair", dtype=torch.float64)
    pred = pot.predict(scan.numbers, scan.positions[:5])
    one = MorsePair()(torch.tensor(scan.positions[2]), None, torch.zeros(scan.n_atoms, dtype=torch.long),
                      torch.tensor(scan.numbers))
    assert np.allclose(pred.forces[2], one["forces"].numpy()) and np.isclose(pred.energy[2], float(one["energy"][0]))
    zero = ContractPotential(ZeroModel(), "zero", dtype=torch.float64).predict(scan.numbers, scan.positions[:3])
    assert not zero.forces.any() and not zero.energy.any()


def test_pick_molecules_honours_p_and_s_and_refuses_too_few():
    scans = load_scans(embedded_scans_path())
    molecules, paired = pick_molecules(scans, 4, 2, 1)
    assert len(molecules) == 4 and sum(15 in m.numbers for m in molecules) >= 2
    assert sum(16 in m.numbers for m in molecules) >= 1
    assert {s.id for s in paired} == {s for m in molecules for s in m.scans}
    with pytest.raises(ValueError, match="needs 16"):
        pick_molecules(scans, 16, 3, 3)


def test_tiny_zoo_runs_resumes_and_answers(tmp_path, one_torch_thread):
    from pesprobe.data.structures import write_extxyz
    from pesprobe.train.toy import toy_structures

    write_extxyz(toy_structures(n_per_molecule=3), tmp_path / "train.xyz")
    members = quick_members()
    profile = ZooProfile(scans=embedded_scans_path(), train=tmp_path / "train.xyz", valid=None, members=members,
                         temperatures=(300.0,), length_ps=0.01, seeds=(0,), n_molecules=3, min_p=1, min_s=1,
                         train_overrides={"batch_size": 4, "warmup_steps": 2})
    result = run_zoo(profile, tmp_path / "zoo", progress=False, log=lambda _: None, n_bootstrap=50,
                     n_permutations=50)
    assert set(result["members"]) == {m.name for m in members}
    assert not any("skipped" in r for r in result["members"].values())
    answers = result["answers"]["300"]
    assert set(answers) >= {"full_smoothness", "roughness", "full_forces_mae"}
    assert answers["full_smoothness"]["n_units"] == len(members)
    assert np.isnan(answers["full_forces_mae"]["partial_rho"])
    within = result["answers_by_scope"]["trained"]["300"]["full_smoothness"]
    assert within["n_units"] == sum(m.family == "trained" for m in members)
    assert result["answers_by_scope"]["pesprobe"]["300"]["full_smoothness"]["n_units"] == len(members)
    from pesprobe.zoo.report import SCOPE_TITLES
    from pesprobe.zoo.runner import SCOPES

    assert set(SCOPE_TITLES) == set(SCOPES)
    assert "within the trained Transformers only" in (tmp_path / "zoo" / "evidence.md").read_text()
    assert (tmp_path / "zoo" / "evidence.md").read_text().count("|") > 20
    assert (tmp_path / "zoo" / "plots" / "scatter_300K.png").exists()
    stored = json.loads((tmp_path / "zoo" / "zoo.json").read_text())
    assert stored["molecules"] == result["molecules"]
    again = run_zoo(profile, tmp_path / "zoo", progress=False, log=lambda _: None, n_bootstrap=50,
                    n_permutations=50)
    assert again["members"]["tiny-knn"]["bsct"] == result["members"]["tiny-knn"]["bsct"]
    assert again["compute"]["train_s"] == result["compute"]["train_s"]  # nothing retrained
    # a later run adds one member and takes the others unchanged from the first run's zoo.json
    from dataclasses import replace

    from pesprobe.zoo.members import Member

    extra = Member("zero-extra", "artifact", "zero forces, added later", artifact={"kind": "zero"})
    later = replace(profile, train=None, members=[extra], include=(tmp_path / "zoo" / "zoo.json",))
    merged = run_zoo(later, tmp_path / "later", progress=False, log=lambda _: None, n_bootstrap=50,
                     n_permutations=50, command="pesprobe zoo --only zero-extra --include zoo/zoo.json")
    assert list(merged["members"]) == [m.name for m in members] + ["zero-extra"]
    assert merged["members"]["tiny-knn"]["included_from"] == str(tmp_path / "zoo" / "zoo.json")
    assert "included_from" not in merged["members"]["zero-extra"]
    assert merged["answers"]["300"]["full_smoothness"]["n_units"] == len(members) + 1
    assert merged["compute"]["train_s"] == result["compute"]["train_s"]
    assert not (tmp_path / "later" / "members" / "tiny-knn").exists()  # nothing of the first run redone
    text = (tmp_path / "later" / "evidence.md").read_text()
    assert "Taken unchanged from the earlier run" in text
    assert "Command: `pesprobe zoo --only zero-extra --include zoo/zoo.json`" in text


def test_an_earlier_run_on_other_molecules_or_with_missing_fields_is_refused(tmp_path):
    from pesprobe.zoo.earlier import load_earlier

    molecules = ["C-C/a_0-1", "C-S/b_0-1"]
    row = {"family": "artifact", "reason": "r", "bsct": {"full_smoothness": None}, "seconds": {},
           "md": {"300": {"failure_fraction": 0.5, "per_molecule": {m: 0.5 for m in molecules}, "seeds": [0]}}}
    good = {"members": {"z": row}, "molecules": molecules, "n_scans": 4, "profile": {"length_ps": 0.01},
            "compute": {"train_s": 3.0}}
    path = tmp_path / "zoo.json"
    path.write_text(json.dumps(good))
    earlier = load_earlier(path, molecules, 4, 0.01)
    assert np.isnan(earlier.rows["z"]["bsct"]["full_smoothness"]) and earlier.train_s == 3.0
    with pytest.raises(ValueError, match="'molecules'"):
        load_earlier(path, molecules[:1], 4, 0.01)
    with pytest.raises(ValueError, match="'profile.length_ps'"):
        load_earlier(path, molecules, 4, 2.0)
    path.write_text(json.dumps({**good, "members": {"z": {k: v for k, v in row.items() if k != "bsct"}}}))
    with pytest.raises(ValueError, match="member 'z' lacks field"):
        load_earlier(path, molecules, 4, 0.01)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a zoo.json"):
        load_earlier(path, molecules, 4, 0.01)
    with pytest.raises(FileNotFoundError, match="no such zoo.json"):
        load_earlier(tmp_path / "missing.json", molecules, 4, 0.01)


def test_a_member_that_cannot_be_built_is_skipped_with_its_reason(tmp_path):
    from pesprobe.zoo.members import Member
    from pesprobe.zoo.runner import _Zoo

    profile = ZooProfile(scans=embedded_scans_path(), train=tmp_path / "none.xyz", valid=None,
                         members=[Member("ghost", "third_party", "no such SPEC", spec="no-such-potential")])
    with pytest.raises(Exception, match="no-such-potential"):
        _Zoo(profile, tmp_path, False, print).build(profile.members[0])


def test_reading_names_the_best_figure_and_survives_a_json_round_trip():
    from pesprobe.zoo.report import answer_rows, reading

    answers = {"roughness": {"rho": 0.8, "ci_low": 0.5, "ci_high": 0.95, "p_value": 0.004, "p_holm": 0.04,
                             "partial_rho": 0.6, "partial_ci_low": 0.1, "partial_ci_high": 0.9,
                             "partial_p_value": 0.03, "n_units": 24},
               "full_forces_mae": {"rho": 0.3, "ci_low": None, "ci_high": None, "p_value": 0.2, "p_holm": 0.4,
                                   "partial_rho": None, "partial_ci_low": None, "partial_ci_high": None,
                                   "partial_p_value": None, "n_units": 24}}
    text = reading(json.loads(json.dumps(answers)))
    assert text.startswith("The strongest predictor of MD failure is roughness") and "meets the p < 0.01" in text
    assert "adds information beyond force error" in text
    header, rows = answer_rows(answers)
    assert all(len(row) == len(header) for row in rows) and not any("|" in cell for cell in header)
    assert reading({"x": {"rho": None, "p_value": None}}) == "No figure could be estimated."


def test_an_md_error_of_one_member_is_recorded_and_the_zoo_goes_on(tmp_path, monkeypatch):
    import pesprobe.md as md_package
    from pesprobe.zoo.members import Member

    real = md_package.run_stability

    def flaky(potential, *args, name=None, **kwargs):
        if name == "zero":
            raise RuntimeError("integrator exploded")
        return real(potential, *args, name=name, **kwargs)

    monkeypatch.setattr(md_package, "run_stability", flaky)
    members = [Member("zero", "artifact", "zero forces", artifact={"kind": "zero"}),
               Member("zero-step", "artifact", "zero + cutoff step",
                      artifact={"base": "zero", "kind": "zero"})]
    profile = ZooProfile(scans=embedded_scans_path(), train=tmp_path / "unused.xyz", valid=None, members=members,
                         temperatures=(300.0,), length_ps=0.005, seeds=(0,), n_molecules=3, min_p=1, min_s=1)
    result = run_zoo(profile, tmp_path / "zoo", progress=False, log=lambda _: None, n_bootstrap=10,
                     n_permutations=10)
    assert "integrator exploded" in result["members"]["zero"]["md_errors"]["300"]
    assert "300" in result["members"]["zero-step"]["md"]


def test_an_untrained_member_without_training_data_is_skipped_with_why(tmp_path):
    trained = next(m for m in quick_members() if m.family == "trained")
    profile = ZooProfile(scans=embedded_scans_path(), train=None, valid=None, members=[trained],
                         temperatures=(300.0,), length_ps=0.005, seeds=(0,), n_molecules=3, min_p=1, min_s=1)
    result = run_zoo(profile, tmp_path / "zoo", progress=False, log=lambda _: None, n_bootstrap=10,
                     n_permutations=10)
    assert "needs training structures" in result["members"][trained.name]["skipped"]
