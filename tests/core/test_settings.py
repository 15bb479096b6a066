"""Each setting is declared once, on the config, and the CLI, validation and the app follow from it.

These tests read the declarations and the real `tunesmith train` parser, so a field added to the config
without a flag (or a flag without a field) fails here, as does a range the defaults break.
"""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from tunesmith.core.cli_commands import add_train, config_from_args
from tunesmith.core.config import ConfigError, RunConfig, Setting, get_value, run_settings, set_value
from tunesmith.core.settings import setting

PUBLIC = [spec for spec in run_settings() if not spec.internal]
# The flags of `tunesmith train` before they were derived from the config: users' scripts use them.
FLAGS_BEFORE = [
    "--model",
    "--precision",
    "--data",
    "--format",
    "--method",
    "--beta",
    "--reward",
    "--reward-file",
    "--num-generations",
    "--max-completion-length",
    "--max-prompt-length",
    "--kl-weight",
    "--max-steps",
    "--epochs",
    "--batch-size",
    "--grad-accum",
    "--lr",
    "--max-length",
    "--lora-r",
    "--lora-alpha",
    "--full",
    "--eval-ratio",
    "--eval-steps",
    "--checkpoint-minutes",
    "--save-steps",
    "--seed",
    "--output",
    "--run-name",
    "--skip-invalid",
    "--no-kernels",
    "--no-fast-rollout",
]
# Flags the issue asked for that the CLI lacked.
FLAGS_ADDED = [
    "--lr-scheduler",
    "--warmup-ratio",
    "--warmup-steps",
    "--weight-decay",
    "--optimizer",
    "--packing",
]


def train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    add_train(parser.add_subparsers(dest="command"))
    return parser


def train_options() -> dict[str, argparse.Action]:
    sub = next(a for a in train_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices["train"]._option_string_actions)


def test_every_setting_is_declared_with_words_and_a_flag_or_a_reason():
    paths = [spec.path for spec in run_settings()]
    assert len(paths) == len(set(paths)) and len(paths) > 40
    for spec in run_settings():
        assert spec.label and len(spec.help) > 30, spec.path
        assert spec.kind in ("int", "float", "bool", "choice", "list", "text"), spec.path
    options = train_options()
    for spec in PUBLIC:
        assert spec.cli_flag in options, f"{spec.path} has no flag {spec.cli_flag}"
        assert options[spec.cli_flag].dest == spec.path
    internal = [spec for spec in run_settings() if spec.internal]
    assert all(spec.cli_flag not in options for spec in internal)


def test_existing_flags_keep_their_names_and_the_missing_ones_exist():
    options = train_options()
    missing = [flag for flag in FLAGS_BEFORE + FLAGS_ADDED if flag not in options]
    assert missing == []


def test_a_field_without_a_declaration_is_refused():
    @dataclasses.dataclass
    class Section:
        declared: int = setting(1, label="Declared", help="A setting with its words, as every one must.")
        bare: int = 2

    @dataclasses.dataclass
    class Config:
        section: Section = dataclasses.field(default_factory=Section)

    from tunesmith.core.settings import declared

    with pytest.raises(TypeError, match="section.bare is declared without setting"):
        list(declared(Config))


def test_the_defaults_satisfy_their_own_ranges_and_choices():
    config = RunConfig().validate()
    for spec in run_settings():
        value = get_value(config, spec.path)
        if spec.choices:
            assert value in spec.choices, spec.path
        if spec.kind in ("int", "float"):
            assert spec.minimum is None or value >= spec.minimum, spec.path
            assert spec.maximum is None or value <= spec.maximum, spec.path


@pytest.mark.parametrize("spec", [s for s in run_settings() if s.minimum is not None], ids=lambda s: s.path)
def test_validation_enforces_each_declared_minimum(spec: Setting):
    config = RunConfig()
    below = spec.minimum - (1 if spec.kind == "int" else spec.minimum * 0.5 + 1e-3)
    set_value(config, spec.path, int(below) if spec.kind == "int" else below)
    with pytest.raises(ConfigError, match=rf"^{spec.path} must be .* or more$"):
        config.validate()


@pytest.mark.parametrize("spec", [s for s in run_settings() if s.maximum is not None], ids=lambda s: s.path)
def test_validation_enforces_each_declared_maximum(spec: Setting):
    config = RunConfig()
    set_value(config, spec.path, int(spec.maximum) + 1 if spec.kind == "int" else spec.maximum * 1.5)
    with pytest.raises(ConfigError, match=rf"^{spec.path} must be .* or less$"):
        config.validate()


@pytest.mark.parametrize("spec", [s for s in run_settings() if s.choices], ids=lambda s: s.path)
def test_validation_enforces_each_declared_choice_list(spec: Setting):
    config = RunConfig()
    set_value(config, spec.path, "no-such-choice")
    with pytest.raises(ConfigError, match=rf"^{spec.path} must be one of "):
        config.validate()


def other_value(spec: Setting, default):
    """A valid value that differs from the default, as a user would type it on the command line."""
    if spec.kind == "bool":
        value = spec.flag_sets if spec.flag_sets is not None else not default
        return value, [spec.cli_flag] if spec.flag_sets is not None or value else [
            "--no-" + spec.cli_flag[2:]
        ]
    if spec.kind == "choice":
        value = next(choice for choice in spec.choices if choice not in (None, default))
        return value, [spec.cli_flag, value]
    if spec.kind == "list":
        return ["length:20", "q_proj"], [spec.cli_flag, "length:20", spec.cli_flag, "q_proj"]
    if spec.kind == "text":
        return "elsewhere", [spec.cli_flag, "elsewhere"]
    high = spec.maximum if spec.maximum is not None else default + 10
    value = (
        (default + high) / 2
        if spec.kind == "float"
        else int(default + 1 if default + 1 <= high else high - 1)
    )
    return value, [spec.cli_flag, str(value)]


@pytest.mark.parametrize("spec", PUBLIC, ids=lambda s: s.path)
def test_each_flag_sets_its_setting_and_nothing_else(spec: Setting):
    default = get_value(RunConfig(), spec.path)
    value, argv = other_value(spec, default)
    config = config_from_args(train_parser().parse_args(["train", *argv]))
    assert get_value(config, spec.path) == value
    expected = RunConfig()
    set_value(expected, spec.path, value)
    assert config == expected


def test_flags_override_a_config_file_and_untyped_flags_do_not(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  lr_scheduler: cosine\n  weight_decay: 0.01\ndata:\n  packing: true\n")
    config = config_from_args(train_parser().parse_args(["train", str(path), "--weight-decay", "0.1"]))
    assert (config.train.lr_scheduler, config.train.weight_decay, config.data.packing) == (
        "cosine",
        0.1,
        True,
    )
    config = config_from_args(train_parser().parse_args(["train", str(path), "--no-packing"]))
    assert config.data.packing is False and config.train.weight_decay == 0.01
