"""Rank correlation with uncertainty: Spearman ρ and Kendall τ-b, bootstrap 95% CIs and a
permutation p-value — vectorised over resamples (NumPy/SciPy), so hundreds of tests take seconds."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np

METHODS = ("spearman", "kendall")
#: Up to this many pairs the permutation p-value enumerates every permutation (exact).
EXACT_MAX_N = 7
#: Fewer pairs than this get no bootstrap interval (NaN): resampling 3 or 4 pairs mostly repeats
#: them, and the percentile interval collapses onto ±1 for any perfectly ordered sample.
MIN_CI_N = 5
#: Resamples per vectorised chunk (bounds memory for Kendall's n(n − 1)/2 pair signs).
CHUNK = 256


@dataclass
class RankCorrelation:
    """One rank correlation between paired samples x and y.

    Attributes
    ----------
    method : str
        ``"spearman"`` or ``"kendall"`` (τ-b, ties handled).
    n : int
        Pairs used (neither member NaN).
    value : float
        ρ or τ (NaN if n < 3 or either sample is constant).
    ci_low, ci_high : float
        Percentile bootstrap 95% confidence interval (pairs resampled with replacement;
        resamples in which either sample is constant are left out); NaN for n < :data:`MIN_CI_N`.
    p_value : float
        Two-sided permutation p-value of "no association": exact (all n! pairings) for
        n ≤ :data:`EXACT_MAX_N`, else Monte Carlo, (1 + #{|stat*| ≥ |stat|}) / (1 + resamples).
    """

    method: str
    n: int
    value: float
    ci_low: float
    ci_high: float
    p_value: float

    def as_dict(self) -> dict:
        """Plain dict."""
        return asdict(self)


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row pair of (B, n) arrays (NaN for a constant row)."""
    from scipy.stats import rankdata  # scipy.stats is slow to import: only when needed

    rx = rankdata(x, axis=1)
    ry = rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=1) / denom


def _kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall τ-b of each row pair of (B, n) arrays (NaN for a constant row)."""
    i, j = np.triu_indices(x.shape[1], k=1)
    sx = np.sign(x[:, i] - x[:, j])
    sy = np.sign(y[:, i] - y[:, j])
    denom = np.sqrt(np.abs(sx).sum(axis=1) * np.abs(sy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sx * sy).sum(axis=1) / denom


_ROWS = {"spearman": _spearman_rows, "kendall": _kendall_rows}


def _rows(method: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    fn = _ROWS[method]
    return np.concatenate([fn(x[i:i + CHUNK], y[i:i + CHUNK]) for i in range(0, len(x), CHUNK)])


def rank_correlation(x: np.ndarray, y: np.ndarray, method: str = "spearman", n_bootstrap: int = 2000,
                     n_permutations: int = 5000, seed: int = 0) -> RankCorrelation:
    """Rank correlation of paired samples with a bootstrap CI and a permutation p-value.

    Parameters
    ----------
    x, y : (n,) arrays
        Paired samples; pairs with a NaN member are dropped, ±inf rank as the most extreme
        values (a run whose energy blew up is the least stable, not a missing one).
    method : str
        ``"spearman"`` or ``"kendall"``.
    n_bootstrap, n_permutations : int
        Resamples for the CI and for the Monte Carlo p-value.
    seed : int
        Seeds both resampling procedures.
    """
    if method not in _ROWS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must pair up, got {x.shape} and {y.shape}")
    from scipy.stats import rankdata

    ok = ~np.isnan(x) & ~np.isnan(y)
    x, y = rankdata(x[ok]), rankdata(y[ok])  # both statistics depend on ranks only
    n = len(x)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return RankCorrelation(method, n, math.nan, math.nan, math.nan, math.nan)
    value = float(_rows(method, x[None], y[None])[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_bootstrap, n))
    boot = _rows(method, x[idx], y[idx])
    boot = boot[np.isfinite(boot)]
    low, high = np.percentile(boot, [2.5, 97.5]) if len(boot) and n >= MIN_CI_N else (math.nan, math.nan)
    if n <= EXACT_MAX_N:
        perms = np.array(list(itertools.permutations(range(n))))
        null = _rows(method, np.broadcast_to(x, perms.shape), y[perms])
        p = float(np.mean(np.abs(null) >= abs(value) - 1e-12))
    else:
        perms = np.argsort(rng.random((n_permutations, n)), axis=1)
        null = _rows(method, np.broadcast_to(x, perms.shape), y[perms])
        p = float((1 + np.sum(np.abs(null) >= abs(value) - 1e-12)) / (1 + n_permutations))
    return RankCorrelation(method, n, value, float(low), float(high), p)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (family-wise error), NaN-aware.

    Parameters
    ----------
    p_values : (m,) array
        Raw p-values; NaN entries (tests that could not be run) stay NaN and do not count in m.

    Returns
    -------
    ndarray, shape (m,)
        ``p_(k) → max_{j ≤ k} min(1, (m − j + 1) p_(j))`` in the sorted order, mapped back.
    """
    p = np.asarray(p_values, dtype=float).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def partial_spearman(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Spearman ρ of x and y given z: the correlation of the ranks of x and y after each is
    regressed on the rank of z (equal to ``(r_xy − r_xz r_yz) / sqrt((1 − r_xz²)(1 − r_yz²))`` with
    Spearman r's).

    Parameters
    ----------
    x, y, z : (n,) arrays
        Paired samples; triples with a NaN are dropped, ±inf rank as extremes.

    Returns
    -------
    float
        NaN with fewer than 4 complete triples or when a residual is constant.
    """
    ex, ey = partial_residuals(x, y, z)
    return residual_correlation(ex, ey)


def partial_residuals(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residuals of rank(x) and rank(y) after a least-squares line on rank(z), ranks taken over the
    complete triples; aligned with the inputs (NaN where a triple is incomplete)."""
    x, y, z = (np.asarray(a, dtype=float).ravel() for a in (x, y, z))
    ok = ~(np.isnan(x) | np.isnan(y) | np.isnan(z))
    return _rank_residual(x, z, ok), _rank_residual(y, z, ok)


def _rank_residual(v: np.ndarray, z: np.ndarray, ok: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    out = np.full(v.shape, np.nan)
    if ok.sum() < 2:
        return out
    rv, rz = rankdata(v[ok]), rankdata(z[ok])
    design = np.column_stack([np.ones(len(rz)), rz])
    out[ok] = rv - design @ np.linalg.lstsq(design, rv, rcond=None)[0]
    return out


def residual_correlation(ex: np.ndarray, ey: np.ndarray) -> float:
    """Pearson correlation of two residual vectors over entries where both are finite (NaN with
    fewer than 4 such entries or a constant residual)."""
    ok = ~(np.isnan(ex) | np.isnan(ey))
    if ok.sum() < 4:
        return math.nan
    a, b = ex[ok] - ex[ok].mean(), ey[ok] - ey[ok].mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / denom) if denom > 1e-12 else math.nan
