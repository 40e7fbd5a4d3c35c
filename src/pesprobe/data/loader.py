"""``load_scans``: one entry point for every scan format, with a content-keyed compact cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path

from pesprobe.data.atomic import atomic_write_json
from pesprobe.data.compact import read_compact, write_compact
from pesprobe.data.extxyz_scans import read_scans_extxyz
from pesprobe.data.files import update_hash
from pesprobe.data.published import is_published_layout, iter_published
from pesprobe.data.scan import LoadProblem, ScanSet

#: Part of every scan-cache key: bumped when the folder reader changes what it returns
#: (2: frames without an energy= key are reported; 3: unreadable files, duplicate frame files,
#: non-finite coordinates and energies are data problems, listed in ``meta["data_problems"]``).
CACHE_VERSION = "3"
#: Default bounds of the scan cache (``$PESPROBE_CACHE_MAX_MB``, ``$PESPROBE_CACHE_MAX_DAYS``): entries
#: unused for longer than the age bound are removed, then the least recently used until the total
#: size is under the size bound. The entry being read or written is always kept.
CACHE_MAX_MB = 2048.0
CACHE_MAX_DAYS = 30.0


def cache_dir() -> Path:
    """Folder of the scan cache: ``$PESPROBE_CACHE_DIR``, else ``$XDG_CACHE_HOME/pesprobe``, else ``~/.cache/pesprobe``."""
    if os.environ.get("PESPROBE_CACHE_DIR"):
        return Path(os.environ["PESPROBE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pesprobe"


def _bound(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value >= 0 else default


def prune_cache(keep: Path | None = None) -> list[Path]:
    """Bound the scan cache: remove entries unused for ``$PESPROBE_CACHE_MAX_DAYS`` days (default
    :data:`CACHE_MAX_DAYS`), then the least recently used until the entries total at most
    ``$PESPROBE_CACHE_MAX_MB`` MiB (default :data:`CACHE_MAX_MB`). ``keep`` is never removed.
    "Used" is the file's modification time, refreshed on every cache hit. Entries that vanish
    meanwhile (another run pruning) are skipped; errors never stop a run. Returns the removed files."""
    folder = cache_dir()
    max_age = _bound("PESPROBE_CACHE_MAX_DAYS", CACHE_MAX_DAYS) * 86400
    now = time.time()
    removed = []
    for path in folder.glob("stat-*.json"):  # tiny signature → key records: by age only
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > max_age:
                path.unlink()
                removed.append(path)
    entries = []
    for path in folder.glob("scans-*.npz"):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    entries.sort()  # oldest first
    budget = _bound("PESPROBE_CACHE_MAX_MB", CACHE_MAX_MB) * 2**20
    total = sum(size for _, size, _ in entries)
    for mtime, size, path in entries:
        if keep is not None and path == keep:
            continue
        if now - mtime > max_age or total > budget:
            try:
                path.unlink()
            except OSError:
                continue
            total -= size
            removed.append(path)
    return removed


def content_key(root: Path) -> str:
    """SHA-256 over the folder's location and every file's relative path and bytes under ``root``
    (sorted walk). The location is part of it because cached problems and ``meta["source"]`` name
    files: a copy of the folder gets its own entry rather than the original's paths.

    Files are hashed in chunks (memory stays small whatever their size); an entry that is not a
    readable regular file (FIFO, dangling symlink, symlink loop, no permission) is never opened:
    the reason enters the key instead, and the folder reader reports it."""
    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(str(Path(root).resolve()).encode() + b"\0")
    for full, relative in _walk(root):
        h.update(relative.encode() + b"\0")
        update_hash(h, full)
    return h.hexdigest()


def _walk(root: Path):
    """``(path, path relative to root)`` of every file under ``root``, in sorted walk order (the
    relative path by slicing: ``os.path.relpath`` per file was most of a warm run's key time)."""
    top = os.path.normpath(str(root))
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            yield full, full[len(top) + 1:]


def stat_signature(root: Path) -> str:
    """SHA-256 over the folder's location and every file's relative path, mode, size, inode and
    modification and change times (ns): what :func:`folder_key` checks before hashing content."""
    h = hashlib.sha256(f"{CACHE_VERSION}:stat".encode())
    h.update(str(Path(root).resolve()).encode() + b"\0")
    for full, relative in _walk(root):
        h.update(relative.encode() + b"\0")
        try:
            st = os.stat(full)
        except OSError as exc:
            h.update(f"error {exc.errno}".encode())
            continue
        h.update(f"{st.st_mode} {st.st_size} {st.st_ino} {st.st_mtime_ns} {st.st_ctime_ns}\0".encode())
    return h.hexdigest()


def folder_key(root: Path) -> str:
    """:func:`content_key` of ``root``, hashing the files' bytes only when their stat signature
    (size, times, inode) is new: a warm run of unchanged data only stats its files.

    The signature → key record is a small ``stat-<signature>.json`` in the cache folder. Writing a
    file changes its change time (ctime), which no tool can set back, so edited data is always
    hashed again."""
    record = cache_dir() / f"stat-{stat_signature(root)[:40]}.json"
    try:
        return str(json.loads(record.read_text())["key"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    key = content_key(root)
    with contextlib.suppress(OSError):  # an unwritable cache must not stop the run
        atomic_write_json(record, {"key": key, "root": str(Path(root).resolve())})
    return key


def load_scans(path: str | Path, cache: bool = True) -> ScanSet:
    """Load a scan set from any supported source.

    Parameters
    ----------
    path : str or Path
        A folder in the published BSCT layout (``<bond>/<id>/atoms_<i>.xyz`` ...), a compact
        ``.npz`` file written by :func:`pesprobe.data.compact.write_compact`, or a multi-frame
        extended XYZ file written by :func:`pesprobe.data.extxyz_scans.write_scans_extxyz`.
    cache : bool
        For folders: read from (and fill) a single-file compact cache keyed by the folder's
        content, so a second load is a single file read. Changed data gives a new key; unchanged
        files (same size, inode, modification and change times) are not read again to find the
        key (:func:`folder_key`).

    Returns
    -------
    ScanSet
        The scans in sorted order, and the problems met (bad files are reported, not fatal).

    Raises
    ------
    FileNotFoundError, ValueError
        If ``path`` does not exist or is not a recognised scan set.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"scan data not found: {path}")
    if path.is_file():
        if path.suffix == ".npz":
            return read_compact(path)
        if path.suffix in (".xyz", ".extxyz"):
            return read_scans_extxyz(path)
        raise ValueError(f"{path}: unknown scan file type (expected a compact .npz, a multi-frame .xyz/.extxyz "
                         "or a published-layout folder)")
    if not is_published_layout(path):
        raise ValueError(f"{path}: not a BSCT scan folder (expected <bond>/<id>/partition.npz beneath it)")
    if not cache:
        return _read_folder(path)
    target = cache_dir() / f"scans-{folder_key(path)}.npz"
    if target.exists():
        try:
            scans = read_compact(target)
            scans.source = str(path)
            with contextlib.suppress(OSError):
                os.utime(target)  # recently used: pruned last
            return scans
        except ValueError:
            target.unlink(missing_ok=True)
    scans = _read_folder(path)
    try:
        write_compact(scans, target)
    except OSError as exc:  # an unwritable cache must not stop the run
        scans.problems.append(LoadProblem(str(target), f"could not write scan cache ({exc})"))
    else:
        prune_cache(keep=target)
    return scans


def _read_folder(path: Path) -> ScanSet:
    problems: list[LoadProblem] = []
    scans = list(iter_published(path, problems))
    return ScanSet(scans, source=str(path), problems=problems)
