"""The training loop: :func:`train` (single process or data-parallel under ``torchrun``).

Each step takes a global batch from :class:`~pesprobe.train.batch.StepSampler` (every rank its
share), computes the weighted loss

    L = w_E · mean_s ((Ê_s − E_s) / n_s)²  +  w_F · mean_{atoms, xyz} (F̂ − F)²

normalised by the counts over the *global* batch, so that DistributedDataParallel's gradient
average equals the single-process gradient; w_E is fixed or adapted so that the energy term carries
a set share of the loss (:mod:`pesprobe.train.balance`); then AdamW, the warm-up + cosine schedule,
gradient clipping and the weight average (EMA). Validation, BSCT and checkpoints use the averaged
weights. Validation reports the errors split by molecule beside the linear and zero-force baselines
(:mod:`pesprobe.train.baselines`, logged once as a ``baselines`` record); ``best.pt`` keeps the model
with the best ``valid_score``, and ``train.patience`` stops a run that no longer improves it.
At the end rank 0 writes ``learning_curves.md`` (:mod:`pesprobe.train.curves`).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from pesprobe.data.structures import Structure, read_structures, split_by_molecule
from pesprobe.train.balance import LossBalance
from pesprobe.train.baselines import Baselines, validation_baselines
from pesprobe.train.batch import Batch, StepSampler, collate
from pesprobe.train.callbacks import BEST_FILES, BestCheckpoints, BSCTInTheLoop, Validation
from pesprobe.train.config import ConfigError, TrainConfig
from pesprobe.train.curves import write_learning_curves
from pesprobe.train.distributed import Ranks, all_reduce_sum, barrier, setup, teardown
from pesprobe.train.log import JsonlLog
from pesprobe.train.optim import EMA, build_optimizer
from pesprobe.train.references import energy_statistics, fit_element_references
from pesprobe.train.stopping import EarlyStopping

LAST = "last.pt"
CURVES = "learning_curves.md"
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes
    ----------
    out : Path
        Output folder.
    steps : int
        Optimizer steps done in total (including those before a resume).
    metrics : dict
        Metrics of the last evaluation (validation MAEs, FSD ...).
    best : dict
        Lowest value reached by each tracked metric.
    checkpoints : dict
        ``{"last": path, "valid_score": best.pt, "valid_energy_mae": best_energy.pt, ...}`` for the
        files written (``best.pt``: the best-by-validation model).
    n_train, n_valid : int
        Training and validation structures.
    wall_seconds : float
        Wall time of this call, s.
    baselines : dict
        The validation baselines (``baseline_*`` metrics, ``valid_molecules``); empty without validation.
    stopped_early : bool
        True if ``train.patience`` ended the run before ``steps``.
    """

    out: Path
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    checkpoints: dict[str, Path] = field(default_factory=dict)
    n_train: int = 0
    n_valid: int = 0
    wall_seconds: float = 0.0
    baselines: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False


@dataclass
class DataSplit:
    """The structures a run trains and validates on.

    Attributes
    ----------
    train, valid : list of Structure
    dropped : int
        Structures left out by ``data.max_force``.
    """

    train: list[Structure]
    valid: list[Structure]
    dropped: int = 0

    def as_record(self) -> dict[str, int]:
        """Counts for the training log."""
        return {"train_structures": len(self.train), "valid_structures": len(self.valid),
                "train_molecules": len({s.molecule for s in self.train}),
                "valid_molecules": len({s.molecule for s in self.valid}), "dropped_max_force": self.dropped}


def within_max_force(structure: Structure, max_force: float | None) -> bool:
    """Whether ``data.max_force`` keeps ``structure``: every force component at most ``max_force`` eV/Å
    (None keeps everything; unlabelled forces pass)."""
    return max_force is None or not structure.has_forces or float(np.abs(structure.forces).max()) <= max_force


def _below(structures: list[Structure], max_force: float | None) -> list[Structure]:
    """Structures kept by :func:`within_max_force`."""
    return [s for s in structures if within_max_force(s, max_force)]


