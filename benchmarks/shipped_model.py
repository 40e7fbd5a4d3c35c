"""The shipped model against its targets (issue 12): held-out accuracy, MD stability and BSCT-xTB skill.

    python benchmarks/shipped_model.py --data DATA --scans SCANS --out OUT [--model pesprobe:default]
        [--compare NAME=RESULTS ...] [--md-molecules 24 --min-p 4 --min-s 4 --seeds 3 --length-ps 2
        --temperature 500] [--skip-md] [--skip-bsct] [--max-force F] [--threads 1]

- **Accuracy** on the test split of ``DATA`` (``pesprobe data sample --preset xtb-train-large``: molecules
  never trained on): energy MAE per atom (total, per-molecule offset, within-molecule), force MAE, beside the
  per-element linear fit on the training split and zero forces (:mod:`pesprobe.train.baselines`), per
  configuration type (equilibrium, md, stretch) and for the worst molecules.
- **MD stability** as ``pesprobe md`` runs it (NVE, 0.5 fs, the fixed failure monitor) at ``--temperature``
  K on ``--md-molecules`` held-out molecules (the test split's equilibrium geometries, at least
  ``--min-p`` with P and ``--min-s`` with S, topped up from the scan molecules of ``SCANS`` when the test
  split has too few), ``--seeds`` seeds x ``--length-ps`` ps; every failure with its criterion, time and
  atoms.
- **BSCT** on ``SCANS`` (``pesprobe scan build --preset xtb-organic``): mean full FSD, full-FSD skill and
  discontinuities of the model, of GFN-FF (``--compare gfn-ff=...``, else computed with ``--gfn-ff-spec``)
  and of every ``--compare`` entry (another potential's BSCT output folder, read only), with the skill
  compared scan by scan on the scans both scored.

Then the targets table: each target, the measured value, pass/fail and the margin. Prints the Markdown
fragment and writes ``OUT/shipped_model.json`` (atomically) and ``OUT/shipped_model.md``, which
``tools/make_model_card.py`` includes in the model card. ``OUT/bsct``, ``OUT/bsct_gfn-ff`` and ``OUT/md``
are the BSCT and MD output folders: a rerun resumes from them. One thread unless ``--threads``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shipped_model_markdown import markdown  # noqa: E402

from pesprobe.potentials.threads import limit_threads  # noqa: E402

#: The targets of issue 12 part 4 (energies meV/atom, forces eV/Å, MD settings, file size in MB = 10⁶ bytes).
TARGETS = {"energy_mae_meV_atom": 15.0, "below_linear_factor": 5.0, "forces_mae_eV_A": 0.10,
           "md_molecules": 24, "md_min_p": 4, "md_min_s": 4, "md_seeds": 3, "md_length_ps": 2.0,
           "md_temperature_K": 500.0, "size_MB": 10.0}
#: Worst molecules listed per criterion.
WORST = 5
JSON_NAME, MD_NAME = "shipped_model.json", "shipped_model.md"
P, S = 15, 16


def model_spec(text: str) -> str:
    """A checkpoint path as the SPEC ``pesprobe:PATH``; anything else is taken as a SPEC."""
    return f"pesprobe:{text}" if Path(text).suffix == ".pt" and Path(text).is_file() else text


def checkpoint_info(spec: str) -> dict[str, Any] | None:
    """File, size (bytes), parameters, dtype, training elements and config of a pesprobe checkpoint SPEC
    (None for other potentials)."""
    if not spec.strip().lower().startswith("pesprobe:"):
        return None
    from pesprobe.models import load_checkpoint
    from pesprobe.potentials.elements import element_symbols
    from pesprobe.potentials.registry import checkpoint_path

    path = checkpoint_path(spec)
    model, extra = load_checkpoint(path)
    known = model.training_elements
    return {"path": str(path), "size_bytes": path.stat().st_size,
            "parameters": int(sum(p.numel() for p in model.parameters())), "dtype": str(model.element_refs.dtype),
            "elements": None if known is None else element_symbols(known), "config": model.config.to_dict(),
            "steps": (extra.get("train_state") or {}).get("step", extra.get("steps"))}


# --------------------------------------------------------------------------- (a) held-out accuracy
def _config_types(path: Path) -> list[str]:
    """``config_type`` of every frame of an extended XYZ file (``"?"`` where absent)."""
    from ase.io import iread

    return [str(atoms.info.get("config_type", "?")) for atoms in iread(path, index=":", format="extxyz")]


def _below(structures: list, max_force: float | None) -> np.ndarray:
    """Mask of the structures that training's ``data.max_force`` filter keeps."""
    from pesprobe.train.loop import within_max_force

    return np.array([within_max_force(s, max_force) for s in structures], dtype=bool)


