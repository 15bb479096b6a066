"""RunConfig: YAML round trip, validation that names the field, and unknown keys refused."""

import pytest

from tunesmith.core.config import ConfigError, RunConfig


def test_yaml_round_trip(tmp_path):
    config = RunConfig(output_dir="out", run_name="x")
    config.train.max_steps = 7
    config.lora.target_modules = ["q_proj"]
    config.data.eval_ratio = 0.25
    config.to_yaml(tmp_path / "c.yaml")
    assert RunConfig.from_yaml(tmp_path / "c.yaml") == config
    assert not (tmp_path / "c.yaml.tmp").exists()


def test_unknown_settings_are_errors(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  learning_rat: 0.1\n")
    with pytest.raises(ConfigError, match="train: unknown setting.*learning_rat"):
        RunConfig.from_yaml(tmp_path / "c.yaml")


@pytest.mark.parametrize(
    ("section", "name", "value", "field"),
    [
        ("train", "batch_size", 0, "train.batch_size"),
        ("model", "precision", "3bit", "model.precision"),
        ("train", "method", "ppo", "train.method"),
        ("data", "eval_ratio", 1.5, "data.eval_ratio"),
    ],
)
def test_validation_names_the_field(section, name, value, field):
    config = RunConfig()
    setattr(getattr(config, section), name, value)
    with pytest.raises(ConfigError, match=field):
        config.validate()


def test_bad_yaml_is_reported_with_path(tmp_path):
    (tmp_path / "c.yaml").write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        RunConfig.from_yaml(tmp_path / "c.yaml")
