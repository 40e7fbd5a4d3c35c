"""Neighbour graphs of the Transformer: candidate search (vesin, no gradient) and smooth edge weights (torch).

The candidate search runs in NumPy on detached positions and returns integer pairs and periodic
shifts. Every distance the model uses is then recomputed in torch from positions, cell and the
integer shifts, so energies are differentiable with respect to positions and cell (strain).

Edge weights w_ij in [0, 1] enter the attention as an additive logit bias log w_ij on the
neighbour's key and multiply each token when it is pooled to its atom, so a token with w → 0
vanishes together with all its derivatives:

``radius``
    w_ij = b(d_ij / r_c) with the bump b(x) = exp(−x²/(1 − x²)) (C∞, zero at x = 1).
``knn``
    the k nearest candidates (within r_c) of each centre, hard-selected, times the same bump. The
    neighbour set jumps when the k-th and (k+1)-th distances cross: the deliberately abrupt baseline.
``diffknn``
    the differentiable k-nearest-neighbour graph; see :func:`diffknn_coordinate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from vesin import NeighborList

from pesprobe.models.config import ModelConfig

#: Non-periodic systems up to this many atoms get their candidates from vectorised all-pairs
#: distances (cheaper than a cell list for small molecules, and batched over molecules).
ALL_PAIRS_MAX_ATOMS = 256

#: Tokens whose −log w exceeds this are dropped: w < e^-80 ≈ 1.8e-35 is zero in float32 and far
#: below float64 round-off relative to any O(1) energy, so the cut is invisible, and keeping only
#: 1 − x² > 1/81 keeps every derivative of log w finite.
MAX_NEG_LOG_WEIGHT = 80.0


@dataclass
class Candidates:
    """Directed candidate pairs of a flat batch, sorted by centre (NumPy, no gradient).

    Attributes
    ----------
    centre, neighbour : ndarray, shape (n_pairs,), int64
        Atom indices into the flat batch; pair e points from ``centre[e]`` to ``neighbour[e]``.
    shift : ndarray, shape (n_pairs, 3), int64
        Integer cell shift S: r_j − r_i + S @ cell is the pair vector in Å.
    reverse : ndarray, shape (n_pairs,), int64
        Index of the pair (j, i, −S) of each pair; −1 where a subset dropped it.
    distance : ndarray, shape (n_pairs,), float64
        Distance in Å at search time (for hard selections only; the model recomputes it in torch).
    """

    centre: np.ndarray
    neighbour: np.ndarray
    shift: np.ndarray
    reverse: np.ndarray
    distance: np.ndarray

    def subset(self, keep: np.ndarray) -> Candidates:
        """The pairs where ``keep`` is True (``reverse`` is −1 for pairs whose reverse was dropped)."""
        index = np.flatnonzero(keep)
        new_position = np.full(keep.shape[0], -1, dtype=np.int64)
        new_position[index] = np.arange(index.size)
        reverse = np.where(self.reverse[index] >= 0, new_position[self.reverse[index]], -1)
        return Candidates(self.centre[index], self.neighbour[index], self.shift[index], reverse,
                          self.distance[index])


def find_candidates(positions: np.ndarray, system_index: np.ndarray, cell: np.ndarray | None,
                    pbc: np.ndarray, cutoff: float) -> Candidates:
    """All directed pairs closer than ``cutoff`` within each system, with periodic images.

    Parameters
    ----------
    positions : ndarray, shape (n_atoms, 3)
        Flat positions in Å.
    system_index : ndarray, shape (n_atoms,), int
        System of each atom (0 .. n_systems − 1).
    cell : ndarray, shape (n_systems, 3, 3), optional
        Cell vectors (rows) in Å; needed where ``pbc`` has a True entry.
    pbc : ndarray, shape (n_systems, 3), bool
        Periodicity of each system.
    cutoff : float
        Search radius in Å.

    Returns
    -------
    Candidates
        A symmetric list: every pair (i, j, S) comes with (j, i, −S).

    Raises
    ------
    ValueError
        For a non-finite position (naming the atom and its system) or a failed cell-list search.
    """
    finite = np.isfinite(positions).all(axis=1)
    if not finite.all():
        atom = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"non-finite position of atom {atom} (system {int(system_index[atom])})")
    order = np.argsort(system_index, kind="stable")
    bounds = np.searchsorted(system_index[order], np.arange(pbc.shape[0] + 1))
    sizes = np.diff(bounds)
    brute = ~pbc.any(axis=1) & (sizes <= ALL_PAIRS_MAX_ATOMS)
    parts = [_molecule_pairs(positions, order, bounds, np.flatnonzero(brute), cutoff)]
    search = NeighborList(cutoff=float(cutoff), full_list=False)
    for system in np.flatnonzero(~brute & (sizes > 0)):
        atoms = order[bounds[system]:bounds[system + 1]]
        periodic = pbc[system]
        box = cell[system] if periodic.any() else np.zeros((3, 3))
        try:
            i, j, s, d = search.compute(points=positions[atoms], box=box, periodic=periodic.tolist(),
                                        quantities="ijSd")
        except Exception as exc:
            raise ValueError(f"neighbour search failed for system {system}: {exc}") from exc
        parts.append((atoms[i.astype(np.int64)], atoms[j.astype(np.int64)], s.astype(np.int64), d))
    i, j, s, d = (np.concatenate(column) for column in zip(*parts))
    n_half = i.size
    centre = np.concatenate([i, j])
    neighbour = np.concatenate([j, i])
    shift = np.concatenate([s, -s])
    distance = np.concatenate([d, d])
    reverse = np.concatenate([np.arange(n_half, 2 * n_half), np.arange(n_half)])
    perm = np.lexsort((neighbour, centre))
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    return Candidates(centre[perm], neighbour[perm], shift[perm], inverse[reverse[perm]], distance[perm])


def _molecule_pairs(positions: np.ndarray, order: np.ndarray, bounds: np.ndarray, systems: np.ndarray,
                    cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Half list (i, j, zero shifts, d) of the non-periodic ``systems``, by vectorised all-pairs distances.

    Systems of equal size are done together, so a batch of many small molecules costs a few NumPy
    calls instead of one cell-list search per molecule. Same pairs as the cell list (d < cutoff).
    """
    sizes = bounds[systems + 1] - bounds[systems]
    centres, neighbours, distances = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for size in np.unique(sizes[sizes > 1]):
        starts = bounds[systems[sizes == size]]
        upper_i, upper_j = np.triu_indices(size, 1)
        i = order[(starts[:, None] + upper_i).ravel()]
        j = order[(starts[:, None] + upper_j).ravel()]
        d = np.linalg.norm(positions[j] - positions[i], axis=1)
        near = d < cutoff
        centres.append(i[near])
        neighbours.append(j[near])
        distances.append(d[near])
    i = np.concatenate(centres)
    return i, np.concatenate(neighbours), np.zeros((i.size, 3), dtype=np.int64), np.concatenate(distances)


