"""Markdown of ``benchmarks/shipped_model.py``'s report: the fragment a model card includes.

Sections: held-out accuracy with the baselines, BSCT-xTB against GFN-FF and the other potentials, MD
stability with every failure, the targets table, and the command that measured it all. Values absent
from the report (``None``: not measured or not finite) print as ``–``.
"""

from __future__ import annotations

from typing import Any

from pesprobe.report.tables import markdown_table, md_escape, unseen_elements_note


def num(value: Any, scale: float = 1.0, digits: int = 3) -> str:
    """``value × scale`` to ``digits`` significant digits, or ``–`` for None."""
    return "–" if value is None else f"{value * scale:.{digits}g}"


def _verdict(passed: bool | None) -> str:
    return {True: "**pass**", False: "**FAIL**", None: "not measured"}[passed]


def accuracy_markdown(acc: dict[str, Any]) -> str:
    """Test-split errors beside the linear fit and zero forces, per configuration type, worst molecules."""
    m, lin, zero = acc["model"], acc["linear"], acc["zero_forces"]

    def energies(block: dict[str, Any]) -> list[str]:
        return [num(block[key], 1e3) for key in ("mae", "offset_mae", "within_mae", "rmse")]

    left = (f"; {acc['left_out_max_force']} structures with a force component above {acc['max_force']:g} eV/Å left "
            "out" if acc["max_force"] is not None else "")
    parts = [f"## Held-out accuracy\n\nTest split: {acc['test_structures']} structures of {acc['test_molecules']} "
             f"molecules never trained on (linear fit on {acc['train_structures']} training structures){left}; "
             f"{acc['failed_structures']} structures failed. Energies per atom; the offset is each molecule's mean "
             "signed error, the within-molecule error what remains.",
             markdown_table(["predictor", "energy MAE (meV/atom)", "offset MAE (meV/atom)", "within MAE (meV/atom)",
                             "energy RMSE (meV/atom)", "force MAE (eV/Å)", "force RMSE (eV/Å)"],
                            [["model", *energies(m), num(m["forces_mae"]), num(m["forces_rmse"])],
                             ["per-element linear fit (training split)", *energies(lin), "–", "–"],
                             ["zero forces", *["–"] * 4, num(zero["forces_mae"]), num(zero["forces_rmse"])]]),
             "Per configuration type:",
             markdown_table(["configurations", "structures", "model E MAE (meV/atom)", "linear E MAE (meV/atom)",
                             "model F MAE (eV/Å)", "zero-force F MAE (eV/Å)"],
                            [[md_escape(kind), str(row["structures"]), num(row["energy_mae"], 1e3),
                              num(row["linear_energy_mae"], 1e3), num(row["forces_mae"]), num(row["zero_forces_mae"])]
                             for kind, row in acc["by_config_type"].items()]),
             "Worst molecules (largest force MAE, then largest energy offset):",
             markdown_table(["molecule", "by", "structures", "energy offset (meV/atom)", "force MAE (eV/Å)"],
                            [[md_escape(row["molecule"]), by, str(row["structures"]), num(row["offset"], 1e3),
                              num(row["forces_mae"])]
                             for by, rows in acc["worst_molecules"].items() for row in rows])]
    if note := unseen_elements_note(acc["unseen_elements"], "molecules"):
        parts.append(md_escape(note))
    return "\n\n".join(parts)


