"""The training configuration: ``model:``, ``data:``, ``train:`` and ``bsct:`` sections, validated.

Unknown keys and bad values raise :class:`ConfigError` naming the key (``train.lr``). Relative
paths in a YAML file are taken relative to that file's folder.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """A training configuration with an unknown key or a bad value (the message names the key)."""


@dataclass
class DataConfig:
    """``data:`` — where the labelled structures come from and how they are split.

    Attributes
    ----------
    train : list of str
        Training files (extended XYZ, ASE database or SPICE-layout HDF5).
    valid : list of str
        Validation files; if empty, ``valid_fraction`` of the training molecules are held out.
    valid_fraction : float
        Fraction of structures held out for validation, by molecule (used only without ``valid``).
    seed : int
        Seed of the molecule split.
    energy_key, forces_key : str
        Label names in extended-XYZ files and ASE databases.
    max_force : float, optional
        Drop training and validation structures with a force component above this, eV/Å (null keeps
        all). Strongly compressed bonds (×0.5) give 50–200 eV/Å, which dominate a force MSE.
    """

    train: list[str] = field(default_factory=list)
    valid: list[str] = field(default_factory=list)
    valid_fraction: float = 0.1
    seed: int = 0
    energy_key: str = "energy"
    forces_key: str = "forces"
    max_force: float | None = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` for bad values."""
        if not self.train:
            raise ConfigError("data.train: at least one training file is required")
        _check(0.0 <= self.valid_fraction < 1.0, "data.valid_fraction", "must be in [0, 1)", self.valid_fraction)
        if self.max_force is not None:
            _check(self.max_force > 0, "data.max_force", "must be > 0 (eV/Å) or null", self.max_force)


