"""Training: configuration, data batching, the loop (single process or DDP), BSCT in the loop.

``train``, ``TrainResult`` and ``load_datasets`` are imported on first use, so that importing
this package (as the CLI does) does not import torch.
"""

from pesprobe.train.config import BSCTConfig, ConfigError, DataConfig, LoopConfig, TrainConfig
from pesprobe.train.log import read_log

_LAZY = {"train", "TrainResult", "load_datasets"}

__all__ = ["BSCTConfig", "ConfigError", "DataConfig", "LoopConfig", "TrainConfig", "TrainResult", "load_datasets",
           "read_log", "train"]


def __getattr__(name: str):
    if name in _LAZY:
        from pesprobe.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'pesprobe.train' has no attribute {name!r}")
