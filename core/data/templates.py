"""Render examples exactly as the model will see them, and mark which tokens are trained on.

Uses the tokenizer's own chat template, or a named one when the model has none.  The assistant mask
is computed from character spans: the text each assistant turn adds to the rendering is trained on
(including its end-of-turn token, so the model learns to stop); everything else is context.  This
works with any template, including those without `{% generation %}` markers (SmolLM2's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

NAMED_TEMPLATES = {
    "chatml": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
        "+ '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
        "{% endif %}"
    ),
    "alpaca": (
        "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
        "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n' }}"
        "{% else %}{{ '### Response:\n' + message['content'] + eos_token + '\n\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
    ),
    "llama3": (
        "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
        "'<|end_header_id|>\n\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    ),
}
FALLBACK_TEMPLATE = "alpaca"  # needs no special tokens, so it works with any base model's vocabulary


@dataclass(frozen=True)
class RenderedExample:
    text: str
    input_ids: list[int]
    trained: list[bool]  # per token: is it a training target
    segments: list[tuple[str, bool]]  # consecutive text pieces with their trained flag, for previews
    num_tokens: int  # before truncation
    truncated: bool

    @property
    def labels(self) -> list[int]:
        return [tok if keep else -100 for tok, keep in zip(self.input_ids, self.trained, strict=True)]


def apply_template(tokenizer: PreTrainedTokenizerBase, template: str | None) -> None:
    """Give the tokenizer a chat template: the named one, or the fallback when it has none."""
    if template:
        if template not in NAMED_TEMPLATES:
            raise ValueError(f"unknown chat template '{template}': use one of {', '.join(NAMED_TEMPLATES)}")
        tokenizer.chat_template = NAMED_TEMPLATES[template]
    elif not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = NAMED_TEMPLATES[FALLBACK_TEMPLATE]


def render_example(
    example: dict[str, Any],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    assistant_only_loss: bool = True,
) -> RenderedExample:
    """Tokenize one canonical SFT example (conversation or text) with its trained-token mask."""
    if "messages" in example:
        text, spans = _render_conversation(example["messages"], tokenizer)
        if not assistant_only_loss:
            spans = [(0, len(text))]
    elif "text" in example:
        text = example["text"] + (tokenizer.eos_token or "")
        spans = [(0, len(text))]
    else:
        raise ValueError("render_example takes conversation or text examples")
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    trained = [any(s <= start < e for s, e in spans) for start, _ in encoded["offset_mapping"]]
    segments = _segments(text, encoded["offset_mapping"], trained)
    truncated = len(ids) > max_length
    return RenderedExample(text, ids[:max_length], trained[:max_length], segments, len(ids), truncated)


def render_prompt(messages: list[dict], tokenizer: PreTrainedTokenizerBase) -> str:
    """The text the model is given to continue (generation prompt added)."""
    return _chat_text(tokenizer, messages, add_generation_prompt=True)


def _chat_text(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict], add_generation_prompt: bool = False
) -> str:
    """The chat template's text for `messages` (with tokenize=False the template gives a str)."""
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    return cast(str, text)


def _render_conversation(
    messages: list[dict], tokenizer: PreTrainedTokenizerBase
) -> tuple[str, list[tuple[int, int]]]:
    full = _chat_text(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _chat_text(tokenizer, messages[:i], add_generation_prompt=True)
        upto = _chat_text(tokenizer, messages[: i + 1])
        if not (full.startswith(before) and full.startswith(upto) and len(upto) > len(before)):
            # A template that rewrites earlier turns (e.g. strips reasoning) breaks prefix rendering:
            # fall back to the assistant content's own position in the text.
            start = full.find(message["content"], spans[-1][1] if spans else 0)
            if start < 0:
                raise ValueError("could not locate an assistant turn in the rendered chat")
            spans.append((start, start + len(message["content"])))
            continue
        spans.append((len(before), len(upto)))
    return full, spans


def _segments(text: str, offsets: list, trained: list[bool]) -> list[tuple[str, bool]]:
    segments: list[tuple[str, bool]] = []
    cursor = 0
    for (start, end), keep in zip(offsets, trained, strict=True):
        piece = text[cursor:end] if start >= cursor else text[start:end]
        cursor = max(cursor, end)
        if not piece:
            continue
        if segments and segments[-1][1] == keep:
            segments[-1] = (segments[-1][0] + piece, keep)
        else:
            segments.append((piece, keep))
    if cursor < len(text):
        segments.append((text[cursor:], False))
    return segments