@dataclass
class LoopConfig:
    """``train:`` — the optimisation.

    Attributes
    ----------
    steps : int, optional
        Optimizer steps; give either ``steps`` or ``epochs``.
    epochs : float, optional
        Passes over the training set (converted to steps with the global batch size).
    batch_size : int
        Global batch size in structures (split evenly across data-parallel ranks).
    valid_batch_size : int
        Structures per forward call during validation.
    lr : float
        Peak learning rate of AdamW.
    weight_decay : float
        AdamW weight decay.
    warmup_steps : int
        Linear warm-up steps, followed by a cosine decay to ``min_lr_ratio * lr``.
    min_lr_ratio : float
        Final learning rate as a fraction of ``lr``.
    energy_weight, forces_weight : float
        Loss weights of the energy-per-atom MSE, 1/(eV/atom)², and the force MSE, 1/(eV/Å)².
        With ``energy_share`` the energy weight is adapted instead and ``energy_weight`` only
        serves until there are running means.
    energy_share : float, optional
        Fraction of the loss the energy term carries on average, in (0, 1) (see
        :class:`pesprobe.train.balance.LossBalance`); null keeps the fixed ``energy_weight``.
    balance_decay : float
        Decay per step of the running MSE means behind ``energy_share``.
    energy_share_ramp : float
        Fraction of the run over which the energy share grows linearly from 0 to ``energy_share``.
    patience : int, optional
        Early stopping: stop after this many evaluations without a better ``valid_score``
        (null: train all steps). ``best.pt`` always holds the best-by-validation model.
    min_delta : float
        Relative improvement of ``valid_score`` that resets the patience.
    ema_decay : float
        Decay of the exponential moving average of the weights (0 disables the average).
    clip_grad_norm : float, optional
        Maximum gradient norm (None disables clipping).
    rotate : bool
        Apply a random rotation to every training structure (augmentation).
    eval_every, ckpt_every, log_every : int
        Validation, checkpoint and training-loss logging intervals, steps.
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA if available).
    dtype : str
        ``"float32"`` or ``"float64"``.
    seed : int
        Seed of the model initialisation, the batch order and the rotations.
    out : str
        Output folder (checkpoints, ``log.jsonl``, ``config.yaml``).
    """

    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 8
    valid_batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01
    energy_weight: float = 1.0
    forces_weight: float = 10.0
    energy_share: float | None = 0.2
    balance_decay: float = 0.99
    energy_share_ramp: float = 0.2
    patience: int | None = None
    min_delta: float = 0.0
    ema_decay: float = 0.99
    clip_grad_norm: float | None = 10.0
    rotate: bool = True
    eval_every: int = 100
    ckpt_every: int = 100
    log_every: int = 10
    device: str = "auto"
    dtype: str = "float32"
    seed: int = 0
    out: str = "runs/train"

    def validate(self) -> None:
        """Raise :class:`ConfigError` for bad values."""
        if (self.steps is None) == (self.epochs is None):
            raise ConfigError("train.steps / train.epochs: give exactly one of them")
        if self.steps is not None:
            _check(self.steps >= 1, "train.steps", "must be >= 1", self.steps)
        if self.epochs is not None:
            _check(self.epochs > 0, "train.epochs", "must be > 0", self.epochs)
        for key in ("batch_size", "valid_batch_size", "eval_every", "ckpt_every", "log_every"):
            _check(getattr(self, key) >= 1, f"train.{key}", "must be >= 1", getattr(self, key))
        _check(self.lr > 0, "train.lr", "must be > 0", self.lr)
        _check(self.weight_decay >= 0, "train.weight_decay", "must be >= 0", self.weight_decay)
        _check(self.warmup_steps >= 0, "train.warmup_steps", "must be >= 0", self.warmup_steps)
        _check(0 <= self.min_lr_ratio <= 1, "train.min_lr_ratio", "must be in [0, 1]", self.min_lr_ratio)
        _check(self.energy_weight >= 0, "train.energy_weight", "must be >= 0", self.energy_weight)
        _check(self.forces_weight >= 0, "train.forces_weight", "must be >= 0", self.forces_weight)
        _check(self.energy_weight + self.forces_weight > 0, "train.energy_weight / train.forces_weight",
               "at least one must be > 0", (self.energy_weight, self.forces_weight))
        if self.energy_share is not None:
            _check(0 < self.energy_share < 1, "train.energy_share", "must be in (0, 1) or null", self.energy_share)
            _check(self.forces_weight > 0, "train.forces_weight", "must be > 0 with train.energy_share (set energy_share: null for fixed weights)",
                   self.forces_weight)
        _check(0 <= self.balance_decay < 1, "train.balance_decay", "must be in [0, 1)", self.balance_decay)
        _check(0 <= self.energy_share_ramp <= 1, "train.energy_share_ramp", "must be in [0, 1]",
               self.energy_share_ramp)
        if self.patience is not None:
            _check(self.patience >= 1, "train.patience", "must be >= 1 or null", self.patience)
        _check(0 <= self.min_delta < 1, "train.min_delta", "must be in [0, 1)", self.min_delta)
        _check(0 <= self.ema_decay < 1, "train.ema_decay", "must be in [0, 1)", self.ema_decay)
        if self.clip_grad_norm is not None:
            _check(self.clip_grad_norm > 0, "train.clip_grad_norm", "must be > 0 or null", self.clip_grad_norm)
        _check(self.dtype in ("float32", "float64"), "train.dtype", "must be 'float32' or 'float64'", self.dtype)
        device = self.device.split(":")[0]
        _check(device in ("cpu", "cuda", "auto"), "train.device", "must be 'cpu', 'cuda', 'cuda:N' or 'auto'",
               self.device)


@dataclass
class BSCTConfig:
    """``bsct:`` — BSCT in the training loop (optional section).

    Attributes
    ----------
    scans : str
        A scan set :func:`pesprobe.data.load_scans` reads (published layout folder or compact file).
    every : int
        Run BSCT every this many steps (and at the last step).
    batch_frames : int
        Frames per forward call of the batched model.
    """

    scans: str = ""
    every: int = 500
    batch_frames: int = 64

    def validate(self) -> None:
        """Raise :class:`ConfigError` for bad values."""
        if not self.scans:
            raise ConfigError("bsct.scans: a scan set path is required when the bsct section is given")
        _check(self.every >= 1, "bsct.every", "must be >= 1", self.every)
        _check(self.batch_frames >= 1, "bsct.batch_frames", "must be >= 1", self.batch_frames)


