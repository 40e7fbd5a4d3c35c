"""Opening data files safely: only regular files are opened, and every failure names the path and why.

A symlink loop, a dangling symlink, a directory, a FIFO, a socket or a device where a data file
should be raises :class:`UnreadableFileError` before anything is opened (a FIFO would block the
reader forever); so does a file the operating system refuses to open or read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

#: Bytes read per call when hashing or scanning a file.
CHUNK_BYTES = 1 << 20

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class UnreadableFileError(ValueError):
    """A data path that is not a readable regular file; the message names the path and the reason.

    Attributes
    ----------
    path : str
        The offending path.
    reason : str
        Why it cannot be read (``"symlink loop"``, ``"a FIFO (named pipe), not a regular file"`` ...).
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: unreadable: {reason}")
        self.path, self.reason = str(path), reason


def _describe_os_error(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"dangling symlink (to {os.readlink(path)})"
    if exc.errno == errno.ENOENT:
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def regular_file_size(path: str | Path) -> int:
    """Size in bytes of ``path``, following symlinks, after checking that it is a regular file.

    Raises
    ------
    UnreadableFileError
        If ``path`` cannot be stat'ed (missing, dangling symlink, symlink loop, no permission) or
        is not a regular file (directory, FIFO, socket, device).
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UnreadableFileError(path, _describe_os_error(path, exc)) from None
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFileError(path, f"{_kind(info.st_mode)}, not a regular file")
    return info.st_size


def open_regular(path: str | Path) -> BinaryIO:
    """Open ``path`` for binary reading, only if it is a regular file (see :func:`regular_file_size`).

    Raises
    ------
    UnreadableFileError
        If the path is not a regular file or cannot be opened.
    """
    regular_file_size(path)
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise UnreadableFileError(path, _describe_os_error(Path(path), exc)) from None


def update_hash(h, path: str | Path) -> None:
    """Feed the bytes of ``path`` into the hash object ``h`` in :data:`CHUNK_BYTES` chunks.

    A path that cannot be read feeds the reason instead (so the key still changes when it is fixed).
    """
    try:
        with open_regular(path) as fh:
            while chunk := fh.read(CHUNK_BYTES):
                h.update(chunk)
    except (UnreadableFileError, OSError) as exc:
        h.update(b"\0unreadable\0" + str(exc).encode())
