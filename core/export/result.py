"""Plain data shared by every export step: the error type, the result and the progress callback.

Knows nothing about models or files; each exporter fills an `ExportResult` and raises `ExportError`
with a message a person can act on.  The check's verdict is in words (`CheckResult.verdict()`: the app's
export banner) with its measurements beside it (`summary()`: what the CLI prints and the banner's Details).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# on_progress(fraction 0..1, short description of the current step)
ProgressFn = Callable[[float, str], None]

# Every export format -> what it gives, in words: the CLI's --format choices and the app's Export dialog.
EXPORT_FORMATS = {
    "lora": "LoRA adapter (small; needs the base model)",
    "merged": "Merged 16-bit model (Hugging Face folder)",
    "gguf": "GGUF file (llama.cpp, Ollama, LM Studio)",
    "gguf-lora": "LoRA adapter as GGUF (applied to the base GGUF by llama.cpp / Ollama)",
}
# Every GGUF type a merged export can be written in -> what it trades, in words.
GGUF_QUANTS = {
    "f16": "F16 — full quality, large",
    "bf16": "BF16 — full quality, large",
    "q8_0": "Q8_0 — nearly full quality, half the size of F16",
    "q6_k": "Q6_K — very good quality, smaller",
    "q5_k_m": "Q5_K_M — good quality, small",
    "q4_k_m": "Q4_K_M — small and fast, slight quality loss (popular)",
}


# Largest transformers logit margin (top logit minus the logit of llama.cpp's choice) at which an
# F16/BF16/F32 GGUF may choose differently: a near tie, decided by arithmetic noise.  Measured: F16
# moves SmolLM2's logits by up to 0.12, the difference of two logits far less (a divergence between
# llama.cpp builds came at a margin of 0.018); a wrong conversion (q/k not permuted) disagrees at
# margins of whole units.  Absolute, not relative to the observed noise, which would excuse a broken file.
NEAR_TIE = 0.1


class ExportError(RuntimeError):
    """An export cannot start or did not produce a correct file; the message says why and what to do."""


class ExportUnverified(ExportError):
    """The file was written and kept, but the check could not run to its end (llama.cpp crashed).

    `result` is the export's ExportResult (with `unverified` set), for callers that want the paths.
    """

    hint = ""  # the message already says what to try

    def __init__(self, message: str, result: ExportResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class CheckResult:
    """Outcome of the post-export check of a GGUF against the trained model (see `verify.py`).

    The verdict rests on teacher-forced agreement (both engines see transformers' greedy tokens), so
    it does not depend on where a near tie happens to fall in one llama.cpp build or another.
    """

    template_match: bool
    token_ids_match: bool
    # Greedy tokens of a fixed prompt: how many of the first `n_tokens` agree, free-running from the
    # start.  Reported, not judged: one near tie sends the rest down another path.
    greedy_prefix_match: int
    n_tokens: int
    # Teacher-forced: fraction of positions where llama.cpp's argmax equals transformers' argmax.
    argmax_agreement: float
    max_logit_diff: float
    exact_required: bool
    details: list[str] = field(default_factory=list)
    # Where free-running greedy output first differs, transformers' own logit margin between its token
    # and llama.cpp's (information for the summary).
    divergence_margin: float | None = None
    # The largest transformers margin over the teacher-forced positions where the argmaxes differ (0 if none).
    worst_disagreement_margin: float = 0.0
    # transformers' margin at each teacher-forced position where llama.cpp chose differently.
    disagreement_margins: list[float] = field(default_factory=list)

    @property
    def near_ties(self) -> int:
        """Disagreements excused as near ties (exact types only)."""
        if not self.exact_required:
            return 0
        return sum(1 for m in self.disagreement_margins if m <= NEAR_TIE)

    @property
    def near_tie(self) -> bool:
        """The GGUF disagreed somewhere, and only at near ties."""
        return (
            self.exact_required
            and bool(self.disagreement_margins)
            and self.worst_disagreement_margin <= NEAR_TIE
        )

    @property
    def passed(self) -> bool:
        if not (self.template_match and self.token_ids_match):
            return False
        if self.exact_required:
            return self.worst_disagreement_margin <= NEAR_TIE
        # Quantized: agreement is reported, not demanded; but a file that disagrees on nearly
        # everything is broken (wrong layout), not merely lossy.
        return self.argmax_agreement >= 0.5

    def verdict(self) -> str:
        """What the check found, in words, with the number that says so: 'matches the trained model
        closely: 94% of next-token choices agree (15 of 16)'."""
        share = f"{self.argmax_agreement:.0%} of next-token choices agree ({self.agreed} of {self.n_tokens})"
        wrong = "does not behave like the trained model"
        if not self.template_match:
            return f"{wrong}: the chat template stored in the file writes the prompt differently"
        if not self.token_ids_match:
            return f"{wrong}: its tokenizer splits text into different tokens"
        if self.exact_required:
            if not self.passed:
                return (
                    f"{wrong}: {share}, and it chose differently where the trained model was sure "
                    f"(margin {self.worst_disagreement_margin:.3f}, above the {NEAR_TIE} of a near tie)"
                )
            if not self.disagreement_margins:
                return f"matches the trained model exactly: {share}"
            ties = len(self.disagreement_margins)
            which = (
                "the 1 that differs was a near tie" if ties == 1 else f"the {ties} that differ were near ties"
            )
            return (
                f"matches the trained model: {share}; {which}, where the trained model itself was undecided"
            )
        if not self.passed:
            return f"{wrong}: only {share}, far too few to blame on compression (the file is broken)"
        agreement = self.argmax_agreement
        closeness = "closely" if agreement >= 0.9 else ("well" if agreement >= 0.75 else "roughly")
        note = " (compression makes small differences expected)" if agreement < 1 else ""
        return f"matches the trained model {closeness}: {share}{note}"

    def measurements(self) -> str:
        """The numbers behind the verdict, for the log and the Details."""
        if self.near_ties:
            excused = f" ({self.near_ties} near tie{'s' if self.near_ties > 1 else ''} excused)"
        elif self.disagreement_margins and self.exact_required:
            excused = (
                f" (worst margin {self.worst_disagreement_margin:.3f}, above the {NEAR_TIE} of a near tie)"
            )
        else:
            excused = ""
        return (
            f"chat template {'same' if self.template_match else 'DIFFERENT'}, "
            f"token ids {'same' if self.token_ids_match else 'DIFFERENT'}, "
            f"next-token agreement {self.agreed}/{self.n_tokens}{excused}, "
            f"free-running greedy text the same for its first {self.greedy_prefix_match} of {self.n_tokens} "
            "tokens (not judged: after one different choice the rest follows another path), "
            f"max logit difference {self.max_logit_diff:.3f}"
        )

    @property
    def agreed(self) -> int:
        """Teacher-forced positions where llama.cpp's choice equals transformers'."""
        return round(self.argmax_agreement * self.n_tokens)

    def summary(self) -> str:
        """The verdict, then the measurements on a line of their own (what the CLI prints)."""
        return f"check: {self.verdict()}\n  measured: {self.measurements()}"


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
    # Why the file could not be checked (it was kept, marked by a sidecar file), or None.
    unverified: str | None = None

    def summary(self) -> str:
        what = f"{self.fmt}{' ' + self.quant.upper() if self.quant else ''}"
        lines = [f"Exported {what} to {self.path} in {self.seconds:.1f} s"]
        lines += [f"  also wrote {p}" for p in self.extra_files]
        if self.check is not None:
            lines.append(f"  {self.check.summary()}")
        if self.unverified:
            lines.append(f"  NOT CHECKED: {self.unverified}")
        return "\n".join(lines)


def report(on_progress: ProgressFn | None, fraction: float, message: str) -> None:
    """Call the progress callback if there is one (keeps `if on_progress` out of every exporter)."""
    if on_progress is not None:
        on_progress(max(0.0, min(1.0, fraction)), message)
