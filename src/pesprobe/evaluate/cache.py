"""Per-scan cache of model predictions, keyed by (potential identity, scan geometry).

An interrupted run resumes where it stopped, and a different potential never reuses another's
results: the file name is a hash of both keys. Files are written atomically.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from pesprobe.data.atomic import atomic_write
from pesprobe.data.scan import Scan
from pesprobe.potentials.base import Predictions


class PredictionCache:
    """Cached :class:`Predictions` under ``root/<identity hash>/<scan key>.npz``.

    Parameters
    ----------
    root : Path
        Cache folder (usually ``<out>/cache``).
    identity : str
        The potential's :meth:`~pesprobe.potentials.base.Potential.identity`.
    """

    def __init__(self, root: str | Path, identity: str) -> None:
        digest = hashlib.sha256(identity.encode()).hexdigest()[:20]
        self.folder = Path(root) / digest
        self.identity = identity

    def _path(self, scan: Scan, refined: np.ndarray | None = None) -> Path:
        if refined is None:
            return self.folder / f"{scan.content_hash()[:32]}.npz"
        digest = hashlib.sha256(np.ascontiguousarray(refined, dtype=np.float64).tobytes()).hexdigest()[:16]
        return self.folder / f"{scan.content_hash()[:32]}.refined-{digest}.npz"

    def get_refined(self, scan: Scan, positions: np.ndarray, timeout: float | None = None) -> Predictions | None:
        """Cached predictions on the detector's refined frames ``positions`` (m, n_atoms, 3) of ``scan``."""
        return self._read(self._path(scan, positions), positions.shape, timeout)

    def put_refined(self, scan: Scan, positions: np.ndarray, pred: Predictions, fatal: str = "") -> None:
        """Store the predictions on the refined frames ``positions`` of ``scan`` atomically."""
        self._write(self._path(scan, positions), pred, fatal)

    def get(self, scan: Scan, timeout: float | None = None) -> Predictions | None:
        """Cached predictions for ``scan``, or None (also for an unreadable or mismatched file, and for
        a scan on which every frame failed: that is usually a setup error, fixed by the next run).

        A scan that failed fatally (stored with ``fatal``) is returned even though every frame
        failed, so a resumed run goes past a calculator that crashes on it: ``"crashed"`` always,
        ``"timeout:<seconds>"`` unless this run allows more time (``timeout`` larger, or None).
        """
        return self._read(self._path(scan), scan.ref_forces.shape, timeout)

    def _read(self, path: Path, shape: tuple[int, ...], timeout: float | None = None) -> Predictions | None:
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["identity"]) != self.identity:
                    return None
                errors = {int(k): v for k, v in json.loads(str(data["errors"])).items()}
                pred = Predictions(energy=data["energy"], forces=data["forces"], failed=data["failed"],
                                   errors=errors, seconds=float(data["seconds"]))
                fatal = str(data["fatal"]) if "fatal" in data.files else ""
        except Exception:  # noqa: BLE001 - a corrupt cache entry is recomputed
            return None
        if pred.forces.shape != tuple(shape):
            return None
        if pred.failed.all() and len(pred.failed) and not _still_fatal(fatal, timeout):
            return None
        return pred

    def put(self, scan: Scan, pred: Predictions, fatal: str = "") -> None:
        """Store ``pred`` for ``scan`` atomically; ``fatal``: ``"crashed"`` or ``"timeout:<seconds>"``
        for a scan whose worker died or was killed (see :meth:`get`)."""
        self._write(self._path(scan), pred, fatal)

    def _write(self, path: Path, pred: Predictions, fatal: str = "") -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, {
            "identity": np.array(self.identity), "energy": pred.energy, "forces": pred.forces,
            "failed": pred.failed, "errors": np.array(json.dumps({str(k): v for k, v in pred.errors.items()})),
            "seconds": np.array(pred.seconds), "fatal": np.array(fatal)})


def _still_fatal(fatal: str, timeout: float | None) -> bool:
    """Whether a fatal failure recorded as ``fatal`` holds for a run with ``timeout``."""
    if fatal == "crashed":
        return True
    if fatal.startswith("timeout:"):
        try:
            recorded = float(fatal.split(":", 1)[1])
        except ValueError:
            return False
        return timeout is not None and timeout <= recorded
    return False
