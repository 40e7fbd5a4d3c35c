"""The study's data: what is missing, the commands that make it, building it, and picking subsets."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

from pesprobe.data.scan import ScanSet
from pesprobe.study.config import ScanRecipe, StudyConfig, TrainRecipe


class MissingDataError(FileNotFoundError):
    """Data files of a study do not exist; the message lists them and the commands that make them."""


def missing(config: StudyConfig) -> list[Path]:
    """The data paths of ``config`` that do not exist."""
    paths = [config.train_path, config.valid_path, config.scans_path]
    return [p for p in paths if p is not None and not p.exists()]


def train_command(recipe: TrainRecipe) -> str:
    """The ``pesprobe data sample`` command line equivalent to ``recipe``; settings the command has no
    option for are named in a trailing comment."""
    parts = ["pesprobe", "data", "sample", "--out", str(recipe.out)]
    if recipe.preset:
        parts += ["--preset", recipe.preset]
    for entry in recipe.smiles:
        parts += ["--smiles", entry.split()[0]]
    flags = {"reference": "--reference", "snapshots": "--snapshots", "interval": "--interval",
             "stretches": "--stretches", "seed": "--seed"}
    for key, flag in flags.items():
        if key in recipe.settings:
            parts += [flag, str(recipe.settings[key])]
    if "temperatures" in recipe.settings:
        parts += ["--temperatures", ",".join(f"{t:g}" for t in recipe.settings["temperatures"])]
    parts += ["--jobs", str(recipe.jobs)]
    other = sorted(set(recipe.settings) - set(flags) - {"temperatures"})
    note = f"  # the study also sets {', '.join(other)} (use --build-data for those)" if other else ""
    return shlex.join(parts) + note


def scan_command(recipe: ScanRecipe) -> str:
    """The ``pesprobe scan build`` command line equivalent to ``recipe``."""
    parts = ["pesprobe", "scan", "build", "--out", str(recipe.out)]
    if recipe.preset:
        parts += ["--preset", recipe.preset]
    for entry in recipe.smiles:
        parts += ["--smiles", entry.split()[0]]
    if recipe.reference:
        parts += ["--reference", recipe.reference]
    if recipe.bond_types:
        parts += ["--bonds", ",".join(recipe.bond_types)]
    for value, flag in ((recipe.per_type, "--per-type"), (recipe.points, "--points"), (recipe.seed, "--seed")):
        if value is not None:
            parts += [flag, str(value)]
    parts += ["--jobs", str(recipe.jobs)]
    return shlex.join(parts)


def check_data(config: StudyConfig) -> None:
    """Raise :class:`MissingDataError` naming each missing file and how to make it."""
    gone = missing(config)
    if not gone:
        return
    lines = [f"missing data: {', '.join(str(p) for p in gone)}"]
    needs_train = any(p in gone for p in (config.train_path, config.valid_path))
    if needs_train:
        lines.append(f"  make the training data with:  {train_command(config.train_recipe)}"
                     if config.train_recipe else "  (no build.train recipe in the study: give existing files)")
    if config.scans_path in gone:
        lines.append(f"  make the BSCT scan set with:  {scan_command(config.scan_recipe)}"
                     if config.scan_recipe else "  (no build.scans recipe in the study: give an existing scan set)")
    lines.append("  or run the study with --build-data to build them first")
    raise MissingDataError("\n".join(lines))


def _entries(preset_file: str | None, smiles: list[str]) -> list[tuple[str, str]]:
    from pesprobe.scan.inputs import packaged_smiles

    entries = packaged_smiles(preset_file) if preset_file else []
    for k, line in enumerate(smiles, start=1):
        parts = line.split()
        entries.append((parts[0], parts[1] if len(parts) > 1 else f"smiles_{k}"))
    return entries


def build_training_data(recipe: TrainRecipe, progress: bool = True, log: Callable[[str], None] = print) -> None:
    """Sample and label the training/validation/test sets of ``recipe`` (resumable)."""
    from pesprobe.data.sample import SampleSettings, sample_dataset
    from pesprobe.scan.inputs import embed_all
    from pesprobe.scan.presets import sample_preset

    preset = sample_preset(recipe.preset) if recipe.preset else None
    base = {}
    if preset is not None:
        base = {"reference": preset.reference, "temperatures": preset.temperatures, "snapshots": preset.snapshots,
                "interval": preset.interval, "stretches": preset.stretches, "seed": preset.seed}
    settings = SampleSettings(**{**base, **recipe.settings})
    structures, problems = embed_all(_entries(preset.smiles_file if preset else None, recipe.smiles),
                                     seed=settings.seed)
    log(f"building training data: {len(structures)} molecules labelled with {settings.reference} -> {recipe.out}")
    report = sample_dataset(structures, recipe.out, settings, jobs=recipe.jobs, problems=problems, progress=progress)
    if not report.counts.get("train"):
        raise ValueError(f"build.train: no training structures were made in {recipe.out} "
                         f"({len(report.problems)} problems, see {recipe.out}/provenance.json)")


def build_scan_set(recipe: ScanRecipe, progress: bool = True, log: Callable[[str], None] = print) -> None:
    """Generate and label the BSCT scan set of ``recipe`` (resumable); writes ``<out>.npz``."""
    from pesprobe.scan.build import build_scans
    from pesprobe.scan.generate import ScanSettings
    from pesprobe.scan.graph import normalize_bond_type
    from pesprobe.scan.inputs import embed_all
    from pesprobe.scan.presets import scan_preset

    preset = scan_preset(recipe.preset) if recipe.preset else None
    seed = recipe.seed if recipe.seed is not None else (preset.seed if preset else 0)
    reference = recipe.reference or (preset.reference if preset else "gfn2-xtb")
    bond_types = recipe.bond_types or (list(preset.bond_types) if preset else None)
    types = tuple(normalize_bond_type(b) for b in bond_types) if bond_types else None
    structures, problems = embed_all(_entries(preset.smiles_file if preset else None, recipe.smiles), seed=seed)
    settings = ScanSettings(reference=reference, n_points=recipe.points or (preset.n_points if preset else 100),
                            dataset=preset.dataset if preset else "pesprobe-study")
    log(f"building BSCT scans: {len(structures)} molecules labelled with {reference} -> {recipe.out}")
    report = build_scans(structures, recipe.out, settings, bond_types=types,
                         per_type=recipe.per_type or (preset.per_type if preset else None), seed=seed,
                         jobs=recipe.jobs, problems=problems, progress=progress)
    if not len(report.scans):
        raise ValueError(f"build.scans: no scans were made in {recipe.out} (see {recipe.out}/build.json)")


def ensure_data(config: StudyConfig, build: bool, progress: bool = True,
                log: Callable[[str], None] = print) -> None:
    """Build the missing data when ``build`` (and a recipe exists), then check every path exists.

    Raises
    ------
    MissingDataError
        If data are still missing (the message says which command makes them).
    """
    gone = missing(config)
    if build and gone:
        if config.train_recipe is not None and any(p in gone for p in (config.train_path, config.valid_path)):
            build_training_data(config.train_recipe, progress, log)
        if config.scan_recipe is not None and config.scans_path in gone:
            build_scan_set(config.scan_recipe, progress, log)
    check_data(config)


def spread(scans: ScanSet, n: int | None) -> ScanSet:
    """All scans (``n`` None), or ``n`` of them spread over the bond types (round robin, data-set order)."""
    if n is None or n >= len(scans):
        return scans
    groups: dict[str, list] = {}
    for scan in scans:
        groups.setdefault(scan.group, []).append(scan)
    picked: list = []
    for depth in range(max(len(g) for g in groups.values())):
        picked += [g[depth] for _, g in sorted(groups.items()) if depth < len(g)]
    keep = {s.id for s in picked[:n]}
    return ScanSet([s for s in scans if s.id in keep], source=scans.source, problems=list(scans.problems))


def md_molecules(scans: ScanSet, wanted: int | list[str]) -> list:
    """Starting molecules for MD, each the unperturbed geometry of one BSCT scan (id = scan id).

    Parameters
    ----------
    scans : ScanSet
        The scans BSCT runs on (so every MD molecule has an FSD to pair with).
    wanted : int or list of str
        How many (one scan per distinct molecule, spread over the bond types), or scan ids.

    Raises
    ------
    ValueError
        For an unknown scan id.
    """
    from pesprobe.md.systems import molecule_from_scan

    if isinstance(wanted, list):
        known = set(scans.ids())
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise ValueError(f"md.molecules: scan id(s) {', '.join(unknown)} are not among the BSCT scans "
                             f"({len(known)} scans, e.g. {', '.join(sorted(known)[:3])})")
        return [molecule_from_scan(scans[w]) for w in wanted]
    groups: dict[str, list] = {}
    for scan in scans:
        groups.setdefault(scan.group, []).append(scan)
    chosen, seen = [], set()
    for depth in range(max((len(g) for g in groups.values()), default=0)):
        for _, group in sorted(groups.items()):
            if depth >= len(group) or len(chosen) >= wanted:
                continue
            molecule = molecule_from_scan(group[depth])
            key = (molecule.numbers.tobytes(), molecule.positions.round(3).tobytes())
            if key not in seen:
                seen.add(key)
                chosen.append(molecule)
    return chosen