def read_datasets(config: TrainConfig) -> DataSplit:
    """Training and validation structures (validation held out by molecule unless given), without
    the structures above ``data.max_force``."""
    data = config.data
    structures = read_structures(data.train, data.energy_key, data.forces_key)
    if data.valid:
        valid = read_structures(data.valid, data.energy_key, data.forces_key)
        overlap = {s.molecule for s in structures} & {s.molecule for s in valid}
        if overlap:
            raise ConfigError(f"data.valid: {len(overlap)} molecules are also in data.train, e.g. {sorted(overlap)[0]}")
    else:
        structures, valid = split_by_molecule(structures, data.valid_fraction, data.seed)
    train, kept_valid = _below(structures, data.max_force), _below(valid, data.max_force)
    dropped = len(structures) + len(valid) - len(train) - len(kept_valid)
    if not train:
        raise ConfigError(f"data.max_force: no training structure has all forces below {data.max_force} eV/Å")
    return DataSplit(train, kept_valid, dropped)


def load_datasets(config: TrainConfig) -> tuple[list[Structure], list[Structure]]:
    """Training and validation structures of :func:`read_datasets`."""
    split = read_datasets(config)
    return split.train, split.valid


def _as_config(config: TrainConfig | dict | str | Path) -> TrainConfig:
    if isinstance(config, TrainConfig):
        config.validate()
        return config
    if isinstance(config, dict):
        return TrainConfig.from_dict(config)
    return TrainConfig.from_yaml(config)


