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
from pesprobe.train.baselines import Baselines, energy_breakdown, validation_score
from pesprobe.train.batch import collate
from pesprobe.train.distributed import Ranks, all_reduce_sum

#: Tracked metric -> file name of its best checkpoint (``best.pt``: the best-by-validation model).
BEST_FILES = {
    "valid_score": "best.pt",
    "valid_energy_mae": "best_energy.pt",
    "valid_forces_mae": "best_forces.pt",
    "fsd_full": "best_fsd.pt",
    "fsd_compress": "best_fsd_compress.pt",
    "fsd_stretch": "best_fsd_stretch.pt",
}


class Validation:
    """Validation errors of the current model, sharded over ranks.

    Metrics: ``valid_energy_mae`` and ``valid_energy_rmse`` (eV/atom), their split by molecule
    ``valid_energy_offset_mae`` and ``valid_energy_within_mae`` (eV/atom, see
    :func:`pesprobe.train.baselines.energy_breakdown`), ``valid_forces_mae`` and ``valid_forces_rmse``
    (eV/Å), and with baselines ``valid_score`` (:func:`pesprobe.train.baselines.validation_score`);
    NaN where no structure has that label.

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
    baselines : Baselines, optional
        The trivial baselines on this set, for ``valid_score``.
    """

    all_ranks = True

    def __init__(self, structures: Sequence[Structure], every: int, batch_size: int, ranks: Ranks,
                 dtype: torch.dtype, baselines: Baselines | None = None):
        structures = list(structures)
        self.molecules = [s.molecule for s in structures]
        self.n_total = len(structures)
        self.indices = list(range(ranks.rank, len(structures), ranks.world_size))
        self.structures = [structures[i] for i in self.indices]
        self.every, self.batch_size, self.ranks, self.dtype = every, batch_size, ranks, dtype
        self.baselines = baselines
        self.enabled = len(structures) > 0

    def due(self, step: int, final: bool) -> bool:
        """True at multiples of ``every`` and at the last step (if there is validation data)."""
        return self.enabled and (step % self.every == 0 or final)

    def __call__(self, model: torch.nn.Module, step: int) -> dict[str, float]:
        # per-structure energy errors (eV/atom) of the whole set, zeros on other ranks' entries
        e_errors = torch.zeros(self.n_total, dtype=torch.float64, device=self.ranks.device)
        e_labelled = torch.zeros(self.n_total, dtype=torch.float64, device=self.ranks.device)
        f_sums = torch.zeros(3, dtype=torch.float64, device=self.ranks.device)
        was_training = model.training
        model.eval()
        for start in range(0, len(self.structures), self.batch_size):
            batch = collate(self.structures[start:start + self.batch_size], self.dtype, self.ranks.device)
            out = model(batch.positions, batch.cell, batch.system_index, batch.numbers, pbc=batch.pbc,
                        compute_forces=True, create_graph=False)
            rows = torch.as_tensor(self.indices[start:start + self.batch_size], device=self.ranks.device)
            e_err = ((out["energy"].detach() - batch.energy) / batch.n_atoms).double()
            e_errors[rows] = torch.where(batch.energy_mask, e_err, torch.zeros_like(e_err))
            e_labelled[rows] = batch.energy_mask.double()
            f_err = (out["forces"].detach() - batch.forces)[batch.forces_mask].double()
            f_sums += torch.stack([f_err.abs().sum(), (f_err**2).sum(), f_err.new_tensor(f_err.numel())])
        model.train(was_training)
        e_errors = all_reduce_sum(e_errors, self.ranks).cpu().numpy()
        e_labelled = all_reduce_sum(e_labelled, self.ranks).cpu().numpy()
        f_abs, f_sq, n_f = all_reduce_sum(f_sums, self.ranks).tolist()
        energy = energy_breakdown(np.where(e_labelled > 0, e_errors, np.nan), self.molecules)
        nan = float("nan")
        metrics = {"valid_energy_mae": energy.mae, "valid_energy_rmse": energy.rmse,
                   "valid_energy_offset_mae": energy.offset_mae, "valid_energy_within_mae": energy.within_mae,
                   "valid_forces_mae": f_abs / n_f if n_f else nan,
                   "valid_forces_rmse": float(np.sqrt(f_sq / n_f)) if n_f else nan}
        if self.baselines is not None:
            metrics["valid_score"] = validation_score(metrics["valid_energy_mae"], metrics["valid_forces_mae"],
                                                      self.baselines)
        return metrics


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
