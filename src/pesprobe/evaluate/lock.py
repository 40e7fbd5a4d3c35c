"""One run per output folder: an exclusive ``fcntl`` lock on ``<out>/.pesprobe.lock``.

Two runs writing into one folder at once would mix their outputs (results.json of one,
report.html of the other). The lock is taken before anything is written and released when the
run ends; the kernel releases it if the process dies (kill -9 included), so a stale lock file never
blocks a later run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".pesprobe.lock"


class OutputBusyError(RuntimeError):
    """The output folder is in use by another run (the message names the folder and its process)."""


@contextlib.contextmanager
def output_lock(out: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of the output folder ``out`` (created if missing).

    Raises
    ------
    OutputBusyError
        If another process holds it; nothing has been written then.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise OutputBusyError(f"output folder {out} is in use by another pesprobe run ({holder}); wait for "
                                  "it to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
