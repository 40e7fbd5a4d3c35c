"""Thin command-line interface: parse, call the package, print.

Each concern registers its own commands (``register(app)`` in ``pesprobe.<pkg>.commands``);
heavy imports happen inside the command bodies so ``pesprobe --help`` starts fast.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Annotated, Any

import typer

from pesprobe import __version__

app = typer.Typer(add_completion=False, no_args_is_help=False,
                  help="pesprobe: is your interatomic potential's energy surface smooth?")

COMMAND_MODULES = (
    "pesprobe.evaluate.commands",
    "pesprobe.scan.commands",
    "pesprobe.md.commands",
    "pesprobe.train.commands",
    "pesprobe.study.commands",
    "pesprobe.leaderboard.commands",
    "pesprobe.zoo.commands",
)

#: Commands that keep their finished work in the output folder, so that after an interruption
#: (Ctrl-C) the same command line carries on where it stopped; given as (group, command).
RESUMABLE = {("", "bsct"), ("", "md"), ("", "correlate"), ("", "leaderboard"), ("", "study"), ("", "train"),
             ("", "zoo"), ("scan", "build"), ("data", "sample")}

INTERRUPTED = 130  # the shell's exit status for SIGINT


def resumable(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command``, which on KeyboardInterrupt says how to resume and exits with status 130.

    A command with a ``resume`` parameter that was switched off (``--no-resume``; ``train``'s
    default) is told to rerun with ``--resume``; any other to rerun the same command.
    """

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            how = "rerun with --resume" if kwargs.get("resume") is False else "rerun the same command"
            typer.echo(f"\ninterrupted: {how} to resume (finished work in the output folder is kept)", err=True)
            raise typer.Exit(INTERRUPTED) from None

    return run


def _wrap_resumable(typer_app: typer.Typer, group: str = "") -> None:
    """Wrap the :data:`RESUMABLE` commands of ``typer_app`` (and of its sub-groups) in :func:`resumable`."""
    for info in typer_app.registered_commands:
        name = info.name or info.callback.__name__.replace("_", "-")
        if (group, name) in RESUMABLE:
            info.callback = resumable(info.callback)
    for sub in typer_app.registered_groups:
        _wrap_resumable(sub.typer_instance, sub.name)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pesprobe {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Options of ``pesprobe`` itself (the help text is the app's)."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)
_wrap_resumable(app)


def main() -> None:
    """Entry point for ``python -m pesprobe``."""
    app()
