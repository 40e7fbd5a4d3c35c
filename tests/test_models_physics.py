"""Physical correctness of the Transformer MLIP: invariances, conservative forces, stress, smoothness, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pesprobe.models import ModelConfig, build_model
from pesprobe.models.graph import diffknn_coordinate, find_candidates, smooth_step_down, soft_rank, slot_index

RNG_SEED = 7


def tiny(dtype: str = "float64", **overrides) -> torch.nn.Module:
    """A small random model (seeded) in float64 unless told otherwise."""
    torch.manual_seed(0)
    params = dict(cutoff=4.0, k=6, d_model=16, n_heads=2, n_blocks=2, embed_dim=8, readout_dim=8, n_rbf=8,
                  dtype=dtype)
    params.update(overrides)
    return build_model(ModelConfig(**params))


def molecule(n: int, seed: int = RNG_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """A random compact 'molecule' of n atoms (no two atoms closer than 0.9 Å)."""
    rng = np.random.default_rng(seed)
    points: list[np.ndarray] = []
    while len(points) < n:
        p = rng.normal(size=3) * (0.8 * n ** (1 / 3))
        if all(np.linalg.norm(p - q) > 0.9 for q in points):
            points.append(p)
    numbers = rng.choice([1, 6, 7, 8], size=n)
    return torch.tensor(np.array(points)), torch.tensor(numbers)


def single(model, pos, numbers, **kw):
    return model(pos, None, torch.zeros(len(numbers), dtype=torch.long), numbers, **kw)


@pytest.mark.parametrize("graph", ["diffknn", "knn", "radius"])
def test_translation_and_permutation_invariance(graph: str) -> None:
    model = tiny(graph=graph)
    pos, z = molecule(9)
    ref = single(model, pos, z)
    moved = single(model, pos + torch.tensor([3.7, -12.1, 0.4], dtype=pos.dtype), z)
    assert moved["energy"].item() == pytest.approx(ref["energy"].item(), abs=1e-10)
    torch.testing.assert_close(moved["forces"], ref["forces"], atol=1e-9, rtol=0)
    perm = torch.tensor([4, 0, 8, 2, 6, 1, 3, 7, 5])
    permuted = single(model, pos[perm], z[perm])
    assert permuted["energy"].item() == pytest.approx(ref["energy"].item(), abs=1e-10)
    torch.testing.assert_close(permuted["forces"], ref["forces"][perm], atol=1e-9, rtol=0)


def test_periodic_translation_with_wrapping_is_invariant() -> None:
    model = tiny()
    pos, z = molecule(6)
    cell = torch.eye(3, dtype=torch.float64)[None] * 4.5
    idx = torch.zeros(6, dtype=torch.long)
    ref = model(pos, cell, idx, z)
    shifted = torch.remainder(pos + torch.tensor([1.3, 2.9, -0.7], dtype=pos.dtype), 4.5)
    out = model(shifted, cell, idx, z)
    assert out["energy"].item() == pytest.approx(ref["energy"].item(), abs=1e-9)
    torch.testing.assert_close(out["forces"], ref["forces"], atol=1e-8, rtol=0)


@pytest.mark.parametrize("graph", ["diffknn", "radius"])
def test_conservative_forces_match_finite_differences(graph: str) -> None:
    model = tiny(graph=graph)
    pos, z = molecule(7)
    forces = single(model, pos, z)["forces"]
    h = 1e-5
    n = pos.shape[0]
    displaced = pos.repeat(2 * 3 * n, 1, 1)  # frame 2*(3a+c)+{0,1}: atom a, axis c, +h / -h
    for dof in range(3 * n):
        displaced[2 * dof, dof // 3, dof % 3] += h
        displaced[2 * dof + 1, dof // 3, dof % 3] -= h
    idx = torch.arange(6 * n).repeat_interleave(n)
    energies = model(displaced.reshape(-1, 3), None, idx, z.repeat(6 * n), compute_forces=False)["energy"]
    numeric = -(energies[0::2] - energies[1::2]).detach().reshape(n, 3) / (2 * h)
    assert forces.abs().max() > 1e-4  # the test would be empty on a flat surface
    torch.testing.assert_close(forces, numeric, atol=1e-7, rtol=1e-5)


def test_stress_matches_finite_difference_strain() -> None:
    model = tiny()
    pos, z = molecule(5)
    cell = torch.tensor([[4.2, 0.0, 0.0], [0.6, 4.6, 0.0], [0.3, -0.4, 4.9]], dtype=torch.float64)[None]
    idx = torch.zeros(5, dtype=torch.long)
    stress = model(pos, cell, idx, z, compute_stress=True)["stress"][0]
    volume = torch.linalg.det(cell[0]).abs()
    h = 1e-5
    numeric = torch.zeros(3, 3, dtype=torch.float64)
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                eps = torch.zeros(3, 3, dtype=torch.float64)
                eps[a, b] += 0.5 * sign * h
                eps[b, a] += 0.5 * sign * h
                deform = torch.eye(3, dtype=torch.float64) + eps
                energies.append(model(pos @ deform, cell @ deform, idx, z, compute_forces=False)["energy"].item())
            numeric[a, b] = (energies[0] - energies[1]) / (2 * h) / volume
    assert stress.abs().max() > 1e-5
    torch.testing.assert_close(stress, numeric, atol=1e-8, rtol=1e-5)
    torch.testing.assert_close(stress, stress.T)


def _path_energies(graph: str, steps: np.ndarray) -> np.ndarray:
    """Atom 5 moves radially away from atom 0 and crosses atom 4's distance (1.5 Å) at t = 1.5:
    with k = 4 they are atom 0's 4th and 5th nearest neighbours there."""
    model = tiny(graph=graph, k=4)
    base = np.array([[0, 0, 0], [1.0, 0, 0], [0, 1.1, 0], [0, 0, 1.2], [-1.5, 0, 0], [0, 0, 0]])
    direction = np.array([0.0, -1.0, -1.0]) / np.sqrt(2.0)
    z = torch.tensor([6, 1, 1, 1, 8, 7])
    frames = np.repeat(base[None], len(steps), axis=0)
    frames[:, 5] = steps[:, None] * direction
    idx = torch.arange(len(steps)).repeat_interleave(6)
    out = model(torch.tensor(frames.reshape(-1, 3)), None, idx, z.repeat(len(steps)), compute_forces=False)
    return out["energy"].detach().numpy()


