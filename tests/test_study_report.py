"""Study analysis and report from synthetic variant results: verdicts, correlations, files, the HTML page."""

from __future__ import annotations

import csv
import json
import math
import re

import pytest

from pesprobe.data import ScanSet
from pesprobe.study.analysis import correlations, design_steps, discordant, findings, table_rows
from pesprobe.study.config import study_from_dict
from pesprobe.study.runner import StudyResult, VariantResult

MOLECULES = ("C-C/m0", "C-O/m0", "N-O/m0")


def variant(name: str, fsd: float, jump: float, extends: str | None = None, failed: float = 0.0) -> VariantResult:
    """A variant whose per-molecule FSD and temperature jump scale with ``fsd`` and ``jump``."""
    scans = {m: {"full_smoothness": fsd * (1 + k), "compress_smoothness": 2 * fsd * (1 + k),
                 "stretch_smoothness": fsd, "spurious_minima": 0.0, "energy_force_consistency": 0.01}
             for k, m in enumerate(MOLECULES)}
    molecules = {m: {"failure_fraction": failed, "early_failure": failed / 2, "abs_energy_drift_meV_atom_ps": jump / 10,
                     "energy_excursion_meV_atom": jump / 5, "temperature_jump_K": jump * (1 + k),
                     "temperature_peak_ratio": 1.1, "time_to_failure_ps": 1.0}
                 for k, m in enumerate(MOLECULES)}
    mean_fsd = fsd * 2
    return VariantResult(
        name=name, label=f"label {name}", extends=extends, model={"graph": "knn"}, steps=10, key="k", identity="id",
        valid={"valid_energy_mae": 0.01, "valid_forces_mae": 0.2, "n_train": 5, "n_valid": 2},
        bsct={"full_smoothness": mean_fsd, "compress_smoothness": 2 * mean_fsd, "stretch_smoothness": fsd,
              "full_energy_mae": 0.1, "full_forces_mae": 0.2, "spurious_minima": 0.0,
              "energy_force_consistency": 0.01, "n_failed_frames": 0, "n_scans": 3},
        scans=scans, md={"n_trajectories": 3, "n_failed": int(3 * failed), "failures_by_criterion": {},
                         "mean": {"time_to_failure_ps": 1.0, "abs_energy_drift_meV_atom_ps": jump / 10,
                                  "temperature_jump_K": jump}},
        molecules=molecules, seconds={"train": 3.0, "bsct": 0.5, "md": 1.0})


@pytest.fixture
def chain() -> list[VariantResult]:
    # FSD falls at every step except the last, which raises it; MD instability follows FSD
    return [variant("a", 4.0, 40.0), variant("b", 2.0, 20.0, "a"), variant("c", 1.0, 10.0, "b"),
            variant("d", 3.0, 30.0, "c")]


def test_design_steps_and_verdicts(chain):
    steps = {s.child: s for s in design_steps(chain)}
    assert set(steps) == {"b", "c", "d"}
    assert steps["b"].verdict() == "lowered" and steps["b"].change["full"] == pytest.approx(-0.5)
    assert steps["d"].verdict() == "raised" and steps["d"].change["full"] == pytest.approx(2.0)
    tie = design_steps([variant("a", 1.0, 1.0), variant("b", 1.01, 1.0, "a")])[0]
    assert tie.verdict() == "unchanged"


def test_correlations_follow_the_data(chain):
    corr = correlations(chain, n_bootstrap=200, n_permutations=200)
    across = next(r for r in corr if r["group"] == "across variants" and r["measure"] == "temperature_jump_K")
    assert across["value"] == pytest.approx(1.0) and across["n"] == 4
    pooled = next(r for r in corr if r["group"] == "pooled" and r["measure"] == "temperature_jump_K")
    assert pooled["n"] == 12 and pooled["value"] > 0.9
    constant = next(r for r in corr if r["group"] == "across variants" and r["measure"] == "failure_fraction")
    assert math.isnan(constant["value"])
    # reversing MD instability makes FSD anti-rank it, and every pair becomes discordant
    flipped = [variant(v.name, v.bsct["stretch_smoothness"], 50.0 - v.md["mean"]["temperature_jump_K"], v.extends)
               for v in chain]
    corr = correlations(flipped, n_bootstrap=200, n_permutations=200)
    across = next(r for r in corr if r["group"] == "across variants" and r["measure"] == "temperature_jump_K")
    assert across["value"] == pytest.approx(-1.0)
    assert len(discordant(flipped, "temperature_jump_K")) == 6
    assert discordant(chain, "temperature_jump_K") == []


