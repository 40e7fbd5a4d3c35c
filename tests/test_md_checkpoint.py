"""Batched-run state files cannot run code: a planted pickle is refused and the run starts over."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from pesprobe.md.batched import BatchedIntegrator
from pesprobe.md.checkpoint import read_checkpoint, write_checkpoint
from pesprobe.md.config import MDConfig
from pesprobe.md.systems import Molecule
from pesprobe.md.torch_models import MorsePair

MOL = Molecule("c3", [6, 6, 6], [[0.0, 0.0, 0.0], [1.4, 0.0, 0.0], [0.7, 1.2, 0.0]])


class _Payload:
    """Unpickling this creates ``marker``: proof that a loader ran planted code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class _Counting(MorsePair):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, positions, cell, system_index, atomic_numbers):
        self.calls += 1
        return super().forward(positions, cell, system_index, atomic_numbers)


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_planted_pickle_checkpoint_is_refused(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "state"
    planted = {"format": "pesprobe-md-batch-1", "key": "k", "state": _Payload(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(planted))
    else:
        torch.save(planted, path)
    assert read_checkpoint(path, "k") is None
    cfg = MDConfig(length_ps=0.01, seeds=(0,), save_every=0)
    model = _Counting()
    raw = BatchedIntegrator(model, cfg).run([MOL], [0], checkpoint=path, checkpoint_key="k")[0]
    assert not marker.exists(), "the checkpoint loader unpickled a planted file"
    assert model.calls == cfg.n_steps + 1 and raw.steps_done == cfg.n_steps  # started over
    pickle.loads(pickle.dumps(planted))  # the payload does work when unpickled: the test can fail
    assert marker.exists()


def test_checkpoint_round_trip_and_key(tmp_path):
    path = tmp_path / "state"
    write_checkpoint(path, "a", {"x": np.arange(3.0)}, {"step": 4})
    arrays, meta = read_checkpoint(path, "a")
    np.testing.assert_array_equal(arrays["x"], np.arange(3.0))
    assert meta["step"] == 4
    assert read_checkpoint(path, "b") is None
    with pytest.raises(ValueError, match="dtype object"):
        write_checkpoint(path, "a", {"x": np.array([{}], dtype=object)}, {})
