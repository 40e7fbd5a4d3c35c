"""The CLI and the API agree: defaults, the SPEC list in every --help, one SPEC resolver, --version."""

import json
import re
from importlib.metadata import version

import pytest
import typer
from typer.testing import CliRunner

from pesprobe import __version__
from pesprobe.cli import app
from pesprobe.data import load_scans
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.evaluate import evaluate
from pesprobe.potentials.registry import BUILTIN_FACTORIES, DEFAULT_SPEC, SPEC_FORMS, SpecError, calculator_factory

# (command path, option) of every option that takes a SPEC
SPEC_OPTIONS = [(["bsct"], "calc"), (["md"], "calc"), (["scan", "build"], "reference"),
                (["data", "sample"], "reference")]


def _command(path: list[str]):
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return command


def _option(path: list[str], name: str):
    return next(p for p in _command(path).params if p.name == name)


def test_evaluate_without_data_uses_the_embedded_scans_like_the_cli(tmp_path):
    api = evaluate("morse", None, progress=False)
    assert api.systems.keys() == set(load_scans(embedded_scans_path()).ids())
    result = CliRunner().invoke(app, ["bsct", "--calc", "morse", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    cli = json.loads((tmp_path / "results.json").read_text())["systems"]
    assert cli.keys() == api.systems.keys()
    assert all(cli[i]["full_smoothness"] == pytest.approx(api.systems[i]["full_smoothness"], rel=1e-12)
               for i in cli)


def test_bsct_and_md_default_to_the_same_potential():
    assert _option(["bsct"], "calc").default == _option(["md"], "calc").default == DEFAULT_SPEC


@pytest.mark.parametrize(("path", "name"), SPEC_OPTIONS, ids=[" ".join(p) for p, _ in SPEC_OPTIONS])
def test_every_spec_help_lists_every_spec_form_at_80_columns(path, name):
    assert SPEC_FORMS and set(BUILTIN_FACTORIES) < {f.form for f in SPEC_FORMS}
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert "…" not in result.output  # nothing cut
    start = result.output.index(f"--{name.replace('_', '-')}")
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output[start:]).split())
    for form in SPEC_FORMS:
        assert form.form in text, form.form


@pytest.mark.parametrize(("typo", "nearest"), [("gfn2xtb", "gfn2-xtb"), ("7net0", "7net-0"),
                                               ("pesprobe-default", "pesprobe:default"),
                                               ("pesprobe:defualt", "pesprobe:default")])
def test_an_unknown_spec_suggests_the_nearest(tmp_path, typo, nearest):
    with pytest.raises(SpecError, match=f"did you mean '{nearest}'"):
        calculator_factory(typo)
    result = CliRunner().invoke(app, ["bsct", "--calc", typo, "--out", str(tmp_path)])
    assert result.exit_code == 2 and f"did you mean '{nearest}'" in result.output


def test_a_spec_far_from_any_name_gets_the_list_only():
    with pytest.raises(SpecError) as info:
        calculator_factory("qwertyuiop")
    assert "did you mean" not in str(info.value)
    assert all(form.form in str(info.value) for form in SPEC_FORMS)


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"pesprobe {__version__}" == f"pesprobe {version('pesprobe')}"


def test_scan_build_takes_the_same_specs_as_bsct(tmp_path):
    """pesprobe:default labels scans (it was refused: 'checkpoint default does not exist', 0 scans, exit 0)."""
    out = tmp_path / "scans"
    result = CliRunner().invoke(app, ["scan", "build", "--smiles", "CCO", "--reference", "pesprobe:default",
                                      "--points", "5", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    scans = load_scans(tmp_path / "scans.npz")
    assert sorted(s.group for s in scans) == ["C-C", "C-O"]
    assert json.loads((out / "build.json").read_text())["settings"]["reference"] == "pesprobe:default"


def test_scan_build_with_no_scans_fails_with_the_reason(tmp_path):
    (tmp_path / "broken.py").write_text(
        "from ase.calculators.calculator import Calculator\n"
        "class Broken(Calculator):\n    implemented_properties = ['energy', 'forces']\n"
        "    def calculate(self, *args, **kwargs):\n        raise RuntimeError('SCF did not converge')\n"
        "def make():\n    return Broken()\n")
    out = tmp_path / "scans"
    result = CliRunner().invoke(app, ["scan", "build", "--smiles", "CCO", "--reference",
                                      f"{tmp_path / 'broken.py'}:make", "--points", "5", "--out", str(out), "--quiet"])
    assert result.exit_code == 1, result.output
    assert "error: 0 scans built" in result.output and "SCF did not converge" in result.output
    assert str(out / "build.json") in result.output


@pytest.mark.parametrize(("body", "message"), [
    ("def make(device):\n    return None\n", "needs arguments"),
    ("def make():\n    raise OSError('weights not found\\nsecond line')\n", "raised OSError: weights not found"),
])
def test_a_broken_factory_is_one_error_line(tmp_path, body, message):
    (tmp_path / "model.py").write_text(body)
    result = CliRunner().invoke(app, ["bsct", "--calc", f"{tmp_path / 'model.py'}:make", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "second line" not in result.output
