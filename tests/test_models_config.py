"""ModelConfig validation and serialisation."""

from __future__ import annotations

import pytest

from pesprobe.models import ConfigError, ModelConfig, build_model


@pytest.mark.parametrize(("field", "value"), [
    ("cutoff", 0.0),
    ("cutoff", float("nan")),
    ("graph", "delaunay"),
    ("k", 0),
    ("k", 2.5),
    ("k", True),
    ("softrank_scale", -0.2),
    ("smooth_tau", 0),
    ("diffknn_combine", "xor"),
    ("candidate_margin", -1.0),
    ("n_rbf", 1),
    ("rbf_width", "wide"),
    ("n_heads", 3),
    ("n_blocks", 0),
    ("force_head", "hybrid"),
    ("activation", "relu6"),
    ("dtype", "float16"),
    ("learnable_temperature", "yes"),
    ("attention_temperature", 0.0),
    ("attention_temperature", [1.0, 2.0]),
])
def test_bad_config_value_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field.split("[")[0]):
        ModelConfig(**{field: value})


def test_diffknn_needs_a_candidate_margin() -> None:
    with pytest.raises(ConfigError, match="candidate_margin"):
        ModelConfig(graph="diffknn", candidate_margin=0.0)
    assert ModelConfig(graph="knn", candidate_margin=0.0).candidate_cutoff == 5.0


def test_from_dict_round_trip_and_unknown_key() -> None:
    config = ModelConfig(graph="knn", k=8, attention_temperature=[1.0, 2.0, 0.5], learnable_temperature=True)
    again = ModelConfig.from_dict(config.to_dict())
    assert again == config
    assert again.temperatures() == [1.0, 2.0, 0.5]
    with pytest.raises(ConfigError, match="cutof"):
        ModelConfig.from_dict({"cutof": 5.0})
    with pytest.raises(ConfigError, match="mapping"):
        ModelConfig.from_dict(["cutoff", 5.0])


def test_default_model_size_is_modest() -> None:
    n_params = sum(p.numel() for p in build_model(ModelConfig()).parameters())
    assert 100_000 <= n_params <= 300_000


def test_learnable_temperature_is_positive_parameter() -> None:
    model = build_model(ModelConfig(n_blocks=2, attention_temperature=[0.5, 3.0], learnable_temperature=True))
    temps = [float(block.temperature.detach()) for block in model.blocks]
    assert temps == pytest.approx([0.5, 3.0], rel=1e-5)
    names = {name for name, _ in model.named_parameters()}
    assert "blocks.0.temperature_raw" in names
    fixed = build_model(ModelConfig(attention_temperature=2.0))
    assert "blocks.0.temperature_raw" not in {name for name, _ in fixed.named_parameters()}
