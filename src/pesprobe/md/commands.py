"""CLI commands of the MD stability test: ``pesprobe md`` and ``pesprobe correlate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pesprobe.evaluate.executors import CLUSTER_HELP
from pesprobe.potentials.registry import DEFAULT_SPEC, spec_help

Data = Annotated[Optional[Path], typer.Option(help="Molecules: extended XYZ file, or a scan set (published-layout "
                                              "folder or compact .npz; its unperturbed geometries). "
                                              "Default: the scans embedded in pesprobe.")]
Temperature = Annotated[float, typer.Option(help="Initial Maxwell-Boltzmann (and NVT bath) temperature T0, K.")]
Timestep = Annotated[float, typer.Option(help="Time step, fs.")]
Length = Annotated[float, typer.Option(help="Trajectory length, ps.")]
Seeds = Annotated[str, typer.Option(help="Comma-separated seeds: one trajectory per seed and molecule.")]
Ensemble = Annotated[str, typer.Option(help="nve (velocity Verlet) or nvt (Langevin).")]
Friction = Annotated[float, typer.Option(help="Langevin friction, 1/fs (NVT).")]
SaveEvery = Annotated[int, typer.Option(help="Trajectory frame every K steps (0: none).")]
LogEvery = Annotated[int, typer.Option(help="Energy/temperature sample every K steps.")]
BreakFactor = Annotated[float, typer.Option(help="Failure: a t=0 bond (d < 1.2 x sum of covalent radii, as the scan "
                                                 "builder perceives it) longer than this x the sum of covalent radii.")]
FormHold = Annotated[float, typer.Option(help="Failure: a pair not bonded at t=0 inside the bonding cutoff this long "
                                              "(a new bond), fs.")]
BlowupFactor = Annotated[float, typer.Option(help="Failure: instantaneous kinetic temperature above this x T0.")]
FlyApart = Annotated[float, typer.Option(help="Failure: an atom's nearest-neighbour distance growing by more "
                                              "than this, Å.")]
EnergyTol = Annotated[float, typer.Option(help="Failure (NVE): total energy leaving E_tot(0) by more than this, "
                                               "eV/atom.")]
SpikeWindow = Annotated[float, typer.Option(help="Window of the temperature-spike measure, fs.")]
SpikeSettle = Annotated[float, typer.Option(help="The temperature-spike and peak measures skip the first this "
                                                 "many fs (the start-up transient), fs.")]
Engine = Annotated[str, typer.Option(help="auto (batched for torch models), ase or batched.")]
Jobs = Annotated[int, typer.Option(min=1, help="Worker processes for ASE trajectories.")]
Plots = Annotated[bool, typer.Option("--plots/--no-plots", help="Write figures.")]
Resume = Annotated[bool, typer.Option("--resume/--no-resume", help="Reuse finished trajectories in OUT.")]


def _config(temperature: float, timestep: float, length: float, seeds: str, ensemble: str, friction: float,
            save_every: int, log_every: int, break_factor: float, form_hold: float, blowup_factor: float,
            fly_apart: float, energy_tolerance: float, spike_window: float, spike_settle: float):
    from pesprobe.md.config import MDConfig

    try:
        seed_list = tuple(int(s) for s in seeds.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter(f"--seeds: expected comma-separated integers, got {seeds!r}") from None
    try:
        return MDConfig(temperature_K=temperature, timestep_fs=timestep, length_ps=length, seeds=seed_list,
                        ensemble=ensemble, friction_per_fs=friction, save_every=save_every, log_every=log_every,
                        break_factor=break_factor, form_hold_fs=form_hold, blowup_factor=blowup_factor,
                        fly_apart_A=fly_apart,
                        energy_tolerance_eV_atom=energy_tolerance, spike_window_fs=spike_window,
                        spike_settle_fs=spike_settle)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _data(data: Path | None) -> Path:
    if data is not None:
        return data
    from pesprobe.data.embedded import embedded_scans_path

    return embedded_scans_path()


def md(
    calc: Annotated[str, typer.Option(help=spec_help() + " MODULE:FACTORY may also return a torch model.")]
    = DEFAULT_SPEC,
    data: Data = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("md_out"),
    temperature: Temperature = 500.0, timestep: Timestep = 0.5, length: Length = 10.0, seeds: Seeds = "0,1,2",
    ensemble: Ensemble = "nve", friction: Friction = 0.01, save_every: SaveEvery = 100, log_every: LogEvery = 1,
    break_factor: BreakFactor = 1.5, form_hold: FormHold = 20.0, blowup_factor: BlowupFactor = 5.0,
    fly_apart: FlyApart = 3.0, energy_tolerance: EnergyTol = 0.05,
    spike_window: SpikeWindow = 5.0, spike_settle: SpikeSettle = 50.0, engine: Engine = "auto", jobs: Jobs = 1,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="Batched engine: trajectories per batch "
                                                              "(default: all).")] = None,
    device: Annotated[Optional[str], typer.Option(help="Batched engine: torch device.")] = None,
    plots: Plots = True, resume: Resume = True,
    cluster: Annotated[Optional[str], typer.Option(help=CLUSTER_HELP)] = None,
) -> None:
    """MD stability test: NVE/NVT trajectories per molecule and seed, failures and stability measures."""
    from pesprobe.md.study import run_stability
    from pesprobe.potentials.registry import SpecError

    config = _config(temperature, timestep, length, seeds, ensemble, friction, save_every, log_every,
                     break_factor, form_hold, blowup_factor, fly_apart, energy_tolerance, spike_window,
                     spike_settle)
    try:
        result = run_stability(calc, _data(data), config, out=out, engine=engine, jobs=jobs, batch_size=batch_size,
                               device=device, plots=plots, resume=resume, cluster=cluster)
    except (SpecError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    s = result.summary
    typer.echo(f"{result.potential} ({result.engine} engine): {s['n_failed']}/{s['n_trajectories']} trajectories "
               f"failed {s['failures_by_criterion'] or ''}")
    for mol, values in result.molecules.items():
        typer.echo(f"  {mol}: failed {values['failure_fraction']:.0%}, time to failure "
                   f"{values['time_to_failure_ps']:.3g} ps, drift {values['energy_drift_meV_atom_ps']:.3g} "
                   f"meV/atom/ps, T jump {values['temperature_jump_K']:.3g} K")
    from pesprobe.report.tables import unseen_elements_note

    if note := unseen_elements_note(result.unseen_elements, "molecules"):
        typer.echo(note)
    typer.echo(f"wrote {out}/results.json, trajectories.csv, molecules.csv" + (", plots/" if plots else ""))


def correlate(
    calcs: Annotated[list[str], typer.Argument(help="Potential SPECs (at least two for a correlation across "
                                                    "potentials).")],
    data: Data = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("correlate_out"),
    temperature: Temperature = 500.0, timestep: Timestep = 0.5, length: Length = 10.0, seeds: Seeds = "0,1,2",
    ensemble: Ensemble = "nve", friction: Friction = 0.01, save_every: SaveEvery = 100, log_every: LogEvery = 1,
    break_factor: BreakFactor = 1.5, form_hold: FormHold = 20.0, blowup_factor: BlowupFactor = 5.0,
    fly_apart: FlyApart = 3.0, energy_tolerance: EnergyTol = 0.05,
    spike_window: SpikeWindow = 5.0, spike_settle: SpikeSettle = 50.0, engine: Engine = "auto", jobs: Jobs = 1,
    bootstrap: Annotated[int, typer.Option(min=10, help="Bootstrap resamples for the 95% CIs.")] = 2000,
    permutations: Annotated[int, typer.Option(min=10, help="Permutations for the p-values.")] = 5000,
    plots: Plots = True,
    predictor: Annotated[str, typer.Option(help="Primary question: the BSCT figure (pair column).")] = "full_smoothness",
    outcome: Annotated[str, typer.Option(help="Primary question: the MD instability measure.")] = "failure_fraction",
    unit: Annotated[str, typer.Option(help="Primary question: potential, molecule or pair.")] = "potential",
    control: Annotated[str, typer.Option(help="Primary question: the baseline the partial rho conditions on.")
                       ] = "full_forces_mae",
) -> None:
    """BSCT and MD stability for several potentials on the same molecules: the primary question (does FSD
    rank potentials by MD failure, beyond force error?) with cluster bootstrap CI and cluster permutation p;
    a secondary table of rank correlations with Holm-adjusted p; the MD/BSCT cost ratio."""
    from pesprobe.md.clustered import PrimaryQuestion
    from pesprobe.md.correlate import correlate as run_correlate
    from pesprobe.potentials.registry import SpecError

    try:
        question = PrimaryQuestion(predictor=predictor, outcome=outcome, unit=unit, control=control)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None

    config = _config(temperature, timestep, length, seeds, ensemble, friction, save_every, log_every,
                     break_factor, form_hold, blowup_factor, fly_apart, energy_tolerance, spike_window,
                     spike_settle)
    try:
        result = run_correlate(calcs, _data(data), config, out=out, n_bootstrap=bootstrap,
                               n_permutations=permutations, engine=engine, jobs=jobs, plots=plots, question=question)
    except (SpecError, FileNotFoundError, ValueError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    a = result.primary
    typer.echo(f"primary question: {a['question']}")
    typer.echo(f"  Spearman rho = {a['rho']:+.2f}, 95% cluster-bootstrap CI [{a['ci_low']:+.2f}, {a['ci_high']:+.2f}], "
               f"cluster permutation p = {a['p_value']:.3g} ({a['permutation']}; n = {a['n_units']} {a['unit']}s)")
    typer.echo(f"  partial rho given {a['control']} = {a['partial_rho']:+.2f} [{a['partial_ci_low']:+.2f}, "
               f"{a['partial_ci_high']:+.2f}], p = {a['partial_p_value']:.3g}")
    typer.echo("secondary (pairs as independent): pooled Spearman rho of FSD (full) with each measure, p, Holm p:")
    for row in result.correlations:
        if row["group"] == "pooled" and row["fsd"] == "full_smoothness" and row["method"] == "spearman":
            typer.echo(f"  {row['measure']:<30} {row['value']:+.2f} [{row['ci_low']:+.2f}, {row['ci_high']:+.2f}]  "
                       f"p = {row['p_value']:.3g}  Holm p = {row['p_holm']:.3g}  (n = {row['n']})")
    c = result.cost
    with_labels = (f"; with labelling the scans: {c['ratio_with_labels']:.3g}x" if c["ratio_with_labels"] is not None
                   else f"; {c['label_note']}")
    typer.echo(f"cost: MD {c['md_seconds']:.3g} s / BSCT {c['bsct_seconds']:.3g} s = {c['ratio']:.3g}x (MD at full "
               f"length {c['ratio_full_length']:.3g}x){with_labels}")
    typer.echo(f"wrote {out}/correlation.json, correlations.csv, pairs.csv" + (", plots/scatter.png" if plots else ""))


def register(app: typer.Typer) -> None:
    """Add ``md`` and ``correlate`` to the CLI."""
    app.command("md")(md)
    app.command("correlate")(correlate)