def knn_mask(candidates: Candidates, k: int) -> np.ndarray:
    """True for each centre's ``k`` nearest candidates (ties broken by neighbour index); shape (n_pairs,)."""
    order = np.lexsort((candidates.neighbour, candidates.distance, candidates.centre))
    centre_sorted = candidates.centre[order]
    first = np.searchsorted(centre_sorted, centre_sorted, side="left")
    rank = np.arange(order.size) - first
    keep = np.zeros(order.size, dtype=bool)
    keep[order[rank < k]] = True
    return keep


def slot_index(centre: torch.Tensor, n_atoms: int) -> tuple[torch.Tensor, int]:
    """Position of each pair among its centre's pairs (pairs sorted by centre) and the slot count.

    Returns
    -------
    slot : Tensor, shape (n_pairs,), long
    n_slots : int
        Largest number of pairs of one centre (at least 1).
    """
    counts = torch.bincount(centre, minlength=n_atoms)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(centre.numel(), device=centre.device) - starts[centre]
    n_slots = int(counts.max()) if centre.numel() else 1
    return slot, max(n_slots, 1)


def pair_vectors(positions: torch.Tensor, cell: torch.Tensor | None, system_index: torch.Tensor,
                 centre: torch.Tensor, neighbour: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """r_j − r_i + S @ cell[system of i] in Å, differentiable in positions and cell; shape (n_pairs, 3)."""
    vectors = positions[neighbour] - positions[centre]
    if cell is not None and shift.numel():
        vectors = vectors + torch.einsum("ek,ekl->el", shift.to(positions.dtype), cell[system_index[centre]])
    return vectors


def neg_log_bump(x: torch.Tensor) -> torch.Tensor:
    """−log b(x) = x²/(1 − x²) for |x| < 1 (callers keep only such x)."""
    x2 = x * x
    return x2 / (1.0 - x2)


def smooth_step_down(d: torch.Tensor, start: float, width: float) -> torch.Tensor:
    """C∞ step: 1 for d ≤ start, 0 for d ≥ start + width, smooth in between (standard bump ratio)."""
    u = ((d - start) / width).clamp(0.0, 1.0)
    inside = (u > 0) & (u < 1)
    u_safe = torch.where(inside, u, torch.full_like(u, 0.5))
    g_lo = torch.exp(-1.0 / (1.0 - u_safe))
    g_hi = torch.exp(-1.0 / u_safe)
    ramp = g_lo / (g_lo + g_hi)
    return torch.where(inside, ramp, (u <= 0).to(d.dtype))


def soft_rank(distance: torch.Tensor, centre: torch.Tensor, slot: torch.Tensor, n_atoms: int, n_slots: int,
              vote: torch.Tensor, scale: float, rows: torch.Tensor) -> torch.Tensor:
    """Soft rank R_i(j) = Σ_l σ((d_ij − d_il)/s) · c_il of selected pairs among their centre's candidates.

    Parameters
    ----------
    distance : Tensor, shape (n_pairs,)
        Candidate distances in Å (sorted by centre; ``slot`` gives the position within the centre).
    centre, slot : Tensor, shape (n_pairs,), long
    n_atoms, n_slots : int
        Size of the padded (atom, slot) table.
    vote : Tensor, shape (n_pairs,)
        c_il: how much candidate l counts (1 inside r_c, fading to 0 at the end of the search radius).
    scale : float
        s in Å.
    rows : Tensor, shape (n_selected,), long
        The pairs whose rank is wanted.

    Returns
    -------
    Tensor, shape (n_selected,)
        The sum includes l = j, contributing σ(0) = 1/2: the r-th nearest (r = 0, 1, ...) gets
        R ≈ r + 1/2, so "j is among the k nearest" reads R_i(j) < k with the hard boundary exactly
        between ranks k − 1 and k.
    """
    table_d = distance.new_zeros(n_atoms, n_slots).index_put((centre, slot), distance)
    table_v = distance.new_zeros(n_atoms, n_slots).index_put((centre, slot), vote)
    owner = centre[rows]
    logistic = torch.sigmoid((distance[rows, None] - table_d[owner]) / scale)
    return (logistic * table_v[owner]).sum(dim=1)


def diffknn_coordinate(rank_ij: torch.Tensor, rank_ji: torch.Tensor, distance: torch.Tensor,
                       config: ModelConfig) -> torch.Tensor:
    """The edge coordinate x_ij of the differentiable kNN graph; the weight is b(x) = exp(−x²/(1 − x²)).

    With a = R_i(j)/k, b = R_j(i)/k and c = d_ij/r_c, each below 1 when its condition holds:

    ``"or"`` (default)
        x = smax(smin(a, b), c), with smin/smax the log-sum-exp soft minimum/maximum of temperature
        τ. The edge stays (x < 1) if j is among i's k nearest OR i among j's (the union, i.e. the
        usual symmetrised kNN graph), AND d_ij < r_c. The weight is symmetric, w_ij = w_ji.
    ``"and"``
        x = smax(a, b, c) = τ log(e^{a/τ} + e^{b/τ} + e^{c/τ}), the issue's literal formula: all three
        must hold (the mutual kNN graph). An atom nobody counts among its k nearest (a stray atom
        near a dense cluster) then loses all its edges, which is why ``"or"`` is the default.

    Because smax ≥ max ≥ c ≥ 0, x ≥ d_ij/r_c: no edge reaches beyond the cutoff in either form.
    """
    tau = config.smooth_tau
    a = rank_ij / config.k
    b = rank_ji / config.k
    c = distance / config.cutoff
    if config.diffknn_combine == "or":
        m = -tau * torch.logsumexp(torch.stack([-a / tau, -b / tau]), dim=0)
        return tau * torch.logsumexp(torch.stack([m / tau, c / tau]), dim=0)
    return tau * torch.logsumexp(torch.stack([a / tau, b / tau, c / tau]), dim=0)
