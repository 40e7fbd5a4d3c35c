"""The BSCT runner: outputs, failures, caching and resume, processes, shards, the CLI."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from pesprobe.bsct import BSCTResult, evaluate, load_scans, merge
from pesprobe.cli import app
from pesprobe.metrics import PUBLISHED

import calcs


def test_outputs_and_names(small_copy, tmp_path):
    result = evaluate("morse", small_copy, out=tmp_path / "out", progress=False, plots=True)
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(data) >= {"systems", "summary", "failures"}
    assert set(data["systems"]) == {"C-O/101", "C-S/713", "N-O/4583"}
    for name in PUBLISHED:
        assert isinstance(data["systems"]["C-O/101"][name], float)
        assert data["summary"][name] == pytest.approx(np.mean([s[name] for s in data["systems"].values()]))
    assert set(data["summary"]["by_group"]) == {"C-O", "C-S", "N-O"}
    csv_lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert len(csv_lines) == 4 and "full_smoothness" in csv_lines[0]
    html = (tmp_path / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "C-S/713" in html
    assert (tmp_path / "out" / "plots" / "C-O__101.png").stat().st_size > 10_000
    summary_md = (tmp_path / "out" / "summary.md").read_text()
    assert "Per bond type" in summary_md and "Spread of full FSD" in summary_md
    fsd = sorted(s["full_smoothness"] for s in data["systems"].values())
    worst = max(data["systems"], key=lambda k: data["systems"][k]["full_smoothness"])
    assert f"| **all** | 3 | {fsd[1] / 3 + fsd[0] / 3 + fsd[2] / 3:.4g} | {fsd[1]:.4g} |" in summary_md
    assert f"{worst} ({fsd[2]:.4g}) |" in summary_md
    frame = result.to_dataframe()
    assert frame.shape[0] == 3 and frame.loc["C-S/713", "full_smoothness"] == data["systems"]["C-S/713"]["full_smoothness"]


def test_failing_frames_do_not_stop_the_run(small_copy, tmp_path):
    # raises on large first-atom x in some frames, NaN on others: those frames fail, the rest is scored
    scans = load_scans(small_copy)
    x0 = scans["C-O/101"].positions[:, 0, 0]
    calc = calcs.FlakyMorse(raise_above=np.sort(x0)[-3], nan_below=np.sort(x0)[1])
    result = evaluate(calc, scans, out=tmp_path / "o", progress=False)
    m = {x.id: x for x in result.metrics}["C-O/101"]
    assert m.flagged and m.n_failed == 3  # two raise, one NaN
    assert any("SCF did not converge" in e for e in m.errors.values())
    assert any("non-finite" in e for e in m.errors.values())
    assert np.isfinite(m.values["full_smoothness"])
    failures = json.loads((tmp_path / "o" / "results.json").read_text())["failures"]
    assert any(f["kind"] == "frame" and f["scan"] == "C-O/101" for f in failures)
    assert result.summary["n_failed_frames"] == sum(x.n_failed for x in result.metrics)


def test_batched_potential_that_raises_or_gives_nan_fails_frames_not_the_run(small_copy, tmp_path):
    scans = load_scans(small_copy)
    sizes = {scan.id: scan.n_atoms for scan in scans}
    victim = "C-S/713"
    assert list(sizes.values()).count(sizes[victim]) == 1
    result = evaluate(calcs.BatchedTrouble(raise_atoms=sizes[victim], nan_frame=7), scans, out=tmp_path / "o",
                      progress=False)
    by_id = {m.id: m for m in result.metrics}
    assert by_id[victim].n_failed == 100 and "CUDA out of memory" in by_id[victim].errors[0]
    for scan_id in ("C-O/101", "N-O/4583"):
        m = by_id[scan_id]
        assert m.n_failed == 1 and "non-finite energy" in m.errors[7]
        assert np.isfinite(m.values["full_smoothness"]) and np.isfinite(m.values["full_energy_mae"])
    assert result.summary["n_failed_frames"] == 102


def test_instance_is_reset_between_scans(small_copy):
    result = evaluate(calcs.Stateful(), small_copy, progress=False)
    mae = [m.values["full_energy_mae"] for m in result.metrics]
    # each scan sees energies 1..100 regardless of order, so the same offset pattern per scan
    assert all(np.isfinite(mae))
    again = evaluate(calcs.Stateful(), load_scans(small_copy).shard(2, 3), progress=False)
    assert again.metrics[0].values["full_energy_mae"] == result.metrics[2].values["full_energy_mae"]


def test_resume_uses_cache_and_not_other_potentials(small_copy, tmp_path):
    out = tmp_path / "out"
    calcs.CALLS["n"] = 0
    first = evaluate(calcs.morse_factory, small_copy, out=out, progress=False)
    n_first = calcs.CALLS["n"]
    assert n_first >= 300
    second = evaluate(calcs.morse_factory, small_copy, out=out, progress=False)
    assert calcs.CALLS["n"] == n_first  # nothing recomputed
    assert second.systems == first.systems or all(
        np.allclose(first.systems[k]["full_smoothness"], second.systems[k]["full_smoothness"]) for k in first.systems)
    lj = evaluate("lj", small_copy, out=out, progress=False)
    assert lj.systems["C-O/101"]["full_forces_mae"] != first.systems["C-O/101"]["full_forces_mae"]


def test_differently_configured_instances_do_not_share_cached_results(small_copy, tmp_path):
    from pesprobe.potentials.ase_adapter import describe_calculator

    assert describe_calculator(calcs.FlakyMorse()) == describe_calculator(calcs.FlakyMorse())
    assert describe_calculator(calcs.FlakyMorse(raise_above=-1e9)) != describe_calculator(calcs.FlakyMorse())
    out = tmp_path / "o"
    broken = evaluate(calcs.FlakyMorse(raise_above=-1e9), small_copy, out=out, progress=False)
    assert broken.summary["n_failed_frames"] == 300
    healthy = evaluate(calcs.FlakyMorse(), small_copy, out=out, progress=False)
    assert healthy.summary["n_failed_frames"] == 0 and np.isfinite(healthy.systems["C-O/101"]["full_smoothness"])


def test_scans_where_every_frame_failed_are_evaluated_again_on_resume(small_copy, tmp_path):
    state = {"broken": True}

    class Licensed(calcs.FlakyMorse):
        """Fails every frame until its (external) licence server answers."""

        def calculate(self, atoms=None, properties=("energy",), system_changes=calcs.all_changes):
            if state["broken"]:
                raise ConnectionError("licence server not reachable")
            super().calculate(atoms, properties, system_changes)

    out = tmp_path / "o"
    first = evaluate(Licensed, small_copy, out=out, progress=False)
    assert first.summary["n_failed_frames"] == 300
    state["broken"] = False
    again = evaluate(Licensed, small_copy, out=out, progress=False)
    assert again.summary["n_failed_frames"] == 0


def test_batched_potential_equals_ase_path(small_copy):
    ase_result = evaluate("morse", small_copy, progress=False)
    batched = evaluate(calcs.BatchedMorse(), small_copy, progress=False)
    for a, b in zip(ase_result.metrics, batched.metrics):
        for name in PUBLISHED:
            assert a.values[name] == pytest.approx(b.values[name], rel=1e-12)


def test_jobs_two_same_as_one(small_copy):
    one = evaluate("morse", small_copy, progress=False, jobs=1)
    two = evaluate("morse", small_copy, progress=False, jobs=2)
    for a, b in zip(one.metrics, two.metrics):
        assert a.id == b.id and a.values == b.values


def test_shards_merge_to_unsharded(small_copy, tmp_path):
    whole = evaluate("morse", small_copy, out=tmp_path / "whole", progress=False)
    for i in range(2):
        evaluate("morse", small_copy, out=tmp_path / f"s{i}", shard=(i, 2), progress=False)
    merged = merge([tmp_path / "s1", tmp_path / "s0"], out=tmp_path / "merged")
    assert [m.id for m in merged.metrics] == [m.id for m in whole.metrics]
    a = json.loads((tmp_path / "whole" / "results.json").read_text())
    b = json.loads((tmp_path / "merged" / "results.json").read_text())
    strip = lambda d: {k: {m: v for m, v in s.items() if m != "seconds"} for k, s in d.items()}  # noqa: E731
    assert strip(a["systems"]) == strip(b["systems"])
    assert a["summary"] == b["summary"]
    # each shard drew a gallery of its own worst scans; the merged report must not show one shard's
    assert (tmp_path / "s0" / "plots" / "worst_gallery.png").is_file()
    assert not (tmp_path / "merged" / "plots" / "worst_gallery.png").exists()
    assert (tmp_path / "merged" / "plots" / "fsd_distribution.png").is_file()
    with pytest.raises(ValueError, match="miss"):
        merge([tmp_path / "s0"])
    with pytest.raises(ValueError, match="more than one shard"):
        merge([tmp_path / "s0", tmp_path / "s0"])


def test_report_embeds_only_this_potentials_scan_figures(small_copy, tmp_path):
    out = tmp_path / "o"
    evaluate("morse", small_copy, out=out, progress=False, plots=True)
    morse_figure = (out / "plots" / "C-O__101.png").read_bytes()
    assert 'alt="C-O__101.png"' in (out / "report.html").read_text()
    evaluate("lj", small_copy, out=out, progress=False)  # no --plots: lj draws its worst scans itself
    html = (out / "report.html").read_text()
    assert 'alt="C-O__101.png"' in html and 'alt="fsd_distribution.png"' in html
    assert (out / "plots" / "C-O__101.png").read_bytes() != morse_figure  # lj's figure, not morse's
    evaluate("lj", small_copy, out=out, progress=False, plots=True)
    assert 'alt="C-O__101.png"' in (out / "report.html").read_text()
    assert (out / "plots" / "C-O__101.png").read_bytes() != morse_figure


def test_result_read_round_trip(small_copy, tmp_path):
    result = evaluate("morse", small_copy, out=tmp_path / "o", progress=False)
    again = BSCTResult.read(tmp_path / "o")
    assert again.summary == json.loads(json.dumps(result.to_json()))["summary"]


def test_cli_bsct_with_factory_file(small_copy, tmp_path):
    factory = tmp_path / "mycalc.py"
    factory.write_text("from ase.calculators.morse import MorsePotential\n"
                       "def make():\n    return MorsePotential(epsilon=1.0, r0=1.4, rho0=6.0, rcut1=3.0, rcut2=4.5)\n")
    runner = CliRunner()
    res = runner.invoke(app, ["bsct", "--data", str(small_copy), "--calc", f"{factory}:make",
                              "--out", str(tmp_path / "cli")])
    assert res.exit_code == 0, res.output
    assert "FSD full" in res.output and (tmp_path / "cli" / "results.json").exists()
    direct = evaluate("morse", small_copy, progress=False)
    data = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert data["systems"]["C-S/713"]["full_smoothness"] == pytest.approx(direct.systems["C-S/713"]["full_smoothness"])


def test_cli_errors_are_clear(small_copy, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["bsct", "--data", str(small_copy), "--calc", "no-such-calc", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown SPEC 'no-such-calc'" in res.output
    res = runner.invoke(app, ["bsct", "--data", str(tmp_path / "missing"), "--calc", "lj", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "not found" in res.output
    res = runner.invoke(app, ["bsct", "--data", str(small_copy), "--shard", "3/2", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "0 <= I < N" in res.output


def test_embedded_default_runs(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["bsct", "--calc", "morse", "--out", str(tmp_path / "emb")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "emb" / "results.json").read_text())
    assert len(data["systems"]) == 6


def test_force_only_calculator_is_scored(small_copy):
    from ase.calculators.calculator import Calculator, all_changes

    class ForcesOnly(Calculator):
        implemented_properties = ["forces"]

        def calculate(self, atoms=None, properties=("forces",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            self.results = {"forces": -0.1 * (atoms.positions - atoms.positions.mean(axis=0))}

    result = evaluate(ForcesOnly(), small_copy, progress=False)
    m = result.metrics[0]
    assert m.n_failed == 0 and np.isfinite(m.values["full_smoothness"])
    assert np.isnan(m.values["full_energy_mae"]) and np.isnan(m.values["energy_force_consistency"])


def test_calculator_class_is_a_factory(small_copy):
    result = evaluate(calcs.FlakyMorse, small_copy, progress=False)
    reference = evaluate("morse", small_copy, progress=False)
    assert result.summary["n_failed_frames"] == 0
    assert result.systems["C-O/101"]["full_smoothness"] == pytest.approx(reference.systems["C-O/101"]["full_smoothness"])


def test_default_run_uses_the_shipped_model(tmp_path):
    """`pesprobe bsct` with no arguments: the shipped model on the embedded scans."""
    res = CliRunner().invoke(app, ["bsct", "--out", str(tmp_path / "default")])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "default" / "results.json").read_text())
    assert data["potential"] == "pesprobe:default" and len(data["systems"]) == 6
    assert data["summary"]["n_failed_frames"] == 0 and data["summary"]["full_smoothness"] > 0
