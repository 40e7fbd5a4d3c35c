"""Scan geometries: rigid-fragment bond stretches, angle bends and torsions, and crystal bond scans.

All functions are pure NumPy: they take equilibrium positions (Å) and return the frames
(n_frames, n_atoms, 3) in Å together with the scanned coordinate of each frame.
"""

from __future__ import annotations

import numpy as np
from ase.data import covalent_radii

#: Bond scans run over ``linspace(LOW, HIGH, n) * (r_cov(A) + r_cov(B))``, as the published set does.
BOND_RANGE_FACTORS = (0.5, 2.0)


def bond_grid(z_a: int, z_b: int, n: int = 100,
              factors: tuple[float, float] = BOND_RANGE_FACTORS) -> tuple[float, float, int]:
    """The published bond-length range ``(start, end, n)`` in Å for elements ``z_a``, ``z_b``."""
    total = float(covalent_radii[int(z_a)] + covalent_radii[int(z_b)])
    return (round(factors[0] * total, 6), round(factors[1] * total, 6), int(n))


def unit_vector(positions: np.ndarray, i: int, j: int) -> tuple[np.ndarray, float]:
    """Unit vector from atom ``i`` to atom ``j`` and their distance (Å)."""
    vec = positions[j] - positions[i]
    dist = float(np.linalg.norm(vec))
    if dist < 1e-8:
        raise ValueError(f"atoms {i} and {j} coincide")
    return vec / dist, dist


