"""Learning curves of a training run as a Markdown table (for the run folder and the model card).

    python -m pesprobe.train.curves RUN/log.jsonl [OUT.md]

One row per evaluation (at most :data:`MAX_ROWS`, evenly thinned, keeping the first, the best and the
last): training loss and the energy share of the loss, validation energy MAE with its split into
per-molecule offset and within-molecule error (meV/atom), force MAE (eV/Å) and ``valid_score``,
beside the linear and zero-force baselines.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pesprobe.data.atomic import atomic_write
from pesprobe.train.log import read_log

#: Most table rows.
MAX_ROWS = 25


def _num(value: Any, scale: float = 1.0, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value * scale:.{digits}f}"


def _rows(evals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``evals`` thinned to :data:`MAX_ROWS`, always with the first, the best-score and the last."""
    if len(evals) <= MAX_ROWS:
        return evals
    keep = set(np.linspace(0, len(evals) - 1, MAX_ROWS - 1).round().astype(int).tolist())
    scores = [r.get("valid_score") if r.get("valid_score") is not None else math.inf for r in evals]
    keep.add(int(np.argmin(scores)))
    return [evals[i] for i in sorted(keep)]


def learning_curves_markdown(records: list[dict[str, Any]]) -> str:
    """The Markdown learning-curve table of log ``records`` (see the module docstring).

    Raises
    ------
    ValueError
        If the records hold no evaluation.
    """
    evals = [r for r in records if r.get("event") == "eval" and "valid_energy_mae" in r]
    if not evals:
        raise ValueError("the log has no validation record: no learning curve to show")
    train = [r for r in records if r.get("event") == "train"]
    train_steps = np.array([r["step"] for r in train])
    base = next((r for r in records if r.get("event") == "baselines"), {})
    best = min((r for r in evals if r.get("valid_score") is not None), key=lambda r: r["valid_score"], default=None)
    lines = []
    if base:
        lines.append(f"Validation: {base.get('valid_molecules')} held-out molecules. Baselines: per-element linear fit "
                     f"{_num(base.get('baseline_linear_energy_mae'), 1e3)} meV/atom (offset "
                     f"{_num(base.get('baseline_linear_energy_offset_mae'), 1e3)}, within-molecule "
                     f"{_num(base.get('baseline_linear_energy_within_mae'), 1e3)}), zero forces "
                     f"{_num(base.get('baseline_zero_forces_mae'), digits=3)} eV/Å.")
        lines.append("")
    lines += ["| step | train loss | energy share | E MAE (meV/atom) | offset | within | F MAE (eV/Å) | score |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in _rows(evals):
        before = np.flatnonzero(train_steps <= r["step"]) if len(train) else np.zeros(0, dtype=int)
        t = train[int(before[-1])] if len(before) else {}
        mark = " (best)" if best is not None and r["step"] == best["step"] else ""
        lines.append(f"| {r['step']}{mark} | {_num(t.get('loss'), digits=4)} | {_num(t.get('energy_fraction'), 100, 0)} % "
                     f"| {_num(r.get('valid_energy_mae'), 1e3)} | {_num(r.get('valid_energy_offset_mae'), 1e3)} "
                     f"| {_num(r.get('valid_energy_within_mae'), 1e3)} | {_num(r.get('valid_forces_mae'), digits=3)} "
                     f"| {_num(r.get('valid_score'), digits=3)} |")
    stop = next((r for r in records if r.get("event") == "stop"), None)
    if stop:
        lines += ["", f"Stopped early at step {stop['step']}: {stop['metric']} did not improve for "
                      f"{stop['evaluations_without_improvement']} evaluations."]
    return "\n".join(lines) + "\n"


def write_learning_curves(log: str | Path, out: str | Path) -> Path | None:
    """Write the table of ``log`` (a ``log.jsonl``) to ``out``; None (nothing written) without evaluations."""
    try:
        text = learning_curves_markdown(read_log(log))
    except ValueError:
        return None
    atomic_write(Path(out), "# Learning curves\n\n" + text)
    return Path(out)


def main(argv: list[str]) -> int:
    """``python -m pesprobe.train.curves LOG [OUT]``: print the table, or write it to OUT."""
    if not 1 <= len(argv) <= 2:
        print("usage: python -m pesprobe.train.curves RUN/log.jsonl [OUT.md]", file=sys.stderr)
        return 2
    text = learning_curves_markdown(read_log(argv[0]))
    if len(argv) == 2:
        atomic_write(Path(argv[1]), text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
