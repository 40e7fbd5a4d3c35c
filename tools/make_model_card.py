"""Write a model card (MODEL_CARD.md) from a training run, the shipped-model benchmark and the checkpoint.

    python tools/make_model_card.py --run RUN --benchmark OUT/shipped_model.json --out CARD.md
        [--model CHECKPOINT] [--name pesprobe:default]

- ``RUN``: the output folder of ``pesprobe train`` (``config.yaml``, ``log.jsonl``, ``learning_curves.md``);
- ``OUT/shipped_model.json`` and the Markdown fragment beside it (``shipped_model.md``), written by
  ``benchmarks/shipped_model.py``: held-out accuracy, BSCT-xTB, MD stability and the targets table;
- the checkpoint (default: the one the benchmark measured): parameters, file size, dtype, training elements.

``--out`` has no default, so the shipped card is only overwritten when it is named. Sections: what the model
is, design, training data and training, the measured figures, learning curves, limitations (computed from
the figures: where the model fails), and the commands that reproduce every number.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pesprobe.data.atomic import atomic_write

#: Model settings named in the design section (the full config follows it).
DESIGN_KEYS = ("graph", "k", "cutoff", "diffknn_combine", "n_rbf", "rbf_width", "n_blocks", "d_model", "n_heads",
               "attention_temperature", "message_passing", "force_head")
#: Reference method names as the card prints them.
METHODS = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB", "gfn-ff": "GFN-FF"}


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load(path.read_text())


def checkpoint_facts(path: Path) -> dict[str, Any]:
    """Parameters, file size (bytes), dtype, training elements (symbols; None: unknown) and config of a checkpoint."""
    from pesprobe.models import load_checkpoint
    from pesprobe.potentials.elements import element_symbols

    model, _ = load_checkpoint(path)
    known = model.training_elements
    return {"path": str(path), "size_bytes": path.stat().st_size,
            "parameters": int(sum(p.numel() for p in model.parameters())), "dtype": str(model.element_refs.dtype),
            "elements": None if known is None else element_symbols(known), "config": model.config.to_dict()}


def training_facts(run: Path) -> dict[str, Any]:
    """What ``pesprobe train`` recorded in ``run``: its config, data counts, baselines, steps done, stop, and the
    optimizer-step time (s) summed from the throughput of the log's train records (evaluations not counted)."""
    from pesprobe.train.log import read_log

    config = _yaml(run / "config.yaml")
    records = read_log(run / "log.jsonl")
    batch = config["train"]["batch_size"]
    seconds, previous = 0.0, 0
    for record in records:
        if record.get("event") == "train":
            if record.get("structures_per_s"):
                seconds += (record["step"] - previous) * batch / record["structures_per_s"]
            previous = record["step"]
    first = {event: next((r for r in records if r.get("event") == event), None) for event in ("data", "baselines")}
    return {"config": config, "data": first["data"] or {}, "baselines": first["baselines"] or {},
            "steps_done": previous, "step_seconds": seconds,
            "stop": next((r for r in records if r.get("event") == "stop"), None)}


def _provenance(train_files: Sequence[str]) -> dict[str, Any]:
    """``provenance.json`` beside the first training file (written by ``pesprobe data sample``), or {}."""
    import json

    path = Path(train_files[0]).parent / "provenance.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def header(name: str, ckpt: dict[str, Any], method: str) -> str:
    size = ckpt["size_bytes"]
    elements = ", ".join(ckpt["elements"]) if ckpt["elements"] else "unknown"
    return (f"# Model card: `{name}`\n\nA small pesprobe Transformer MLIP trained on labelled organic molecules "
            f"(level of theory: {method}), shipped so that pesprobe has a working MLIP out of the box and a reference "
            "point for your own models. **It is a demonstration and research model, not a production potential.**\n\n"
            "| item | value |\n| --- | --- |\n"
            f"| file | `{ckpt['path']}` ({size / 1e6:.2f} MB, {ckpt['parameters']:,} parameters, {ckpt['dtype']}) |\n"
            f"| elements seen in training | {elements} |\n| level of theory | {method} |")


