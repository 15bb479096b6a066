"""The flags of `tunesmith train`, one per setting, derived from the config's declarations.

Every setting that is not internal gets a flag: `--<field-name>` unless its declaration names another
(`--lr`, `--model`, `--reward`), booleans as `--x` / `--no-x` pairs, one-way switches (`--full`) as a
bare flag, lists by repeating the flag.  A flag the user did not type stays None, so it never
overrides a config file.  The flag's help is the setting's help, as the app's tooltip says it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.core.config import ConfigError, RunConfig, Setting, get_value, run_settings, set_value
from tunesmith.core.settings import plain_number

_PARSE = {"int": int, "float": float, "text": str, "choice": str}


def flagged_settings() -> list[Setting]:
    """The settings a command line can set (every one that is not internal)."""
    return [spec for spec in run_settings() if not spec.internal]


SETTING_FLAGS = {spec.path: spec.cli_flag for spec in flagged_settings()}


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, grouped under the config's sections in `--help`."""
    defaults = RunConfig()
    groups: dict[str, Any] = {}
    for spec in flagged_settings():
        section = spec.path.split(".")[0] if "." in spec.path else "run"
        if section not in groups:
            groups[section] = parser.add_argument_group(f"{section} settings")
        _add_flag(groups[section], spec, get_value(defaults, spec.path))


def _add_flag(group: Any, spec: Setting, default: Any) -> None:
    text = _help(spec, default)
    if spec.kind == "bool" and spec.flag_sets is not None:
        group.add_argument(
            spec.cli_flag, dest=spec.path, action="store_const", const=spec.flag_sets, help=text
        )
    elif spec.kind == "bool":
        group.add_argument(spec.cli_flag, dest=spec.path, action=argparse.BooleanOptionalAction, help=text)
    elif spec.kind == "list":
        group.add_argument(spec.cli_flag, dest=spec.path, action="append", metavar="NAME", help=text)
    else:
        choices = [choice for choice in spec.choices if choice is not None] or None
        metavar = None if choices else spec.path.rsplit(".", 1)[-1].upper()
        group.add_argument(
            spec.cli_flag, dest=spec.path, type=_PARSE[spec.kind], choices=choices, metavar=metavar, help=text
        )


def _help(spec: Setting, default: Any) -> str:
    allowed = spec.allowed() if spec.kind in ("int", "float") else ""
    text = spec.help + (f" Allowed: {allowed}." if allowed else "")
    if spec.kind == "list":
        text += " Repeat the flag for each one."
    if isinstance(default, bool) and spec.flag_sets is None:
        text += f" Default: {'on' if default else 'off'}."
    elif default not in (None, [], "") and not isinstance(default, bool):
        shown = ", ".join(default) if isinstance(default, list) else default
        text += f" Default: {plain_number(shown) if isinstance(shown, int | float) else shown}."
    return text.replace("%", "%%")  # argparse formats help with %


def setting_namer(args: argparse.Namespace) -> Callable[[str], str]:
    """How this command line names a setting in a message: the flag the user typed or could type;
    for a setting that came from a config file and was not overridden, its place in that file."""
    source = _config_file(args)
    typed = {path for path in SETTING_FLAGS if getattr(args, path, None) is not None}

    def name(setting: str) -> str:
        flag = SETTING_FLAGS.get(setting)
        if source is None or setting in typed:
            return flag or setting
        return f"{setting} in {source}" + (f" (or {flag})" if flag else "")

    return name


def _config_file(args: argparse.Namespace) -> Path | None:
    if getattr(args, "resume", None):
        return resumed_run_dir(args.resume) / "config.yaml"
    return Path(args.config) if getattr(args, "config", None) else None


def resumed_run_dir(resume: str) -> Path:
    """--resume takes RUN_DIR or one of its checkpoints (RUN_DIR/checkpoints/checkpoint-N)."""
    path = Path(resume).expanduser()
    return path.parent.parent if path.name.startswith("checkpoint-") else path


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The run's config: a resumed run's or a config file's (else the defaults), then the typed flags."""
    if args.resume:
        run_dir = resumed_run_dir(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{args.resume}: not a Tunesmith run folder (it has no config.yaml)")
        config = RunConfig.from_yaml(run_dir / "config.yaml")
    elif args.config:
        config = RunConfig.from_yaml(args.config)
    else:
        config = RunConfig()
    for path in SETTING_FLAGS:
        value = getattr(args, path, None)
        if value is not None:
            set_value(config, path, value)
    return config.validate()
