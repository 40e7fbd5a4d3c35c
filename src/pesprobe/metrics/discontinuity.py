"""Reference-free discontinuity detection along a scan: pure functions, no I/O, no model calls.

A scan is a path R(x) through configuration space sampled at x_0 < … < x_{n-1} (Å, or rad for
angle and torsion scans); the model gives energies Ê_i (eV) and forces F̂_i (eV/Å). Two step
residuals measure how much of a step's change a continuous function cannot explain:

``energy``
    e_i = (Ê_{i+1} − Ê_i) − W_i, with W_i = −½ (F̂_i + F̂_{i+1}) · (R_{i+1} − R_i) the trapezoid
    work of the model's own forces (eV). For a continuous conservative model |e_i| = O(h³); for a
    model whose energy and forces disagree (direct forces) O(h); for an energy step of height J,
    ≈ |J| whatever h.
``forces``
    f_i = ‖ΔF̂_i − ½(ΔF̂_{i−1} + ΔF̂_{i+1})‖ with ΔF̂_i = F̂_{i+1} − F̂_i (Frobenius norm over atoms and
    components, eV/Å; NaN at the two end steps, which have one neighbour): the step's force change
    beyond the trend of its neighbours. O(h³ F''') for a continuous force curve; ≈ ‖J‖ for a force
    jump J.

**Candidates.** A step is a candidate when its residual exceeds the absolute floor of its quantity
(:data:`ENERGY_FLOOR_EV`, :data:`FORCE_FLOOR_EV_A`) and :data:`CANDIDATE_FACTOR` times its *local
background* b_i (:func:`local_background`: the residual a continuous curve would have there, judged
from the steps 2–3 places away on either side, which a jump at step i does not touch), and is the
largest residual within ±1 step. At most ``max_candidates`` are
kept per scan, ranked by residual / background.

**Confirmation.** Each candidate interval [x_i, x_{i+1}] is refined with :data:`REFINE_POINTS`
equally spaced interior frames, positions linearly interpolated (exact for a bond scan, whose
moving fragment translates; a continuous path between the two frames for angle and torsion scans),
and evaluated by the model. On the :data:`REFINE_POINTS` + 1 sub-steps the same residual is
recomputed: energy sub-step residuals e_k directly; for forces the leave-one-out residual of each
sub-step's force change from the straight-line trend of the other sub-steps' changes. A continuous
curve's residual shrinks with the step (e: ≥ 5x for direct forces, ≈ 125x for conservative models;
f: ≈ 125x); a discontinuity's does not. The candidate is *confirmed* when the largest sub-step
residual is at least :data:`CONFIRM_RATIO` of the original. Its ``coordinate`` is the midpoint of
that sub-step (within h / (2 (REFINE_POINTS + 1)) of the true location) and its ``jump`` the
sub-step residual (eV or eV/Å).

**Roughness** (eV/Å) = max_i max(0, f_i − b_i) over the judged steps: the largest single-step
force change that neither a smooth trend nor the neighbouring steps explain. → 0 as h → 0 for a continuous force curve,
≈ ‖J‖ for a force jump J; it needs no reference labels and no extra model calls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

QUANTITIES = ("energy", "forces")
#: Smallest energy step residual that can be a candidate, eV.
ENERGY_FLOOR_EV = 1e-3
#: Smallest force step residual that can be a candidate, eV/Å.
FORCE_FLOOR_EV_A = 2e-2
#: A candidate's residual exceeds this many times its local background.
CANDIDATE_FACTOR = 5.0
#: Interior frames evaluated in each candidate interval.
REFINE_POINTS = 4
#: A candidate is confirmed when its largest refined sub-step residual is at least this share of the original.
CONFIRM_RATIO = 0.5
#: Candidates refined per scan at most (with REFINE_POINTS = 4 and 100 frames: ≤ +20 % model calls).
MAX_CANDIDATES = 5


@dataclass
class Candidate:
    """A step along the scan where the model may be discontinuous.

    Attributes
    ----------
    step : int
        The step between frames ``step`` and ``step + 1`` (positions in the arrays given).
    quantity : str
        ``"energy"`` or ``"forces"``.
    residual : float
        The step residual, eV or eV/Å.
    background : float
        Its local background, same unit.
    """

    step: int
    quantity: str
    residual: float
    background: float

    @property
    def score(self) -> float:
        """Residual over background (the ranking key)."""
        return self.residual / self.background if self.background > 0 else float("inf")


@dataclass
class Discontinuity:
    """A candidate after refinement.

    Attributes
    ----------
    coordinate : float
        Where along the scan, Å (rad for angle/torsion scans): midpoint of the refined sub-step.
    quantity : str
        ``"energy"`` or ``"forces"``.
    jump : float
        Residual of the refined sub-step, eV (energy) or eV/Å (forces); for an unconfirmed
        candidate the original step residual.
    confirmed : bool
        True when refinement confirmed it; False when it could not be refined (``note`` says why).
    step : int
        The original step (frames ``step``, ``step + 1`` of the frames used).
    note : str
        Why a candidate is unconfirmed (empty if confirmed).
    """

    coordinate: float
    quantity: str
    jump: float
    confirmed: bool
    step: int
    note: str = ""

    def to_json(self) -> dict:
        """Plain-dict form for results.json."""
        return asdict(self)


def energy_residuals(positions: np.ndarray, energy: np.ndarray, forces: np.ndarray) -> np.ndarray:
    """e_i = ΔÊ_i − W_i for consecutive frames (see module docstring).

    Parameters
    ----------
    positions : (n, n_atoms, 3) Å
    energy : (n,) eV
    forces : (n, n_atoms, 3) eV/Å

    Returns
    -------
    ndarray (n − 1,), eV
    """
    work = -np.sum(0.5 * (forces[1:] + forces[:-1]) * np.diff(positions, axis=0), axis=(1, 2))
    return np.diff(energy) - work


def force_residuals(forces: np.ndarray) -> np.ndarray:
    """f_i = ‖ΔF̂_i − ½(ΔF̂_{i−1} + ΔF̂_{i+1})‖ (NaN at the two end steps; NaN under three steps).

    Parameters
    ----------
    forces : (n, n_atoms, 3) eV/Å

    Returns
    -------
    ndarray (n − 1,), eV/Å
    """
    d = np.diff(forces, axis=0).reshape(len(forces) - 1, -1)
    if len(d) < 3:
        return np.full(len(d), np.nan)
    trend = np.empty_like(d)
    trend[1:-1] = 0.5 * (d[:-2] + d[2:])
    trend[0] = trend[-1] = np.nan  # an end step has one neighbour: not judged
    return np.linalg.norm(d - trend, axis=1)


def local_background(residuals: np.ndarray) -> np.ndarray:
    """What a continuous curve's residual would be at each step, judged from the steps 2 and 3
    places away on either side (a jump at step i raises steps i ± 1 but not i ± 2, i ± 3), same unit.

    b_i = max(median of those residuals, exp of the straight line through their logarithms at i):
    the log-linear part follows residuals that grow geometrically towards a repulsive wall, the
    median guards against a noisy line. A step without a finite residual among those neighbours
    on *both* sides (the first and last two steps of a scan) gets b_i = inf: it is not judged.
    """
    r = np.abs(np.asarray(residuals, dtype=float))
    n = len(r)
    logs = np.log(np.maximum(r, 1e-300))
    out = np.full(n, np.inf)
    for i in range(n):
        near = np.array([j for j in (i - 3, i - 2, i + 2, i + 3) if 0 <= j < n and np.isfinite(r[j])])
        if not (near < i).any() or not (near > i).any():
            continue
        slope, intercept = np.polyfit(near, logs[near], 1)
        out[i] = max(float(np.median(r[near])), float(np.exp(min(slope * i + intercept, 700.0))))
    return out


def find_candidates(residuals: np.ndarray, quantity: str, floor: float | None = None,
                    factor: float = CANDIDATE_FACTOR) -> list[Candidate]:
    """Candidate steps of one quantity (unranked, unlimited).

    Parameters
    ----------
    residuals : (n_steps,) eV or eV/Å
        :func:`energy_residuals` or :func:`force_residuals`; non-finite entries are never candidates.
    quantity : str
        ``"energy"`` or ``"forces"`` (selects the default floor).
    floor : float, optional
        Absolute floor (defaults: :data:`ENERGY_FLOOR_EV`, :data:`FORCE_FLOOR_EV_A`).
    factor : float
        Required ratio to the local background.
    """
    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r}; expected one of {QUANTITIES}")
    floor = (ENERGY_FLOOR_EV if quantity == "energy" else FORCE_FLOOR_EV_A) if floor is None else floor
    r = np.abs(np.asarray(residuals, dtype=float))
    background = local_background(r)
    r = np.where(np.isfinite(r), r, 0.0)
    out = []
    for i in range(len(r)):
        lo, hi = max(0, i - 1), min(len(r), i + 2)
        if r[i] > floor and r[i] > factor * background[i] and r[i] == r[lo:hi].max():
            out.append(Candidate(step=i, quantity=quantity, residual=float(r[i]), background=float(background[i])))
    return out


def select_candidates(candidates: list[Candidate], max_candidates: int = MAX_CANDIDATES) -> list[Candidate]:
    """The ``max_candidates`` highest-scoring candidates, in step order; an energy and a force
    candidate at the same step share one refinement and both are kept."""
    ranked = sorted(candidates, key=lambda c: -c.score)
    steps: list[int] = []
    for c in ranked:
        if c.step not in steps and len(steps) < max_candidates:
            steps.append(c.step)
    return sorted((c for c in candidates if c.step in steps), key=lambda c: (c.step, c.quantity))


def scan_candidates(positions: np.ndarray, energy: np.ndarray, forces: np.ndarray,
                    max_candidates: int = MAX_CANDIDATES) -> list[Candidate]:
    """All candidates of one scan's frames (energy channel only when every energy is finite).

    Parameters
    ----------
    positions : (n, n_atoms, 3) Å, frames in scan order
    energy : (n,) eV (NaN: a model without energies)
    forces : (n, n_atoms, 3) eV/Å
    """
    if len(positions) < 3:
        return []
    found = find_candidates(force_residuals(forces), "forces")
    if np.isfinite(energy).all():
        found += find_candidates(energy_residuals(positions, energy, forces), "energy")
    return select_candidates(found, max_candidates)


def refine_positions(positions: np.ndarray, coordinate: np.ndarray, step: int,
                     points: int = REFINE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """The interior frames of the interval of ``step``: positions linearly interpolated.

    Returns
    -------
    positions : (points, n_atoms, 3) Å
    coordinate : (points,) Å or rad
    """
    t = np.arange(1, points + 1) / (points + 1)
    p0, p1 = positions[step], positions[step + 1]
    x0, x1 = coordinate[step], coordinate[step + 1]
    return p0[None] + t[:, None, None] * (p1 - p0)[None], x0 + t * (x1 - x0)


def _leave_one_out(changes: np.ndarray) -> np.ndarray:
    """‖Δ_k − line fitted to the other sub-steps' Δ at k‖ for each sub-step k; (m, d) → (m,)."""
    m = len(changes)
    k = np.arange(m, dtype=float)
    out = np.zeros(m)
    for j in range(m):
        others = np.delete(np.arange(m), j)
        design = np.stack([np.ones(m - 1), k[others]], axis=1)
        coef, *_ = np.linalg.lstsq(design, changes[others], rcond=None)
        out[j] = np.linalg.norm(changes[j] - (coef[0] + coef[1] * k[j]))
    return out


