"""Thread control for the numerical libraries behind potentials (OpenMP in tblite, torch)."""

from __future__ import annotations

import ctypes
import os
import sys


def limit_threads(threads: int = 1) -> None:
    """Set the OpenMP (tblite) and torch thread count of this process.

    tblite's OpenMP threads busy-wait: on a loaded machine two threads for a 10-atom molecule are
    ~30 times slower than one, so worker processes run one thread each by default. Setting
    ``OMP_NUM_THREADS`` after the library is loaded has no effect, hence the direct libgomp call.
    """
    os.environ["OMP_NUM_THREADS"] = str(int(threads))  # for libraries loaded later
    try:
        ctypes.CDLL("libgomp.so.1").omp_set_num_threads(int(threads))
    except OSError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))
