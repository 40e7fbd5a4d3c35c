"""Optimiser pieces: AdamW, the warm-up + cosine schedule, and the exponential moving average."""

from __future__ import annotations

import copy
import math

import torch

from pesprobe.train.config import LoopConfig


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up to 1, then cosine decay to ``min_ratio``.

    The multiplier for the first step is ``1 / (warmup_steps + 1)``; it reaches 1 after the
    warm-up and ``min_ratio`` at ``total_steps``.
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: torch.nn.Module, loop: LoopConfig,
                    total_steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on biases, norms and embeddings of rank < 2) and its schedule."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": loop.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=loop.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, loop.warmup_steps, total_steps, loop.min_lr_ratio))
    return optimizer, scheduler


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied).

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates so
    the average is not dominated by the random initialisation. With ``decay == 0`` the average is
    the model itself (no copy).

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained (not a DDP wrapper).
    decay : float
        Target decay in [0, 1).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.model = model
        if decay > 0:
            self.model = copy.deepcopy(model).requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        self.updates += 1
        if self.decay == 0:
            return
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for avg, cur in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(cur.detach(), 1.0 - d)
        for avg, cur in zip(self.model.buffers(), model.buffers(), strict=True):
            avg.copy_(cur)

    def state_dict(self) -> dict:
        """Weights of the average and the update count."""
        return {"updates": self.updates, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.updates = int(state["updates"])
        if self.decay > 0:
            self.model.load_state_dict(state["model"])
