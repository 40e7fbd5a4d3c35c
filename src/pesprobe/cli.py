"""Thin command-line interface: parse, call the package, print.

Each concern registers its own commands (``register(app)`` in ``pesprobe.<pkg>.commands``);
heavy imports happen inside the command bodies so ``pesprobe --help`` starts fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(add_completion=False, no_args_is_help=False,
                  help="pesprobe: is your interatomic potential's energy surface smooth?")

COMMAND_MODULES = (
    "pesprobe.evaluate.commands",
    "pesprobe.scan.commands",
    "pesprobe.md.commands",
    "pesprobe.train.commands",
    "pesprobe.study.commands",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Entry point for ``python -m pesprobe``."""
    app()
