"""Did the run forget general language?  Perplexity of base and tuned on a bundled general-text probe.

The probe (resources/eval/general_probe.txt) is plain encyclopedic prose on everyday topics — water,
plants, the heart, bread, maps, the moon, bees, clocks, ... — about 2,300 tokens, written for Tunesmith
and shipped under the project's own licence, so it is nobody's training data and can be published with
a report.  It is scored as plain text (no chat template), every token a target, in windows the model's
context holds.  Scoring is deterministic: any difference between base and tuned is the run's doing.

The verdict compares the tuned model's perplexity with the base's, as a ratio:
- below 1.05: "kept" — a 5% rise is about what 4-bit quantization (llama.cpp's Q4_K_M) costs a model
  over its 16-bit weights, a loss people accept every day without noticing in use;
- 1.05 to 1.20: "slightly worse";
- 1.20 and above: "markedly worse" — four times that accepted cost: the tuned model gives the probe's
  next words on average at most 1/1.2 = 83% of the probability the base did, which shows up in use as
  odder wording and lost facts outside the training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .perplexity import LossResult

KEPT_BELOW = 1.05
MARKED_FROM = 1.20
PROBE_WINDOW = 256  # tokens per scored window: within every model's context, quick on a CPU


def probe_path() -> Path:
    from importlib.resources import files

    return Path(str(files("tunesmith.resources") / "eval" / "general_probe.txt"))


def probe_text() -> str:
    return probe_path().read_text(encoding="utf-8")


@dataclass(frozen=True)
class ForgettingVerdict:
    ratio: float  # tuned perplexity / base perplexity
    level: str  # "kept" | "slightly worse" | "markedly worse" | "better"
    words: str

    def to_dict(self) -> dict[str, float | str]:
        return {"ratio": self.ratio, "level": self.level, "words": self.words}


def verdict(base: LossResult, tuned: LossResult) -> ForgettingVerdict:
    """The plain-words verdict on general text, from the two perplexities."""
    ratio = tuned.perplexity / base.perplexity
    change = f"perplexity {base.perplexity:.1f} before, {tuned.perplexity:.1f} after ({ratio - 1:+.0%})"
    if ratio >= MARKED_FROM:
        return ForgettingVerdict(
            ratio,
            "markedly worse",
            f"The tuned model is markedly worse at general text than the base ({change}): it has lost "
            "some of its general language. Train for fewer steps, lower the learning rate, or mix some "
            "general examples into your data.",
        )
    if ratio >= KEPT_BELOW:
        return ForgettingVerdict(
            ratio,
            "slightly worse",
            f"The tuned model is slightly worse at general text ({change}); most people will not notice.",
        )
    if ratio < 1 / KEPT_BELOW:
        return ForgettingVerdict(ratio, "better", f"The tuned model reads general text better ({change}).")
    return ForgettingVerdict(ratio, "kept", f"The tuned model kept its general language ({change}).")
