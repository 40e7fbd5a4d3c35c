"""State files of unfinished batched runs, in a format that cannot run code when read.

A checkpoint is one ``.npz`` archive of plain numeric arrays plus a ``meta`` entry holding UTF-8
JSON (format tag, batch key, counters, error texts, failures). It is written with ``np.savez`` and
read with ``np.load(allow_pickle=False)``: a planted pickle (or a ``torch.save`` file) is refused,
never unpickled.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from pesprobe.data.atomic import atomic_write

#: Tag of batched-run checkpoint files (1 was a pickle written by ``torch.save``: no longer read).
CHECKPOINT_FORMAT = "pesprobe-md-batch-2"


def write_checkpoint(path: str | Path, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """Write ``arrays`` and JSON-ready ``meta`` (plus format tag and ``key``) atomically to ``path``.

    Raises
    ------
    ValueError
        If an array has dtype ``object`` (it would need a pickle) or a name is ``meta``.
    """
    if "meta" in arrays:
        raise ValueError("'meta' is reserved for the JSON entry of a checkpoint")
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise ValueError(f"checkpoint array {name!r} has dtype object: only numeric arrays can be stored")
    text = json.dumps({"format": CHECKPOINT_FORMAT, "key": key, **meta})
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays)
    atomic_write(path, buffer.getvalue())


def read_checkpoint(path: str | Path, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and meta of ``path`` if it exists, is a checkpoint of this format and was written
    for ``key``; else None (an unreadable, foreign or pickled file means starting over)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except Exception:  # noqa: BLE001 - ValueError (pickle refused), zip/JSON errors, missing entry ...
        return None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT or meta.get("key") != key:
        return None
    return arrays, meta