@pytest.mark.parametrize("graph", ["diffknn", "knn"])
def test_neighbour_crossing_smooth_for_diffknn_jumps_for_knn(graph: str) -> None:
    curvature, largest_step = [], []
    for h in (1e-2, 1e-3, 1e-4):
        steps = 1.5 + h * np.arange(-40, 41)
        energies = _path_energies(graph, steps)
        curvature.append(np.abs(np.diff(energies, 2)).max() / h ** 2)
        largest_step.append(np.abs(np.diff(energies)).max())
    if graph == "diffknn":
        # continuous and differentiable: bounded second differences, first differences shrink with h
        assert max(curvature) < 3 * min(curvature) + 1e-6
        assert largest_step[2] < 0.05 * largest_step[0]
    else:
        # a jump: the largest step does not shrink with h, so the 'curvature' explodes as 1/h²
        assert largest_step[2] > 1e-4
        assert largest_step[2] > 0.5 * largest_step[0]
        assert curvature[2] > 1e4 * curvature[0] / 10


def test_batched_equals_one_by_one_for_different_sizes() -> None:
    model = tiny()
    systems = [molecule(n, seed) for n, seed in ((3, 1), (11, 2), (6, 3), (1, 4))]
    pos = torch.cat([p for p, _ in systems])
    z = torch.cat([n for _, n in systems])
    idx = torch.cat([torch.full((len(n),), s) for s, (_, n) in enumerate(systems)])
    batched = model(pos, None, idx, z)
    singles = [single(model, p, n) for p, n in systems]
    torch.testing.assert_close(batched["energy"], torch.cat([s["energy"] for s in singles]), atol=1e-10, rtol=0)
    torch.testing.assert_close(batched["forces"], torch.cat([s["forces"] for s in singles]), atol=1e-10, rtol=0)


