"""CLI: ``pesprobe scan build`` (scan sets) and ``pesprobe data sample`` (training data)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from pesprobe.potentials.registry import SpecError, calculator_factory, spec_help

scan_app = typer.Typer(help="Generate scan sets (bond stretches, angle bends, torsions) labelled by a reference.",
                       no_args_is_help=True)
data_app = typer.Typer(help="Generate training data labelled by a reference.", no_args_is_help=True)

InputsArg = Annotated[Optional[list[Path]], typer.Argument(
    help="Structure files: SMILES lists (.smi/.txt), .xyz/.extxyz, .sdf, SPICE .h5, crystals (.cif, POSCAR).")]
SmilesOpt = Annotated[Optional[list[str]], typer.Option("--smiles", help="A SMILES string (repeatable).")]


def _split_list(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _read_inputs(inputs: list[Path] | None, smiles: list[str] | None, packaged: str | None, seed: int):
    """Structures and problems from files, ``--smiles`` strings and a packaged SMILES list."""
    from pesprobe.scan.inputs import embed_all, packaged_smiles, read_structures

    structures, problems = [], []
    if packaged:
        found, bad = embed_all(packaged_smiles(packaged), seed=seed)
        structures += found
        problems += bad
    for path in inputs or []:
        found, bad = read_structures(path, smiles_seed=seed)
        structures += found
        problems += bad
    if smiles:
        found, bad = embed_all([(s, f"smiles_{k}") for k, s in enumerate(smiles, start=1)], seed=seed)
        structures += found
        problems += bad
    return structures, problems


def _echo_problems(problems, limit: int = 20) -> None:
    for problem in problems[:limit]:
        typer.echo(f"  problem: {problem}", err=True)
    if len(problems) > limit:
        typer.echo(f"  ... and {len(problems) - limit} more (see build.json / provenance.json)", err=True)


@scan_app.command("build")
def build(
    inputs: InputsArg = None,
    out: Annotated[Path, typer.Option(help="Output folder (published layout for bond scans).")] = Path("scans"),
    preset: Annotated[Optional[str], typer.Option(help="Built-in recipe: xtb-organic (BSCT-xTB set).")] = None,
    smiles: SmilesOpt = None,
    reference: Annotated[Optional[str], typer.Option(
        help=spec_help("Reference") + " Default: gfn2-xtb (the preset's with --preset).")] = None,
    kind: Annotated[str, typer.Option(help="Comma list of scan kinds: bond, angle, torsion.")] = "bond",
    bonds: Annotated[Optional[str], typer.Option(
        help="Comma list of bond types, e.g. C-C,C-N (default: every bond type without hydrogen; "
             "the preset's types with --preset).")] = None,
    per_type: Annotated[Optional[int], typer.Option(
        min=1, help="Scans per bond type (and per angle/torsion kind), seeded choice; default all.")] = None,
    points: Annotated[Optional[int], typer.Option(min=3, help="Frames per scan (default 100).")] = None,
    angle_range: Annotated[float, typer.Option(help="Angle scans: ± this many degrees.")] = 60.0,
    seed: Annotated[Optional[int], typer.Option(help="Seed of embedding and bond choice.")] = None,
    relax: Annotated[bool, typer.Option("--relax/--no-relax",
                                        help="Relax structures read from files (SMILES are always relaxed).")] = False,
    cutoff: Annotated[float, typer.Option(help="Crystals: supercells are at least 2*CUTOFF Å wide.")] = 6.0,
    compact: Annotated[Optional[Path], typer.Option(help="Compact output file (default OUT.npz).")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="OpenMP threads per worker.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bars.")] = False,
) -> None:
    """Generate scans, label them with the reference, and write the published layout plus a compact file.

    Resumable: rerunning the same command skips the scans already in OUT.build/ (beside OUT).
    """
    from pesprobe.scan.build import build_scans
    from pesprobe.scan.generate import ScanSettings
    from pesprobe.scan.graph import normalize_bond_type
    from pesprobe.scan.presets import scan_preset

    try:
        recipe = scan_preset(preset) if preset else None
        bond_types = _split_list(bonds) or (recipe.bond_types if recipe else None)
        if bond_types is not None:
            bond_types = tuple(normalize_bond_type(b) for b in bond_types)
        kinds = _split_list(kind) or ("bond",)
        reference = reference or (recipe.reference if recipe else "gfn2-xtb")
        calculator_factory(reference)
    except (ValueError, SpecError, ImportError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    seed = seed if seed is not None else (recipe.seed if recipe else 0)
    structures, problems = _read_inputs(inputs, smiles, recipe.smiles_file if recipe else None, seed)
    if not structures:
        _echo_problems(problems)
        typer.echo("error: no usable input structures (give files, --smiles or --preset)", err=True)
        raise typer.Exit(2)
    settings = ScanSettings(reference=reference, n_points=points or (recipe.n_points if recipe else 100),
                            angle_half_width=angle_range, relax_files=relax, cutoff=cutoff,
                            dataset=recipe.dataset if recipe else "pesprobe")
    try:
        report = build_scans(structures, out, settings, kinds=kinds, bond_types=bond_types,
                             per_type=per_type or (recipe.per_type if recipe else None), seed=seed, jobs=jobs,
                             compact=compact, problems=problems, progress=not quiet, threads=threads)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    groups: dict[str, int] = {}
    for scan in report.scans:
        groups[scan.group] = groups.get(scan.group, 0) + 1
    typer.echo(f"{len(report.scans)} scans ({', '.join(f'{g} {n}' for g, n in sorted(groups.items()))}); "
               f"{report.reused} reused, {len(report.dropped)} dropped; {report.n_labelled} reference calculations; "
               f"prepare {report.seconds['prepare']:.1f} s, label {report.seconds['label']:.1f} s")
    _echo_problems(report.scans.problems)
    if not report.scans:
        typer.echo(f"error: 0 scans built (reference {reference}); see the problems above and {out}/build.json",
                   err=True)
        raise typer.Exit(1)
    typer.echo(f"wrote {out}/ (published layout, build.json) and {compact or out.with_name(out.name + '.npz')}")


@data_app.command("sample")
def sample(
    inputs: InputsArg = None,
    out: Annotated[Path, typer.Option(help="Output folder (train.xyz, val.xyz, test.xyz, provenance.json).")]
    = Path("train_data"),
    preset: Annotated[Optional[str], typer.Option(help="Built-in recipe: xtb-train, xtb-train-large.")] = None,
    smiles: SmilesOpt = None,
    reference: Annotated[Optional[str], typer.Option(
        help=spec_help("Reference") + " Default: gfn2-xtb (the preset's with --preset).")] = None,
    temperatures: Annotated[Optional[str], typer.Option(help="Comma list of MD temperatures in K.")] = None,
    snapshots: Annotated[Optional[int], typer.Option(min=0, help="Structures kept per trajectory.")] = None,
    interval: Annotated[Optional[int], typer.Option(min=1, help="MD steps between kept structures.")] = None,
    stretches: Annotated[Optional[int], typer.Option(min=0, help="Random bond stretches per molecule.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Master seed.")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    threads: Annotated[int, typer.Option(min=1, help="OpenMP threads per worker.")] = 1,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Sample configurations (Langevin MD + bond stretches), label them, split by molecule.

    Resumable: rerunning the same command reuses the molecules finished in OUT/.work.
    """
    from pesprobe.data.sample import SampleSettings, sample_dataset
    from pesprobe.scan.presets import sample_preset

    try:
        recipe = sample_preset(preset) if preset else None
        defaults = SampleSettings()
        temps = _split_list(temperatures)
        settings = SampleSettings(
            reference=reference or (recipe.reference if recipe else defaults.reference),
            temperatures=tuple(float(t) for t in temps) if temps else
            (recipe.temperatures if recipe else defaults.temperatures),
            snapshots=snapshots if snapshots is not None else (recipe.snapshots if recipe else defaults.snapshots),
            interval=interval or (recipe.interval if recipe else defaults.interval),
            stretches=stretches if stretches is not None else (recipe.stretches if recipe else defaults.stretches),
            seed=seed if seed is not None else (recipe.seed if recipe else defaults.seed),
            equilibration=recipe.equilibration if recipe else defaults.equilibration,
            stretch_range=recipe.stretch_range if recipe else defaults.stretch_range)
        calculator_factory(settings.reference)
    except (ValueError, SpecError, ImportError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    structures, problems = _read_inputs(inputs, smiles, recipe.smiles_file if recipe else None, settings.seed)
    if not structures:
        _echo_problems(problems)
        typer.echo("error: no usable input structures (give files, --smiles or --preset)", err=True)
        raise typer.Exit(2)
    report = sample_dataset(structures, out, settings, jobs=jobs, problems=problems, progress=not quiet,
                            threads=threads)
    counts = ", ".join(f"{k} {report.counts[k]} ({len(report.molecules[k])} molecules)" for k in report.counts)
    typer.echo(f"{sum(report.counts.values())} structures: {counts}; {report.reused} molecules reused; "
               f"{report.seconds:.1f} s")
    _echo_problems(report.problems)
    typer.echo(f"wrote {out}/train.xyz, val.xyz, test.xyz, provenance.json")


def register(app: typer.Typer) -> None:
    """Add the ``scan`` and ``data`` command groups."""
    app.add_typer(scan_app, name="scan")
    app.add_typer(data_app, name="data")
