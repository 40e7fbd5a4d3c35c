"""The one configuration object of the Transformer MLIP: every architectural choice is a field."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

GRAPH_MODES = ("radius", "knn", "diffknn")
DIFFKNN_COMBINE = ("or", "and")
FORCE_HEADS = ("conservative", "direct")
DTYPES = ("float32", "float64")
ACTIVATIONS = ("silu", "gelu", "tanh")


class ConfigError(ValueError):
    """A model configuration value that cannot be used; the message names the field."""


@dataclass
class ModelConfig:
    """Hyper-parameters of :class:`~pesprobe.models.PESTransformer`.

    Attributes
    ----------
    cutoff : float
        Interaction cutoff r_c in Å. No neighbour at or beyond it carries weight.
    graph : str
        Neighbour graph: ``"radius"`` (all j with d_ij < r_c, smooth envelope), ``"knn"`` (hard k
        nearest within r_c; the abrupt baseline) or ``"diffknn"`` (differentiable k nearest).
    k : int
        Number of nearest neighbours for ``knn`` and ``diffknn``.
    softrank_scale : float
        s in Å: width of the logistic in the soft rank R_i(j) = Σ_l σ((d_ij − d_il)/s).
    smooth_tau : float
        τ (dimensionless) of the smooth minimum/maximum that combines the soft ranks and d_ij/r_c.
    diffknn_combine : str
        ``"or"`` (default): keep (i, j) if j is among i's k nearest OR i among j's, AND d_ij < r_c.
        ``"and"``: the literal three-way smooth maximum (mutual k nearest AND d_ij < r_c).
    candidate_margin : float
        δ in Å: candidates for the soft rank are searched out to r_c + δ; a candidate's vote in the
        rank fades smoothly to zero between r_c and r_c + δ so that candidates enter and leave the
        list without a jump.
    n_rbf : int
        Number of Gaussian radial functions, centred on linspace(0, r_c, n_rbf).
    rbf_width : float
        Gaussian width as a multiple of the centre spacing (1 narrow, 2 "broadened").
    d_model : int
        Width of token and node features.
    n_heads : int
        Attention heads; must divide ``d_model``.
    n_blocks : int
        Number of Transformer blocks (one readout after each).
    ff_mult : int
        Hidden width of the feed-forward layers as a multiple of ``d_model``.
    embed_dim : int
        Width of the element embedding used in the token MLP.
    readout_dim : int
        Width of each block's readout; the concatenation feeds the per-atom energy MLP.
    attention_temperature : float or list of float
        T: attention logits q·k/√d_head are divided by T (T > 1 flattens). One value for all
        blocks or one per block; the initial value when learnable.
    learnable_temperature : bool
        If True each block learns T = softplus(θ) (always positive), initialised to the value above.
    message_passing : bool
        If True, from the second block on each token (i, j) receives the node state of atom j, so
        information travels beyond the first neighbour shell.
    force_head : str
        ``"conservative"`` (F = −∂E/∂r, stress from the strain derivative) or ``"direct"``
        (F_i = Σ_j w_ij v_ij û_ij from the final tokens; energy and forces need not agree).
    activation : str
        Non-linearity of all MLPs.
    dtype : str
        ``"float32"`` or ``"float64"``: the dtype :func:`build_model` creates the weights in.
    max_atomic_number : int
        Largest atomic number the embeddings cover.
    """

    cutoff: float = 5.0
    graph: str = "diffknn"
    k: int = 16
    softrank_scale: float = 0.2
    smooth_tau: float = 0.1
    diffknn_combine: str = "or"
    candidate_margin: float = 1.0
    n_rbf: int = 24
    rbf_width: float = 2.0
    d_model: int = 64
    n_heads: int = 4
    n_blocks: int = 3
    ff_mult: int = 2
    embed_dim: int = 32
    readout_dim: int = 32
    attention_temperature: float | list[float] = 1.0
    learnable_temperature: bool = False
    message_passing: bool = True
    force_head: str = "conservative"
    activation: str = "silu"
    dtype: str = "float32"
    max_atomic_number: int = 118

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field; raise :class:`ConfigError` naming the first bad one."""
        for name in ("cutoff", "softrank_scale", "smooth_tau", "rbf_width"):
            _positive_float(name, getattr(self, name))
        _nonnegative_float("candidate_margin", self.candidate_margin)
        for name in ("k", "n_rbf", "d_model", "n_heads", "n_blocks", "ff_mult", "embed_dim", "readout_dim",
                     "max_atomic_number"):
            _positive_int(name, getattr(self, name))
        _choice("graph", self.graph, GRAPH_MODES)
        _choice("diffknn_combine", self.diffknn_combine, DIFFKNN_COMBINE)
        _choice("force_head", self.force_head, FORCE_HEADS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("dtype", self.dtype, DTYPES)
        for name in ("learnable_temperature", "message_passing"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"ModelConfig.{name} must be true or false, got {getattr(self, name)!r}")
        if self.n_rbf < 2:
            raise ConfigError(f"ModelConfig.n_rbf must be at least 2, got {self.n_rbf}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"ModelConfig.d_model ({self.d_model}) must be divisible by "
                              f"ModelConfig.n_heads ({self.n_heads})")
        if self.graph == "diffknn" and self.candidate_margin <= 0:
            raise ConfigError("ModelConfig.candidate_margin must be > 0 for graph='diffknn' "
                              f"(candidates must fade out beyond the cutoff), got {self.candidate_margin}")
        temps = self.temperatures()
        for index, value in enumerate(temps):
            _positive_float(f"attention_temperature[{index}]", value)

    def temperatures(self) -> list[float]:
        """The initial attention temperature of each block (length ``n_blocks``)."""
        value = self.attention_temperature
        if isinstance(value, (list, tuple)):
            if len(value) != self.n_blocks:
                raise ConfigError(f"ModelConfig.attention_temperature has {len(value)} values but "
                                  f"n_blocks is {self.n_blocks}; give one value or one per block")
            return list(value)
        return [value] * self.n_blocks

    @property
    def candidate_cutoff(self) -> float:
        """Cutoff in Å of the cell-list candidate search."""
        return self.cutoff + (self.candidate_margin if self.graph == "diffknn" else 0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dictionary (JSON/YAML friendly)."""
        out = asdict(self)
        if isinstance(out["attention_temperature"], tuple):
            out["attention_temperature"] = list(out["attention_temperature"])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a dictionary; unknown keys are an error (a typo would otherwise be ignored)."""
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown ModelConfig field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)


def _positive_float(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"ModelConfig.{name} must be a finite number > 0, got {value!r}")


def _nonnegative_float(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"ModelConfig.{name} must be a finite number >= 0, got {value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"ModelConfig.{name} must be a positive integer, got {value!r}")


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"ModelConfig.{name} must be one of {', '.join(options)}; got {value!r}")