def design(ckpt: dict[str, Any]) -> str:
    config = ckpt["config"]
    named = ", ".join(f"{key} = {config[key]}" for key in DESIGN_KEYS if key in config)
    full = ", ".join(f"{key}: {value}" for key, value in config.items())
    return (f"## Design\n\nThe pesprobe Transformer (`pesprobe.models`, one token per neighbour of each atom, "
            f"attention over an atom's tokens, per-atom energy readout): {named}. Forces are "
            f"{'−∂E/∂r (conservative)' if config.get('force_head') == 'conservative' else 'a direct head'}.\n\n"
            f"Full model config: `{full}`.")


def training(facts: dict[str, Any], provenance: dict[str, Any]) -> str:
    config, data, loop = facts["config"], facts["data"], facts["config"]["train"]
    split = ", ".join(f"{key} {value}" for key, value in provenance.get("counts", {}).items())
    sampled = (f" (`{provenance['generator']}`, {provenance['method']}; structures per split: {split})"
               if provenance else "")
    max_force = config["data"].get("max_force")
    counts = (f"{data.get('train_structures')} training structures of {data.get('train_molecules')} molecules, "
              f"{data.get('valid_structures')} validation structures of {data.get('valid_molecules')} other molecules"
              + (f" ({data.get('dropped_max_force')} left out by max_force {max_force:g} eV/Å)" if max_force else ""))
    stop = facts["stop"]
    stopped = f"; stopped early at step {stop['step']} (train.patience)" if stop else ""
    minutes = facts["step_seconds"] / 60
    return (f"## Training data and training\n\nData: `{', '.join(config['data']['train'])}`{sampled}: {counts}; "
            "the benchmark's test split holds further molecules, used by neither training nor validation.\n\n"
            f"Training: {facts['steps_done']} of {loop.get('steps')} steps{stopped}, batch {loop['batch_size']}, "
            f"AdamW lr {loop['lr']:g} (warm-up {loop['warmup_steps']} steps, cosine to {loop['min_lr_ratio']:g}x), "
            f"force weight {loop['forces_weight']:g}, energy share {loop['energy_share']}, EMA {loop['ema_decay']:g}, "
            f"rotations {loop['rotate']}, {loop['dtype']} on {loop['device']}, seed {loop['seed']}. Optimizer steps "
            f"took {minutes:.1f} min, summed from the log's throughput records (evaluations not counted; target "
            f"≤ 90 min on 2 CPU cores: {'met' if minutes <= 90 else 'missed'}). The card describes the checkpoint "
            "measured below (`best.pt` is the best by validation score, `last.pt` the last step).")


def learning_curves(run: Path) -> str:
    path = run / "learning_curves.md"
    if not path.is_file():
        return "## Learning curves\n\nNo `learning_curves.md` in the run folder."
    text = path.read_text().strip()
    return "## Learning curves\n\n" + text.removeprefix("# Learning curves").strip()


