"""Building blocks of the Transformer: radial basis, MLP, temperature-controlled token attention block."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from pesprobe.models.config import ModelConfig

_ACTIVATIONS = {"silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh}

#: Logit bias of empty (padding) slots: exp(−1e9 − max) is exactly 0 in float32 and float64.
PAD_BIAS = -1.0e9


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (see ``ModelConfig.activation``)."""
    return _ACTIVATIONS[name]()


def mlp(d_in: int, d_hidden: int, d_out: int, act: str) -> nn.Sequential:
    """Two-layer perceptron d_in → d_hidden → d_out with one activation."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), activation(act), nn.Linear(d_hidden, d_out))


class GaussianRBF(nn.Module):
    """Gaussian smearing of distances: centres linspace(0, r_c, n), width = ``width`` × spacing.

    Parameters
    ----------
    cutoff : float
        r_c in Å.
    n : int
        Number of Gaussians.
    width : float
        Width in units of the centre spacing (1 narrow, 2 broadened).
    """

    def __init__(self, cutoff: float, n: int, width: float) -> None:
        super().__init__()
        centres = torch.linspace(0.0, cutoff, n)
        self.register_buffer("centres", centres)
        self.sigma = width * cutoff / (n - 1)

    def forward(self, distance: torch.Tensor) -> torch.Tensor:
        """Distances (n,) in Å → features (n, n_rbf)."""
        return torch.exp(-0.5 * ((distance[:, None] - self.centres) / self.sigma) ** 2)


def _inverse_softplus(value: float) -> float:
    return value + math.log(-math.expm1(-value))


class TokenBlock(nn.Module):
    """One pre-norm residual block over the neighbour tokens of every atom.

    Token update: t ← t + MHA(LN(t)), self-attention among the tokens of one atom with logits
    q·k/(√d_head · T) + log w (key's edge weight; padding slots get −1e9); then t ← t + FF(LN(t)).
    Node update: h ← h + Linear(Σ_j w_ij t_ij / k) (masked, weighted sum), h ← h + FF(LN(h)).
    A readout Linear(LN(h)) gives this block's contribution to the per-atom energy features.

    Parameters
    ----------
    config : ModelConfig
    temperature : float
        Initial (or fixed) attention temperature T of this block.
    """

    def __init__(self, config: ModelConfig, temperature: float) -> None:
        super().__init__()
        d = config.d_model
        self.n_heads = config.n_heads
        self.d_head = d // config.n_heads
        self.pool_norm = float(config.k)
        self.norm_attn = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm_tok = nn.LayerNorm(d)
        self.ff_tok = mlp(d, config.ff_mult * d, d, config.activation)
        self.pool = nn.Linear(d, d)
        self.norm_node = nn.LayerNorm(d)
        self.ff_node = mlp(d, config.ff_mult * d, d, config.activation)
        self.norm_readout = nn.LayerNorm(d)
        self.readout = nn.Linear(d, config.readout_dim)
        self.learnable_temperature = config.learnable_temperature
        if config.learnable_temperature:
            self.temperature_raw = nn.Parameter(torch.tensor(_inverse_softplus(temperature)))
        else:
            self.register_buffer("temperature_raw", torch.tensor(float(temperature)))

    @property
    def temperature(self) -> torch.Tensor:
        """T > 0 (softplus of the parameter when learnable)."""
        if self.learnable_temperature:
            return F.softplus(self.temperature_raw)
        return self.temperature_raw

    def attention(self, tokens: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Multi-head attention among each atom's tokens.

        Parameters
        ----------
        tokens : Tensor, shape (n_atoms, n_slots, d_model)
        bias : Tensor, shape (n_atoms, n_slots)
            log w of each key slot (``PAD_BIAS`` for empty slots).
        """
        n_atoms, n_slots, d = tokens.shape
        x = self.norm_attn(tokens)
        # q, k, v from row blocks of the one projection: three products instead of splitting a
        # (…, 3d) output, whose backward pass would re-stack (copy) the three gradients
        q, k, v = (F.linear(x, self.qkv.weight[part * d:(part + 1) * d], self.qkv.bias[part * d:(part + 1) * d])
                   .view(n_atoms, n_slots, self.n_heads, self.d_head) for part in range(3))
        logits = torch.einsum("ashd,athd->ahst", q, k) / (math.sqrt(self.d_head) * self.temperature)
        weights = torch.softmax(logits + bias[:, None, None, :], dim=-1)
        mixed = torch.einsum("ahst,athd->ashd", weights, v).reshape(n_atoms, n_slots, d)
        return self.out(mixed)

    def forward(self, tokens: torch.Tensor, nodes: torch.Tensor, bias: torch.Tensor, weight: torch.Tensor,
                update_tokens: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Update tokens (n_atoms, n_slots, d) and nodes (n_atoms, d); return both and the readout (n_atoms, readout_dim).

        ``weight`` (n_atoms, n_slots) is w_ij per slot, zero for padding. With ``update_tokens``
        False the token feed-forward is skipped (the last block, when nothing reads its tokens).
        """
        tokens = tokens + self.attention(tokens, bias)
        pooled = (weight[:, :, None] * tokens).sum(dim=1) / self.pool_norm
        nodes = nodes + self.pool(pooled)
        nodes = nodes + self.ff_node(self.norm_node(nodes))
        if update_tokens:
            tokens = tokens + self.ff_tok(self.norm_tok(tokens))
        return tokens, nodes, self.readout(self.norm_readout(nodes))