def bsct_markdown(bsct: dict[str, Any]) -> str:
    """Mean FSD, skill and discontinuities of the model and the others, with the skill paired scan by scan."""
    model = bsct["model"]

    def row(name: str, r: dict[str, Any], paired: dict[str, Any] | None) -> list[str]:
        pair = ["–", "–"] if paired is None else [
            f"{num(paired['model'])} vs {num(paired['other'])} ({paired['n_scans']} scans)",
            "–" if paired["model_better_fraction"] is None else f"{100 * paired['model_better_fraction']:.0f} %"]
        return [md_escape(name), f"{r['n_scans'] - r['n_unscored_scans']}/{r['n_scans']}", num(r["full_smoothness"]),
                num(r["full_smoothness_skill"]), str(r["n_scans_with_discontinuities"]), num(r["roughness"]), *pair]

    rows = [row("the model", model, None)]
    rows += [row(name, r, r["paired"]) for name, r in sorted(bsct["others"].items(), key=lambda kv: kv[0] != "gfn-ff")]
    notes = [f"- {md_escape(name)}: not the same scan set as the model's" for name, r in bsct["others"].items()
             if not r["same_scans"]]
    parts = [f"## BSCT-xTB\n\nScans: `{bsct['scans']}`. Skill = 1 − FSD / FSD of zero forces on the same frames "
             "(1: as smooth as the reference, 0: no better than zero forces); paired: mean skill of the model and of "
             "the other potential over the scans both scored, and how often the model's is higher.",
             markdown_table(["potential", "scored scans", "mean full FSD (1/Å)", "mean full-FSD skill",
                             "scans with a confirmed discontinuity", "mean roughness (eV/Å)",
                             "paired skill (model vs it)", "model higher on"], rows)]
    if notes:
        parts.append("\n".join(notes))
    if note := unseen_elements_note(model["unseen_elements"]):
        parts.append(md_escape(note))
    sources = "; ".join(f"{md_escape(name)}: `{r['source']}`" for name, r in bsct["others"].items())
    parts.append(f"Model: `{model['out']}`; others: {sources}.")
    return "\n\n".join(parts)


def md_markdown(md: dict[str, Any]) -> str:
    """The molecules, the failure count and every failure with criterion, time and atoms."""
    c = md["config"]
    head = (f"## MD stability\n\n{c['ensemble'].upper()}, {c['temperature_K']:g} K, {c['timestep_fs']:g} fs, "
            f"{len(c['seeds'])} seeds x {c['length_ps']:g} ps, the failure monitor of `pesprobe md` (bonds broken or "
            f"formed, clashes, temperature, fly-apart, energy band {c['energy_tolerance_eV_atom']:g} eV/atom), "
            f"{md['engine']} engine: **{md['n_failed']} of {md['n_trajectories']} trajectories failed** on "
            f"{md['n_molecules']} molecules ({md['n_with_p']} with P, {md['n_with_s']} with S; source `test`: the test "
            "split's equilibrium geometry, `scans`: a BSCT-xTB scan molecule).")
    molecules = markdown_table(["molecule", "source", "atoms", "elements", "failed seeds"],
                               [[md_escape(r["molecule"]), r["source"], str(r["atoms"]), " ".join(r["elements"]),
                                 f"{r['failed_seeds']}/{r['seeds']}"] for r in md["molecules"]])
    parts = [head, molecules]
    if md["failures"]:
        parts += ["Failures (where the model fails):",
                  markdown_table(["molecule", "seed", "criterion", "time (fs)", "atoms", "detail"],
                                 [[md_escape(f["molecule"]), str(f["seed"]), f["criterion"], num(f["time_fs"], 1, 4),
                                   " ".join(f["atoms"]), md_escape(f["detail"])] for f in md["failures"]])]
    unseen = {r["molecule"]: r["unseen_elements"] for r in md["molecules"]}
    if note := unseen_elements_note(unseen, "molecules"):
        parts.append(md_escape(note))
    parts.append(f"Trajectories, energies and plots: `{md['out']}`.")
    return "\n\n".join(parts)


def targets_markdown(targets: list[dict[str, Any]]) -> str:
    """The targets table: target, measured, pass/fail, margin."""
    return "## Targets\n\n" + markdown_table(["target", "measured", "result", "margin"],
                                             [[md_escape(t["target"]), md_escape(t["measured"]), _verdict(t["passed"]),
                                               md_escape(t["margin"])] for t in targets])


def markdown(report: dict[str, Any]) -> str:
    """The whole fragment of a ``shipped_model.json`` report."""
    parts = [f"Figures of `{report['model']}` measured by `benchmarks/shipped_model.py` (command at the end)."]
    if report.get("accuracy"):
        parts.append(accuracy_markdown(report["accuracy"]))
    if report.get("bsct"):
        parts.append(bsct_markdown(report["bsct"]))
    if report.get("md"):
        parts.append(md_markdown(report["md"]))
    parts.append(targets_markdown(report["targets"]))
    seconds = ", ".join(f"{k} {v:.0f} s" for k, v in report["seconds"].items())
    parts.append(f"Measured on {report['date']} with pesprobe {report['pesprobe']}, torch {report['torch']}, "
                 f"{report['threads']} thread(s) ({seconds}):\n\n```bash\n{report['command']}\n```")
    return "\n\n".join(parts) + "\n"
