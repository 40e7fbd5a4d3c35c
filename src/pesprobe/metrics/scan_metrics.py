"""Everything BSCT says about one scan: :class:`ScanMetrics` and :func:`scan_metrics`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from pesprobe.data.scan import Scan
from pesprobe.metrics.diagnostics import diagnostics
from pesprobe.metrics.discontinuity import RefinementPlan, judge, plan_refinement, roughness
from pesprobe.metrics.fsd import RANGES, Curves, deviation_curves, integrated_potential, published_metrics, smoothness
from pesprobe.potentials.base import Predictions

#: The nine published metric names, spelled as the reference tool's results.json spells them.
PUBLISHED = tuple(f"{r}_{m}" for r in ("full", "compress", "stretch")
                  for m in ("smoothness", "energy_mae", "forces_mae"))
DIAGNOSTICS = ("aligned_energy_mae", "spurious_minima", "energy_jump_ratio", "force_jump_ratio",
               "energy_force_consistency")
#: FSD of a zero-force model on the same frames (1/Å or 1/rad): a property of the reference alone.
NULL_CEILING = tuple(f"null_{r}_smoothness" for r in RANGES)
#: 1 − FSD / FSD_null per range: 1 as smooth as the reference, 0 no better than zero forces, < 0 worse.
SKILL = tuple(f"{r}_smoothness_skill" for r in RANGES)
#: Reference-free figures (:mod:`pesprobe.metrics.discontinuity`).
DETECTOR = ("roughness", "n_discontinuities", "n_unconfirmed")
#: Everything beyond the published nine, in output order.
VERDICT = NULL_CEILING + SKILL + DETECTOR
#: Every numeric per-scan metric.
ALL_METRICS = PUBLISHED + DIAGNOSTICS + VERDICT
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
        Model wall time for the scan (refined frames included), s.
    discontinuities : list of dict
        Confirmed discontinuities and unconfirmed candidates
        (:class:`~pesprobe.metrics.discontinuity.Discontinuity` as dicts: ``coordinate`` Å or rad,
        ``quantity``, ``jump`` eV or eV/Å, ``confirmed``, ``step``, ``note``).
    labelled : bool
        False for a scan without reference labels: only the reference-free figures are computed.
    n_refined : int
        Extra frames the detector evaluated.
    kind : str
        The scan kind (``"bond"``: FSD in 1/Å; ``"angle"``, ``"torsion"``: 1/rad).
    unseen_elements : list of str
        Elements of the scan that the potential never saw in training (empty when all were seen or
        the potential does not say; filled by the runner, see :mod:`pesprobe.potentials.elements`).
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
    discontinuities: list[dict] = field(default_factory=list)
    labelled: bool = True
    n_refined: int = 0
    kind: str = "bond"
    unseen_elements: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """Flat dict: metrics plus bookkeeping (the discontinuity list included)."""
        out = dict(self.values)
        out.update(equilibrium_index=self.equilibrium_index, n_frames=self.n_frames, n_failed=self.n_failed,
                   flagged=self.flagged, seconds=self.seconds, group=self.group, kind=self.kind, labelled=self.labelled,
                   n_refined=self.n_refined, discontinuities=list(self.discontinuities),
                   unseen_elements=list(self.unseen_elements))
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


def refinement_plan(scan: Scan, pred: Predictions) -> RefinementPlan:
    """The detector's candidates on ``scan`` and the extra frames that would confirm them."""
    return plan_refinement(scan.positions, scan.coordinate, pred.energy, pred.forces, ~pred.failed)


def null_ceiling(scan: Scan, pred: Predictions) -> dict[str, float]:
    """:data:`NULL_CEILING`: the FSD a zero-force model gets on the frames used for ``pred``."""
    curves = deviation_curves(scan.coordinate, scan.ref_energy, scan.ref_forces, np.zeros_like(scan.ref_forces),
                              usable=~pred.failed)
    return {f"null_{r}_smoothness": smoothness(curves.log_ratio[curves.range_slice(r)],
                                               curves.coordinate[curves.range_slice(r)]) for r in RANGES}


