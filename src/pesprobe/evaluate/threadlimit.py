"""The thread count of a BSCT run, the same in the main process and in every worker.

The main process used to keep the libraries' default (all cores: tblite's OpenMP threads
busy-wait, 11-25x the CPU on a loaded machine) while workers ran one thread each, and torch sums
in a different order with another thread count, so results depended (slightly) on ``jobs``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections.abc import Iterator

from pesprobe.potentials.threads import limit_threads


def _omp_threads() -> int | None:
    try:
        return int(ctypes.CDLL("libgomp.so.1").omp_get_max_threads())
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` OpenMP and torch threads in this process (None: unchanged);
    the previous settings are restored afterwards."""
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    env = os.environ.get("OMP_NUM_THREADS")
    omp = _omp_threads()
    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    limit_threads(threads)
    try:
        yield
    finally:
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env
        if omp is not None:
            with contextlib.suppress(OSError):
                ctypes.CDLL("libgomp.so.1").omp_set_num_threads(omp)
        if "torch" in sys.modules:
            # torch loaded during the block starts from OMP_NUM_THREADS as it was before
            previous = torch_threads if torch_threads is not None else int(env) if env and env.isdigit() else None
            if previous is not None:
                sys.modules["torch"].set_num_threads(previous)
