"""Evaluations run during training: validation MAEs, BSCT in the loop, and best-checkpoint keeping.

An evaluator has ``due(step, final)`` and ``__call__(model, step) -> {metric: value}``; the
trainer merges the metrics of every evaluator due at a step into one log record, and
:class:`BestCheckpoints` keeps one checkpoint per tracked metric (lower is better).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from pesprobe.data.scan import ScanSet
from pesprobe.data.structures import Structure
from pesprobe.train.batch import collate
from pesprobe.train.distributed import Ranks, all_reduce_sum

#: Tracked metric -> file name of its best checkpoint.
BEST_FILES = {
    "valid_energy_mae": "best_energy.pt",
    "valid_forces_mae": "best_forces.pt",
    "fsd_full": "best_fsd.pt",
    "fsd_compress": "best_fsd_compress.pt",
    "fsd_stretch": "best_fsd_stretch.pt",
}


class Validation:
    """Energy-per-atom and force MAEs on the validation structures, sharded over ranks.

    Metrics: ``valid_energy_mae`` (eV/atom), ``valid_energy_rmse`` (eV/atom), ``valid_forces_mae``
    (eV/Å) and ``valid_forces_rmse`` (eV/Å); NaN where no structure has that label.

    Parameters
    ----------
    structures : sequence of Structure
        The whole validation set (each rank evaluates every ``world_size``-th structure).
    every : int
        Interval, steps.
    batch_size : int
        Structures per forward call.
    ranks : Ranks
    dtype : torch.dtype
    """

    all_ranks = True

    def __init__(self, structures: Sequence[Structure], every: int, batch_size: int, ranks: Ranks,
                 dtype: torch.dtype):
        self.structures = list(structures)[ranks.rank::ranks.world_size]
        self.every, self.batch_size, self.ranks, self.dtype = every, batch_size, ranks, dtype
        self.enabled = len(structures) > 0

    def due(self, step: int, final: bool) -> bool:
        """True at multiples of ``every`` and at the last step (if there is validation data)."""
        return self.enabled and (step % self.every == 0 or final)

    def __call__(self, model: torch.nn.Module, step: int) -> dict[str, float]:
        sums = torch.zeros(6, dtype=torch.float64, device=self.ranks.device)
        was_training = model.training
        model.eval()
        for start in range(0, len(self.structures), self.batch_size):
            batch = collate(self.structures[start:start + self.batch_size], self.dtype, self.ranks.device)
            out = model(batch.positions, batch.cell, batch.system_index, batch.numbers, pbc=batch.pbc,
                        compute_forces=True, create_graph=False)
            e_err = ((out["energy"].detach() - batch.energy) / batch.n_atoms)[batch.energy_mask].double()
            f_err = (out["forces"].detach() - batch.forces)[batch.forces_mask].double()
            sums += torch.stack([e_err.abs().sum(), (e_err**2).sum(), e_err.new_tensor(e_err.numel()),
                                 f_err.abs().sum(), (f_err**2).sum(), f_err.new_tensor(f_err.numel())])
        model.train(was_training)
        e_abs, e_sq, n_e, f_abs, f_sq, n_f = all_reduce_sum(sums, self.ranks).tolist()
        nan = float("nan")
        return {"valid_energy_mae": e_abs / n_e if n_e else nan,
                "valid_energy_rmse": float(np.sqrt(e_sq / n_e)) if n_e else nan,
                "valid_forces_mae": f_abs / n_f if n_f else nan,
                "valid_forces_rmse": float(np.sqrt(f_sq / n_f)) if n_f else nan}


class BSCTInTheLoop:
    """BSCT of the current (averaged) model on a scan set, through the batched torch path.

    Metrics: ``fsd_full``, ``fsd_compress``, ``fsd_stretch`` (mean FSD over the scans, 1/Å) and
    ``bsct_energy_mae`` (eV), ``bsct_forces_mae`` (eV/Å) over the full scans, plus
    ``bsct_failed_frames``.

    Parameters
    ----------
    scans : str, Path or ScanSet
        The scan set, or anything :func:`pesprobe.data.load_scans` reads (loaded on first use, so
        that ranks other than 0 never load it).
    every : int
        Interval, steps.
    device : torch.device
    dtype : torch.dtype
    batch_frames : int
        Frames per forward call.
    """

    all_ranks = False

    def __init__(self, scans: str | Path | ScanSet, every: int, device: torch.device, dtype: torch.dtype,
                 batch_frames: int):
        self.source, self.every, self.device, self.dtype, self.batch_frames = scans, every, device, dtype, batch_frames
        self._scans: ScanSet | None = scans if isinstance(scans, ScanSet) else None

    @property
    def scans(self) -> ScanSet:
        """The scan set (loaded on first access)."""
        if self._scans is None:
            from pesprobe.data import load_scans

            self._scans = load_scans(self.source)
            if len(self._scans) == 0:
                raise ValueError(f"bsct.scans: no scans could be loaded from {self.source}")
        return self._scans

    def due(self, step: int, final: bool) -> bool:
        """True at multiples of ``every`` and at the last step."""
        return step % self.every == 0 or final

    def __call__(self, model: torch.nn.Module, step: int) -> dict[str, float]:
        from pesprobe.evaluate import evaluate
        from pesprobe.models import TorchPotential

        was_training = model.training
        model.eval()
        potential = TorchPotential(model, device=self.device, dtype=self.dtype, batch_frames=self.batch_frames)
        summary = evaluate(potential, self.scans, progress=False, name=f"step {step}").summary
        model.train(was_training)
        nan = float("nan")

        def value(key: str) -> float:
            return nan if summary.get(key) is None else float(summary[key])

        return {"fsd_full": value("full_smoothness"), "fsd_compress": value("compress_smoothness"),
                "fsd_stretch": value("stretch_smoothness"), "bsct_energy_mae": value("full_energy_mae"),
                "bsct_forces_mae": value("full_forces_mae"), "bsct_failed_frames": summary["n_failed_frames"]}


class BestCheckpoints:
    """Keep one checkpoint per tracked metric: the model at the step where the metric was lowest.

    Parameters
    ----------
    out : Path
        Output folder.
    save : callable
        ``save(path)`` writes a checkpoint of the current state to ``path``.
    best : dict, optional
        Best values so far (from a resumed checkpoint).
    """

    def __init__(self, out: Path, save: Callable[[Path], None], best: dict[str, float] | None = None):
        self.out, self.save = Path(out), save
        self.best: dict[str, float] = dict(best or {})

    def update(self, metrics: dict[str, float]) -> list[Path]:
        """Save the checkpoints whose metric improved; return their paths."""
        written = []
        for name, filename in BEST_FILES.items():
            value = metrics.get(name)
            if value is None or not np.isfinite(value) or value >= self.best.get(name, np.inf):
                continue
            self.best[name] = float(value)
            path = self.out / filename
            self.save(path)
            written.append(path)
        return written
