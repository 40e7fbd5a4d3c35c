"""The MD progress bar: it counts the whole run, starts at what is stored or checkpointed after a
resume, ends at its total, and names the running trajectory (or batch) with its fs done."""

from __future__ import annotations

from functools import partialmethod

import numpy as np
import pytest
from ase import Atoms
from ase.optimize import FIRE

import pesprobe.md.batched as batched
import pesprobe.md.study as study
from calcs import interrupting_morse

from pesprobe.md import MDConfig, Molecule, run_stability
from pesprobe.md.synthetic import SyntheticPairCalculator


def _cluster(n: int, seed: int, name: str) -> Molecule:
    atoms = Atoms(f"C{n}", positions=np.random.default_rng(seed).normal(size=(n, 3)))
    atoms.calc = SyntheticPairCalculator()
    FIRE(atoms, logfile=None).run(fmax=1e-4, steps=3000)
    return Molecule(name, atoms.numbers, atoms.positions)


@pytest.fixture(scope="module")
def mols() -> list[Molecule]:
    return [_cluster(4, 0, "c4"), _cluster(5, 2, "c5")]


@pytest.fixture
def bars(monkeypatch) -> list:
    """Every progress bar run_stability makes, with its start, end and postfixes."""
    made = []

    class Recorder(study.tqdm):
        def __init__(self, *args, **kwargs):
            self.postfixes: list[str] = []
            super().__init__(*args, **kwargs)
            self.start_n = self.n
            made.append(self)

        def set_postfix_str(self, s="", refresh=True):
            self.postfixes.append(s)
            super().set_postfix_str(s, refresh)

        def close(self):
            self.end_n = self.n
            super().close()

    monkeypatch.setattr(study, "tqdm", Recorder)
    return made


_Interrupting = interrupting_morse


def test_ase_bar_starts_at_the_stored_trajectories_and_names_the_running_one(mols, bars, tmp_path):
    cfg = MDConfig(length_ps=0.03, seeds=(0,), save_every=0)
    out = tmp_path / "md"
    run_stability(SyntheticPairCalculator, mols, cfg, out=out, plots=False)
    first = bars[-1]
    assert (first.start_n, first.end_n, first.total) == (0, 2 * cfg.n_steps, 2 * cfg.n_steps)
    length_fs = cfg.n_steps * cfg.timestep_fs
    assert any(f"c4 seed 0 {length_fs:.0f}/{length_fs:.0f} fs" in p for p in first.postfixes)
    assert any(p.startswith("1/2 trajectories done") and "c5 seed 0" in p for p in first.postfixes)
    assert first.postfixes[-1] == "2/2 trajectories done"

    more = MDConfig(length_ps=0.03, seeds=(0, 1, 2), save_every=0)  # seed 0 is stored: 2 of 6 done
    run_stability(SyntheticPairCalculator, mols, more, out=out, plots=False)
    resumed = bars[-1]
    assert resumed.total == 6 * more.n_steps
    assert resumed.start_n == 2 * more.n_steps, "the bar must start at the stored trajectories"
    assert resumed.end_n == resumed.total
    assert resumed.postfixes[0].startswith("2/6 trajectories done")
    assert not any("seed 0" in p for p in resumed.postfixes)  # stored ones are not run again


def test_batched_bar_resumes_at_the_checkpointed_steps(mols, bars, tmp_path, monkeypatch):
    monkeypatch.setattr(batched.BatchedIntegrator, "__init__",
                        partialmethod(batched.BatchedIntegrator.__init__, checkpoint_every_s=0.0))
    cfg = MDConfig(length_ps=0.03, seeds=(0, 1), save_every=0)
    out = tmp_path / "md"
    with pytest.raises(KeyboardInterrupt):
        run_stability(_Interrupting(stop=31), mols, cfg, out=out, plots=False)
    interrupted = bars[-1]
    n_traj = len(mols) * len(cfg.seeds)
    assert 0 < interrupted.end_n < n_traj * cfg.n_steps  # it ticked before the interruption
    assert len(list((out / "runs").glob("_batch_*.state"))) == 1
    run_stability(_Interrupting(), mols, cfg, out=out, plots=False)
    resumed = bars[-1]
    assert resumed.start_n == interrupted.end_n, "the bar must start where the interrupted run stopped"
    assert resumed.end_n == resumed.total == n_traj * cfg.n_steps
    assert any(f"all {n_traj} trajectories" in p and " fs" in p for p in resumed.postfixes)
    assert resumed.postfixes[-1] == f"{n_traj}/{n_traj} trajectories done"


def test_batched_bar_counts_stored_batches_and_checkpoint_together(mols, bars, tmp_path, monkeypatch):
    """Batches of one trajectory: the first is stored, the second checkpointed, the rest new."""
    monkeypatch.setattr(batched.BatchedIntegrator, "__init__",
                        partialmethod(batched.BatchedIntegrator.__init__, checkpoint_every_s=0.0))
    cfg = MDConfig(length_ps=0.03, seeds=(0, 1), save_every=0)
    out = tmp_path / "md"
    # 61 steps per trajectory: calls 1..61 finish batch 1, the stop falls inside batch 2
    with pytest.raises(KeyboardInterrupt):
        run_stability(_Interrupting(stop=cfg.n_steps + 1 + 45), mols, cfg, out=out, plots=False, batch_size=1)
    interrupted = bars[-1]
    assert cfg.n_steps < interrupted.end_n < 2 * cfg.n_steps
    run_stability(_Interrupting(), mols, cfg, out=out, plots=False, batch_size=1)
    resumed = bars[-1]
    assert resumed.start_n == interrupted.end_n
    assert resumed.end_n == resumed.total == 4 * cfg.n_steps
    assert any("c4 seed 1" in p for p in resumed.postfixes)  # a batch of one is named by its trajectory


def test_parallel_ase_workers_report_steps_while_running(mols, bars, tmp_path):
    cfg = MDConfig(length_ps=0.05, seeds=(0, 1), save_every=0)
    run_stability(SyntheticPairCalculator, mols, cfg, out=tmp_path / "md", plots=False, jobs=2)
    bar = bars[-1]
    assert bar.end_n == bar.total == 4 * cfg.n_steps
    # ticks from inside the workers (every 50 steps), not one update per finished trajectory
    assert any(" 25/50 fs" in p for p in bar.postfixes)
    assert bar.postfixes[-1] == "4/4 trajectories done"
