"""CLI commands of the BSCT engine: ``pesprobe bsct`` and ``pesprobe merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pesprobe.evaluate.executors import CLUSTER_HELP
from pesprobe.potentials.registry import DEFAULT_SPEC, SpecError, spec_help


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise typer.BadParameter(f"expected I/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise typer.BadParameter(f"need 0 <= I < N, got {text!r}")
    return index, count


def _first_error(result) -> str:
    """The first failure of ``result`` as ``scan frame k: error`` (or the first data problem)."""
    for failure in result.failures:
        if failure["kind"] == "frame":
            return f"{failure['scan']} frame {failure['frame']}: {failure['error']}"
    for failure in result.failures:
        return f"{failure.get('scan') or failure.get('path')}: {failure['error']}"
    return "no scans in the data"


def _print_summary(result, out: Path | None) -> None:
    from pesprobe.report.tables import markdown_table, summary_rows, unseen_elements_note

    s = result.summary
    if note := unseen_elements_note(result.unseen_elements):
        typer.echo(note)
    if s["n_unlabelled_scans"]:
        typer.echo(f"{s['n_unlabelled_scans']} scans have no reference labels: reference-free figures only "
                   f"({sum(m.values['n_discontinuities'] > 0 for m in result.metrics if not m.labelled)} with a "
                   "confirmed discontinuity; roughness and the list in results.json and summary.md).")
    if s["n_scans"] == s["n_unscored_scans"] and s["n_unlabelled_scans"] < s["n_scans"]:
        written = f" (outputs in {out})" if out is not None else ""
        typer.echo(f"error: no scan could be scored ({s['n_scans']} scans, {s['n_failed_frames']} failed frames, "
                   f"{len(result.problems)} data problems); first error: {_first_error(result)}{written}", err=True)
        raise typer.Exit(1)
    if s["n_unlabelled_scans"] == s["n_scans"]:
        if out is not None:
            typer.echo(f"wrote {out}/results.json, results.csv, summary.md, report.html")
        return
    header, rows = summary_rows(result.summary)
    typer.echo(markdown_table(header, rows).replace("**", ""))
    typer.echo(f"\n{result.potential}: mean FSD full {s['full_smoothness']:.4g}, compress {s['compress_smoothness']:.4g}, "
               f"stretch {s['stretch_smoothness']:.4g} ({s.get('unit', '1/Å')}; {s.get('headline', 'all scans')}) over "
               f"{s['n_scans'] - s['n_unscored_scans']} of {s['n_scans']} scans ({s['n_unscored_scans']} unscored); "
               f"{s['n_failed_frames']} failed frames; {len(result.problems)} data problems.")
    for problem in result.problems[:10]:
        typer.echo(f"  data problem: {problem}", err=True)
    if out is not None:
        typer.echo(f"wrote {out}/results.json, results.csv, summary.md, report.html")


def bsct(
    data: Annotated[Optional[Path], typer.Option(help="Scan set: published-layout folder, compact .npz or "
                                                      "multi-frame extended XYZ. Default: the scans embedded in "
                                                      "pesprobe.")] = None,
    calc: Annotated[str, typer.Option(help=spec_help())] = DEFAULT_SPEC,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("bsct_out"),
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    shard: Annotated[Optional[str], typer.Option(help="Evaluate only slice I of N (0-based), e.g. 0/4.")] = None,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write a figure for every scan.")] = False,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Reuse cached model results in OUT/cache.")] = True,
    threads: Annotated[int, typer.Option(min=1, help="Threads (OpenMP, torch) of the main process and of every "
                                                     "worker.")] = 1,
    isolate: Annotated[bool, typer.Option("--isolate/--no-isolate",
                                          help="Evaluate scans in a worker process even with --jobs 1, so a "
                                               "calculator that crashes (segfault) fails its scan, not the run. "
                                               "Always on with --jobs > 1 or --timeout.")] = False,
    timeout: Annotated[Optional[float], typer.Option(min=0.001, help="Seconds one scan may take; a scan still "
                                                                     "running then is killed and fails.")] = None,
    max_batch_atoms: Annotated[Optional[int], typer.Option(min=1, help="Most atoms per forward call of a batched "
                                                                       "model (pesprobe:, torchsim:); bounds its "
                                                                       "memory, never changes results. Default: "
                                                                       "the model's own (512 for pesprobe "
                                                                       "models).")] = None,
    cluster: Annotated[Optional[str], typer.Option(help=CLUSTER_HELP)] = None,
) -> None:
    """Run the Bond Smoothness Characterization Test of a potential on a scan set."""
    from pesprobe.evaluate import evaluate
    from pesprobe.evaluate.lock import OutputBusyError

    try:
        if max_batch_atoms is not None:
            from pesprobe.potentials.registry import resolve

            potential = resolve(calc)
            if hasattr(potential, "max_atoms"):
                potential.max_atoms = max_batch_atoms
                calc = potential
            else:
                typer.echo(f"note: {calc} is evaluated frame by frame; --max-batch-atoms does not apply", err=True)
        result = evaluate(calc, data, out=out, jobs=jobs, shard=_parse_shard(shard), plots=plots, resume=resume,
                          threads=threads, isolate=isolate, timeout=timeout, cluster=cluster)
    except (SpecError, FileNotFoundError, ValueError, OutputBusyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _print_summary(result, out)


def merge(
    shards: Annotated[list[Path], typer.Argument(help="Output folders of the --shard runs.")],
    out: Annotated[Path, typer.Option(help="Folder for the merged results.")] = Path("bsct_out"),
) -> None:
    """Combine the outputs of sharded ``pesprobe bsct --shard I/N`` runs into one result."""
    from pesprobe.evaluate import merge as merge_results
    from pesprobe.evaluate.lock import OutputBusyError

    try:
        result = merge_results(shards, out)
    except (ValueError, OutputBusyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _print_summary(result, out)


def register(app: typer.Typer) -> None:
    """Add ``bsct`` and ``merge`` to the CLI."""
    app.command("bsct")(bsct)
    app.command("merge")(merge)
