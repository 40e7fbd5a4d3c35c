"""``pesprobe zoo``: the model-zoo experiment (thin: parse, call :func:`pesprobe.zoo.runner.run_zoo`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def zoo(
    scans: Annotated[Path, typer.Option(help="BSCT scan set (the BSCT-xTB preset: pesprobe scan build --preset "
                                             "xtb-organic).")],
    train: Annotated[Optional[Path], typer.Option(help="Training structures (train.xyz of pesprobe data sample); "
                                                       "needed while a trained member is not trained yet.")] = None,
    valid: Annotated[Optional[Path], typer.Option(help="Validation structures (val.xyz of pesprobe data sample).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder (resumable).")] = Path("zoo_out"),
    temperatures: Annotated[str, typer.Option(help="MD temperatures, K, comma-separated.")] = "500,1000",
    length_ps: Annotated[float, typer.Option(help="MD length per trajectory, ps.")] = 2.0,
    seeds: Annotated[int, typer.Option(min=1, help="MD seeds per molecule.")] = 3,
    molecules: Annotated[int, typer.Option(min=3, help="Distinct MD molecules (≥ 3 with P, ≥ 3 with S).")] = 16,
    only: Annotated[Optional[str], typer.Option(help="Comma-separated member names to run (default: all).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="The tiny smoke-test roster.")] = False,
    include: Annotated[Optional[list[Path]], typer.Option(
        help="zoo.json of an earlier run on the same scans, molecules and MD length: its members that this run "
             "does not run are taken unchanged (repeatable).")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Threads (OpenMP, torch).")] = 1,
) -> None:
    """The model-zoo experiment: BSCT figures vs MD failure across ≥ 24 potentials (resumable)."""
    from pesprobe.potentials.threads import limit_threads
    from pesprobe.zoo.members import default_members, quick_members
    from pesprobe.zoo.report import reading
    from pesprobe.zoo.runner import ZooProfile, run_zoo

    limit_threads(threads)
    members = quick_members() if quick else default_members()
    if only:
        names = {n.strip() for n in only.split(",")}
        unknown = names - {m.name for m in members}
        if unknown:
            raise typer.BadParameter(f"unknown member(s) {', '.join(sorted(unknown))}; known: "
                                     f"{', '.join(m.name for m in members)}", param_hint="--only")
        members = [m for m in members if m.name in names]
    profile = ZooProfile(scans=scans, train=train, valid=valid, members=members,
                         temperatures=tuple(float(t) for t in temperatures.split(",")), length_ps=length_ps,
                         seeds=tuple(range(seeds)), n_molecules=molecules, include=tuple(include or ()))
    try:
        result = run_zoo(profile, out, command=shlex.join(["pesprobe", "zoo", *sys.argv[2:]])
                         if len(sys.argv) > 1 and sys.argv[1] == "zoo" else "pesprobe zoo")
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for temperature, answers in result["answers"].items():
        typer.echo(f"{temperature} K: {reading(answers)}")
    typer.echo(f"wrote {out}/zoo.json, evidence.md, plots/")


def register(app: typer.Typer) -> None:
    """Add ``zoo`` to the CLI."""
    app.command("zoo")(zoo)