def _predict(potential: Any, structures: list) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies (eV, NaN where failed) and forces (eV/Å) of ``structures``: one batched call per molecule."""
    from tqdm.auto import tqdm

    groups: dict[tuple[str, bytes], list[int]] = {}
    for index, s in enumerate(structures):
        groups.setdefault((s.molecule, s.numbers.tobytes()), []).append(index)
    energy = np.full(len(structures), np.nan)
    forces = [np.full_like(s.forces, np.nan) for s in structures]
    for indices in tqdm(list(groups.values()), desc="test split", unit="molecule"):
        first = structures[indices[0]]
        pred = potential.predict(first.numbers, np.stack([structures[i].positions for i in indices]),
                                 first.cell, first.pbc if first.pbc.any() else None)
        for slot, index in enumerate(indices):
            if not pred.failed[slot]:
                energy[index], forces[index] = pred.energy[slot], pred.forces[slot]
    return energy, forces


def _force_errors(structures: list, forces: list[np.ndarray]) -> tuple[float, float]:
    """MAE and RMSE (eV/Å) over every force component of the structures with labels and predictions."""
    diff = np.concatenate([(f - s.forces).reshape(-1) for s, f in zip(structures, forces, strict=True)
                           if s.has_forces and np.isfinite(f).all()] or [np.zeros(0)])
    return (float(np.mean(np.abs(diff))), float(np.sqrt(np.mean(diff**2)))) if len(diff) else (np.nan, np.nan)


def accuracy(potential: Any, data: Path, max_force: float | None = None) -> dict[str, Any]:
    """Errors of ``potential`` on ``data/test.xyz`` beside the linear fit (on ``data/train.xyz``) and zero forces.

    Parameters
    ----------
    potential : Potential
        Evaluated one batched call per test molecule.
    data : Path
        Folder with ``train.xyz`` and ``test.xyz`` (info keys ``mol_id``, ``config_type``).
    max_force : float, optional
        Leave out structures with a force component above this, eV/Å (both splits, as ``data.max_force``
        does in training). None: every structure.

    Returns
    -------
    dict
        ``model``, ``linear``, ``zero_forces`` (energies eV/atom, forces eV/Å), ``by_config_type``,
        ``worst_molecules``, ``unseen_elements`` per molecule, counts.
    """
    from dataclasses import asdict

    from pesprobe.data.structures import read_extxyz
    from pesprobe.potentials.elements import unseen_elements
    from pesprobe.train.baselines import energy_breakdown, linear_errors, validation_baselines

    train_all, test_all = read_extxyz(data / "train.xyz"), read_extxyz(data / "test.xyz")
    keep = _below(test_all, max_force)
    types = [t for t, k in zip(_config_types(data / "test.xyz"), keep, strict=True) if k]
    train = [s for s, k in zip(train_all, _below(train_all, max_force), strict=True) if k]
    test = [s for s, k in zip(test_all, keep, strict=True) if k]
    energy, forces = _predict(potential, test)
    n_atoms = np.array([s.n_atoms for s in test])
    errors = (energy - np.array([s.energy for s in test])) / n_atoms
    linear = linear_errors(train, test)
    molecules = [s.molecule for s in test]
    baselines = validation_baselines(train, test)
    f_mae, f_rmse = _force_errors(test, forces)
    by_type = {}
    for kind in sorted(set(types)):
        rows = [i for i, t in enumerate(types) if t == kind]
        sub = [test[i] for i in rows]
        by_type[kind] = {"structures": len(rows), "energy_mae": float(np.nanmean(np.abs(errors[rows]))),
                         "linear_energy_mae": float(np.nanmean(np.abs(linear[rows]))),
                         "forces_mae": _force_errors(sub, [forces[i] for i in rows])[0],
                         "zero_forces_mae": _force_errors(sub, [np.zeros_like(s.forces) for s in sub])[0]}
    per_molecule = {}
    for mol in dict.fromkeys(molecules):
        rows = [i for i, m in enumerate(molecules) if m == mol]
        per_molecule[mol] = {"structures": len(rows), "offset": float(np.nanmean(errors[rows])),
                             "forces_mae": _force_errors([test[i] for i in rows], [forces[i] for i in rows])[0]}
    known = getattr(potential, "training_elements", None)
    unseen = {m: unseen_elements(known, next(s.numbers for s in test if s.molecule == m)) for m in per_molecule}
    worst = {"forces": sorted(per_molecule, key=lambda m: -np.nan_to_num(per_molecule[m]["forces_mae"]))[:WORST],
             "offset": sorted(per_molecule, key=lambda m: -abs(np.nan_to_num(per_molecule[m]["offset"])))[:WORST]}
    return {"test_structures": len(test), "test_molecules": len(per_molecule), "train_structures": len(train),
            "left_out_max_force": int((~keep).sum()), "max_force": max_force,
            "failed_structures": int(np.isnan(energy).sum()),
            "model": {**asdict(energy_breakdown(errors, molecules)), "forces_mae": f_mae, "forces_rmse": f_rmse},
            "linear": asdict(baselines.linear),
            "zero_forces": {"forces_mae": baselines.zero_forces_mae, "forces_rmse": baselines.zero_forces_rmse},
            "by_config_type": by_type,
            "worst_molecules": {key: [{"molecule": m, **per_molecule[m]} for m in ids] for key, ids in worst.items()},
            "unseen_elements": {m: u for m, u in unseen.items() if u}}


# --------------------------------------------------------------------------- (b) MD stability
def md_molecules(data: Path, scans: Path | None, n: int, min_p: int, min_s: int) -> list[tuple[Any, str]]:
    """The MD molecules and where each comes from (``"test"`` or ``"scans"``).

    The test split's equilibrium geometries in order of molecule id: first ``min_p`` with P, then
    ``min_s`` with S, then others up to ``n``; the scan molecules of ``scans`` (also disjoint from the
    training molecules) top up whatever the test split cannot give.
    """
    from ase.io import iread

    from pesprobe.data import load_scans
    from pesprobe.md.systems import Molecule, molecules_from_scans

    first: dict[str, Any] = {}
    for atoms in iread(data / "test.xyz", index=":", format="extxyz"):
        if atoms.info.get("config_type") == "equilibrium":
            first.setdefault(str(atoms.info["mol_id"]), atoms)
    pools = [[(Molecule(mol, first[mol].numbers, first[mol].positions), "test") for mol in sorted(first)]]
    if scans is not None:
        pools.append([(m, "scans") for m in molecules_from_scans(load_scans(scans))])
    chosen: list[tuple[Any, str]] = []

    def take(want: int, wanted: Any) -> None:
        """Add molecules passing ``wanted`` until ``want`` of the chosen pass it (the test split first)."""
        for pool in pools:
            for mol, source in pool:
                if sum(wanted(m) for m, _ in chosen) >= want:
                    return
                if wanted(mol) and all(m.id != mol.id for m, _ in chosen):
                    chosen.append((mol, source))

    take(min_p, lambda m: P in m.numbers)
    take(min_s, lambda m: S in m.numbers)
    take(n, lambda m: True)
    return chosen


def stability(potential: Any, name: str, molecules: list[tuple[Any, str]], args: argparse.Namespace,
              out: Path) -> dict[str, Any]:
    """NVE MD of ``molecules`` as ``pesprobe md`` runs it; failures per trajectory with criterion, time, atoms."""
    from pesprobe.md import MDConfig, run_stability
    from pesprobe.potentials.elements import element_symbols

    config = MDConfig(temperature_K=args.temperature, length_ps=args.length_ps, seeds=tuple(range(args.seeds)))
    result = run_stability(potential, [m for m, _ in molecules], config, out=out, name=name)
    failures = [{"molecule": t.molecule, "seed": t.seed, "criterion": t.failure.criterion,
                 "time_fs": t.failure.time_fs, "atoms": [f"{a}:{s}" for a, s in zip(t.failure.atoms, t.failure.symbols,
                                                                                   strict=True)],
                 "detail": t.failure.detail} for t in result.trajectories if t.failure is not None]
    rows = [{"molecule": m.id, "source": source, "atoms": m.n_atoms, "elements": element_symbols(m.numbers),
             "failed_seeds": sum(f["molecule"] == m.id for f in failures), "seeds": len(config.seeds),
             "unseen_elements": result.unseen_elements.get(m.id, [])} for m, source in molecules]
    return {"config": config.to_dict(), "engine": result.engine, "molecules": rows,
            "n_molecules": len(rows), "n_with_p": sum(P in m.numbers for m, _ in molecules),
            "n_with_s": sum(S in m.numbers for m, _ in molecules), "n_trajectories": len(result.trajectories),
            "n_failed": len(failures), "failures": failures, "summary": result.summary, "out": str(out)}


# --------------------------------------------------------------------------- (c) BSCT
def _figures(result: Any) -> dict[str, Any]:
    s = result.summary
    return {"n_scans": s["n_scans"], "n_unscored_scans": s["n_unscored_scans"],
            "full_smoothness": s["full_smoothness"], "full_smoothness_skill": s["full_smoothness_skill"],
            "n_scans_with_discontinuities": s["n_scans_with_discontinuities"], "roughness": s["roughness"]}


def paired_skill(model: dict[str, dict], other: dict[str, dict], key: str = "full_smoothness_skill") -> dict[str, Any]:
    """Mean ``key`` of the model and of another potential over the scans both scored, and their difference."""
    common = [i for i in model if i in other and np.isfinite(model[i][key]) and np.isfinite(other[i][key])]
    a = np.array([model[i][key] for i in common], dtype=float)
    b = np.array([other[i][key] for i in common], dtype=float)
    nan = float("nan")
    return {"n_scans": len(common), "model": float(a.mean()) if len(a) else nan,
            "other": float(b.mean()) if len(b) else nan, "difference": float((a - b).mean()) if len(a) else nan,
            "model_better_fraction": float((a > b).mean()) if len(a) else nan}


def bsct(potential: Any, name: str, scans: Path, compare: dict[str, Path], gfn_ff_spec: str, out: Path,
         threads: int) -> dict[str, Any]:
    """BSCT of the model (``out/bsct``), GFN-FF (read from ``compare["gfn-ff"]`` or computed into
    ``out/bsct_gfn-ff``) and every ``compare`` entry, each compared scan by scan with the model."""
    from pesprobe.evaluate import evaluate
    from pesprobe.evaluate.result import BSCTResult

    model = evaluate(potential, scans, out=out / "bsct", name=name, threads=threads)
    others = {key: BSCTResult.read(path) for key, path in compare.items()}
    sources = {key: str(path) for key, path in compare.items()}
    if "gfn-ff" not in others:
        others["gfn-ff"] = evaluate(gfn_ff_spec, scans, out=out / "bsct_gfn-ff", threads=threads, report=False)
        sources["gfn-ff"] = f"{out / 'bsct_gfn-ff'} (computed: {gfn_ff_spec})"
    systems = model.systems
    rows = {key: {"source": sources[key], **_figures(result), "same_scans": set(result.order) == set(model.order),
                  "paired": paired_skill(systems, result.systems)} for key, result in others.items()}
    return {"scans": str(scans), "model": {**_figures(model), "out": str(out / "bsct"),
                                           "unseen_elements": model.unseen_elements},
            "others": rows}


# --------------------------------------------------------------------------- targets
def _at_most(name: str, value: float, limit: float, unit: str, digits: int = 3) -> dict[str, Any]:
    """A target ``value ≤ limit``: its row (margin > 0: met by that much)."""
    if not np.isfinite(value):
        return {"target": name, "measured": "not measured", "passed": None, "margin": "–"}
    margin = limit - value
    text = f"met by {margin:.{digits}g} {unit}" if margin >= 0 else \
        f"missed by {-margin:.{digits}g} {unit} ({value / limit:.2g}x the limit)"
    return {"target": name, "measured": f"{value:.{digits}g} {unit}", "passed": bool(margin >= 0), "margin": text}


def _md_target(md: dict[str, Any] | None) -> dict[str, Any]:
    t = TARGETS
    name = (f"MD: 0 failures on ≥ {t['md_molecules']} held-out molecules (≥ {t['md_min_p']} with P, "
            f"≥ {t['md_min_s']} with S), {t['md_seeds']} seeds x {t['md_length_ps']:g} ps at "
            f"{t['md_temperature_K']:g} K")
    if md is None:
        return {"target": name, "measured": "not measured", "passed": None, "margin": "–"}
    c = md["config"]
    measured = (f"{md['n_failed']}/{md['n_trajectories']} trajectories failed; {md['n_molecules']} molecules "
                f"({md['n_with_p']} P, {md['n_with_s']} S), {len(c['seeds'])} seeds x {c['length_ps']:g} ps at "
                f"{c['temperature_K']:g} K")
    short = [text for ok, text in ((md["n_molecules"] >= t["md_molecules"], "molecules"),
                                   (md["n_with_p"] >= t["md_min_p"], "P molecules"),
                                   (md["n_with_s"] >= t["md_min_s"], "S molecules"),
                                   (len(c["seeds"]) >= t["md_seeds"], "seeds"),
                                   (c["length_ps"] >= t["md_length_ps"], "length"),
                                   (c["temperature_K"] == t["md_temperature_K"], "temperature")) if not ok]
    failed_mols = len({f["molecule"] for f in md["failures"]})
    if md["n_failed"]:
        return {"target": name, "measured": measured, "passed": False,
                "margin": f"missed: {md['n_failed']} failed trajectories on {failed_mols} molecules"}
    if short:
        return {"target": name, "measured": measured, "passed": None,
                "margin": "not measured at the target's settings (" + ", ".join(short) + " below them)"}
    return {"target": name, "measured": measured, "passed": True, "margin": "met: no failure"}


def _skill_target(name: str, rows: dict[str, dict] | None) -> dict[str, Any]:
    """Model skill above every potential in ``rows`` (paired over common scans; None: BSCT not run)."""
    if not rows:
        return {"target": name, "measured": "not measured" if rows is None else "no potential given (--compare)",
                "passed": None, "margin": "–"}
    worst = min(rows, key=lambda k: np.nan_to_num(rows[k]["paired"]["difference"], nan=-np.inf))
    pair = rows[worst]["paired"]
    diff = pair["difference"]
    measured = (f"model {pair['model']:.3f} vs {worst} {pair['other']:.3f} on {pair['n_scans']} scans"
                + (f" (the closest of {len(rows)})" if len(rows) > 1 else ""))
    if not np.isfinite(diff):
        return {"target": name, "measured": measured, "passed": None, "margin": "no common scored scan"}
    return {"target": name, "measured": measured, "passed": bool(diff > 0),
            "margin": f"{'ahead of' if diff > 0 else 'behind'} {worst} by {abs(diff):.3f}"}


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of :data:`TARGETS` with the measured value, pass (True/False; None: not measured) and margin."""
    t, acc, ckpt = TARGETS, report.get("accuracy"), report.get("checkpoint")
    nan = float("nan")
    energy = acc["model"]["mae"] * 1000 if acc else nan
    linear = acc["linear"]["mae"] * 1000 if acc else nan
    ratio = linear / energy if acc and energy > 0 else nan
    rows = [_at_most(f"energy MAE ≤ {t['energy_mae_meV_atom']:g} meV/atom (held-out test split)", energy,
                     t["energy_mae_meV_atom"], "meV/atom"),
            {"target": f"energy MAE ≥ {t['below_linear_factor']:g}x below the per-element linear fit",
             "measured": f"{ratio:.3g}x below ({linear:.3g} vs {energy:.3g} meV/atom)" if np.isfinite(ratio)
             else "not measured", "passed": bool(ratio >= t["below_linear_factor"]) if np.isfinite(ratio) else None,
             "margin": (f"{'met' if ratio >= t['below_linear_factor'] else 'missed'} by "
                        f"{abs(ratio - t['below_linear_factor']):.3g}x") if np.isfinite(ratio) else "–"},
            _at_most(f"force MAE ≤ {t['forces_mae_eV_A']:g} eV/Å (held-out test split)",
                     acc["model"]["forces_mae"] if acc else nan, t["forces_mae_eV_A"], "eV/Å"),
            _md_target(report.get("md"))]
    others = report["bsct"]["others"] if report.get("bsct") else None
    rows.append(_skill_target("BSCT-xTB: full-FSD skill above GFN-FF", None if others is None else
                              {k: v for k, v in others.items() if k == "gfn-ff"}))
    rows.append(_skill_target("BSCT-xTB: full-FSD skill above every other variant (--compare)", None if others is None
                              else {k: v for k, v in others.items() if k != "gfn-ff"}))
    rows.append(_at_most(f"checkpoint ≤ {t['size_MB']:g} MB", ckpt["size_bytes"] / 1e6 if ckpt else nan,
                         t["size_MB"], "MB"))
    return rows


