"""Statistics of correlate against hand-checkable cases: Holm, partial Spearman, the clustered
primary answer (exact permutation p, cluster-respecting permutations), the cost table."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from pesprobe.md.clustered import PrimaryQuestion, answer, grid, unit_values
from pesprobe.md.cost import NO_LABEL_TIME, cost_table, label_seconds
from pesprobe.md.stats import holm, partial_spearman


def test_holm_matches_the_hand_computation():
    # sorted 0.01, 0.02, 0.03, 0.5 -> 4·0.01, max(3·0.02, .04), max(2·0.03, .06), max(1·0.5, .06)
    p = np.array([0.03, 0.5, 0.01, np.nan, 0.02])
    np.testing.assert_allclose(holm(p), [0.06, 0.5, 0.04, np.nan, 0.06])
    assert holm(np.array([0.4, 0.6]))[1] == 0.8 and holm(np.array([0.9, 0.8]))[0] == 1.0


def test_partial_spearman_equals_the_textbook_formula():
    rng = np.random.default_rng(0)
    z = rng.normal(size=30)
    x = z + 0.5 * rng.normal(size=30)
    y = z + 0.5 * rng.normal(size=30)
    r = lambda a, b: stats.spearmanr(a, b).statistic  # noqa: E731
    expected = (r(x, y) - r(x, z) * r(y, z)) / math.sqrt((1 - r(x, z) ** 2) * (1 - r(y, z) ** 2))
    assert partial_spearman(x, y, z) == pytest.approx(expected, abs=1e-12)
    # x and y both driven by z only: the raw rho is large, the partial one small
    assert r(x, y) > 0.5 and abs(partial_spearman(x, y, z)) < 0.35
    assert math.isnan(partial_spearman([1, 2, 3], [1, 2, 3], [3, 1, 2]))


def _pairs(fsd: list[list[float]], fail: list[list[float]], mae: list[list[float]]) -> list[dict]:
    return [{"potential": f"p{i}", "molecule": f"m{j}", "full_smoothness": fsd[i][j], "failure_fraction": fail[i][j],
             "full_forces_mae": mae[i][j]} for i in range(len(fsd)) for j in range(len(fsd[0]))]


def test_primary_answer_across_potentials_is_exact_and_hand_checkable():
    # 5 potentials x 2 molecules; per-potential means: FSD 1..5, failure 0.0, 0.1, 0.3, 0.2, 0.6 -> rho 0.9
    fsd = [[0.5, 1.5], [1.5, 2.5], [2.0, 4.0], [3.5, 4.5], [5.0, 5.0]]
    fail = [[0.0, 0.0], [0.0, 0.2], [0.3, 0.3], [0.2, 0.2], [0.6, 0.6]]
    mae = [[1.0, 1.0], [5.0, 5.0], [2.0, 2.0], [4.0, 4.0], [3.0, 3.0]]
    a = answer(_pairs(fsd, fail, mae), PrimaryQuestion(), n_bootstrap=200, seed=1)
    assert a.n_units == 5 and a.n_potentials == 5 and a.n_molecules == 2
    assert a.rho == pytest.approx(0.9)
    # exact: of the 120 orderings of 5 ranks, 10 reach |rho| >= 0.9 (rho = ±1: 2, ±0.9: 8)
    assert a.permutation == "exact over 120 label permutations" and a.p_value == pytest.approx(10 / 120)
    x, y, z = np.arange(1.0, 6.0), np.array([0.0, 0.1, 0.3, 0.2, 0.6]), np.array([1.0, 5, 2, 4, 3])
    assert a.partial_rho == pytest.approx(partial_spearman(x, y, z), abs=1e-12)
    assert a.ci_low <= a.rho <= a.ci_high <= 1.0
    assert "Across potentials" in a.question and "full_forces_mae" in a.question


def test_pair_unit_permutes_whole_potentials_not_single_pairs():
    """3 potentials x 4 molecules: a permutation that respects the clustering has only 3! = 6 label
    orders, so the smallest p is 1/6 however many pairs there are; a pooled pair-wise test would
    claim far more."""
    fsd = [[1.0, 1.1, 1.2, 1.3], [2.0, 2.1, 2.2, 2.3], [3.0, 3.1, 3.2, 3.3]]
    fail = [[0.0, 0.1, 0.2, 0.3], [0.4, 0.5, 0.6, 0.7], [0.8, 0.9, 1.0, 1.1]]
    a = answer(_pairs(fsd, fail, fsd), PrimaryQuestion(unit="pair"), n_bootstrap=50)
    assert a.n_units == 12 and a.rho == pytest.approx(1.0)
    # only the identity reaches |rho| = 1 (reversed blocks keep the within-potential order): p = 1/6
    assert a.permutation == "exact over 6 label permutations" and a.p_value == pytest.approx(1 / 6)
    pooled = stats.spearmanr(np.ravel(fsd), np.ravel(fail)).pvalue
    assert pooled < 1e-6


def test_grid_and_unit_values():
    pairs = _pairs([[1.0, 3.0], [np.nan, 4.0]], [[0.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]])
    values, potentials, molecules = grid(pairs, "full_smoothness")
    assert potentials == ["p0", "p1"] and molecules == ["m0", "m1"]
    np.testing.assert_allclose(unit_values(values, "potential"), [2.0, 4.0])
    np.testing.assert_allclose(unit_values(values, "molecule"), [1.0, 3.5])
    assert unit_values(values, "pair").shape == (4,)
    with pytest.raises(KeyError, match="no column"):
        grid(pairs, "nope")
    with pytest.raises(ValueError, match="unit"):
        PrimaryQuestion(unit="scan")


def test_cost_table_with_and_without_labelling(tmp_path):
    # two potentials: BSCT 2 s and 3 s, MD 100 s and 20 s (the second failed early: 200 s at full length)
    table = cost_table({"a": (2.0, 100.0, 100.0), "b": (3.0, 20.0, 200.0)}, 45.0, "test")
    assert table["ratio"] == pytest.approx(120.0 / 5.0)
    assert table["ratio_full_length"] == pytest.approx(300.0 / 5.0)
    assert table["ratio_with_labels"] == pytest.approx(120.0 / 50.0)      # labels paid once
    assert table["per_potential"]["b"]["ratio_with_labels"] == pytest.approx(20.0 / 48.0)
    assert table["label_seconds"] == 45.0
    assert cost_table({"a": (2.0, 10.0, 10.0)}, None, NO_LABEL_TIME)["ratio_with_labels"] is None
    assert label_seconds(tmp_path) == (None, NO_LABEL_TIME)
    (tmp_path / "build.json").write_text(json.dumps({"seconds": {"prepare": 1.5, "label": 40.0}, "reused": []}))
    seconds, note = label_seconds(tmp_path / "scans.npz")
    assert seconds == 41.5 and "build.json" in note and "under-count" not in note