def skill(values: dict[str, float]) -> dict[str, float]:
    """:data:`SKILL` from the published FSD and the null ceiling (NaN where the ceiling is 0 or NaN)."""
    out = {}
    for r in RANGES:
        fsd, null = values[f"{r}_smoothness"], values[f"null_{r}_smoothness"]
        out[f"{r}_smoothness_skill"] = float(1.0 - fsd / null) if np.isfinite(null) and null > 0 else float("nan")
    return out


def detector_figures(scan: Scan, pred: Predictions, refined: Predictions | None) -> tuple[dict[str, float], list[dict]]:
    """:data:`DETECTOR` values and the discontinuity list of one scan (reference-free).

    ``refined`` is the model on :func:`refinement_plan`'s frames (None: not evaluated, every
    candidate is then reported unconfirmed).
    """
    plan = refinement_plan(scan, pred)
    if refined is not None and refined.forces.shape != plan.positions.shape:
        refined = None  # stale refinement (another plan): not used
    found = judge(plan, scan.coordinate, pred.energy, pred.forces, scan.positions,
                  None if refined is None else refined.energy, None if refined is None else refined.forces,
                  None if refined is None else refined.failed)
    ok = ~pred.failed
    values = {"roughness": roughness(pred.forces[ok]),
              "n_discontinuities": float(sum(d.confirmed for d in found)),
              "n_unconfirmed": float(sum(not d.confirmed for d in found))}
    return values, [d.to_json() for d in found]


def scan_metrics(scan: Scan, pred: Predictions, refined: Predictions | None = None) -> ScanMetrics:
    """All metrics of one scan: the nine published numbers, diagnostics, null ceiling, skill and
    the reference-free detector figures.

    Frames with a NaN reference energy are dropped; frames on which the model failed are left
    out of every metric and the scan is flagged. A scan with fewer than :data:`MIN_FRAMES` usable
    frames gets NaN reference-based metrics and is flagged. A scan without any reference label
    (``labelled`` False) gets only the reference-free figures. ``refined`` holds the model's
    values on the detector's refined frames (see :func:`refinement_plan`).
    """
    usable = scan.valid & ~pred.failed
    group = scan.group
    valid_idx = np.flatnonzero(scan.valid)
    source_index = np.asarray(scan.meta.get("frame_index", np.arange(scan.n_frames)), dtype=np.int64)
    if source_index.shape != (scan.n_frames,):
        source_index = np.arange(scan.n_frames)
    eq_index = int(source_index[valid_idx[np.argmin(scan.ref_energy[valid_idx])]]) if len(valid_idx) else -1
    errors = {int(source_index[i]): text for i, text in pred.errors.items()}
    labelled = bool(len(valid_idx))
    detector, found = (detector_figures(scan, pred, refined) if (~pred.failed).sum() >= MIN_FRAMES
                       else ({name: float("nan") for name in DETECTOR}, []))
    base = dict(id=scan.id, group=group, equilibrium_index=eq_index, n_frames=scan.n_frames,
                n_failed=pred.n_failed, seconds=pred.seconds + (refined.seconds if refined is not None else 0.0),
                discontinuities=found, labelled=labelled, n_refined=0 if refined is None else len(refined.failed),
                kind=scan.kind)
    if not labelled or usable.sum() < MIN_FRAMES:
        nan = {name: float("nan") for name in PUBLISHED + DIAGNOSTICS + NULL_CEILING + SKILL}
        errors = dict(errors)
        if labelled:
            errors.setdefault(-1, f"only {int(usable.sum())} usable frames (need {MIN_FRAMES})")
        flagged = labelled or pred.n_failed > 0
        return ScanMetrics(values={**nan, **detector}, flagged=flagged, errors=errors, **base)
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
    values.update(null_ceiling(scan, pred))
    values.update(skill(values))
    if scan.kind == "torsion":  # a closed loop: no compression or stretch side
        values.update({k: float("nan") for k in values if k.startswith(("compress_", "stretch_", "null_compress_",
                                                                          "null_stretch_"))})
    values.update(detector)
    return ScanMetrics(values=values, flagged=pred.n_failed > 0 or bool(scan.data_problems), errors=errors, **base)
