"""Everything BSCT says about one scan: :class:`ScanMetrics` and :func:`scan_metrics`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from pesprobe.data.scan import Scan
from pesprobe.metrics.diagnostics import diagnostics
from pesprobe.metrics.fsd import Curves, deviation_curves, integrated_potential, published_metrics
from pesprobe.potentials.base import Predictions

#: The nine published metric names, spelled as the reference tool's results.json spells them.
PUBLISHED = tuple(f"{r}_{m}" for r in ("full", "compress", "stretch")
                  for m in ("smoothness", "energy_mae", "forces_mae"))
DIAGNOSTICS = ("aligned_energy_mae", "spurious_minima", "energy_jump_ratio", "force_jump_ratio",
               "energy_force_consistency")
#: A scan needs at least this many usable frames to be scored.
MIN_FRAMES = 3


@dataclass
class ScanMetrics:
    """Metrics of one scan under one potential.

    Attributes
    ----------
    id, group : str
        Scan id and its group (bond type).
    values : dict
        The nine published metrics (:data:`PUBLISHED`) and the diagnostics (:data:`DIAGNOSTICS`).
    equilibrium_index : int
        Frame index of the reference minimum q, numbered as in the source (``atoms_<i>.xyz``:
        ``scan.meta["frame_index"]``), so a frame skipped at load time does not shift it.
    n_frames, n_failed : int
        Frames in the scan, and frames on which the model failed.
    flagged : bool
        True if any frame failed (metrics then use the valid frames only) or the scan could not be scored.
    errors : dict[int, str]
        Error text of each failed frame, by source frame index (as ``equilibrium_index``); key −1
        for a scan-level problem.
    seconds : float
        Model wall time for the scan, s.
    """

    id: str
    group: str
    values: dict[str, float]
    equilibrium_index: int
    n_frames: int
    n_failed: int
    flagged: bool
    errors: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        """Flat dict: metrics plus bookkeeping (errors as a list of ``{frame, error}``)."""
        out = dict(self.values)
        out.update(equilibrium_index=self.equilibrium_index, n_frames=self.n_frames, n_failed=self.n_failed,
                   flagged=self.flagged, seconds=self.seconds, group=self.group)
        return out

    def to_json(self) -> dict:
        """JSON-ready form (round-trips through :meth:`from_json`)."""
        out = asdict(self)
        out["errors"] = {str(k): v for k, v in self.errors.items()}
        return out

    @classmethod
    def from_json(cls, data: dict) -> ScanMetrics:
        """Inverse of :meth:`to_json`."""
        data = dict(data)
        data["errors"] = {int(k): v for k, v in data.get("errors", {}).items()}
        data["values"] = {k: (float("nan") if v is None else v) for k, v in data["values"].items()}
        return cls(**data)


@dataclass
class ScanCurves:
    """Per-frame curves behind the metrics, for plots (frames used only).

    Attributes
    ----------
    coordinate : (n,) Å or rad; frames : (n,) indices into the scan; eq : position of q
    ref_energy, model_energy, integrated : (n,) eV, relative to the equilibrium frame
    model_dev, ref_dev : (n,) (eV/Å)²; log_ratio : (n,)
    """

    coordinate: np.ndarray
    frames: np.ndarray
    eq: int
    ref_energy: np.ndarray
    model_energy: np.ndarray
    integrated: np.ndarray
    model_dev: np.ndarray
    ref_dev: np.ndarray
    log_ratio: np.ndarray


def scan_curves(scan: Scan, pred: Predictions) -> ScanCurves:
    """Compute the curves of one scan (see :mod:`pesprobe.metrics.fsd`)."""
    return _curves(scan, pred)[1]


def _curves(scan: Scan, pred: Predictions) -> tuple[Curves, ScanCurves]:
    if pred.forces.shape != scan.ref_forces.shape:
        raise ValueError(f"scan {scan.id}: predictions have forces of shape {pred.forces.shape}, "
                         f"expected {scan.ref_forces.shape}")
    curves = deviation_curves(scan.coordinate, scan.ref_energy, scan.ref_forces, pred.forces, usable=~pred.failed)
    frames = curves.frames
    ok = ~pred.failed[frames]
    integrated = np.full(len(frames), np.nan)
    if ok[curves.eq]:
        # integrate over the successful frames only, then zero at q
        sub = np.flatnonzero(ok)
        integrated[sub] = integrated_potential(scan.positions[frames[sub]], pred.forces[frames[sub]],
                                               int(np.searchsorted(sub, curves.eq)))
    e_ref = scan.ref_energy[frames] - scan.ref_energy[frames[curves.eq]]
    e_model = pred.energy[frames] - pred.energy[frames[curves.eq]]
    return curves, ScanCurves(coordinate=curves.coordinate, frames=frames, eq=curves.eq, ref_energy=e_ref,
                              model_energy=e_model, integrated=integrated, model_dev=curves.model_dev,
                              ref_dev=curves.ref_dev, log_ratio=curves.log_ratio)


def scan_metrics(scan: Scan, pred: Predictions) -> ScanMetrics:
    """All metrics of one scan: the nine published numbers and the diagnostics.

    Frames with a NaN reference energy are dropped; frames on which the model failed are left
    out of every metric and the scan is flagged. A scan with fewer than :data:`MIN_FRAMES` usable
    frames gets NaN metrics and is flagged.
    """
    usable = scan.valid & ~pred.failed
    group = scan.group
    valid_idx = np.flatnonzero(scan.valid)
    source_index = np.asarray(scan.meta.get("frame_index", np.arange(scan.n_frames)), dtype=np.int64)
    if source_index.shape != (scan.n_frames,):
        source_index = np.arange(scan.n_frames)
    eq_index = int(source_index[valid_idx[np.argmin(scan.ref_energy[valid_idx])]]) if len(valid_idx) else -1
    errors = {int(source_index[i]): text for i, text in pred.errors.items()}
    base = dict(id=scan.id, group=group, equilibrium_index=eq_index, n_frames=scan.n_frames,
                n_failed=pred.n_failed, errors=errors, seconds=pred.seconds)
    if usable.sum() < MIN_FRAMES:
        nan = {name: float("nan") for name in PUBLISHED + DIAGNOSTICS}
        errors = dict(errors)
        errors.setdefault(-1, f"only {int(usable.sum())} usable frames (need {MIN_FRAMES})")
        return ScanMetrics(values=nan, flagged=True, **{**base, "errors": errors})
    curves, sc = _curves(scan, pred)
    values = published_metrics(curves, scan.ref_energy, scan.ref_forces, pred.energy, pred.forces)
    ok = np.isfinite(sc.integrated)
    if ok[sc.eq]:
        f = sc.frames[ok]
        eq_ok = int(np.searchsorted(np.flatnonzero(ok), sc.eq))
        values.update(diagnostics(scan.ref_energy[f], scan.ref_forces[f], pred.energy[f], pred.forces[f],
                                  sc.integrated[ok], eq_ok))
    else:  # the model failed at the equilibrium frame: nothing to align to
        values.update({name: float("nan") for name in DIAGNOSTICS})
    return ScanMetrics(values=values, flagged=pred.n_failed > 0 or bool(scan.data_problems), **base)