# --------------------------------------------------------------------------- the run
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="pesprobe:default", help="a SPEC or a checkpoint path")
    parser.add_argument("--data", type=Path, required=True, help="train.xyz/val.xyz/test.xyz of pesprobe data sample")
    parser.add_argument("--scans", type=Path, help="BSCT-xTB scans of pesprobe scan build --preset xtb-organic")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=RESULTS",
                        help="BSCT output folder (or results.json) of another potential; repeatable")
    parser.add_argument("--gfn-ff-spec", default="gfn-ff", help="SPEC that computes GFN-FF when --compare lacks it")
    parser.add_argument("--md-molecules", type=int, default=24)
    parser.add_argument("--min-p", type=int, default=4, help="MD molecules with P, at least")
    parser.add_argument("--min-s", type=int, default=4, help="MD molecules with S, at least")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--length-ps", type=float, default=2.0)
    parser.add_argument("--temperature", type=float, default=500.0, help="K")
    parser.add_argument("--max-force", type=float, default=None,
                        help="leave out structures with a force component above this (eV/Å) from the accuracy")
    parser.add_argument("--skip-md", action="store_true")
    parser.add_argument("--skip-bsct", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.scans is None and not args.skip_bsct:
        parser.error("--scans is needed for BSCT (or pass --skip-bsct)")
    compare = {}
    for item in args.compare:
        name, sep, path = item.partition("=")
        if not (sep and name.strip() and path):
            parser.error(f"--compare: expected NAME=RESULTS, got {item!r}")
        compare[name.strip()] = Path(path)
    args.compare = compare
    return args


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """Every measurement of the module docstring; returns the report written to ``OUT/shipped_model.json``."""
    import torch

    from pesprobe import __version__
    from pesprobe.potentials.registry import resolve

    spec = model_spec(args.model)
    potential = resolve(spec)
    report: dict[str, Any] = {"model": spec, "command": command, "pesprobe": __version__, "torch": torch.__version__,
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "data": str(args.data), "scans": None if args.scans is None else str(args.scans),
                              "threads": args.threads, "targets_spec": TARGETS, "seconds": {},
                              "checkpoint": checkpoint_info(spec)}
    stages = [("accuracy", lambda: accuracy(potential, args.data, args.max_force))]
    if not args.skip_md:
        stages.append(("md", lambda: stability(potential, spec, md_molecules(
            args.data, args.scans, args.md_molecules, args.min_p, args.min_s), args, args.out / "md")))
    if not args.skip_bsct:
        stages.append(("bsct", lambda: bsct(potential, spec, args.scans, args.compare, args.gfn_ff_spec, args.out,
                                            args.threads)))
    for key, stage in stages:
        start = time.perf_counter()
        report[key] = stage()
        report["seconds"][key] = time.perf_counter() - start
    report["targets"] = targets(report)
    return report


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    limit_threads(args.threads)
    from pesprobe.data.atomic import atomic_write, atomic_write_json, json_safe

    words = list(sys.argv[1:] if argv is None else argv)
    report = json_safe(run(args, "python benchmarks/shipped_model.py " + shlex.join(words)))
    text = markdown(report)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / JSON_NAME, report)
    atomic_write(args.out / MD_NAME, text)
    print(text)
    print(f"wrote {args.out / JSON_NAME} and {args.out / MD_NAME}")
    return report


if __name__ == "__main__":
    main()
