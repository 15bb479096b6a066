"""The child side of chat: a GGUF opened in llama-cpp-python, answering one token per request.

This is the engine `tunesmith.core.chat.llama_cpp_chat.LlamaCppChat` drives from the parent through
`NativeHost`.  The prompt is rendered by the GGUF's own Jinja template (as llama.cpp's chat path
does), tokenized with special tokens, and tokens are sampled one at a time: `begin` sets up an
answer, each `step` samples one token and returns its text, `finish` flushes the UTF-8 decoder.  One
token per request keeps Stop as prompt as when the model ran in the parent (a pipe round trip is
tiny beside the time to sample a token).  Layers go to the GPU when llama-cpp-python was built with CUDA (or
Metal/Vulkan).  A LoRA adapter GGUF is applied, scaled or removed on the open context without
loading the base again; only the KV cache is cleared, because it was computed with the old weights.
Knows llama-cpp-python; runs only in the child process.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
from collections.abc import Generator
from pathlib import Path
from typing import Any, cast

import llama_cpp
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_types import ChatCompletionRequestMessage

from tunesmith.core.chat.session import ChatSettings, fit_history, with_system

log = logging.getLogger(__name__)

_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def gpu_offload_available() -> bool:
    return bool(llama_cpp.llama_supports_gpu_offload())


class LlamaChatEngine:
    """One GGUF, optionally with a LoRA adapter GGUF, in this process."""

    def __init__(
        self,
        gguf_path: Path,
        lora_path: Path | None,
        lora_scale: float,
        n_ctx: int,
        n_threads: int | None,
    ) -> None:
        self.gguf_path = Path(gguf_path)
        self.lora_path = Path(lora_path) if lora_path else None
        self.lora_scale = float(lora_scale)
        self.n_threads = n_threads
        self.llm: Llama | None = None  # None once closed
        self._adapters: dict[Path, Any] = {}  # adapter file -> llama_adapter_lora pointer (per model)
        self._gen: Generator[int, Any, None] | None = None
        self.open(n_ctx)

    # -- loading ---------------------------------------------------------------------------------
    def open(self, n_ctx: int) -> None:
        """(Re)load the model with a context of `n_ctx` tokens and apply the current adapter."""
        self.close()
        self.n_ctx = int(n_ctx)
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
        template = self._open_llm.metadata.get("tokenizer.chat_template")
        if not template:
            log.warning("%s has no chat template; using ChatML", self.gguf_path.name)
            template = _CHATML
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._piece(self._open_llm.token_eos()),
            bos_token=self._piece(self._open_llm.token_bos()),
            add_generation_prompt=True,
        )
        log.info("opened %s (%s, n_ctx %d)", self.gguf_path.name, "GPU" if self.gpu else "CPU", self.n_ctx)

    @property
    def _open_llm(self) -> Llama:
        if self.llm is None:
            raise RuntimeError(f"{self.gguf_path.name} was closed")
        return self.llm

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return self._open_llm.detokenize([token], special=True).decode("utf-8", "replace")

    def set_adapter(self, lora_path: Path | None, lora_scale: float) -> None:
        """Switch the adapter on (with a scale) or off; on failure the base alone is left, and it raises."""
        self.lora_path, self.lora_scale = (Path(lora_path) if lora_path else None), float(lora_scale)
        try:
            self._apply_adapter()
        except Exception:
            self.lora_path = None
            self._apply_adapter()
            raise

    def _apply_adapter(self) -> None:
        ctx = self._open_llm._ctx.ctx
        if self.lora_path is not None and self.lora_scale != 0:
            adapter = self._load_adapter(self.lora_path)
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
            scales = (ctypes.c_float * 1)(self.lora_scale)
            failed = llama_cpp.llama_set_adapters_lora(ctx, adapters, 1, scales)
            state = f"{self.lora_path.name} at scale {self.lora_scale}"
        else:
            failed = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
            state = "off"
        if failed:
            raise RuntimeError(f"llama.cpp could not apply the LoRA adapter {self.lora_path}")
        # The KV cache holds keys and values computed with the old weights: never reuse a prefix of it.
        self._open_llm.reset()
        log.info("LoRA adapter %s", state)

    def _load_adapter(self, path: Path) -> Any:
        if path not in self._adapters:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such LoRA adapter GGUF")
            adapter = llama_cpp.llama_adapter_lora_init(
                self._open_llm._model.model, str(path).encode("utf-8")
            )
            if not adapter:
                raise ValueError(
                    f"{path.name}: llama.cpp could not load this LoRA adapter onto {self.gguf_path.name}. "
                    "The adapter must be exported (as 'LoRA adapter as GGUF') from a run on this same base model."
                )
            self._adapters[path] = adapter
        return self._adapters[path]

    # -- tokens ----------------------------------------------------------------------------------
    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        """The token ids the GGUF's template gives for `messages` (plus the generation prompt)."""
        # role/content dicts: the shape of llama_cpp's message TypedDicts
        prompt = self._formatter(messages=cast("list[ChatCompletionRequestMessage]", messages)).prompt
        # The template writes BOS itself where the model wants one, as transformers' templates do.
        return list(self._open_llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def tokenize(self, text: str, special: bool) -> list[int]:
        return list(self._open_llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def detokenize(self, ids: list[int], special: bool) -> str:
        return self._open_llm.detokenize(list(ids), special=special).decode("utf-8", "replace")

    # -- answering, one token per request ----------------------------------------------------------
    def begin(self, messages: list[dict], settings: ChatSettings) -> None:
        """Prepare an answer to `messages` (history trimmed to fit the context)."""
        self._end_answer()
        budget = max(1, self.n_ctx - settings.max_new_tokens)
        msgs = fit_history(with_system(messages, settings), lambda m: len(self.prompt_tokens(m)), budget)
        tokens = self.prompt_tokens(msgs)
        if len(tokens) >= self.n_ctx:
            raise ValueError(f"the message is {len(tokens)} tokens, more than the context of {self.n_ctx}")
        self._limit = min(settings.max_new_tokens, self.n_ctx - len(tokens))
        self._count = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        greedy = settings.temperature <= 0
        self._gen = self._open_llm.generate(
            tokens,
            temp=0.0 if greedy else settings.temperature,
            top_p=1.0 if greedy else settings.top_p,
            top_k=1 if greedy else 0,
            min_p=0.0,
            repeat_penalty=1.0,
            reset=True,
        )

    def step(self) -> tuple[str, bool]:
        """Sample one token: (its text, possibly "" inside a UTF-8 sequence; whether the answer ended)."""
        if self._gen is None:
            return "", True
        token = next(self._gen, None)
        if token is None or llama_cpp.llama_vocab_is_eog(self._open_llm._model.vocab, token):
            return "", True
        self._count += 1
        text = self._decoder.decode(self._open_llm.detokenize([token], special=False))
        return text, self._count >= self._limit

    def finish(self) -> str:
        """End the answer; the text of any bytes the decoder still held."""
        tail = self._decoder.decode(b"", final=True) if self._gen is not None else ""
        self._end_answer()
        return tail

    def _end_answer(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None

    def close(self) -> None:
        if self.llm is None:
            return
        self._end_answer()
        # Detach and free our adapters before the context and model they belong to go away.
        llama_cpp.llama_set_adapters_lora(self._open_llm._ctx.ctx, None, 0, None)
        for adapter in self._adapters.values():
            llama_cpp.llama_adapter_lora_free(adapter)
        self._adapters.clear()
        self._open_llm.close()
        self.llm = None

    def info(self) -> dict[str, Any]:
        """What the parent shows: where the model runs, and the context it was opened with."""
        return {"gpu": self.gpu, "n_ctx": self.n_ctx}
