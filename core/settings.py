"""How a setting is declared once and read everywhere: its metadata, its errors, its checks.

Each field of the run configuration (`core.config`) carries a `Setting` in its dataclass metadata: the
label the app's form shows, one help paragraph (the form's tooltip and the CLI's `--help`), the range
and choices that validation enforces, whether it is advanced, which training methods use it, and the
CLI flag when it is not `--<field-name>`.  The CLI's `tunesmith train` flags, the Train tab's form and
`RunConfig.validate()` are all derived from these declarations, so a setting cannot be offered in one
place and forgotten in another.  Plain data: no Qt, no argparse, no knowledge of the config's fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

_NO_DEFAULT: Any = dataclasses.MISSING


@dataclass(frozen=True)
class Setting:
    """What one config field is, for people: filled in by `setting()`, completed by `declared()`."""

    label: str
    help: str
    # Inclusive bounds for numbers (None: unbounded on that side); the form's spin boxes use them too.
    minimum: float | None = None
    maximum: float | None = None
    # The range people normally use: a value outside it is allowed but warned about before a run starts.
    usual: tuple[float, float] | None = None
    # What the minimum means, when it is a switch rather than a number (max_steps -1: "use epochs").
    minimum_means: str = ""
    # value -> what it means in words, in the order offered.  A None key is the "automatic" choice.
    choices: Mapping[str | None, str] = field(default_factory=dict)
    advanced: bool = False
    # The training methods that use it (empty: every method).
    methods: tuple[str, ...] = ()
    # The CLI flag, when not `--<field name with dashes>`.  Booleans get `--no-...` as well.
    flag: str = ""
    # A one-way switch: the flag takes no value and sets the setting to this one (`--full` -> LoRA off).
    flag_sets: Any = None
    # Why the setting has no flag and no form field (empty: it has both).
    internal: str = ""
    # How the form edits a number: the arrow step and the decimals shown.
    step: float = 1
    decimals: int = 0
    # What an empty text field means (shown greyed in it).
    placeholder: str = ""
    # Completed by declared(): the dotted path ("train.learning_rate") and the kind of value it holds.
    path: str = ""
    kind: str = ""  # "int" | "float" | "bool" | "choice" | "list" | "text"
    optional: bool = False  # None is a valid value ("automatic" or "none")

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.path.rsplit(".", 1)[-1].replace("_", "-")

    def allowed(self) -> str:
        """The allowed range in words: "between 1 and 512", "0 or more", "" when unbounded."""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"between {plain_number(low)} and {plain_number(high)}"
        if low is not None:
            return f"{plain_number(low)} or more"
        return f"{plain_number(high)} or less" if high is not None else ""

    def usual_range(self) -> str:
        """The usual range in words ("1 to 128"), "" when none is declared."""
        return f"{plain_number(self.usual[0])} to {plain_number(self.usual[1])}" if self.usual else ""


def plain_number(value: float) -> str:
    """A number as a setting's words show it: 512, 0.5, 1e-07 (never 1.04858e+06 or 512.0)."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def setting(default: Any = _NO_DEFAULT, *, default_factory: Any = _NO_DEFAULT, **info: Any) -> Any:
    """A dataclass field with its `Setting` attached: `batch_size: int = setting(2, label=..., help=...)`."""
    metadata = {"setting": Setting(**info)}
    if default_factory is not _NO_DEFAULT:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def declared(config_class: type, prefix: str = "") -> Iterator[Setting]:
    """Every setting of a config dataclass, nested sections included, in declaration order."""
    for declared_field in dataclasses.fields(config_class):
        path = f"{prefix}{declared_field.name}"
        section = _section_class(declared_field)
        if section is not None:
            yield from declared(section, prefix=path + ".")
            continue
        info = declared_field.metadata.get("setting")
        if info is None:
            raise TypeError(f"{path} is declared without setting(...): give it a label and help")
        annotation = str(declared_field.type)
        yield dataclasses.replace(
            info,
            path=path,
            kind=_kind(annotation, info),
            optional=annotation.endswith(" | None"),
        )


def _section_class(declared_field: dataclasses.Field) -> type | None:
    factory = declared_field.default_factory
    if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
        return factory  # a section: `model: ModelConfig = field(default_factory=ModelConfig)`
    return None


