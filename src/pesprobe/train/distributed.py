"""Data-parallel set-up: one process per rank (``torchrun``), gloo on CPU and nccl on GPUs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Ranks:
    """Where this process sits in the run.

    Attributes
    ----------
    rank, world_size, local_rank : int
        Global rank, number of ranks, rank on this node (1 rank / rank 0 without ``torchrun``).
    device : torch.device
        The device this rank trains on.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the rank that logs and writes checkpoints)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one rank takes part."""
        return self.world_size > 1


def setup(device: str) -> Ranks:
    """Join the process group set up by ``torchrun`` (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``,
    ``MASTER_ADDR``/``MASTER_PORT`` in the environment), if any, and pick this rank's device.

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``. With several ranks on CUDA each rank
        takes ``cuda:LOCAL_RANK``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"train.device is {device!r} but CUDA is not available")
    if device == "cuda":
        device = f"cuda:{local_rank}" if world_size > 1 else "cuda"
    torch_device = torch.device(device)
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch_device.type == "cuda" else "gloo",
                                rank=rank, world_size=world_size)
        if torch_device.type == "cpu":
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Ranks(rank=rank, world_size=world_size, local_rank=local_rank, device=torch_device)


def teardown(ranks: Ranks) -> None:
    """Leave the process group (if this run joined one)."""
    if ranks.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """Sum ``values`` over ranks (in place; a no-op with one rank)."""
    if ranks.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(ranks: Ranks) -> None:
    """Wait for every rank (a no-op with one rank)."""
    if ranks.distributed:
        dist.barrier()