def test_batched_periodic_and_molecule_mixed_float32() -> None:
    model = tiny(dtype="float32")
    mol_pos, mol_z = molecule(5, 1)
    xtal_pos, xtal_z = molecule(4, 2)
    cell = torch.stack([torch.zeros(3, 3), torch.eye(3) * 4.0])
    pbc = torch.tensor([[False] * 3, [True] * 3])
    pos = torch.cat([mol_pos, xtal_pos]).float()
    z = torch.cat([mol_z, xtal_z])
    idx = torch.tensor([0] * 5 + [1] * 4)
    batched = model(pos, cell, idx, z, pbc=pbc)
    one = model(mol_pos.float(), None, torch.zeros(5, dtype=torch.long), mol_z)
    two = model(xtal_pos.float(), cell[1:], torch.zeros(4, dtype=torch.long), xtal_z)
    torch.testing.assert_close(batched["energy"], torch.cat([one["energy"], two["energy"]]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched["forces"], torch.cat([one["forces"], two["forces"]]), atol=1e-5, rtol=1e-4)


def test_inputs_are_not_mutated_and_no_grad_leaks() -> None:
    model = tiny()
    pos, z = molecule(6)
    cell = torch.eye(3, dtype=torch.float64)[None] * 5.0
    idx = torch.zeros(6, dtype=torch.long)
    copies = [t.clone() for t in (pos, z, cell, idx)]
    with torch.no_grad():
        out = model(pos, cell, idx, z, compute_stress=True)
    for before, after in zip(copies, (pos, z, cell, idx), strict=True):
        assert torch.equal(before, after)
    assert not pos.requires_grad
    assert not any(v.requires_grad for v in out.values())


def test_create_graph_gives_parameter_gradients_of_a_force_loss() -> None:
    model = tiny(dtype="float32")
    pos, z = molecule(5)
    out = single(model, pos.float(), z, create_graph=True)
    assert out["forces"].requires_grad
    loss = out["forces"].pow(2).sum() + out["energy"].pow(2).sum()
    loss.backward()
    grad = model.token_mlp[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_direct_head_forces_and_no_stress() -> None:
    model = tiny(force_head="direct")
    pos, z = molecule(6)
    out = single(model, pos, z)
    assert out["forces"].shape == (6, 3) and torch.isfinite(out["forces"]).all()
    moved = single(model, pos + 2.0, z)
    torch.testing.assert_close(moved["forces"], out["forces"], atol=1e-9, rtol=0)
    with pytest.raises(ValueError, match="conservative"):
        model(pos, torch.eye(3, dtype=torch.float64)[None] * 5, torch.zeros(6, dtype=torch.long), z,
              compute_stress=True)


def test_energy_normalisation_and_element_references() -> None:
    model = tiny()
    pos, z = molecule(4)
    base = single(model, pos, z, compute_forces=False)["energy"].item()
    counts = {int(e): int((z == e).sum()) for e in torch.unique(z)}
    model.set_element_references({e: -10.0 * e for e in counts})
    model.set_normalization(scale=2.0, shift=0.5)
    out = single(model, pos, z, compute_forces=False)["energy"].item()
    expected = 2.0 * base + 0.5 * len(z) + sum(-10.0 * e * n for e, n in counts.items())
    assert out == pytest.approx(expected, rel=1e-10)
    assert model.element_references() == {e: -10.0 * e for e in counts}
    with pytest.raises(ValueError, match="atomic number"):
        model.set_element_references({0: 1.0})
    with pytest.raises(ValueError, match="scale"):
        model.set_normalization(scale=0.0, shift=0.0)


def test_bad_inputs_get_clear_errors() -> None:
    model = tiny()
    pos, z = molecule(4)
    with pytest.raises(ValueError, match="atomic_numbers"):
        single(model, pos, torch.tensor([6, 6, 0, 1]))
    with pytest.raises(ValueError, match="positions"):
        model(pos[:, :2], None, torch.zeros(4, dtype=torch.long), z)
    with pytest.raises(ValueError, match="cell"):
        model(pos, None, torch.zeros(4, dtype=torch.long), z, compute_stress=True)


def test_soft_rank_counts_closer_neighbours_plus_half() -> None:
    distance = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    centre = torch.zeros(4, dtype=torch.long)
    slot, n_slots = slot_index(centre, 1)
    rank = soft_rank(distance, centre, slot, 1, n_slots, torch.ones(4, dtype=torch.float64), 0.05,
                     torch.arange(4))
    torch.testing.assert_close(rank, torch.tensor([0.5, 1.5, 2.5, 3.5], dtype=torch.float64), atol=1e-6, rtol=0)
    step = smooth_step_down(torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5], dtype=torch.float64), 1.0, 1.0)
    assert step[0] == 1 and step[1] == 1 and step[2] == pytest.approx(0.5) and step[3] == 0 and step[4] == 0


def test_diffknn_or_keeps_edges_one_side_counts_and_is_symmetric() -> None:
    config = ModelConfig(k=4, cutoff=5.0)
    far = torch.tensor([10.0], dtype=torch.float64)  # far beyond k for i, near for j
    near = torch.tensor([0.5], dtype=torch.float64)
    d = torch.tensor([2.0], dtype=torch.float64)
    x_or = diffknn_coordinate(far, near, d, config)
    x_swapped = diffknn_coordinate(near, far, d, config)
    assert x_or.item() < 1 and x_or.item() == pytest.approx(x_swapped.item())
    x_and = diffknn_coordinate(far, near, d, ModelConfig(k=4, cutoff=5.0, diffknn_combine="and"))
    assert x_and.item() > 1  # mutual kNN drops it
    beyond = diffknn_coordinate(near, near, torch.tensor([5.2], dtype=torch.float64), config)
    assert beyond.item() > 1


