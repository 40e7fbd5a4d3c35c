"""The README's "evaluate your own model" example runs as written: ``pesprobe bsct --calc examples/my_model.py:make``."""

import json
from pathlib import Path

from typer.testing import CliRunner

from pesprobe.cli import app

ROOT = Path(__file__).resolve().parents[1]
EMT_ELEMENTS = {1, 6, 7, 8}  # H, C, N, O: the organic elements ASE's EMT has parameters for


def test_bsct_on_my_model_example(tmp_path, monkeypatch):
    from pesprobe.data import load_scans
    from pesprobe.data.embedded import embedded_scans_path

    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["bsct", "--calc", "examples/my_model.py:make", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["potential"] == "examples/my_model.py:make" and "EMT" in data["identity"]
    failures = [f for f in data["failures"] if f["kind"] == "frame"]
    for scan in load_scans(embedded_scans_path()):
        score = data["systems"][scan.id]["full_smoothness"]
        if set(scan.numbers) <= EMT_ELEMENTS:  # scored on every frame
            assert score is not None and score > 0, scan.id
            assert not any(f["scan"] == scan.id for f in failures), scan.id
        else:  # an element outside the model's parameters: every frame fails with the model's message
            assert score is None, scan.id
            errors = [f["error"] for f in failures if f["scan"] == scan.id]
            assert len(errors) == scan.n_frames and all("No EMT-potential for" in e for e in errors), scan.id
    assert "over 3 of 6 scans (3 unscored)" in result.output
