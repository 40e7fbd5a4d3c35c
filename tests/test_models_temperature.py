"""A fixed attention temperature T is absorbed exactly by the query projection (docs/ablation.md).

Logits are q·k / (√d_head · T) + log w with q = W_q x + b_q: dividing W_q and b_q by T gives the
same logits with T = 1, so energies and forces agree to rounding (bit for bit for T = 2, a power of
two). The edge-weight bias log w is not divided by T, so nothing else has to change.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pesprobe.models import ModelConfig, build_model

T = 2.0
CONFIG = dict(cutoff=4.0, k=6, d_model=16, n_heads=2, n_blocks=2, embed_dim=8, readout_dim=8, n_rbf=32,
              rbf_width=1.0, dtype="float64")


def _molecule() -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(3)
    points: list[np.ndarray] = []
    while len(points) < 8:
        p = rng.normal(size=3) * 1.6
        if all(np.linalg.norm(p - q) > 0.9 for q in points):
            points.append(p)
    return torch.tensor(np.array(points)), torch.tensor(rng.choice([1, 6, 7, 8], size=8))


def _absorbed(model: torch.nn.Module, temperature: float) -> torch.nn.Module:
    """A T = 1 copy of ``model`` whose query rows of every block's qkv projection are divided by ``temperature``."""
    config = ModelConfig(**{**CONFIG, "graph": model.config.graph, "attention_temperature": 1.0})
    plain = build_model(config)
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.endswith("temperature_raw")}
    d = config.d_model
    for b in range(config.n_blocks):
        state[f"blocks.{b}.qkv.weight"][:d] /= temperature
        state[f"blocks.{b}.qkv.bias"][:d] /= temperature
    missing, unexpected = plain.load_state_dict(state, strict=False)
    assert unexpected == [] and all(k.endswith("temperature_raw") for k in missing)
    return plain


@pytest.mark.parametrize("graph", ["diffknn", "knn"])
@pytest.mark.parametrize("learnable", [False, True])
def test_fixed_temperature_is_absorbed_by_the_query_projection(graph: str, learnable: bool) -> None:
    torch.manual_seed(0)
    hot = build_model(ModelConfig(**CONFIG, graph=graph, attention_temperature=T, learnable_temperature=learnable))
    # the defaults leave q·k small, where T hardly matters: make the logits O(1) so the test has teeth
    with torch.no_grad():
        for block in hot.blocks:
            block.qkv.weight.mul_(4.0)
    assert all(float(block.temperature.detach()) == pytest.approx(T) for block in hot.blocks)
    plain = _absorbed(hot, T)
    pos, z = _molecule()
    index = torch.zeros(len(z), dtype=torch.long)
    a = hot(pos, None, index, z)
    b = plain(pos, None, index, z)
    if learnable:  # T = softplus(θ) of a float32-initialised θ: 2 up to float32 rounding
        torch.testing.assert_close(b["energy"], a["energy"], rtol=1e-6, atol=0.0)
        torch.testing.assert_close(b["forces"], a["forces"], rtol=1e-6, atol=1e-12)
    else:  # dividing by T = 2 is exact in floating point: the same bits
        assert torch.equal(b["energy"], a["energy"]) and torch.equal(b["forces"], a["forces"])
    # and T does matter: the same weights at T = 1 give other energies
    unscaled = _absorbed(hot, 1.0)
    other = unscaled(pos, None, index, z)["energy"].detach()
    assert abs(float(other - a["energy"].detach())) > 1e-6 * abs(float(a["energy"].detach()))