def confirm(candidate: Candidate, positions: np.ndarray, coordinate: np.ndarray, energy: np.ndarray,
            forces: np.ndarray, ratio: float = CONFIRM_RATIO) -> Discontinuity | None:
    """Judge one candidate from its refined interval.

    Parameters
    ----------
    candidate : Candidate
    positions : (m + 1, n_atoms, 3) Å
        The interval's frames in order: the two original frames with the refined ones between them.
    coordinate : (m + 1,) Å or rad
    energy : (m + 1,) eV; forces : (m + 1, n_atoms, 3) eV/Å
        The model's values on those frames (finite).
    ratio : float
        Confirmation threshold (:data:`CONFIRM_RATIO`).

    Returns
    -------
    Discontinuity or None
        The confirmed discontinuity, or None when the residual shrank (a continuous curve).
    """
    if candidate.quantity == "energy":
        sub = np.abs(energy_residuals(positions, energy, forces))
    else:
        sub = _leave_one_out(np.diff(forces, axis=0).reshape(len(forces) - 1, -1))
    k = int(np.argmax(sub))
    if not sub[k] >= ratio * candidate.residual:
        return None
    return Discontinuity(coordinate=float(0.5 * (coordinate[k] + coordinate[k + 1])), quantity=candidate.quantity,
                         jump=float(sub[k]), confirmed=True, step=candidate.step)


