"""Chat with a transformers model in memory (e.g. the one just trained), streaming token by token.

`generate` runs in a worker thread and hands text to `TextIteratorStreamer`; this generator reads it
and yields pieces.  Stop is a StoppingCriteria polling `should_stop`, so the thread ends within one
token.  Uses the tokenizer's own chat template.  Knows transformers; not GGUF, not Qt.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, cast

from .session import ChatSettings, fit_history, with_system

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import GenerationMixin, PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


class TransformersChat:
    def __init__(self, model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase) -> None:
        self.model: PreTrainedModel | PeftModel | None = model  # None once closed
        self.tokenizer = tokenizer

    def _prompt_ids(self, messages: list[dict]) -> list[int]:
        # transformers 5 returns a BatchEncoding here; older versions a list of ids.
        out: Any = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        return list(out["input_ids"] if hasattr(out, "keys") else out)

    def stream(
        self, messages: list[dict], settings: ChatSettings, should_stop: Callable[[], bool]
    ) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        model = self.model
        if model is None:
            raise RuntimeError("this chat was closed")
        budget = max(1, settings.context_length - settings.max_new_tokens)
        msgs = fit_history(with_system(messages, settings), lambda m: len(self._prompt_ids(m)), budget)
        ids = torch.tensor([self._prompt_ids(msgs)], device=model.device)
        stop_event = threading.Event()

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> bool:
                return stop_event.is_set() or should_stop()

        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=0.1
        )
        sampling = settings.temperature > 0
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": sampling,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_Stop()]),
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if sampling:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with torch.no_grad():
                    # a causal LM class, which adds GenerationMixin to PreTrainedModel
                    cast("GenerationMixin", model).generate(**kwargs)
            except BaseException as exc:  # re-raised in the caller's thread below
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="tunesmith-chat", daemon=True)
        worker.start()
        try:
            while True:
                if should_stop():
                    break
                try:
                    piece = next(streamer)
                except StopIteration:
                    break
                except queue.Empty:
                    if not worker.is_alive():
                        break
                    continue
                if piece:
                    yield piece
        finally:
            stop_event.set()
            worker.join()
        if errors:
            raise errors[0]

    def close(self) -> None:
        self.model = None
