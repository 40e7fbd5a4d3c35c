"""``pesprobe train CONFIG.yaml``: train a model (data-parallel under ``torchrun``)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``."""

    @app.command("train")
    def train_command(
        config: Path = typer.Argument(..., help="Training configuration (YAML: model, data, train, bsct sections)."),
        resume: bool = typer.Option(False, "--resume", help="Continue from <train.out>/last.pt."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        """Train a pesprobe MLIP; run under `torchrun --nproc_per_node N -m pesprobe train ...` for data parallelism."""
        import os

        from pesprobe.data.structures import StructureFormatError
        from pesprobe.models import CheckpointError
        from pesprobe.train import ConfigError, train

        try:
            result = train(config, resume=resume, progress=progress)
        except (ConfigError, StructureFormatError, CheckpointError, FileExistsError, FileNotFoundError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None
        if int(os.environ.get("RANK", "0")) != 0:
            return
        typer.echo(f"trained {result.steps} steps on {result.n_train} structures "
                   f"({result.n_valid} for validation) in {result.wall_seconds:.1f} s -> {result.out}")
        if result.stopped_early:
            typer.echo(f"  stopped early at step {result.steps}: valid_score stopped improving (train.patience)")
        for name, value in result.baselines.items():
            typer.echo(f"  {name:34s} {value:.6g}" if isinstance(value, float) else f"  {name:34s} {value}")
        for name, value in result.metrics.items():
            typer.echo(f"  {name:22s} {value:.6g}" if isinstance(value, float) else f"  {name:22s} {value}")
        for name, path in result.checkpoints.items():
            typer.echo(f"  checkpoint {name:22s} {path}")