def unconfirmed(candidate: Candidate, coordinate: np.ndarray, note: str) -> Discontinuity:
    """A candidate that could not be refined (the model failed on a refined frame), reported as such.

    ``coordinate`` are the coordinates of the frames the candidate's ``step`` indexes.
    """
    x = float(0.5 * (coordinate[candidate.step] + coordinate[candidate.step + 1]))
    return Discontinuity(coordinate=x, quantity=candidate.quantity, jump=candidate.residual, confirmed=False,
                         step=candidate.step, note=note)


def roughness(forces: np.ndarray) -> float:
    """max_i max(0, f_i − b_i) over the judged steps, eV/Å (NaN under seven frames or for non-finite forces).

    Parameters
    ----------
    forces : (n, n_atoms, 3) eV/Å, frames in scan order
    """
    if len(forces) < 7 or not np.isfinite(forces).all():
        return float("nan")
    f = force_residuals(forces)
    excess = f - local_background(f)
    excess = excess[np.isfinite(excess)]
    return float(np.max(np.maximum(0.0, excess))) if len(excess) else float("nan")


@dataclass
class RefinementPlan:
    """Which extra frames the detector needs for one scan.

    Attributes
    ----------
    frames : ndarray (n,), int
        Scan frames the detector looked at (those where the model gave finite forces), in order;
        candidate ``step`` s lies between ``frames[s]`` and ``frames[s + 1]``.
    candidates : list of Candidate
        The selected candidates.
    steps : list of int
        The distinct candidate steps, in order; step ``steps[k]`` owns rows
        ``k * REFINE_POINTS … (k + 1) * REFINE_POINTS − 1`` of ``positions``.
    positions : ndarray (len(steps) * REFINE_POINTS, n_atoms, 3), Å
    coordinate : ndarray (len(steps) * REFINE_POINTS,), Å or rad
    """

    frames: np.ndarray
    candidates: list[Candidate]
    steps: list[int]
    positions: np.ndarray
    coordinate: np.ndarray

    @property
    def n_frames(self) -> int:
        """Extra model calls (frames) the plan asks for."""
        return int(len(self.coordinate))