def _kind(annotation: str, info: Setting) -> str:
    if info.choices:
        return "choice"
    base = annotation.removesuffix(" | None")
    return {"int": "int", "float": "float", "bool": "bool", "list[str]": "list"}.get(base, "text")


def get_value(config: Any, path: str) -> Any:
    """Read a dotted setting ("train.learning_rate", or "output_dir" at the top) from a config."""
    holder, name = _holder(config, path)
    return getattr(holder, name)


def set_value(config: Any, path: str, value: Any) -> None:
    """Write a dotted setting into a config."""
    holder, name = _holder(config, path)
    setattr(holder, name, value)


def _holder(config: Any, path: str) -> tuple[Any, str]:
    *sections, name = path.split(".")
    for section in sections:
        config = getattr(config, section)
    return config, name


class SettingsNamedError(ValueError):
    """An error whose message names settings, worded by whichever interface shows it.

    The message is a template in which `{train.rewards}` stands for a setting; `str()` gives the config
    paths (what a config.yaml user reads), `worded(name)` lets the CLI say `--reward` and the app its
    field label, so a person reads the name of the thing they actually typed or clicked.
    """

    def __init__(self, template: str, settings: tuple[str, ...] = ()):
        self.template = template
        self.settings = tuple(settings)
        super().__init__(self.worded(lambda setting: setting))

    def worded(self, name: Callable[[str], str]) -> str:
        text = self.template
        for setting_path in self.settings:
            text = text.replace("{" + setting_path + "}", name(setting_path))
        return text


class ConfigError(SettingsNamedError):
    """A setting is missing, unknown or out of range; the message names the field."""

    @classmethod
    def about(cls, setting_path: str, problem: str) -> ConfigError:
        """`{setting} <problem>`, e.g. about("train.batch_size", "must be 1 or more")."""
        return cls("{" + setting_path + "} " + problem, (setting_path,))


def worded(exc: BaseException, name: Callable[[str], str]) -> str:
    """The message of any exception, its settings named by `name` where it names any."""
    return exc.worded(name) if isinstance(exc, SettingsNamedError) else str(exc)


# A setting's annotation (a string: `from __future__ import annotations`) -> accepted types, in words.
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "int": ((int,), "a whole number"),
    "float": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "str": ((str,), "text"),
    "list[str]": ((list,), "a list of names"),
}


def check_declared(config: Any, settings: Iterator[Setting]) -> None:
    """Raise ConfigError naming the first setting whose value has the wrong type, is not one of its
    choices or lies outside its range."""
    for spec in settings:
        value = get_value(config, spec.path)
        if value is None and spec.optional:
            continue
        problem = _type_problem(spec, value) or _value_problem(spec, value)
        if problem:
            raise ConfigError.about(spec.path, problem)


class UnusualSetting(SettingsNamedError):
    """A value inside the allowed range but far from what people normally use (a warning, not an error)."""


def unusual_values(config: Any, settings: Iterator[Setting]) -> list[UnusualSetting]:
    """Settings whose value lies outside their usual range, each worded with that range.

    Call after `check_declared`: the values have their declared types by then.
    """
    found = []
    for spec in settings:
        value = get_value(config, spec.path)
        if spec.usual is None or value is None or isinstance(value, bool):
            continue
        low, high = spec.usual
        if not low <= value <= high:
            found.append(
                UnusualSetting(
                    "{"
                    + spec.path
                    + "} is "
                    + f"{plain_number(value)}, far from the usual {spec.usual_range()}",
                    (spec.path,),
                )
            )
    return found


def _type_problem(spec: Setting, value: Any) -> str:
    base = {"choice": "str", "text": "str", "list": "list[str]"}.get(spec.kind, spec.kind)
    types, words = _TYPES[base]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        return f"must be {words}, not {value!r}"
    return ""


def _value_problem(spec: Setting, value: Any) -> str:
    if spec.choices and value not in spec.choices:
        return "must be one of " + ", ".join(str(choice) for choice in spec.choices if choice is not None)
    if spec.kind in ("int", "float"):
        if spec.minimum is not None and value < spec.minimum:
            return f"must be {plain_number(spec.minimum)} or more"
        if spec.maximum is not None and value > spec.maximum:
            return f"must be {plain_number(spec.maximum)} or less"
    return ""