def train(config: TrainConfig | dict | str | Path, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train a pesprobe model.

    Parameters
    ----------
    config : TrainConfig, dict or path
        The configuration (a YAML path, nested dicts, or a :class:`TrainConfig`).
    resume : bool
        Continue from ``<out>/last.pt`` (weights, optimizer, schedule, EMA, step, best values);
        works on any number of ranks. Without it, an output folder holding a checkpoint is an error.
    progress : bool
        Show a progress bar (rank 0 only).

    Returns
    -------
    TrainResult

    Notes
    -----
    Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank calls this; gradients are averaged with
    DistributedDataParallel (gloo on CPU, nccl on CUDA) and rank 0 writes the log and checkpoints.
    """
    config = _as_config(config)
    ranks = setup(config.train.device)
    try:
        return _Trainer(config, ranks, resume, progress).run()
    finally:
        teardown(ranks)


class _Trainer:
    """State of one training run (one rank)."""

    def __init__(self, config: TrainConfig, ranks: Ranks, resume: bool, progress: bool):
        from pesprobe.models import CheckpointError, build_model, load_checkpoint

        self.config, self.ranks, self.progress = config, ranks, progress
        loop = config.train
        self.out = Path(loop.out)
        self.dtype = DTYPES[loop.dtype]
        self.data = read_datasets(config)
        self.train_set, self.valid_set = self.data.train, self.data.valid
        self.sampler = StepSampler(len(self.train_set), loop.batch_size, loop.seed, ranks.rank, ranks.world_size)
        if loop.steps is not None:
            self.total_steps = loop.steps
        else:
            self.total_steps = max(1, math.ceil(loop.epochs * self.sampler.batches_per_epoch))
        last = self.out / LAST
        if last.exists() and not resume:
            raise FileExistsError(f"{last} exists: pass --resume to continue that run, or choose another train.out")
        if resume and not last.exists():
            raise FileNotFoundError(f"--resume: no checkpoint {last} to resume from")

        torch.manual_seed(loop.seed)
        self.model = build_model(config.model_config()).to(device=ranks.device, dtype=self.dtype)
        state: dict[str, Any] = {}
        if resume:
            _, extra = load_checkpoint(last, map_location=ranks.device)
            state = extra.get("train_state") or {}
            if not state:
                raise CheckpointError(f"{last}: not a training checkpoint (no train_state); cannot resume from it")
            if state["config"]["model"] != config.model:
                raise ConfigError(f"model: differs from the model section of {last}; cannot resume a different model")
            self.model.load_state_dict(state["model"])
        else:
            references = fit_element_references(self.train_set)
            self.model.set_element_references(references)
            stats = energy_statistics(self.train_set, references)
            self.model.set_normalization(shift=stats.shift, scale=stats.scale)
        self.optimizer, self.scheduler = build_optimizer(self.model, loop, self.total_steps)
        self.ema = EMA(self.model, loop.ema_decay)
        self.step = 0
        if state:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.ema.load_state_dict(state["ema"])
            self.step = int(state["step"])
        self.net: torch.nn.Module = self.model
        if ranks.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ids = [ranks.device.index] if ranks.device.type == "cuda" else None
            # find_unused_parameters: with the conservative head the last block's token layers do
            # not reach the energy, so they never get a gradient
            self.net = DistributedDataParallel(self.model, device_ids=ids, find_unused_parameters=True)
            # double backward gives some gradients a transposed layout; harmless, but DDP warns
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")

        if ranks.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self._write_config()
        self.log = JsonlLog(self.out / "log.jsonl", resume_step=self.step if resume else None,
                            enabled=ranks.is_main)
        self.best = BestCheckpoints(self.out, self._save, state.get("best"))
        self.balance = LossBalance(loop.energy_weight, loop.forces_weight, loop.energy_share, loop.balance_decay,
                                   loop.energy_share_ramp)
        self.stopping = EarlyStopping(loop.patience, "valid_score", loop.min_delta)
        if state.get("balance"):
            self.balance.load_state_dict(state["balance"])
        if state.get("stopping"):
            self.stopping.load_state_dict(state["stopping"])
        self.baselines: Baselines | None = (validation_baselines(self.train_set, self.valid_set)
                                            if self.valid_set else None)
        if not resume:
            self.log.write({"event": "data", "step": 0, **self.data.as_record()})
            if self.baselines is not None:
                self.log.write({"event": "baselines", "step": 0, **self.baselines.as_record()})
        self.evaluators: list[Validation | BSCTInTheLoop] = [
            Validation(self.valid_set, loop.eval_every, loop.valid_batch_size, ranks, self.dtype, self.baselines)]
        if config.bsct is not None:
            self.evaluators.append(BSCTInTheLoop(config.bsct.scans, config.bsct.every, ranks.device, self.dtype,
                                                 config.bsct.batch_frames))
        self.metrics: dict[str, float] = dict(state.get("metrics") or {})

    # ------------------------------------------------------------------ checkpoints
    def _write_config(self) -> None:
        import yaml

        from pesprobe.data.atomic import atomic_write

        atomic_write(self.out / "config.yaml", yaml.safe_dump(self.config.to_dict(), sort_keys=False))

    def _save(self, path: Path) -> None:
        """Checkpoint: the averaged weights as the model, the raw training state in ``extra``."""
        from pesprobe.models import save_checkpoint

        state = {"step": self.step, "total_steps": self.total_steps, "config": self.config.to_dict(),
                 "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "ema": self.ema.state_dict(),
                 "best": dict(self.best.best), "metrics": dict(self.metrics),
                 "balance": self.balance.state_dict(), "stopping": self.stopping.state_dict(),
                 "world_size": self.ranks.world_size}
        save_checkpoint(path, self.ema.model, extra={"train_state": state})

    # ------------------------------------------------------------------ one step
    def _rotations(self) -> np.ndarray | None:
        """This rank's share of the rotations of the global batch, drawn from a generator seeded by
        (seed, step) so they do not depend on the number of ranks; shape (n_local, 3, 3)."""
        if not self.config.train.rotate:
            return None
        from pesprobe.models import random_rotation_matrices

        seed = int(np.random.SeedSequence([self.config.train.seed, self.step]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(seed)
        rotations = random_rotation_matrices(self.config.train.batch_size, generator, dtype=torch.float64)
        return rotations.numpy()[self.ranks.rank::self.ranks.world_size]

    def _global_counts(self) -> tuple[float, float]:
        """Labelled structures and labelled force components in the whole global batch."""
        items = [self.train_set[i] for i in self.sampler.global_indices(self.step)]
        return (float(sum(s.has_energy for s in items)),
                float(3 * sum(s.n_atoms for s in items if s.has_forces)))

    def _loss_sums(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(batch.positions, batch.cell, batch.system_index, batch.numbers, pbc=batch.pbc,
                       compute_forces=True, create_graph=True)
        e_err = (out["energy"] - batch.energy) / batch.n_atoms
        e_sum = (e_err**2 * batch.energy_mask).sum()
        f_sum = (((out["forces"] - batch.forces) ** 2).sum(-1) * batch.forces_mask).sum()
        return e_sum, f_sum

    def _train_step(self) -> dict[str, float]:
        loop = self.config.train
        indices = self.sampler.indices(self.step)
        batch = collate([self.train_set[i] for i in indices], self.dtype, self.ranks.device, self._rotations())
        n_e, n_f = self._global_counts()
        e_sum, f_sum = self._loss_sums(batch)
        parts = all_reduce_sum(torch.stack([e_sum.detach(), f_sum.detach()]).double(), self.ranks).tolist()
        energy_mse, forces_mse = parts[0] / max(n_e, 1.0), parts[1] / max(n_f, 1.0)
        energy_weight = self.balance.weight(energy_mse, forces_mse, self.step / self.total_steps)
        loss = self.ranks.world_size * (energy_weight * e_sum / max(n_e, 1.0)
                                        + loop.forces_weight * f_sum / max(n_f, 1.0))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = loop.clip_grad_norm if loop.clip_grad_norm is not None else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.ema.update(self.model)
        self.step += 1
        energy_term, forces_term = energy_weight * energy_mse, loop.forces_weight * forces_mse
        total = energy_term + forces_term
        return {"loss": total, "energy_mse": energy_mse, "forces_mse": forces_mse, "energy_weight": energy_weight,
                "energy_fraction": energy_term / total if total > 0 else float("nan"), "grad_norm": grad_norm,
                "lr": lr}

    # ------------------------------------------------------------------ evaluations
    def _evaluate(self, final: bool) -> dict[str, float]:
        """Metrics of the evaluators due at this step (rank-0-only ones: the other ranks wait)."""
        metrics: dict[str, float] = {}
        for evaluator in self.evaluators:
            if not evaluator.due(self.step, final):
                continue
            if evaluator.all_ranks or self.ranks.is_main:
                metrics.update(evaluator(self.ema.model, self.step))
            if not evaluator.all_ranks:
                barrier(self.ranks)
        return metrics

    # ------------------------------------------------------------------ the run
    def run(self) -> TrainResult:
        start_time = time.perf_counter()
        loop = self.config.train
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", unit="step",
                   disable=not (self.progress and self.ranks.is_main), dynamic_ncols=True)
        window_seconds, window_steps = 0.0, 0  # training time since the last record (evaluations excluded)
        with bar:
            while self.step < self.total_steps and not self.stopping.stop:
                tick = time.perf_counter()
                record = self._train_step()
                window_seconds += time.perf_counter() - tick
                window_steps += 1
                final = self.step == self.total_steps
                bar.update(1)
                if self.step % loop.log_every == 0 or final:
                    record["structures_per_s"] = window_steps * loop.batch_size / max(window_seconds, 1e-9)
                    self.log.write({"event": "train", "step": self.step,
                                    "epoch": self.step / self.sampler.batches_per_epoch, **record})
                    bar.set_postfix(loss=f"{record['loss']:.4g}")
                    window_seconds, window_steps = 0.0, 0
                metrics = self._evaluate(final)
                stop = False
                if metrics:
                    self.metrics = metrics
                    stop = self.stopping.update(metrics)  # valid_score is known on every rank
                    improved = self.best.update(metrics) if self.ranks.is_main else []
                    self.log.write({"event": "eval", "step": self.step, **metrics,
                                    "saved": [path.name for path in improved]})
                if stop:
                    self.log.write({"event": "stop", "step": self.step, "metric": self.stopping.metric,
                                    "best": self.stopping.best, "evaluations_without_improvement":
                                    self.stopping.since_best})
                if self.step % loop.ckpt_every == 0 or final or stop:
                    if self.ranks.is_main:
                        self._save(self.out / LAST)
                    barrier(self.ranks)
        if self.ranks.is_main:
            write_learning_curves(self.out / "log.jsonl", self.out / CURVES)
        checkpoints = {"last": self.out / LAST}
        checkpoints.update({name: self.out / file for name, file in BEST_FILES.items()
                            if (self.out / file).exists()})
        return TrainResult(out=self.out, steps=self.step, metrics=dict(self.metrics), best=dict(self.best.best),
                           checkpoints=checkpoints, n_train=len(self.train_set), n_valid=len(self.valid_set),
                           wall_seconds=time.perf_counter() - start_time,
                           baselines=self.baselines.as_record() if self.baselines else {},
                           stopped_early=self.stopping.stop and self.step < self.total_steps)
