"""CLI commands of the study package: ``pesprobe leaderboard`` and ``pesprobe study``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pesprobe.evaluate.executors import CLUSTER_HELP


def leaderboard(
    data: Annotated[Optional[Path], typer.Option(help="Scan set: published-layout folder, compact .npz or "
                                                      "multi-frame extended XYZ. Default: the scans embedded in "
                                                      "pesprobe.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder (leaderboard.md/.html/.json/.csv and one BSCT "
                                           "folder per potential, reused on re-runs).")] = Path("leaderboard"),
    potentials: Annotated[Optional[str], typer.Option(
        help="Comma-separated names or SPECs. Default: gfn2-xtb, gfn1-xtb, gfn-ff, 7net-0, chgnet, "
             "pesprobe:default (those not installed are skipped).")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes per potential.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="OpenMP/torch threads in this process (workers use 1); "
                                         "1 keeps timings comparable on a busy machine.")] = 1,
    max_scans: Annotated[Optional[int], typer.Option(min=1, help="Use only N scans, spread over bond types "
                                                     "(quick run).")] = None,
    rank_by: Annotated[str, typer.Option(help="full, full-median, compress, stretch, energy or forces "
                                              "(lower is better).")] = "full",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")] = True,
    cluster: Annotated[Optional[str], typer.Option(help=CLUSTER_HELP)] = None,
) -> None:
    """Run BSCT for every available potential and write a ranked smoothness leaderboard."""
    from pesprobe.data.embedded import embedded_scans_path
    from pesprobe.potentials.threads import limit_threads
    from pesprobe.report.tables import markdown_table
    from pesprobe.study.leaderboard import RANK_KEYS, run_leaderboard
    from pesprobe.study.leaderboard_report import HEADER, rows

    if rank_by not in RANK_KEYS:
        raise typer.BadParameter(f"expected one of {', '.join(RANK_KEYS)}, got {rank_by!r}", param_hint="--rank-by")
    names = potentials.split(",") if potentials is not None else None
    limit_threads(threads)
    try:
        board = run_leaderboard(data if data is not None else embedded_scans_path(), out, names=names, jobs=jobs,
                                max_scans=max_scans, rank_by=rank_by, progress=progress, cluster=cluster,
                                log=lambda line: typer.echo(line, err=True))
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if board.entries:
        typer.echo(markdown_table(HEADER, rows(board)))
    typer.echo(f"\n{len(board.entries)} potentials ranked on {len(board.scan_ids)} scans, {len(board.skipped)} "
               f"skipped; wrote {out}/leaderboard.md, .html, .json, .csv")
    if not board.entries:
        raise typer.Exit(1)


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
    """Add ``leaderboard`` to the CLI."""
    app.command("leaderboard")(leaderboard)
    app.command("study")(study)