def test_findings_state_what_the_numbers_show(chain):
    lines = findings(chain, correlations(chain, n_bootstrap=200, n_permutations=200))
    text = "\n".join(lines)
    assert "b vs a: FSD lowered" in text and "d vs c: FSD raised" in text
    assert re.search(r"Across the 4 variants .* ranked MD stability by temperature_jump_K: Spearman ρ = \+1\.00", text)
    assert "not assessable for failure_fraction" in text
    assert "Where FSD did not rank" not in text
    flipped = [variant(v.name, v.bsct["stretch_smoothness"], 50.0 - v.md["mean"]["temperature_jump_K"], v.extends)
               for v in chain]
    text = "\n".join(findings(flipped, correlations(flipped, n_bootstrap=200, n_permutations=200)))
    assert "did not rank MD stability" in text
    assert "Where FSD did not rank temperature_jump_K: " in text
    assert "c has the lower FSD but the higher temperature_jump_K than a" in text


def test_variant_result_round_trips_nan():
    v = variant("a", 1.0, 2.0)
    v.valid["valid_energy_mae"] = math.nan
    back = VariantResult.from_json(json.loads(json.dumps(v.to_json())))
    assert math.isnan(back.valid["valid_energy_mae"]) and back.extends is None
    assert back.scans == v.scans and back.bsct == v.bsct


def test_outputs_are_written_and_self_contained(tmp_path, chain):
    from conftest import make_scan

    from pesprobe.study.report import write_outputs

    raw = {"name": "synthetic", "data": {"train": "t.xyz", "scans": "s.npz"}, "budget": {"steps": 10},
           "md": {"seeds": [0]},
           "variants": [{"name": v.name, **({"extends": v.extends} if v.extends else {})} for v in chain]}
    config = study_from_dict(raw, tmp_path)
    scans = ScanSet([make_scan(n_frames=8, scan_id=m) for m in MOLECULES])
    result = StudyResult(config=config, variants=chain, scans=scans, md_molecules=list(MOLECULES), out=tmp_path / "o")
    paths = write_outputs(result, final=True)
    data = json.loads(paths["json"].read_text())
    assert data["complete"] and [v["name"] for v in data["variants"]] == ["a", "b", "c", "d"]
    assert data["findings"] and data["correlations"] and len(data["steps"]) == 3
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["variant"] for r in rows] == ["a", "b", "c", "d"]
    assert float(rows[1]["fsd_full"]) == pytest.approx(4.0) and float(rows[0]["forces_mae"]) == pytest.approx(200.0)
    page = paths["html"].read_text()
    assert page.count("<tr>") >= 5 and "b vs a: FSD lowered" in page
    assert re.findall(r'src="([^"]*)"', page) and all(s.startswith("data:image/png;base64,")
                                                      for s in re.findall(r'src="([^"]*)"', page))
    assert "href=" not in page
    # no MD logs on disk here, so no trace figure
    assert {p.name for p in (tmp_path / "o" / "plots").iterdir()} == {
        "fsd_distributions.png", "worst_scans.png", "correlation.png"}
    # an intermediate page (not final) says so and has no figures
    result.variants = chain[:2]
    write_outputs(result, final=False)
    page = paths["html"].read_text()
    assert "In progress" in page and "2 of 4" in page and "base64" not in page
    assert not json.loads(paths["json"].read_text())["complete"]


def test_table_rows_scale_units(chain):
    row = table_rows(chain)[0]
    assert row["energy_mae"] == pytest.approx(10.0) and row["md_failed"] == "0/3" and row["steps"] == 10
