"""Bounded memory for batched models (issue 15 part 4): the batch budget changes memory, never results."""

from __future__ import annotations

import numpy as np
import torch

from pesprobe.data import load_scans
from pesprobe.data.embedded import embedded_scans_path
from pesprobe.models import load_potential
from pesprobe.models.potential import DEFAULT_MAX_ATOMS, TorchPotential


def _pulled_apart_scan():
    """An embedded molecule with one atom pulled 6 Å out in 48 frames: its neighbour counts change
    along the scan, so frames differ in the widths the model pads its tables to."""
    scan = list(load_scans(embedded_scans_path()))[3]
    base = scan.positions[0]
    direction = base[-1] - base.mean(axis=0)
    frames = np.repeat(base[None], 48, axis=0)
    frames[:, -1] += np.linspace(0.0, 6.0, 48)[:, None] * direction / np.linalg.norm(direction)
    return scan.numbers, frames


def _run(potential: TorchPotential, numbers, frames, budget: int) -> np.ndarray:
    potential.max_atoms = budget
    pred = potential.predict(numbers, frames)
    assert pred.n_failed == 0
    return np.concatenate([pred.forces.ravel(), pred.energy])


def test_results_are_bit_identical_for_any_batch_budget(monkeypatch) -> None:
    numbers, frames = _pulled_apart_scan()
    potential = load_potential("default")
    assert potential.max_atoms == DEFAULT_MAX_ATOMS
    layouts = potential._layout(torch.as_tensor(numbers), frames, None, None, False, np.arange(len(frames)))
    assert len(set(layouts)) > 1, "the scan must mix layouts for this test to mean anything"
    calls = []
    potential.model.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape[0]))
    unlimited = _run(potential, numbers, frames, 10**6)
    calls.clear()
    budget = 6 * len(numbers)
    small = _run(potential, numbers, frames, budget)
    assert max(calls) <= budget and len(calls) >= len(frames) // 5
    alone = _run(potential, numbers, frames, 1)  # one frame a call (with a copy of itself)
    assert np.array_equal(unlimited, small) and np.array_equal(unlimited, alone)
    # Without the layout grouping the budget does change the last bits: what the grouping is for.
    monkeypatch.setattr(TorchPotential, "_layout", lambda self, z, p, cell, pbc, periodic, f: [0] * len(f))
    assert not np.array_equal(_run(potential, numbers, frames, 10**6), _run(potential, numbers, frames, budget))


def test_bsct_max_batch_atoms_option_gives_the_same_results(tmp_path) -> None:
    from typer.testing import CliRunner

    from pesprobe.cli import app

    runner = CliRunner()
    for name, extra in (("default", []), ("small", ["--max-batch-atoms", "30"])):
        outcome = runner.invoke(app, ["bsct", "--out", str(tmp_path / name), "--no-plots", *extra])
        assert outcome.exit_code == 0, outcome.output
    import csv

    def rows(name: str) -> list[dict]:  # every column but the wall time
        with open(tmp_path / name / "results.csv") as handle:
            return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(handle)]

    assert rows("small") == rows("default") and len(rows("default")) == 6
    outcome = runner.invoke(app, ["bsct", "--calc", "lj", "--out", str(tmp_path / "lj"), "--max-batch-atoms", "30"])
    assert outcome.exit_code == 0 and "does not apply" in outcome.output
