"""``pesprobe leaderboard`` (thin: parse, call :func:`pesprobe.leaderboard.runner.run_leaderboard`, print)."""

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
    from pesprobe.leaderboard.report import HEADER, rows
    from pesprobe.leaderboard.runner import RANK_KEYS, run_leaderboard
    from pesprobe.potentials.threads import limit_threads
    from pesprobe.report.tables import markdown_table

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


def register(app: typer.Typer) -> None:
    """Add ``leaderboard`` to the CLI."""
    app.command("leaderboard")(leaderboard)
