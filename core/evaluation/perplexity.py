"""Loss and perplexity of one model on rows (trained tokens only) or on plain text (every token).

The loss is the mean negative log-likelihood per predicted token, pooled over all rows (a long row
weighs by its tokens, as training's eval loss does); perplexity is exp(loss): "as unsure as choosing
among N equally likely tokens".  Rows are rendered and masked exactly as training rendered them
(`render_example`: chat template, answers only when the run trained on answers only), so a held-out
loss here is comparable with the run's own eval loss.  Knows torch; not which model is base or tuned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .rows import EvalRow

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class EvalCancelled(Exception):
    """The user cancelled the report; nothing was written."""


@dataclass(frozen=True)
class LossResult:
    loss: float
    perplexity: float
    tokens: int  # predicted tokens the loss is the mean over
    rows: int

    def to_dict(self) -> dict[str, float | int]:
        return {"loss": self.loss, "perplexity": self.perplexity, "tokens": self.tokens, "rows": self.rows}


def _sum_nll(model: Any, input_ids: list[int], labels: list[int]) -> tuple[float, int]:
    """(summed NLL, number of predicted tokens) of one sequence; labels -100 are context."""
    import torch

    ids = torch.tensor([input_ids], device=model.device)
    target = torch.tensor([labels], device=model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()  # [1, T, vocab]
    # position t predicts token t+1
    logits, target = logits[0, :-1], target[0, 1:]
    mask = target != -100
    count = int(mask.sum())
    if count == 0:
        return 0.0, 0
    nll = torch.nn.functional.cross_entropy(logits[mask], target[mask], reduction="sum")
    return float(nll), count


def pooled(total_nll: float, tokens: int, rows: int) -> LossResult:
    loss = total_nll / tokens if tokens else float("nan")
    # exp of a loss over ~700 overflows a float; such a model is saying nothing useful anyway
    return LossResult(loss, math.exp(min(loss, 700.0)) if tokens else float("nan"), tokens, rows)


def rows_loss(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    rows: list[EvalRow],
    max_length: int,
    answers_only: bool,
    tick: Callable[[], None],
) -> LossResult:
    """Pooled loss over the rows' trained tokens; `tick` after each row (it raises to cancel)."""
    from tunesmith.core.data.templates import render_example

    total, tokens, used = 0.0, 0, 0
    for row in rows:
        rendered = render_example(row.example, tokenizer, max_length, answers_only)
        nll, count = _sum_nll(model, rendered.input_ids, rendered.labels)
        total, tokens, used = total + nll, tokens + count, used + (count > 0)
        tick()
    return pooled(total, tokens, used)


def text_windows(tokenizer: PreTrainedTokenizerBase, text: str, window: int) -> list[list[int]]:
    """The text's tokens in consecutive windows of at most `window` tokens (each scored on its own)."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return [ids[i : i + window] for i in range(0, len(ids), window) if len(ids[i : i + window]) > 1]


def text_loss(model: Any, windows: list[list[int]], tick: Callable[[], None]) -> LossResult:
    """Pooled loss over every token of the windows (the first of each has no context, so it is skipped)."""
    total, tokens = 0.0, 0
    for ids in windows:
        nll, count = _sum_nll(model, ids, ids)
        total, tokens = total + nll, tokens + count
        tick()
    return pooled(total, tokens, len(windows))
