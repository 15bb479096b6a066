"""A local judge: a GGUF model the user picks compares base and tuned answers, pairwise, offline.

The judge runs in llama.cpp's child process, as the app's chat does (`LlamaCppChat`: a native crash
ends only the child, with words).  Each prompt is judged twice, once with the base answer shown first
and once with the tuned answer first, because small judges favour one position; averaging both orders
cancels that bias.  The judge answers greedily in one line, "Verdict: A|B|tie - reason".  A reply
without a readable verdict is counted as unparsable, never dropped or guessed.  The tuned model's win
rate is (wins + ½ ties) / readable verdicts, with a 95% Wilson interval (metrics.wilson_interval).
Knows the judge's prompt and replies; not llama.cpp itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .answers import AnswerPair
from .metrics import wilson_interval

JUDGE_SYSTEM = (
    "You are a strict, fair judge of answers. Compare two answers to the same question and pick the "
    "better one: correct, helpful and, when a reference answer is given, close to it."
)
_VERDICT = re.compile(r"verdict\s*[:\-]?\s*\**\s*(answer\s+)?(?P<v>a|b|tie)\b", re.IGNORECASE)
_LEADING = re.compile(r"^\W*(answer\s+)?(?P<v>a|b|tie)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    where: str
    tuned_first: bool  # which answer the judge saw as "A"
    winner: str  # "tuned" | "base" | "tie" | "unparsable"
    reason: str  # the judge's one line (its whole reply, cut, when unparsable)

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "tuned_first": self.tuned_first,
            "winner": self.winner,
            "reason": self.reason,
        }


@dataclass
class JudgeResult:
    judge: str  # the GGUF's file name
    verdicts: list[Verdict] = field(default_factory=list)

    def count(self, winner: str) -> int:
        return sum(v.winner == winner for v in self.verdicts)

    @property
    def readable(self) -> int:
        return len(self.verdicts) - self.count("unparsable")

    def win_rate(self) -> tuple[float, float, float] | None:
        """(rate, low, high) of the tuned model; None when no verdict could be read."""
        n = self.readable
        if n == 0:
            return None
        wins = self.count("tuned") + 0.5 * self.count("tie")
        low, high = wilson_interval(wins, n)
        return wins / n, low, high

    def to_dict(self) -> dict[str, Any]:
        rate = self.win_rate()
        return {
            "judge": self.judge,
            "tuned_wins": self.count("tuned"),
            "base_wins": self.count("base"),
            "ties": self.count("tie"),
            "unparsable": self.count("unparsable"),
            "win_rate": rate[0] if rate else None,
            "interval_95": [rate[1], rate[2]] if rate else None,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def judge_messages(pair: AnswerPair, first: str, second: str) -> list[dict]:
    reference = f"Reference answer: {pair.reference}\n\n" if pair.reference else ""
    question = "\n".join(f"{m['role']}: {m['content']}" for m in pair.prompt if m.get("role") != "system")
    user = (
        f"Question:\n{question}\n\n{reference}Answer A: {first or '(empty)'}\n\nAnswer B: {second or '(empty)'}"
        "\n\nWhich answer is better? Reply with one line only, exactly in this form:\n"
        "Verdict: A - <one short reason>\nor\nVerdict: B - <one short reason>\nor\nVerdict: tie - <reason>"
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_verdict(reply: str) -> tuple[str | None, str]:
    """("A" | "B" | "tie" | None, the one-line reason) from the judge's reply."""
    text = reply.strip()
    line = text.splitlines()[0].strip() if text else ""
    found = _VERDICT.search(text) or _LEADING.search(line)
    if found is None:
        return None, line[:200]
    choice = found.group("v").lower()
    reason = text[found.end() :].strip().splitlines()[0] if text[found.end() :].strip() else ""
    reason = reason.lstrip(" -:*.").strip() or line
    return ("tie" if choice == "tie" else choice.upper()), reason[:200]


def judge_answers(
    judge_gguf: str | Path,
    pairs: list[AnswerPair],
    tick: Callable[[], None],
    should_stop: Callable[[], bool],
) -> JudgeResult:
    """Two verdicts per pair (both orders); `tick` after each (it raises to cancel)."""
    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat
    from tunesmith.core.chat.session import ChatSettings

    path = Path(judge_gguf).expanduser()
    if not path.is_file():
        from .rows import EvalSetupError

        raise EvalSetupError(f"{path}: no such judge model (give a .gguf file)")
    result = JudgeResult(path.name)
    settings = ChatSettings(temperature=0.0, max_new_tokens=40, context_length=2048)  # one line
    chat = LlamaCppChat(path, n_ctx=settings.context_length)
    try:
        for pair in pairs:
            for tuned_first in (False, True):
                first, second = (pair.tuned, pair.base) if tuned_first else (pair.base, pair.tuned)
                reply = "".join(chat.stream(judge_messages(pair, first, second), settings, should_stop))
                choice, reason = parse_verdict(reply)
                if choice is None:
                    winner = "unparsable"
                elif choice == "tie":
                    winner = "tie"
                else:
                    winner = "tuned" if (choice == "A") == tuned_first else "base"
                result.verdicts.append(Verdict(pair.where, tuned_first, winner, reason))
                tick()
    finally:
        chat.close()
    return result
