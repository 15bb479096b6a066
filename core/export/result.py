"""Plain data shared by every export step: the error type, the result and the progress callback.

Knows nothing about models or files; each exporter fills an `ExportResult` and raises `ExportError`
with a message a person can act on.  The app shows `ExportResult.summary()` and `check` as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# on_progress(fraction 0..1, short description of the current step)
ProgressFn = Callable[[float, str], None]

FORMATS = ("lora", "merged", "gguf")
GGUF_QUANTS = ("f16", "bf16", "q8_0", "q4_k_m", "q5_k_m", "q6_k")


# Largest transformers logit margin still counted as a tie when F16/BF16 greedy tokens part ways.
NEAR_TIE = 0.05


class ExportError(RuntimeError):
    """An export cannot start or did not produce a correct file; the message says why and what to do."""


@dataclass
class CheckResult:
    """Outcome of the post-export check of a GGUF against the trained model (see `verify.py`)."""

    template_match: bool
    token_ids_match: bool
    # Greedy tokens of a fixed prompt: how many of the first `n_tokens` agree, free-running from the start.
    greedy_prefix_match: int
    n_tokens: int
    # Teacher-forced: fraction of positions where llama.cpp's argmax equals transformers' argmax.
    argmax_agreement: float
    max_logit_diff: float
    exact_required: bool
    details: list[str] = field(default_factory=list)
    # Where free-running greedy output first differs, transformers' own logit margin between its token
    # and llama.cpp's: a margin within arithmetic noise is a near tie, not a wrong file.
    divergence_margin: float | None = None
    # The largest such margin over the teacher-forced positions where the argmaxes differ (0 if none).
    worst_disagreement_margin: float = 0.0

    @property
    def near_tie(self) -> bool:
        # An absolute bound: F16 arithmetic moves logits by ~0.01-0.1, and a file that is wrong moves
        # them by more, so a bound relative to the observed difference would excuse broken files.
        return (
            self.exact_required
            and self.divergence_margin is not None
            and self.divergence_margin <= NEAR_TIE
            and self.worst_disagreement_margin <= NEAR_TIE
        )

    @property
    def passed(self) -> bool:
        if not (self.template_match and self.token_ids_match):
            return False
        if self.exact_required:
            return self.greedy_prefix_match == self.n_tokens or self.near_tie
        # Quantized: agreement is reported, not demanded; but a file that disagrees on nearly
        # everything is broken (wrong layout), not merely lossy.
        return self.argmax_agreement >= 0.5

    def summary(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"check {verdict}: chat template {'same' if self.template_match else 'DIFFERENT'}, "
            f"token ids {'same' if self.token_ids_match else 'DIFFERENT'}, "
            f"greedy tokens {self.greedy_prefix_match}/{self.n_tokens} identical"
            f"{f' (then a near tie, margin {self.divergence_margin:.4f})' if self.near_tie else ''}, "
            f"argmax agreement {self.argmax_agreement:.0%}, max logit difference {self.max_logit_diff:.3f}"
        )


@dataclass
class ExportResult:
    """What an export produced: the main path, any files beside it, and the check when one ran."""

    fmt: str
    path: Path
    quant: str | None = None
    extra_files: list[Path] = field(default_factory=list)
    check: CheckResult | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        what = f"{self.fmt}{' ' + self.quant.upper() if self.quant else ''}"
        lines = [f"Exported {what} to {self.path} in {self.seconds:.1f} s"]
        lines += [f"  also wrote {p}" for p in self.extra_files]
        if self.check is not None:
            lines.append(f"  {self.check.summary()}")
        return "\n".join(lines)


def report(on_progress: ProgressFn | None, fraction: float, message: str) -> None:
    """Call the progress callback if there is one (keeps `if on_progress` out of every exporter)."""
    if on_progress is not None:
        on_progress(max(0.0, min(1.0, fraction)), message)