@dataclass
class TrainConfig:
    """The whole training configuration.

    Attributes
    ----------
    model : dict
        Overrides of :class:`pesprobe.models.ModelConfig` (validated by it).
    data : DataConfig
    train : LoopConfig
    bsct : BSCTConfig, optional
    """

    model: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    train: LoopConfig = field(default_factory=LoopConfig)
    bsct: BSCTConfig | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base_dir: str | Path | None = None) -> TrainConfig:
        """Build and validate a configuration from nested dicts.

        Parameters
        ----------
        raw : dict
            Sections ``model``, ``data``, ``train`` and (optional) ``bsct``.
        base_dir : str or Path, optional
            Folder that relative paths (data files, scans, ``train.out``) are relative to.

        Raises
        ------
        ConfigError
            Naming the first unknown key or bad value.
        """
        if not isinstance(raw, dict):
            raise ConfigError(f"configuration must be a mapping of sections, got {type(raw).__name__}")
        known = {"model", "data", "train", "bsct"}
        for key in raw:
            if key not in known:
                raise ConfigError(f"{key}: unknown section (known: {', '.join(sorted(known))})")
        model = raw.get("model") or {}
        if not isinstance(model, dict):
            raise ConfigError(f"model: must be a mapping of ModelConfig fields, got {type(model).__name__}")
        data = _section(DataConfig, raw.get("data") or {}, "data")
        loop = _section(LoopConfig, raw.get("train") or {}, "train")
        bsct = _section(BSCTConfig, raw["bsct"], "bsct") if raw.get("bsct") is not None else None
        if base_dir is not None:
            base = Path(base_dir)
            data.train = [_resolve(base, p) for p in data.train]
            data.valid = [_resolve(base, p) for p in data.valid]
            loop.out = _resolve(base, loop.out)
            if bsct is not None and bsct.scans:
                bsct.scans = _resolve(base, bsct.scans)
        config = cls(model=dict(model), data=data, train=loop, bsct=bsct)
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a YAML configuration file; relative paths are relative to its folder."""
        import yaml

        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read configuration ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        try:
            return cls.from_dict(raw or {}, base_dir=path.parent)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def validate(self) -> None:
        """Validate every section, the model overrides included (through ``ModelConfig.from_dict``)."""
        self.data.validate()
        self.train.validate()
        if self.bsct is not None:
            self.bsct.validate()
        self.model_config()

    def model_config(self):
        """The :class:`pesprobe.models.ModelConfig` these overrides give, in ``train.dtype``.

        Raises
        ------
        ConfigError
            For a bad model field, or a ``model.dtype`` that contradicts ``train.dtype``.
        """
        from pesprobe.models import ModelConfig

        dtype = self.model.get("dtype", self.train.dtype)
        if dtype != self.train.dtype:
            raise ConfigError(f"model.dtype: {dtype!r} contradicts train.dtype {self.train.dtype!r}; "
                              "set the dtype in the train section only")
        try:
            return ModelConfig.from_dict({**self.model, "dtype": self.train.dtype})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dicts (YAML/JSON ready); :meth:`from_dict` inverts it."""
        out = {"model": dict(self.model), "data": dataclasses.asdict(self.data),
               "train": dataclasses.asdict(self.train)}
        if self.bsct is not None:
            out["bsct"] = dataclasses.asdict(self.bsct)
        return out


def _resolve(base: Path, path: str) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)


def _check(ok: bool, key: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key}: {rule}, got {value!r}")


def _section(cls: type, raw: Any, name: str):
    """Build dataclass ``cls`` from mapping ``raw``, coercing values to the annotated types."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        if key not in hints:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(names)})")
        values[key] = _coerce(value, hints[key], f"{name}.{key}")
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` as type ``hint`` (int, float, bool, str, list[str], or an optional of one)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key)
    if typing.get_origin(hint) is list:
        items = [value] if isinstance(value, str | Path) else value
        if not isinstance(items, list) or not all(isinstance(v, str | Path) for v in items):
            raise ConfigError(f"{key}: must be a path or a list of paths, got {value!r}")
        return [str(v) for v in items]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: must be a number, got {value!r}")
        try:  # YAML reads "1e-3" (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: must be a number, got {value!r}") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: must be a string, got {value!r}")
        return value
    raise TypeError(f"{key}: unsupported annotation {hint!r}")