def plan_refinement(positions: np.ndarray, coordinate: np.ndarray, energy: np.ndarray, forces: np.ndarray,
                    ok: np.ndarray, max_candidates: int = MAX_CANDIDATES) -> RefinementPlan:
    """Find the candidates of one scan and the refined frames that would confirm them.

    Parameters
    ----------
    positions : (n_frames, n_atoms, 3) Å; coordinate : (n_frames,) Å or rad
    energy : (n_frames,) eV; forces : (n_frames, n_atoms, 3) eV/Å
        The model's values on the scan frames.
    ok : (n_frames,) bool
        Frames on which the model succeeded (the others are skipped).
    max_candidates : int
        At most this many candidate steps are refined.
    """
    frames = np.flatnonzero(ok)
    n_atoms = positions.shape[1]
    candidates = scan_candidates(positions[frames], energy[frames], forces[frames], max_candidates)
    steps = sorted({c.step for c in candidates})
    pos, x = [np.zeros((0, n_atoms, 3))], [np.zeros(0)]
    for s in steps:
        p, c = refine_positions(positions[frames], coordinate[frames], s)
        pos.append(p)
        x.append(c)
    return RefinementPlan(frames=frames, candidates=candidates, steps=steps, positions=np.concatenate(pos),
                          coordinate=np.concatenate(x))


def judge(plan: RefinementPlan, coordinate: np.ndarray, energy: np.ndarray, forces: np.ndarray,
          positions: np.ndarray, refined_energy: np.ndarray | None, refined_forces: np.ndarray | None,
          refined_failed: np.ndarray | None) -> list[Discontinuity]:
    """Confirm or drop each candidate of ``plan`` from the model's values on the refined frames.

    Parameters
    ----------
    plan : RefinementPlan
    coordinate, energy, forces, positions
        The scan's coordinate (n_frames,), model energies (n_frames,) eV, forces
        (n_frames, n_atoms, 3) eV/Å and positions (n_frames, n_atoms, 3) Å.
    refined_energy, refined_forces, refined_failed
        The model on ``plan.positions``: (m,) eV, (m, n_atoms, 3) eV/Å, (m,) bool; None when the
        refined frames were not evaluated (every candidate is then unconfirmed).

    Returns
    -------
    list of Discontinuity
        Confirmed discontinuities and the unconfirmed candidates (model failed on a refined frame,
        or refinement not run), in step order; candidates whose residual shrank are left out.
    """
    f = plan.frames
    x, e, fr, p = coordinate[f], energy[f], forces[f], positions[f]
    out: list[Discontinuity] = []
    for c in plan.candidates:
        if refined_failed is None or refined_energy is None or refined_forces is None:
            out.append(unconfirmed(c, x, "refined frames not evaluated"))
            continue
        k = plan.steps.index(c.step)
        rows = slice(k * REFINE_POINTS, (k + 1) * REFINE_POINTS)
        if refined_failed[rows].any():
            out.append(unconfirmed(c, x, "the model failed on a refined frame"))
            continue
        s = c.step
        sub_e = np.concatenate([[e[s]], refined_energy[rows], [e[s + 1]]])
        if c.quantity == "energy" and not np.isfinite(sub_e).all():
            out.append(unconfirmed(c, x, "the model gave no energy on a refined frame"))
            continue
        sub_p = np.concatenate([p[s:s + 1], plan.positions[rows], p[s + 1:s + 2]])
        sub_x = np.concatenate([[x[s]], plan.coordinate[rows], [x[s + 1]]])
        sub_f = np.concatenate([fr[s:s + 1], refined_forces[rows], fr[s + 1:s + 2]])
        found = confirm(c, sub_p, sub_x, sub_e, sub_f)
        if found is not None:
            out.append(found)
    return out
