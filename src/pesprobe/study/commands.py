"""CLI command of the study package: ``pesprobe study``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def study(
    study_file: Annotated[Optional[str], typer.Argument(
        metavar="[STUDY]", help="Study YAML file, or a shipped study: default (the paper's design sequence), "
                                "ablation (the faithful sequence, 3 seeds), quick. Default: default.")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Run the shipped quick study (a smoke test of every "
                                                        "stage, about 30 s on 2 CPU cores).")] = False,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (study.json, study.csv, summary.md, "
                                                     "report.html, variants/). Default: study-<name of the study "
                                                     "file>.")] = None,
    build_data: Annotated[bool, typer.Option("--build-data", help="Build missing training data and scans from "
                                                                  "the study's build: recipes first.")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:N or auto (overrides the study's "
                                                       "device).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")] = True,
) -> None:
    """Ablation study: train each model variant on the same data and budget (once per seed with seeds:), then
    BSCT, MD stability and their rank correlation; writes study.json, study.csv, summary.md and a self-contained
    report.html. Resumable."""
    from pesprobe.data.structures import StructureFormatError
    from pesprobe.models import CheckpointError
    from pesprobe.study.analysis import COLUMNS, formatted, table_rows
    from pesprobe.study.config import StudyError, load_study
    from pesprobe.study.data import MissingDataError
    from pesprobe.study.runner import run_study
    from pesprobe.train import ConfigError

    if quick and study_file is not None:
        raise typer.BadParameter("give a study file or --quick, not both", param_hint="--quick")
    name = "quick" if quick else (study_file or "default")
    try:
        config = load_study(name)
        if device is not None:
            config.device = device
        folder = out if out is not None else Path(f"study-{Path(name).stem}")
        result = run_study(config, folder, build_data=build_data, progress=progress,
                           log=lambda line: typer.echo(line, err=True))
    except MissingDataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (StudyError, ConfigError, CheckpointError, StructureFormatError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    from pesprobe.report.tables import markdown_table
    from pesprobe.study.seeds import aggregate, seed_table

    if config.seeds:
        typer.echo(markdown_table(*seed_table(aggregate(result.seed_runs()))))
    else:
        typer.echo(markdown_table([h for _, h, _, _ in COLUMNS], [formatted(r) for r in table_rows(result.variants)]))
    runs = sum(len(items) for items in result.seed_runs().values())
    typer.echo(f"\n{len(result.variants)} variants ({runs} runs) in {result.seconds:.0f} s; wrote {folder}/study.json, "
               f"study.csv, summary.md, report.html")


def register(app: typer.Typer) -> None:
    """Add ``study`` to the CLI."""
    app.command("study")(study)
