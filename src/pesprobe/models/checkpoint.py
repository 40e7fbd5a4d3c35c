"""Model checkpoints: weights, config, element references, normalisation and the trainer's extras."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from pesprobe.data.atomic import atomic_write
from pesprobe.models.config import ModelConfig
from pesprobe.models.transformer import PESTransformer, build_model

FORMAT = "pesprobe-model"
VERSION = 1
_PLAIN = (str, int, float, bool, type(None), torch.Tensor, torch.Size, torch.dtype, torch.device)


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not a pesprobe model; the message names the file."""


def _check_plain(value: Any, where: str) -> None:
    """Reject objects that ``torch.load(weights_only=True)`` could not read back."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint extra {where}: key {key!r} must be str or int")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"checkpoint extra {where}: {type(value).__name__} cannot be stored safely; use tensors, "
                        "numbers, strings, lists and dicts (convert NumPy arrays with torch.as_tensor)")


def save_checkpoint(path: str | os.PathLike, model: PESTransformer, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (weights, config, element references, normalisation) and ``extra`` atomically.

    Parameters
    ----------
    path : path-like
        Destination file (conventionally ``*.pt``); its folder is created if needed.
    model : PESTransformer
    extra : dict, optional
        Anything else to keep (optimizer state, epoch, metrics): tensors, numbers, strings, lists
        and dicts only, so that loading never has to unpickle arbitrary objects.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    extra = {} if extra is None else extra
    _check_plain(extra, "extra")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write(path, buffer.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> tuple[PESTransformer, dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    model : PESTransformer
        In eval mode, in the dtype of the saved weights, on ``map_location``.
    extra : dict

    Raises
    ------
    CheckpointError
        If the file is missing, truncated, not a torch file, or not a pesprobe model.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"model checkpoint {path} could not be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a pesprobe model checkpoint (no format={FORMAT!r} marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"model checkpoint {path} has version {payload.get('version')!r}; "
                              f"this pesprobe reads version {VERSION}")
    for field in ("config", "state_dict", "extra"):
        if field not in payload:
            raise CheckpointError(f"model checkpoint {path} lacks the {field!r} entry")
    try:
        config = ModelConfig.from_dict(payload["config"])
    except ValueError as exc:
        raise CheckpointError(f"model checkpoint {path}: bad config: {exc}") from exc
    model = build_model(config)
    state = payload["state_dict"]
    dtype = state["element_refs"].dtype if "element_refs" in state else model.element_refs.dtype
    model = model.to(device=map_location, dtype=dtype)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"model checkpoint {path}: weights do not match its config: {exc}") from exc
    model.eval()
    return model, payload["extra"]
