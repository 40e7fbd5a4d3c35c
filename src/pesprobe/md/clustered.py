"""The primary question of a ``correlate`` run, answered with statistics that respect its clustering.

Paired BSCT/MD data form a grid: potentials × molecules. Pairs of one potential share its model,
pairs of one molecule share its chemistry, so they are not independent samples. The question is
asked about one **unit**:

``potential`` (default)
    Each potential's predictor and outcome are means over the molecules; n = potentials.
``molecule``
    Means over the potentials; n = molecules.
``pair``
    Every (potential, molecule) pair; n = pairs, but the permutation moves whole potentials.

and answered with Spearman ρ, a **crossed cluster bootstrap** 95 % CI (potentials and molecules
are both resampled with replacement, the unit values recomputed from the resampled grid), and a
**permutation p** that shuffles whole clusters: the predictor's potential labels (unit
``potential`` or ``pair``) or molecule labels (unit ``molecule``) — exact over all label
permutations up to :data:`pesprobe.md.stats.EXACT_MAX_N` labels, else Monte Carlo.
A **partial Spearman ρ given the control** (default: the force MAE on the same scans) says whether
the predictor adds anything beyond it: ranks of predictor and outcome are regressed on the rank of
the control, and the residuals correlated; its p permutes the predictor's residuals the same way
(Kennedy's method), its CI comes from the same bootstrap.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pesprobe.md.stats import EXACT_MAX_N, partial_residuals, residual_correlation

UNITS = ("potential", "molecule", "pair")


@dataclass(frozen=True)
class PrimaryQuestion:
    """What a ``correlate`` run is for.

    Attributes
    ----------
    predictor : str
        Pair column of the cheap figure (default: full FSD, mean over the molecule's scans).
    outcome : str
        Pair column of MD instability (default: fraction of failed trajectories over seeds).
    unit : str
        One of :data:`UNITS`.
    control : str
        Pair column the partial correlation conditions on (default: full force MAE, eV/Å).
    """

    predictor: str = "full_smoothness"
    outcome: str = "failure_fraction"
    unit: str = "potential"
    control: str = "full_forces_mae"

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")

    @property
    def text(self) -> str:
        """The question in words."""
        return (f"Across {self.unit}s, does a larger {self.predictor} go with a larger {self.outcome}, and does "
                f"it tell more than {self.control} does?")


@dataclass
class PrimaryAnswer:
    """Spearman ρ with a cluster bootstrap CI and a cluster permutation p, plus the partial ρ.

    Attributes
    ----------
    question : str
    predictor, outcome, unit, control : str
    n_units, n_potentials, n_molecules : int
        Units with finite predictor and outcome; size of the grid.
    rho, ci_low, ci_high, p_value : float
        Spearman ρ, 95 % crossed cluster bootstrap CI, two-sided cluster permutation p.
    partial_rho, partial_ci_low, partial_ci_high, partial_p_value : float
        The same for ρ(predictor, outcome | control).
    permutation : str
        ``"exact over N label permutations"`` or ``"Monte Carlo, N permutations"``.
    """

    question: str
    predictor: str
    outcome: str
    unit: str
    control: str
    n_units: int
    n_potentials: int
    n_molecules: int
    rho: float
    ci_low: float
    ci_high: float
    p_value: float
    partial_rho: float
    partial_ci_low: float
    partial_ci_high: float
    partial_p_value: float
    permutation: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)

    @property
    def reading(self) -> str:
        """One plain sentence per statistic (significance at 0.05)."""
        def verdict(rho: float, p: float) -> str:
            if math.isnan(rho):
                return "cannot be estimated"
            sign = "positive" if rho > 0 else "negative"
            return f"{sign}, {'significant' if p < 0.05 else 'not significant'} (p = {p:.3g})"

        return (f"{self.predictor} vs {self.outcome} across {self.n_units} {self.unit}s: rho = {self.rho:+.2f} "
                f"[{self.ci_low:+.2f}, {self.ci_high:+.2f}], {verdict(self.rho, self.p_value)}; given "
                f"{self.control}: partial rho = {self.partial_rho:+.2f}, {verdict(self.partial_rho, self.partial_p_value)}")


def grid(pairs: list[dict[str, Any]], column: str) -> tuple[np.ndarray, list[str], list[str]]:
    """``column`` of the pair rows as a (n_potentials, n_molecules) array (NaN where no pair).

    Raises
    ------
    KeyError
        If a row lacks ``column``.
    """
    potentials = list(dict.fromkeys(row["potential"] for row in pairs))
    molecules = list(dict.fromkeys(row["molecule"] for row in pairs))
    out = np.full((len(potentials), len(molecules)), np.nan)
    for row in pairs:
        if column not in row:
            raise KeyError(f"pairs have no column {column!r}; known: {', '.join(sorted(row))}")
        out[potentials.index(row["potential"]), molecules.index(row["molecule"])] = float(row[column])
    return out, potentials, molecules


def unit_values(values: np.ndarray, unit: str) -> np.ndarray:
    """Per-unit values of a (potentials, molecules) grid: NaN-aware means over molecules (``potential``)
    or potentials (``molecule``), or the flattened grid (``pair``)."""
    if unit == "pair":
        return values.ravel()
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN unit is NaN
        return np.nanmean(values, axis=1 if unit == "potential" else 0)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import rankdata

    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 3:
        return math.nan
    rx, ry = rankdata(x[ok]), rankdata(y[ok])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry / denom) if denom > 1e-12 else math.nan


def _permuted(v: np.ndarray, perm: np.ndarray, unit: str, shape: tuple[int, int]) -> np.ndarray:
    """Unit values ``v`` with the cluster labels permuted (potentials for pairs)."""
    if unit == "pair":
        return v.reshape(shape)[perm].ravel()
    return v[perm]


def _percentile_ci(values: list[float]) -> tuple[float, float]:
    finite = np.array([v for v in values if np.isfinite(v)])
    if len(finite) < 10:
        return math.nan, math.nan
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def answer(pairs: list[dict[str, Any]], question: PrimaryQuestion = PrimaryQuestion(), n_bootstrap: int = 2000,
           n_permutations: int = 5000, seed: int = 0) -> PrimaryAnswer:
    """Answer ``question`` on the pair rows of a ``correlate`` run (see the module doc).

    Parameters
    ----------
    pairs : list of dict
        Rows with ``potential``, ``molecule`` and the question's three columns.
    question : PrimaryQuestion
    n_bootstrap, n_permutations : int
        Bootstrap resamples; Monte Carlo permutations (used above :data:`EXACT_MAX_N` labels).
    seed : int

    Returns
    -------
    PrimaryAnswer
    """
    q = question
    X, potentials, molecules = grid(pairs, q.predictor)
    Y, Z = grid(pairs, q.outcome)[0], grid(pairs, q.control)[0]
    shape = X.shape
    x, y, z = (unit_values(a, q.unit) for a in (X, Y, Z))
    rho = _spearman(x, y)
    ex, ey = partial_residuals(x, y, z)
    partial = residual_correlation(ex, ey)
    rng = np.random.default_rng(seed)
    boot_rho, boot_partial = [], []
    for _ in range(n_bootstrap):
        pi, mi = rng.integers(0, shape[0], shape[0]), rng.integers(0, shape[1], shape[1])
        xb, yb, zb = (unit_values(a[pi][:, mi], q.unit) for a in (X, Y, Z))
        boot_rho.append(_spearman(xb, yb))
        boot_partial.append(residual_correlation(*partial_residuals(xb, yb, zb)))
    n_labels = shape[1] if q.unit == "molecule" else shape[0]
    if n_labels <= EXACT_MAX_N:
        perms = [np.array(p) for p in itertools.permutations(range(n_labels))]
        how = f"exact over {len(perms)} label permutations"
    else:
        perms = [rng.permutation(n_labels) for _ in range(n_permutations)]
        how = f"Monte Carlo, {n_permutations} permutations"
    null_rho = np.array([_spearman(_permuted(x, p, q.unit, shape), y) for p in perms])
    null_partial = np.array([residual_correlation(_permuted(ex, p, q.unit, shape), ey) for p in perms])
    exact = n_labels <= EXACT_MAX_N
    p_rho, p_partial = (_p_value(null, obs, exact) for null, obs in ((null_rho, rho), (null_partial, partial)))
    ci = _percentile_ci(boot_rho) if n_labels >= 3 else (math.nan, math.nan)
    partial_ci = _percentile_ci(boot_partial) if n_labels >= 4 else (math.nan, math.nan)
    return PrimaryAnswer(question=q.text, predictor=q.predictor, outcome=q.outcome, unit=q.unit, control=q.control,
                         n_units=int((~(np.isnan(x) | np.isnan(y))).sum()), n_potentials=len(potentials),
                         n_molecules=len(molecules), rho=rho, ci_low=ci[0], ci_high=ci[1], p_value=p_rho,
                         partial_rho=partial, partial_ci_low=partial_ci[0], partial_ci_high=partial_ci[1],
                         partial_p_value=p_partial, permutation=how)


def _p_value(null: np.ndarray, observed: float, exact: bool) -> float:
    """Two-sided permutation p: the share of label permutations at least as extreme (exact, the
    identity included), or (1 + count) / (1 + permutations) (Monte Carlo)."""
    if math.isnan(observed):
        return math.nan
    null = null[np.isfinite(null)]
    hits = np.sum(np.abs(null) >= abs(observed) - 1e-12)
    if exact:
        return float(hits / len(null)) if len(null) else math.nan
    return float((1 + hits) / (1 + len(null)))
