"""Rank correlation with uncertainty: Spearman ρ and Kendall τ, bootstrap 95% CIs, permutation p."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

METHODS = ("spearman", "kendall")


@dataclass
class RankCorrelation:
    """One rank correlation between paired samples x and y.

    Attributes
    ----------
    method : str
        ``"spearman"`` or ``"kendall"``.
    n : int
        Pairs used (both finite).
    value : float
        ρ or τ (NaN if n < 3 or either sample is constant).
    ci_low, ci_high : float
        Percentile bootstrap 95% confidence interval (pairs resampled with replacement; resamples
        with a constant sample are skipped).
    p_value : float
        Two-sided permutation p-value (exact for n ≤ 8, else Monte Carlo).
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


def _statistic(method: str):
    if method == "spearman":
        return lambda x, y: stats.spearmanr(x, y).statistic
    if method == "kendall":
        return lambda x, y: stats.kendalltau(x, y).statistic
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def rank_correlation(x: np.ndarray, y: np.ndarray, method: str = "spearman", n_bootstrap: int = 2000,
                     n_permutations: int = 5000, seed: int = 0) -> RankCorrelation:
    """Rank correlation of paired samples with a bootstrap CI and a permutation p-value.

    Parameters
    ----------
    x, y : (n,) arrays
        Paired samples; pairs with a non-finite member are dropped.
    method : str
        ``"spearman"`` or ``"kendall"``.
    n_bootstrap, n_permutations : int
        Resamples for the CI and the p-value.
    seed : int
        Seeds both resampling procedures.
    """
    stat = _statistic(method)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    nan = RankCorrelation(method, n, np.nan, np.nan, np.nan, np.nan)
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return nan
    value = float(stat(x, y))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_bootstrap, n))
    boot = np.array([stat(x[i], y[i]) for i in idx if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0], dtype=float)
    boot = boot[np.isfinite(boot)]
    low, high = (np.percentile(boot, [2.5, 97.5]) if len(boot) else (np.nan, np.nan))
    perm = stats.permutation_test((x, y), lambda a, b: stat(a, b), permutation_type="pairings",
                                  n_resamples=n_permutations, alternative="two-sided", random_state=seed)
    return RankCorrelation(method, n, value, float(low), float(high), float(perm.pvalue))
