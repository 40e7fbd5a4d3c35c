"""Turn a training budget in minutes into a step count, by timing a few optimizer steps of the variant."""

from __future__ import annotations

import time

from pesprobe.train.config import TrainConfig

#: Share of the minutes given to optimizer steps (the rest: validation, checkpoints, start-up).
STEP_SHARE = 0.9


def seconds_per_step(config: TrainConfig, probe_steps: int = 8, warmup_steps: int = 3) -> float:
    """Wall time of one training step (forward, force loss, backward, AdamW) of this configuration, s.

    Times ``probe_steps`` steps on the configuration's own batches, on its device and dtype,
    after ``warmup_steps`` untimed ones. No file is written.
    """
    import torch

    from pesprobe.models import build_model
    from pesprobe.train.batch import StepSampler, collate
    from pesprobe.train.loop import DTYPES, load_datasets

    loop = config.train
    device = torch.device("cuda" if loop.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if loop.device == "auto" else loop.device))
    dtype = DTYPES[loop.dtype]
    train_set, _ = load_datasets(config)
    sampler = StepSampler(len(train_set), loop.batch_size, loop.seed, 0, 1)
    torch.manual_seed(loop.seed)
    model = build_model(config.model_config()).to(device=device, dtype=dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=loop.lr)
    start = 0.0
    for step in range(warmup_steps + probe_steps):
        if step == warmup_steps:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        batch = collate([train_set[i] for i in sampler.indices(step)], dtype, device)
        out = model(batch.positions, batch.cell, batch.system_index, batch.numbers, pbc=batch.pbc,
                    compute_forces=True, create_graph=True)
        energy_error = (out["energy"] - batch.energy) / batch.n_atoms
        loss = energy_error.pow(2).mean() + (out["forces"] - batch.forces).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / probe_steps


def steps_for_minutes(config: TrainConfig, minutes: float) -> tuple[int, float]:
    """Steps that fit in ``minutes`` of training, and the measured seconds per step.

    Returns
    -------
    steps : int
        ``floor(STEP_SHARE · 60 · minutes / seconds_per_step)``, at least 1.
    seconds : float
        Seconds per step measured by :func:`seconds_per_step`.
    """
    seconds = seconds_per_step(config)
    return max(1, int(STEP_SHARE * 60.0 * minutes / seconds)), seconds
