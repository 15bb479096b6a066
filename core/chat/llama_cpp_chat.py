"""Chat with a GGUF file through llama-cpp-python, using the chat template stored in the file.

The prompt is rendered by the GGUF's own Jinja template (as llama.cpp's chat path does), tokenized
with special tokens, and tokens are sampled one at a time so that Stop (`should_stop`) and the
model's end-of-generation tokens end the answer at once.  Layers go to the GPU when the installed
llama-cpp-python was built with CUDA (or Metal/Vulkan), else everything stays on the CPU.  A LoRA
adapter GGUF can be applied, scaled or removed on the open context (`set_adapter`): the base weights
stay loaded, only the KV cache is cleared because it was computed with the old weights.
Knows llama-cpp-python; not transformers, not Qt.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .session import ChatSettings, fit_history, with_system

log = logging.getLogger(__name__)


def gpu_offload_available() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


class LlamaCppChat:
    def __init__(
        self,
        gguf_path: str | os.PathLike[str],
        lora_path: str | os.PathLike[str] | None = None,
        lora_scale: float = 1.0,
        n_ctx: int = 2048,
        n_threads: int | None = None,
    ) -> None:
        self.gguf_path = Path(gguf_path)
        if not self.gguf_path.is_file():
            raise FileNotFoundError(f"{self.gguf_path}: no such GGUF file")
        self.lora_path = Path(lora_path) if lora_path else None
        self.lora_scale = float(lora_scale)
        self.n_ctx = int(n_ctx)
        self.n_threads = n_threads
        self.llm: Any = None
        self._adapters: dict[Path, Any] = {}  # adapter file -> llama_adapter_lora pointer (per model)
        self._open()

    # -- loading ---------------------------------------------------------------------------------
    def _open(self) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.close()
        self.gpu = gpu_offload_available()
        # Adapters are attached by us after loading (not Llama's lora_path=), so that they can be
        # switched and scaled later without loading the base again.
        self.llm = Llama(
            model_path=str(self.gguf_path),
            n_ctx=self.n_ctx,
            n_gpu_layers=-1 if self.gpu else 0,
            n_threads=self.n_threads,
            verbose=False,
        )
        self._apply_adapter()
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            log.warning("%s has no chat template; using ChatML", self.gguf_path.name)
            template = _CHATML
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._piece(self.llm.token_eos()),
            bos_token=self._piece(self.llm.token_bos()),
            add_generation_prompt=True,
        )
        log.info("opened %s (%s, n_ctx %d)", self.gguf_path.name, "GPU" if self.gpu else "CPU", self.n_ctx)

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", "replace")

    def set_adapter(self, lora_path: str | os.PathLike[str] | None, lora_scale: float = 1.0) -> None:
        """Switch the LoRA adapter on (with a scale) or off (None or scale 0), keeping the base loaded."""
        new_path = Path(lora_path) if lora_path else None
        if new_path == self.lora_path and float(lora_scale) == self.lora_scale:
            return
        self.lora_path, self.lora_scale = new_path, float(lora_scale)
        try:
            self._apply_adapter()
        except Exception:
            # Leave a usable chat behind: the base model alone.
            self.lora_path = None
            self._apply_adapter()
            raise

    @property
    def adapter_active(self) -> bool:
        """Whether answers currently go through the adapter."""
        return self.lora_path is not None and self.lora_scale != 0

    def _apply_adapter(self) -> None:
        import llama_cpp

        ctx = self.llm._ctx.ctx
        if self.adapter_active:
            adapter = self._load_adapter(self.lora_path)
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(self.lora_scale)
            failed = llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales)
        else:
            failed = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        if failed:
            raise RuntimeError(f"llama.cpp could not apply the LoRA adapter {self.lora_path}")
        # The KV cache holds keys and values computed with the old weights: never reuse a prefix of it.
        self.llm.reset()
        log.info(
            "LoRA adapter %s",
            f"{self.lora_path.name} at scale {self.lora_scale}" if self.adapter_active else "off",
        )

    def _load_adapter(self, path: Path) -> Any:
        import llama_cpp

        if path not in self._adapters:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such LoRA adapter GGUF")
            adapter = llama_cpp.llama_adapter_lora_init(self.llm._model.model, str(path).encode("utf-8"))
            if not adapter:
                raise ValueError(
                    f"{path.name}: llama.cpp could not load this LoRA adapter onto {self.gguf_path.name}. "
                    "The adapter must be exported (as 'LoRA adapter as GGUF') from a run on this same base model."
                )
            self._adapters[path] = adapter
        return self._adapters[path]

    # -- chatting --------------------------------------------------------------------------------
    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        """The token ids the GGUF's template gives for `messages` (plus the generation prompt)."""
        prompt = self._formatter(messages=messages).prompt
        # The template writes BOS itself where the model wants one, as transformers' templates do.
        return list(self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self, messages: list[dict], settings: ChatSettings, should_stop: Callable[[], bool]
    ) -> Iterator[str]:
        if settings.context_length != self.n_ctx:
            self.n_ctx = int(settings.context_length)
            self._open()
        budget = max(1, self.n_ctx - settings.max_new_tokens)
        msgs = fit_history(with_system(messages, settings), lambda m: len(self.prompt_tokens(m)), budget)
        tokens = self.prompt_tokens(msgs)
        if len(tokens) >= self.n_ctx:
            raise ValueError(f"the message is {len(tokens)} tokens, more than the context of {self.n_ctx}")
        limit = min(settings.max_new_tokens, self.n_ctx - len(tokens))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        greedy = settings.temperature <= 0
        gen = self.llm.generate(
            tokens,
            temp=0.0 if greedy else settings.temperature,
            top_p=1.0 if greedy else settings.top_p,
            top_k=1 if greedy else 0,
            min_p=0.0,
            repeat_penalty=1.0,
            reset=True,
        )
        try:
            for n, token in enumerate(gen):
                if should_stop() or self._is_end(token):
                    break
                text = decoder.decode(self.llm.detokenize([token], special=False))
                if text:
                    yield text
                if n + 1 >= limit:
                    break
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        finally:
            gen.close()

    def _is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token))

    def close(self) -> None:
        if self.llm is None:
            return
        import llama_cpp

        # Detach and free our adapters before the context and model they belong to go away.
        llama_cpp.llama_set_adapters_lora(self.llm._ctx.ctx, None, 0, None)
        for adapter in self._adapters.values():
            llama_cpp.llama_adapter_lora_free(adapter)
        self._adapters.clear()
        self.llm.close()
        self.llm = None


_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
