"""pesprobe.models: the smooth Transformer MLIP (config, network, checkpoints, Potential and ASE wrappers).

Typical use::

    from pesprobe.models import ModelConfig, build_model, save_checkpoint, calculator
    model = build_model(ModelConfig(graph="diffknn", k=16, cutoff=5.0))
    save_checkpoint("model.pt", model)
    atoms.calc = calculator("model.pt")
"""

from pesprobe.models.augment import RotatedBatch, random_rotation, random_rotation_matrices
from pesprobe.models.calculator import PESProbeCalculator, calculator
from pesprobe.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pesprobe.models.config import ConfigError, ModelConfig
from pesprobe.models.potential import StructureResults, TorchPotential, load_potential
from pesprobe.models.transformer import PESTransformer, build_model

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ModelConfig",
    "PESProbeCalculator",
    "PESTransformer",
    "RotatedBatch",
    "StructureResults",
    "TorchPotential",
    "build_model",
    "calculator",
    "load_checkpoint",
    "load_potential",
    "random_rotation",
    "random_rotation_matrices",
    "save_checkpoint",
]
