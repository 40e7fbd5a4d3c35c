"""Report: worst-scan diagnostic figures by default, aggregates per scan kind, yardsticks and advice."""

from __future__ import annotations

import math
import re

import numpy as np
from calcs import BatchedMorse
from conftest import make_scan

from pesprobe.data import Scan, ScanSet
from pesprobe.evaluate.runner import evaluate
from pesprobe.metrics import ALL_METRICS, ScanMetrics, scan_metrics, summarize
from pesprobe.potentials.base import Predictions
from pesprobe.report.yardsticks import next_steps, yardsticks


def test_default_report_embeds_a_diagnostic_figure_for_each_worst_scan(tmp_path):
    scans = ScanSet([make_scan(scan_id=f"C-C/{i}", seed=i) for i in range(4)], source="test")
    result = evaluate(BatchedMorse(), scans, out=tmp_path, progress=False)
    page = (tmp_path / "report.html").read_text()
    worst = [w["id"] for w in result.summary["worst"]]
    assert len(worst) == 4
    for scan_id in worst:
        section = re.search(re.escape(f"<h3>{scan_id} ") + r"(.*?)(<h3>|<h2>)", page, re.S)
        assert section and "<img" in section.group(1), scan_id
    text = (tmp_path / "summary.md").read_text()
    assert "## Yardsticks" in text and "## What to do next" in text and "offset-sensitive" in text
    assert "GFN2-xTB" in text and "skill" in text


def _metrics(scan_id: str, kind: str, fsd: float) -> ScanMetrics:
    values = {name: math.nan for name in ALL_METRICS}
    values.update(full_smoothness=fsd, compress_smoothness=fsd, stretch_smoothness=fsd)
    return ScanMetrics(id=scan_id, group=kind if kind != "bond" else "C-C", values=values, equilibrium_index=0,
                       n_frames=10, n_failed=0, flagged=False, kind=kind)


def test_headline_is_bonds_only_and_each_kind_keeps_its_unit():
    items = [_metrics("C-C/1", "bond", 10.0), _metrics("C-C/2", "bond", 20.0), _metrics("t/1", "torsion", 1000.0),
             _metrics("a/1", "angle", 500.0)]
    s = summarize(items)
    assert s["full_smoothness"] == 15.0 and s["headline"] == "bond scans" and s["unit"] == "1/Å"
    assert s["n_scans"] == 4 and s["n_headline_scans"] == 2
    assert s["by_kind"]["torsion"]["unit"] == "1/rad" and s["by_kind"]["torsion"]["full_smoothness"] == 1000.0
    assert s["by_kind"]["angle"]["full_smoothness"] == 500.0
    only = summarize([_metrics("t/1", "torsion", 3.0)])
    assert only["headline"] == "all scans" and only["unit"] == "1/rad"


def test_torsion_scans_have_no_compress_or_stretch():
    bond = make_scan()
    torsion = Scan(id="torsion/1", kind="torsion", numbers=bond.numbers, positions=bond.positions,
                   coordinate=np.linspace(0, 2 * np.pi, bond.n_frames), ref_energy=bond.ref_energy,
                   ref_forces=bond.ref_forces)
    pred = Predictions.from_arrays(bond.ref_energy * 0.9, bond.ref_forces * 0.9)
    m = scan_metrics(torsion, pred)
    assert m.kind == "torsion" and np.isfinite(m.values["full_smoothness"])
    assert np.isnan(m.values["compress_smoothness"]) and np.isnan(m.values["stretch_forces_mae"])
    assert np.isnan(m.values["null_stretch_smoothness"]) and np.isnan(m.values["compress_smoothness_skill"])
    assert np.isfinite(scan_metrics(bond, pred).values["compress_smoothness"])


def test_advice_follows_the_numbers():
    gfn2 = yardsticks()["potentials"]["GFN2-xTB"]["all"]["full_smoothness_skill"]
    low = next_steps({"full_smoothness_skill": gfn2 - 0.2, "n_scans_with_discontinuities": 2})
    high = next_steps({"full_smoothness_skill": gfn2 + 0.2, "n_scans_with_discontinuities": 0})
    assert "below" in low[0] and "2 scans have a confirmed discontinuity" in low[1]
    assert "reaches" in high[0] and "No confirmed discontinuity" in high[1]
    assert len(low) == len(high) == 3
