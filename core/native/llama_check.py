"""The child side of the GGUF check: what llama.cpp makes of the check's prompt, ids and tokens.

`measure` opens the exported GGUF (with a LoRA adapter GGUF when given) on the CPU and returns, as
plain data: the chat prompt its stored template renders, its token ids for the prompt and the probe
text, its own greedy continuation, and its logits with transformers' continuation fed in (teacher
forcing).  The parent (`core/export/verify.py`) compares these with transformers and judges.
Knows llama-cpp-python; runs only in the child process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

# llama_cpp before numpy: with numpy loaded first, the CUDA build of llama-cpp-python 0.3.36
# segfaulted in llama_model_load_from_file on the H100 (bench/bench_llama_chat.py).
import llama_cpp  # noqa: F401
import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_types import ChatCompletionRequestMessage


def measure(
    gguf_path: Path,
    lora_path: Path | None,
    messages: list[dict[str, str]],
    prompt: str,
    probe_text: str,
    ids: list[int],
    reference: list[int],
) -> dict[str, Any]:
    """llama.cpp's side of every comparison the check makes (see the module docstring)."""
    llm = open_llama(gguf_path, lora_path=lora_path)
    try:
        try:
            rendered = render_gguf(llm, messages)
        except Exception as exc:  # noqa: BLE001 - a template llama-cpp-python cannot run is a finding
            rendered = f"<template error: {exc}>"
        return {
            "prompt": rendered,
            "prompt_ids": list(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)),
            "probe_ids": list(llm.tokenize(probe_text.encode("utf-8"), add_bos=True, special=False)),
            "greedy": greedy(llm, ids, len(reference)),
            "forced_logits": forced_logits(llm, ids + list(reference), len(ids)),
        }
    finally:
        llm.close()


def open_llama(gguf_path: Path, n_ctx: int = 512, lora_path: Path | None = None) -> Llama:
    kwargs: dict[str, Any] = {"lora_path": str(lora_path)} if lora_path else {}
    return Llama(
        model_path=str(gguf_path),
        n_ctx=n_ctx,
        n_gpu_layers=0,
        logits_all=True,
        verbose=False,
        seed=0,
        **kwargs,
    )


def render_gguf(llm: Llama, messages: list[dict[str, str]]) -> str | None:
    """The prompt text llama-cpp-python's chat path builds from the template stored in the GGUF."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None

    def piece(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""

    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=piece(llm.token_eos()),
        bos_token=piece(llm.token_bos()),
        add_generation_prompt=True,
    )
    # role/content dicts: the shape of llama_cpp's message TypedDicts
    return formatter(messages=cast("list[ChatCompletionRequestMessage]", messages)).prompt


def greedy(llm: Llama, ids: list[int], n: int) -> list[int]:
    """n greedy tokens after `ids`, free-running (no stop at end tokens)."""
    llm.reset()
    llm.eval(ids)
    out: list[int] = []
    for _ in range(n):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(tok)
        llm.eval([tok])
    return out


def forced_logits(llm: Llama, ids: list[int], n_prompt: int) -> np.ndarray:
    """Logits at each position after the prompt, with the given continuation fed in (needs logits_all)."""
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[n_prompt - 1 : len(ids) - 1], dtype=np.float32)