def bond_scan(positions: np.ndarray, i: int, j: int, labels: np.ndarray,
              lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stretch bond ``i``-``j`` by translating both fragments rigidly, each by half the change.

    Parameters
    ----------
    positions : ndarray, shape (n_atoms, 3)
        Equilibrium positions in Å.
    i, j : int
        The bonded atoms; ``labels[i] == 0`` and ``labels[j] == 1``.
    labels : ndarray, shape (n_atoms,)
        Fragment of each atom: 0 moves by ``-delta/2`` along the i->j unit vector, 1 by ``+delta/2``.
    lengths : ndarray, shape (n_frames,)
        Target bond lengths in Å.

    Returns
    -------
    frames : ndarray, shape (n_frames, n_atoms, 3)
        Positions in Å; the distance ``i``-``j`` of frame ``k`` equals ``lengths[k]``.
    unit_vec : ndarray, shape (3,)
        The i->j unit vector.
    """
    labels = np.asarray(labels)
    if labels[i] != 0 or labels[j] != 1:
        raise ValueError(f"labels must put atom {i} in fragment 0 and atom {j} in fragment 1")
    unit, r0 = unit_vector(positions, i, j)
    half = 0.5 * (np.asarray(lengths, dtype=float) - r0)
    sign = np.where(labels == 1, 1.0, -1.0)
    frames = positions[None] + half[:, None, None] * sign[None, :, None] * unit[None, None, :]
    return frames, unit


def rotation_matrices(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rodrigues rotation matrices (n, 3, 3) for right-handed rotations by ``angles`` (rad) about ``axis``."""
    axis = np.asarray(axis, dtype=float)
    axis = axis / np.linalg.norm(axis)
    kx, ky, kz = axis
    k = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    angles = np.asarray(angles, dtype=float)[:, None, None]
    return np.eye(3)[None] + np.sin(angles) * k[None] + (1.0 - np.cos(angles)) * (k @ k)[None]


def rotate_fragment(positions: np.ndarray, moving: np.ndarray, center: np.ndarray, axis: np.ndarray,
                    angles: np.ndarray) -> np.ndarray:
    """Frames (n, n_atoms, 3) in which the atoms with ``moving`` True are rotated rigidly about ``axis`` through ``center``."""
    rot = rotation_matrices(axis, angles)
    frames = np.repeat(positions[None], len(rot), axis=0)
    rel = positions[moving] - center
    frames[:, moving] = center + np.einsum("nab,mb->nma", rot, rel)
    return frames


def angle(positions: np.ndarray, a: int, b: int, c: int) -> float:
    """The angle a-b-c in rad."""
    u, v = positions[a] - positions[b], positions[c] - positions[b]
    return float(np.arctan2(np.linalg.norm(np.cross(u, v)), np.dot(u, v)))


def dihedral(positions: np.ndarray, a: int, b: int, c: int, d: int) -> float:
    """The dihedral a-b-c-d in rad, in (-pi, pi] (IUPAC sign convention)."""
    b0, b1, b2 = positions[a] - positions[b], positions[c] - positions[b], positions[d] - positions[c]
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    return float(np.arctan2(np.dot(np.cross(b1n, v), w), np.dot(v, w)))


def angle_scan(positions: np.ndarray, a: int, b: int, c: int, moving: np.ndarray, half_width: float,
               n: int, limits: tuple[float, float] = (np.radians(20.0), np.radians(175.0))
               ) -> tuple[np.ndarray, np.ndarray]:
    """Bend a-b-c by rotating the fragment on c's side rigidly about b, in the a-b-c plane.

    Parameters
    ----------
    positions : ndarray, shape (n_atoms, 3)
        Equilibrium positions in Å.
    a, b, c : int
        The angle's atoms; ``moving`` holds ``c`` and neither ``a`` nor ``b``.
    moving : ndarray, shape (n_atoms,), bool
        The rigid fragment that rotates.
    half_width : float
        Half the scan range in rad (the grid is ``theta0 ± half_width``, clipped to ``limits``).
    n : int
        Number of frames.

    Returns
    -------
    frames : ndarray, shape (n, n_atoms, 3)
        Positions in Å.
    angles : ndarray, shape (n,)
        The angle a-b-c of each frame in rad.
    """
    moving = np.asarray(moving, dtype=bool)
    if not moving[c] or moving[a] or moving[b]:
        raise ValueError(f"the moving fragment must hold atom {c} and neither {a} nor {b}")
    theta0 = angle(positions, a, b, c)
    axis = np.cross(positions[a] - positions[b], positions[c] - positions[b])
    if np.linalg.norm(axis) < 1e-6:
        raise ValueError(f"angle {a}-{b}-{c} is linear; its bending plane is undefined")
    grid = np.linspace(max(theta0 - half_width, limits[0]), min(theta0 + half_width, limits[1]), n)
    return rotate_fragment(positions, moving, positions[b], axis, grid - theta0), grid


def torsion_scan(positions: np.ndarray, a: int, b: int, c: int, d: int, moving: np.ndarray,
                 n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the fragment on c's side of bond b-c rigidly about that bond over a full turn.

    Returns
    -------
    frames : ndarray, shape (n, n_atoms, 3)
        Positions in Å.
    torsions : ndarray, shape (n,)
        The dihedral a-b-c-d of each frame in rad, unwrapped: ``phi0 + 2*pi*k/n``.
    """
    moving = np.asarray(moving, dtype=bool)
    if not moving[c] or not moving[d] or moving[a] or moving[b]:
        raise ValueError(f"the moving fragment must hold atoms {c}, {d} and neither {a} nor {b}")
    phi0 = dihedral(positions, a, b, c, d)
    steps = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    axis = positions[c] - positions[b]
    return rotate_fragment(positions, moving, positions[b], axis, steps), phi0 + steps


def crystal_bond_scan(positions: np.ndarray, mover: int, anchor_position: np.ndarray,
                      lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move one atom along the line to a fixed neighbour so that their distance runs over ``lengths``.

    Parameters
    ----------
    positions : ndarray, shape (n_atoms, 3)
        Equilibrium positions in Å.
    mover : int
        The atom that moves; all others stay.
    anchor_position : ndarray, shape (3,)
        Position (Å) of the neighbour. :func:`pesprobe.scan.plan.crystal_plans` stores the mover
        unwrapped (shifted by a lattice vector) so that this is the neighbour's own position and the
        raw distance ``|frames[k, mover] - positions[neighbour]|`` is ``lengths[k]``.
    lengths : ndarray, shape (n_frames,)
        Target distances in Å.

    Returns
    -------
    frames : ndarray, shape (n_frames, n_atoms, 3)
    unit_vec : ndarray, shape (3,)
        Unit vector from the neighbour to ``mover``.
    """
    vec = positions[mover] - anchor_position
    unit = vec / np.linalg.norm(vec)
    frames = np.repeat(positions[None], len(lengths), axis=0)
    frames[:, mover] = anchor_position + np.asarray(lengths, dtype=float)[:, None] * unit
    return frames, unit


def crystal_reach(positions: np.ndarray, cell: np.ndarray, partner: int, mover: int, unit: np.ndarray,
                  longest: float) -> float:
    """How far (Å, at most ``longest``) ``mover`` can go from ``partner`` along ``unit`` while no other
    atom is closer to it than ``partner``.

    The mover sits at ``r_p + L * unit``; every other atom ``m`` (all periodic images; the mover's own
    images move with it and do not count) stays farther than ``L`` while
    ``L <= |d_m|**2 / (2 unit . d_m)`` with ``d_m = r_m - r_p`` (the mover stays on the partner's side
    of the plane bisecting partner-``m``). The reach is the smallest such bound. In an fcc or bcc metal
    it is the nearest-neighbour distance: beyond its lattice site the mover is nearer the atoms around
    that site (and the one straight ahead) than its partner.

    Parameters
    ----------
    positions : ndarray, shape (n_atoms, 3)
        Positions in Å (wrapped or not).
    cell : ndarray, shape (3, 3)
        Cell vectors (rows) in Å; periodic in all three directions.
    partner, mover : int
        The fixed atom and the atom that moves.
    unit : ndarray, shape (3,)
        Unit vector of the motion, from ``partner`` towards ``mover``.
    longest : float
        The longest distance wanted (Å); atoms farther than ``2 * longest`` cannot bound the reach.
    """
    cell = np.asarray(cell, dtype=float)
    diff = np.delete(positions, mover, axis=0) - positions[partner]
    frac = np.linalg.solve(cell.T, diff.T).T
    frac -= np.round(frac)
    widths = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    span = np.ceil(2.0 * longest / widths).astype(int) + 1
    shifts = np.stack(np.meshgrid(*[np.arange(-s, s + 1) for s in span], indexing="ij"), -1).reshape(-1, 3)
    rel = ((frac[:, None, :] + shifts[None]) @ cell).reshape(-1, 3)
    dist2 = np.einsum("ij,ij->i", rel, rel)
    ahead = rel @ np.asarray(unit, dtype=float)
    keep = (dist2 > 1e-12) & (ahead > 1e-12) & (dist2 < (2.0 * longest) ** 2)
    if not keep.any():
        return float(longest)
    return float(min(longest, (dist2[keep] / (2.0 * ahead[keep])).min()))