def test_candidate_list_is_symmetric_with_periodic_images() -> None:
    pos = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, 0.2]])
    cand = find_candidates(pos, np.zeros(2, dtype=np.int64), np.eye(3)[None] * 2.0, np.ones((1, 3), bool), 2.5)
    assert np.array_equal(cand.centre[cand.reverse], cand.neighbour)
    assert np.array_equal(cand.shift[cand.reverse], -cand.shift)
    assert np.all(np.diff(cand.centre) >= 0)
    assert ((cand.centre == 0) & (cand.neighbour == 0)).sum() > 0  # own images


def test_molecule_candidates_by_all_pairs_match_the_cell_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small molecules take the vectorised all-pairs path; it must give the cell list's pairs exactly,
    for a shuffled batch of molecules of different sizes next to a periodic system."""
    import pesprobe.models.graph as graph

    parts = [molecule(n, seed)[0].numpy() for n, seed in ((7, 1), (12, 2), (7, 3), (1, 4))]
    crystal = np.random.default_rng(5).uniform(0.0, 3.0, size=(5, 3))
    positions = np.concatenate(parts + [crystal])
    system_index = np.concatenate([np.full(len(p), s) for s, p in enumerate(parts + [crystal])])
    shuffle = np.random.default_rng(6).permutation(len(positions))
    positions, system_index = positions[shuffle], system_index[shuffle]
    cell = np.repeat(np.eye(3)[None] * 3.0, 5, axis=0)
    pbc = np.zeros((5, 3), bool)
    pbc[4] = True

    def pairs(c: graph.Candidates) -> set:
        return {(int(i), int(j), tuple(s)) for i, j, s in zip(c.centre, c.neighbour, c.shift)}

    fast = find_candidates(positions, system_index, cell, pbc, 3.5)
    monkeypatch.setattr(graph, "ALL_PAIRS_MAX_ATOMS", 0)
    reference = find_candidates(positions, system_index, cell, pbc, 3.5)
    assert pairs(fast) == pairs(reference) and len(fast.centre) == len(reference.centre)
    assert np.array_equal(fast.centre, reference.centre) and np.array_equal(fast.neighbour, reference.neighbour)
    np.testing.assert_allclose(fast.distance, reference.distance, rtol=1e-12)
    assert np.array_equal(fast.neighbour[fast.reverse], fast.centre)


def test_non_finite_position_is_named() -> None:
    pos = np.zeros((3, 3))
    pos[1] = [0.0, 1.0, 0.0]
    pos[2, 2] = np.nan
    with pytest.raises(ValueError, match="atom 2 .system 0"):
        find_candidates(pos, np.zeros(3, dtype=np.int64), None, np.zeros((1, 3), bool), 3.0)


@pytest.mark.parametrize("learnable", [False, True])
def test_token_attention_matches_textbook_multi_head_attention(learnable: bool) -> None:
    """softmax(q·k/(√d_h T) + log w) v per head, with q, k, v the three row blocks of ``qkv``."""
    from pesprobe.models.layers import TokenBlock

    torch.manual_seed(1)
    config = ModelConfig(d_model=16, n_heads=4, learnable_temperature=learnable, dtype="float64")
    block = TokenBlock(config, temperature=2.0).double()
    tokens = torch.randn(5, 7, 16, dtype=torch.float64)
    bias = -torch.rand(5, 7, dtype=torch.float64) * 3.0
    bias[:, -2:] = -1.0e9  # padding slots
    x = block.norm_attn(tokens)
    q, k, v = (x @ w.T + b for w, b in zip(block.qkv.weight.chunk(3), block.qkv.bias.chunk(3)))
    heads = lambda t: t.view(5, 7, 4, 4).transpose(1, 2)  # noqa: E731 - (atoms, heads, slots, d_head)
    assert float(block.temperature.detach()) == pytest.approx(2.0, rel=1e-6)
    logits = heads(q) @ heads(k).transpose(-1, -2) / (2.0 * block.temperature) + bias[:, None, None, :]
    mixed = (torch.softmax(logits, dim=-1) @ heads(v)).transpose(1, 2).reshape(5, 7, 16)
    expected = block.out(mixed)
    torch.testing.assert_close(block.attention(tokens, bias), expected, rtol=1e-12, atol=1e-12)
