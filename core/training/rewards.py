"""Reward functions for GRPO: built-in ones by name, and the user's own from a Python file.

Every reward has TRL's signature `reward(prompts, completions, **columns) -> list[float]`, where a
completion is a list of messages (conversational data) and `columns` holds the dataset's other
fields, e.g. `answer`.  A user's file defines one or more such functions; errors in it are reported
with its own traceback, attributed to the file, never as ours.

Built-ins (names usable in `train.rewards`):
- `exact_match`: 1.0 when the last number (or the whole answer text) equals the reference answer.
- `format:<regex>`: 1.0 when the completion matches the regular expression (re.search, DOTALL).
- `length:<words>`: 1.0 at the target length in words, 1 - |words - target| / max(words, target) otherwise.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

RewardFunction = Callable[..., list[float]]
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?")


class RewardFileError(ValueError):
    """The user's reward file could not be loaded or raised; the message quotes their traceback."""


def completion_text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if isinstance(m, dict))


def normalize_answer(text: str) -> str:
    """The last number in the text ("1,000.50" -> "1000.5"), or the lowercased text without punctuation."""
    numbers = _NUMBER.findall(text or "")
    if numbers:
        value = float(numbers[-1].replace(",", ""))
        return str(int(value)) if value.is_integer() else repr(value)
    return re.sub(r"[^\w\s]", "", (text or "").lower()).strip()


def exact_match(prompts: list, completions: list, answer: list | None = None, **_: Any) -> list[float]:
    if answer is None:
        raise ValueError("exact_match needs an 'answer' (or solution/reference) field in the dataset")
    return [
        float(bool(ref) and normalize_answer(completion_text(c)) == normalize_answer(str(ref)))
        for c, ref in zip(completions, answer, strict=True)
    ]


def format_reward(pattern: str) -> RewardFunction:
    regex = re.compile(pattern, re.DOTALL)

    def format_match(prompts: list, completions: list, **_: Any) -> list[float]:
        return [float(regex.search(completion_text(c)) is not None) for c in completions]

    format_match.__name__ = "format"
    return format_match


def length_reward(target_words: int) -> RewardFunction:
    def length_target(prompts: list, completions: list, **_: Any) -> list[float]:
        scores = []
        for completion in completions:
            words = len(completion_text(completion).split())
            # Relative distance keeps a gradient even far from the target (GRPO needs varied rewards).
            scores.append(1.0 - abs(words - target_words) / max(words, target_words))
        return scores

    length_target.__name__ = "length"
    return length_target


def builtin_reward(spec: str) -> RewardFunction:
    name, _, argument = spec.partition(":")
    if name == "exact_match":
        return exact_match
    if name == "format" and argument:
        try:
            return format_reward(argument)
        except re.error as exc:
            raise ValueError(f"train.rewards: bad regular expression in '{spec}': {exc}") from None
    if name == "length" and argument.isdigit() and int(argument) > 0:
        return length_reward(int(argument))
    raise ValueError(
        f"train.rewards: unknown reward '{spec}'. Use exact_match, format:<regex> or length:<words>"
    )


def load_reward_file(path: str | Path) -> list[RewardFunction]:
    """Every public function named `reward*` in the file (or all public functions if none is)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RewardFileError(f"{path}: reward file not found")
    spec = importlib.util.spec_from_file_location(f"tunesmith_user_reward_{path.stem}", path)
    assert spec is not None and spec.loader is not None  # a .py file path always has both
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise RewardFileError(
            f"{path}: your reward file failed to load:\n{_user_traceback(exc, path)}"
        ) from None
    functions = [
        f
        for n, f in inspect.getmembers(module, inspect.isfunction)
        if f.__module__ == module.__name__ and not n.startswith("_")
    ]
    chosen = [f for f in functions if f.__name__.startswith("reward")] or functions
    if not chosen:
        raise RewardFileError(
            f"{path}: defines no function; write def reward(prompts, completions, **kwargs)"
        )
    return [_guarded(f, path) for f in chosen]


def _guarded(function: RewardFunction, path: Path) -> RewardFunction:
    """Wrap a user function so its errors and wrong return values name their file."""

    def call(prompts: list, completions: list, **kwargs: Any) -> list[float]:
        try:
            scores = function(prompts=prompts, completions=completions, **kwargs)
        except Exception as exc:
            raise RewardFileError(
                f"{path}: your reward function '{function.__name__}' raised an error:\n{_user_traceback(exc, path)}"
            ) from None
        if not isinstance(scores, (list, tuple)) or len(scores) != len(completions):
            raise RewardFileError(
                f"{path}: '{function.__name__}' must return a list of {len(completions)} numbers, got {scores!r:.80}"
            )
        return [float(s) for s in scores]

    call.__name__ = function.__name__
    return call


def _user_traceback(exc: BaseException, path: Path) -> str:
    """Only the frames from the user's file (and the error line), not Tunesmith's or TRL's."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).resolve() == path.resolve()
    ]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def build_rewards(specs: list[str], reward_file: str | None) -> list[RewardFunction]:
    rewards = [builtin_reward(s) for s in specs]
    if reward_file:
        rewards += load_reward_file(reward_file)
    if not rewards:
        raise ValueError("GRPO needs at least one reward: set train.rewards and/or train.reward_file")
    return rewards
