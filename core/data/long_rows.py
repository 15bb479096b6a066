"""What happens to a row longer than max_length, as the user chose (`data.too_long`): cut, split or drop.

- cut: the first max_length tokens train; the rest of the row is not learned (what happened before
  the choice existed, and what TRL does).
- split: plain text becomes consecutive windows of max_length tokens, every token trained as in the
  whole row.  A conversation is split between turns: its exchanges (a user turn and the assistant
  turns answering it) are grouped, in order, into pieces that each fit, so every piece starts with a
  user turn and ends with an assistant turn, and the system prompt is repeated at the head of every
  piece so each keeps its instructions.  One exchange longer than the limit by itself (with the system
  prompt) cannot be split between turns: it is cut at max_length like `cut`, so its question and the
  start of its answer are learned; when the question alone fills the window nothing is left to train
  on and prepare_sft leaves it out with a warning.
- drop: the row is left out.

Rows are never padded here: each keeps its own length (the trainer's collator pads a batch to its longest).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunesmith.core.data.templates import RenderedExample, render_example

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TOO_LONG_OUTCOMES = ("cut", "split", "drop")
_NO_LIMIT = 1 << 62


@dataclass(frozen=True)
class FittedRow:
    """One dataset row made to fit: the pieces that train (none when dropped) and what was done."""

    pieces: list[RenderedExample]
    num_tokens: int  # the whole row's length
    outcome: str  # "whole" | "cut" | "split" | "drop"


def fit_to_length(
    example: dict[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    too_long: str = "cut",
    assistant_only_loss: bool = True,
) -> FittedRow:
    """Render one canonical SFT example and make it fit `max_length` tokens as `too_long` says."""
    if too_long not in TOO_LONG_OUTCOMES:
        raise ValueError(f"data.too_long must be one of {', '.join(TOO_LONG_OUTCOMES)}, not {too_long!r}")
    whole = render_example(example, tokenizer, max_length, assistant_only_loss)
    if not whole.truncated:
        return FittedRow([whole], whole.num_tokens, "whole")
    if too_long == "drop":
        return FittedRow([], whole.num_tokens, "drop")
    if too_long == "cut":
        return FittedRow([whole], whole.num_tokens, "cut")
    if "messages" in example:
        pieces = _split_conversation(example, tokenizer, max_length, assistant_only_loss)
    else:
        pieces = _windows(render_example(example, tokenizer, _NO_LIMIT, assistant_only_loss), max_length)
    return FittedRow(pieces, whole.num_tokens, "split")


def _windows(full: RenderedExample, max_length: int) -> list[RenderedExample]:
    """Consecutive windows of `max_length` tokens; a last window of one token is left out (it predicts
    nothing: a causal LM learns each token from the ones before it)."""
    pieces = []
    for start in range(0, len(full.input_ids), max_length):
        ids = full.input_ids[start : start + max_length]
        if len(ids) < 2:
            continue
        trained = full.trained[start : start + max_length]
        pieces.append(dataclasses.replace(full, input_ids=ids, trained=trained, segments=[], truncated=False))
    return pieces


def _exchanges(messages: list[dict]) -> tuple[list[dict], list[list[dict]]]:
    """(the system prompt as a list of 0 or 1 message, the exchanges): a new exchange starts at each
    user turn that follows an assistant turn; turns before the first user turn join the first."""
    system = messages[:1] if messages and messages[0].get("role") == "system" else []
    groups: list[list[dict]] = []
    for message in messages[len(system) :]:
        answered = bool(groups) and any(m.get("role") == "assistant" for m in groups[-1])
        if not groups or (message.get("role") == "user" and answered):
            groups.append([message])
        else:
            groups[-1].append(message)
    return system, groups


def _split_conversation(
    example: dict[str, Any], tokenizer: PreTrainedTokenizerBase, max_length: int, assistant_only_loss: bool
) -> list[RenderedExample]:
    """Whole exchanges grouped greedily into pieces of at most `max_length` tokens (module docstring)."""
    system, groups = _exchanges(example["messages"])

    def render(turns: list[dict]) -> RenderedExample:
        return render_example(
            {**example, "messages": system + turns}, tokenizer, max_length, assistant_only_loss
        )

    pieces: list[RenderedExample] = []
    current: list[dict] = []
    rendered: RenderedExample | None = None
    for group in groups:
        grown = render(current + group)
        if grown.truncated and current and rendered is not None:
            pieces.append(rendered)  # the piece so far fits; this exchange starts the next one
            current, rendered = group, render(group)  # cut at max_length if it alone is too long
        else:
            current, rendered = current + group, grown
    if rendered is not None:
        pieces.append(rendered)
    return pieces