def limitations(report: dict[str, Any], ckpt: dict[str, Any], method: str) -> str:
    """Bullets computed from the figures: level of theory, elements, where the model fails, missed targets."""
    elements = ", ".join(ckpt["elements"]) if ckpt["elements"] else "not recorded"
    lines = [f"Level of theory: {method}. The model learned its training labels' method, not experiment or a "
             "higher level of theory (on DFT-labelled scans it scores as that method does, or worse).",
             f"Elements: trained on {elements}. Structures with any other element get an `UnseenElementWarning` "
             "naming the elements and the model, and BSCT and MD results list them per scan and per molecule "
             "(`unseen_elements`): the numbers there are extrapolation. Charged species, radicals, condensed phases "
             "and periodic systems were never seen.",
             "A small model trained on 2 CPU cores: use it to exercise pipelines, to compare architectures at equal "
             "budget and as a smoothness baseline, not for thermochemistry or production MD."]
    acc = report.get("accuracy")
    if acc:
        kinds = acc["by_config_type"]
        worst_kind = max(kinds, key=lambda k: kinds[k]["forces_mae"] or 0.0)
        worst = acc["worst_molecules"]["forces"][:3]
        lines.append(f"Largest force errors on `{worst_kind}` structures ({kinds[worst_kind]['forces_mae']:.3g} eV/Å "
                     "MAE) and on the molecules "
                     + ", ".join(f"{w['molecule']} ({w['forces_mae']:.3g} eV/Å)" for w in worst) + ".")
    md = report.get("md")
    if md:
        failed = sorted({f["molecule"] for f in md["failures"]})
        criteria = sorted({f["criterion"] for f in md["failures"]})
        lines.append(f"MD: {md['n_failed']} of {md['n_trajectories']} trajectories failed"
                     + (f", on {', '.join(failed)} ({', '.join(criteria)}; each failure in the MD table)." if failed
                        else f" ({md['config']['length_ps']:g} ps at {md['config']['temperature_K']:g} K); longer or "
                             "hotter runs were not tested."))
    bsct = report.get("bsct")
    if bsct:
        lines.append(f"BSCT-xTB: {bsct['model']['n_scans_with_discontinuities']} of {bsct['model']['n_scans']} scans "
                     "have a confirmed discontinuity (the list is in the BSCT output's summary.md).")
    missed = [t for t in report["targets"] if t["passed"] is False]
    if missed:
        lines.append("Targets missed: " + "; ".join(f"{t['target']} ({t['margin']})" for t in missed) + ".")
    return "## Limitations\n\n" + "\n".join(f"- {line}" for line in lines)


def reproduce(report: dict[str, Any], run: Path, command: str) -> str:
    config = _yaml(run / "config.yaml")
    train_data = Path(config["data"]["train"][0]).parent
    return ("## Reproduce\n\n```bash\n"
            f"pesprobe data sample --preset xtb-train-large --out {train_data} --jobs 2   # training data (GFN2-xTB)\n"
            + (f"pesprobe scan build --preset xtb-organic --out {report['scans']} --jobs 2   # BSCT-xTB scans\n"
               if report.get("scans") else "")
            + f"pesprobe train {run / 'config.yaml'}   # add --resume to continue an interrupted run\n"
            f"python -m pesprobe.train.curves {run / 'log.jsonl'}   # the learning curves\n"
            f"{report['command']}   # every figure above\n"
            f"{command}   # this card\n```")


def model_card(run: Path, benchmark: Path, model: Path | None, name: str | None, command: str) -> str:
    """The card's Markdown text (see the module docstring)."""
    import json

    report = json.loads(benchmark.read_text())
    fragment = benchmark.with_suffix(".md").read_text().strip()
    path = model or Path(report["checkpoint"]["path"])
    ckpt = checkpoint_facts(path)
    facts = training_facts(run)
    provenance = _provenance(facts["config"]["data"]["train"])
    method = METHODS.get(provenance.get("method"), provenance.get("method") or "not recorded")
    parts = [header(name or report["model"], ckpt, method), design(ckpt), training(facts, provenance),
             fragment, learning_curves(run), limitations(report, ckpt, method),
             reproduce(report, run, command)]
    return "\n\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="pesprobe train output folder")
    parser.add_argument("--benchmark", type=Path, required=True,
                        help="shipped_model.json of benchmarks/shipped_model.py (its .md fragment beside it)")
    parser.add_argument("--model", type=Path, default=None, help="checkpoint (default: the one the benchmark measured)")
    parser.add_argument("--name", default=None, help="model name in the title (default: the benchmark's SPEC)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the card (no default)")
    args = parser.parse_args(argv)
    words = list(sys.argv[1:] if argv is None else argv)
    text = model_card(args.run, args.benchmark, args.model, args.name,
                      "python tools/make_model_card.py " + shlex.join(words))
    atomic_write(args.out, text)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
