"""Shared fixtures: the published sample (../shared beside the repo) and small generated scan sets."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLE = SHARED / "data" / "bsct_spice_sample"
GOLDEN = SHARED / "golden"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own scan cache so tests never see each other's cached files."""
    monkeypatch.setenv("PESPROBE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def sample_dir() -> Path:
    if not SAMPLE.is_dir():
        pytest.skip("../shared/data/bsct_spice_sample not available")
    return SAMPLE


#: The three sample scans of :func:`small_copy`; all three are among the scans embedded in the package.
SMALL_IDS = ("C-O/101", "C-S/713", "N-O/4583")


@pytest.fixture
def small_copy(tmp_path) -> Path:
    """A writable copy of three sample scans (C-O/101, C-S/713, N-O/4583) in the published layout:
    copied from ../shared when it is there, else written from the scans embedded in the package (the
    same frames, bit for bit: ``test_bsct_golden`` checks it), so these tests run in any clone."""
    root = tmp_path / "data"
    if SAMPLE.is_dir():
        for scan_id in SMALL_IDS:
            shutil.copytree(SAMPLE / scan_id, root / scan_id)
        return root
    from pesprobe.data import ScanSet, load_scans, write_published
    from pesprobe.data.embedded import embedded_scans_path

    embedded = load_scans(embedded_scans_path())
    write_published(ScanSet([embedded[i] for i in SMALL_IDS], source="embedded"), root)
    return root


def make_scan(n_frames: int = 20, seed: int = 0, scan_id: str = "C-C/gen"):
    """A synthetic 3-atom bond scan with Morse-like reference energies and exact forces."""
    from pesprobe.data import Scan

    rng = np.random.default_rng(seed)
    base = np.array([[0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [2.2, 1.0, 0.0]]) + 0.01 * rng.standard_normal((3, 3))
    lengths = np.linspace(0.75, 3.0, n_frames)
    positions = np.repeat(base[None], n_frames, axis=0)
    positions[:, 1, 0] = lengths
    positions[:, 2, 0] = base[2, 0] + (lengths - 1.5)
    d, a = 1.5, 2.0
    energy = (1 - np.exp(-a * (lengths - d))) ** 2
    dedr = 2 * a * (1 - np.exp(-a * (lengths - d))) * np.exp(-a * (lengths - d))
    forces = np.zeros((n_frames, 3, 3))
    forces[:, 0, 0] = dedr
    forces[:, 1, 0] = -dedr / 2
    forces[:, 2, 0] = -dedr / 2
    return Scan(id=scan_id, kind="bond", numbers=[6, 6, 1], positions=positions, coordinate=lengths,
                ref_energy=energy, ref_forces=forces, meta={"bond": "C-C", "bond_index": np.array([0, 1])})


#: The smallest useful Transformer, for training tests.
TINY_MODEL = {"d_model": 16, "n_heads": 2, "n_blocks": 1, "embed_dim": 8, "readout_dim": 8, "n_rbf": 8, "k": 6,
              "cutoff": 4.0}


@pytest.fixture
def one_torch_thread():
    """Tiny models train faster on one thread (and the CI machine is shared)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
