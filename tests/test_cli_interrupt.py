"""Ctrl-C (KeyboardInterrupt) in a resumable command says how to resume and exits with status 130."""

import importlib
import json

import pytest
from typer.testing import CliRunner

from pesprobe.cli import INTERRUPTED, RESUMABLE, app

RESUME_LINE = "interrupted: rerun the same command to resume"

# A calculator that stops the run (as Ctrl-C does) on the first 10-atom scan unless the file STOP_OFF exists, and
# logs the atom count of every structure it is asked about.
CALC = '''
from pathlib import Path
from ase.calculators.emt import EMT

HERE = Path(__file__).parent


class Interrupting(EMT):
    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        with open(HERE / "calls.log", "a") as log:
            log.write(f"{len(atoms)}\\n")
        if len(atoms) == 10 and not (HERE / "STOP_OFF").exists():
            raise KeyboardInterrupt
        super().calculate(atoms, properties, system_changes)


def make():
    return Interrupting()
'''


def test_bsct_interrupted_says_how_to_resume_and_the_rerun_resumes(tmp_path):
    (tmp_path / "calc.py").write_text(CALC)
    args = ["bsct", "--calc", f"{tmp_path / 'calc.py'}:make", "--out", str(tmp_path / "out")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == INTERRUPTED, first.output
    assert RESUME_LINE in first.output
    assert not (tmp_path / "out" / "results.json").exists()
    (tmp_path / "STOP_OFF").touch()
    (tmp_path / "calls.log").unlink()
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    sizes = {int(n) for n in (tmp_path / "calls.log").read_text().split()}
    assert 14 not in sizes  # C-O/101, finished before the interruption, comes from the cache
    assert {5, 10, 20} <= sizes  # the scans not finished are evaluated
    assert len(json.loads((tmp_path / "out" / "results.json").read_text())["systems"]) == 6


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


# (command line, function the command calls, expected hint)
CASES = [
    (["md", "--calc", "lj"], "pesprobe.md.study.run_stability", RESUME_LINE),
    (["md", "--calc", "lj", "--no-resume"], "pesprobe.md.study.run_stability",
     "interrupted: rerun with --resume to resume"),
    (["correlate", "lj", "morse"], "pesprobe.md.correlate.correlate", RESUME_LINE),
    (["leaderboard", "--potentials", "lj"], "pesprobe.leaderboard.runner.run_leaderboard", RESUME_LINE),
    (["study", "--quick"], "pesprobe.study.runner.run_study", RESUME_LINE),
    (["scan", "build", "--smiles", "CC"], "pesprobe.scan.build.build_scans", RESUME_LINE),
    (["data", "sample", "--smiles", "CC"], "pesprobe.data.sample.sample_dataset", RESUME_LINE),
    (["train", "train.yaml"], "pesprobe.train.loop.train", "interrupted: rerun with --resume to resume"),
    (["train", "train.yaml", "--resume"], "pesprobe.train.loop.train", RESUME_LINE),
]


@pytest.mark.parametrize(("args", "target", "hint"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_interrupted_commands_say_how_to_resume(monkeypatch, tmp_path, args, target, hint):
    module, name = target.rsplit(".", 1)
    monkeypatch.setattr(importlib.import_module(module), name, _interrupt)  # pesprobe.md.correlate is shadowed
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == INTERRUPTED, result.output
    assert hint in result.output


def test_every_resumable_command_is_registered_and_wrapped():
    found = {}
    for info in app.registered_commands:
        found[("", info.name)] = info.callback
    for group in app.registered_groups:
        for info in group.typer_instance.registered_commands:
            found[(group.name, info.name)] = info.callback
    assert RESUMABLE <= set(found)
    assert all(hasattr(found[key], "__wrapped__") for key in RESUMABLE)
    assert not hasattr(found[("", "merge")], "__wrapped__")  # merge keeps no partial work
