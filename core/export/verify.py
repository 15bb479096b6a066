"""The check after every GGUF export: does the file behave like the trained model in transformers?

Three comparisons against the merged transformers model: the chat template stored in the GGUF renders
the same prompt text; llama.cpp's tokenizer gives the same ids (chat prompt and a probe with digits,
contractions, code and newlines); and the greedy continuation of a fixed prompt agrees (identical for
F16/BF16/F32; for quantized types the teacher-forced argmax agreement rate is reported).  Runs on the
CPU.  Knows transformers and llama-cpp-python; knows nothing about how the file was written.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .quantize import require_llama_cpp
from .result import CheckResult

log = logging.getLogger(__name__)

CHECK_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Name three colours."},
    {"role": "assistant", "content": "Red, green and blue."},
    {"role": "user", "content": "What is the capital of France?"},
]
PROBE_TEXT = "Café ✓ Hello world! It's 2024: 12345 apples, don't\n\tdef f(x):\n        return x**2  # ok?"
EXACT_TYPES = ("f32", "f16", "bf16")


def render_hf(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def check_messages(tokenizer: Any) -> list[dict[str, str]]:
    """The fixed conversation, without the system turn for templates that refuse one."""
    try:
        render_hf(tokenizer, CHECK_MESSAGES)
        return CHECK_MESSAGES
    except Exception:
        return [m for m in CHECK_MESSAGES if m["role"] != "system"]


def render_gguf(llm: Any, messages: list[dict[str, str]]) -> str | None:
    """The prompt text llama-cpp-python's chat path builds from the template stored in the GGUF."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    bos = (
        llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "replace")
        if llm.token_bos() >= 0
        else ""
    )
    eos = (
        llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "replace")
        if llm.token_eos() >= 0
        else ""
    )
    formatter = Jinja2ChatFormatter(
        template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True
    )
    return formatter(messages=messages).prompt


def hf_greedy(model: Any, ids: list[int], n: int) -> tuple[list[int], np.ndarray]:
    """n greedy tokens (no early stop at end tokens) and the logits that chose each of them.

    A plain loop rather than `generate`, which stops at end tokens whatever it is told.
    """
    # transformers 5.24 renamed the forward's cache argument; 5.17 (the GPU machine) has the old name.
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    out: list[int] = []
    rows = []
    with torch.no_grad():
        res = model(torch.tensor([ids], device=model.device), use_cache=True)
        for _ in range(n):
            logits = res.logits[0, -1].float()
            rows.append(logits.cpu().numpy())
            out.append(int(torch.argmax(logits)))
            cache = getattr(res, "cache", None) or res.past_key_values
            res = model(torch.tensor([[out[-1]]], device=model.device), use_cache=True, **{cache_arg: cache})
    return out, np.stack(rows)


def llama_greedy(llm: Any, ids: list[int], n: int) -> list[int]:
    llm.reset()
    llm.eval(ids)
    out: list[int] = []
    for _ in range(n):
        tok = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        out.append(tok)
        llm.eval([tok])
    return out


def llama_forced_logits(llm: Any, ids: list[int], n_prompt: int) -> np.ndarray:
    """Logits at each position after the prompt, with the given continuation fed in (needs logits_all)."""
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[n_prompt - 1 : len(ids) - 1], dtype=np.float32)


def open_llama(gguf_path: Path, n_ctx: int = 512, lora_path: Path | None = None) -> Any:
    require_llama_cpp("The GGUF check")
    from llama_cpp import Llama

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


def verify_gguf(
    gguf_path: Path,
    model: Any,
    tokenizer: Any,
    gguf_type: str,
    n_tokens: int = 16,
    lora_path: Path | None = None,
) -> CheckResult:
    """Compare `gguf_path` (optionally with a LoRA GGUF) against `model` + `tokenizer` in transformers."""
    llm = open_llama(gguf_path, lora_path=lora_path)
    try:
        return _compare(llm, model, tokenizer, gguf_type, n_tokens)
    finally:
        llm.close()


def _compare(llm: Any, model: Any, tokenizer: Any, gguf_type: str, n_tokens: int) -> CheckResult:
    details: list[str] = []
    messages = check_messages(tokenizer)
    hf_prompt = render_hf(tokenizer, messages)
    try:
        gg_prompt = render_gguf(llm, messages)
    except Exception as exc:  # a template llama-cpp-python's Jinja cannot run is a failed check
        gg_prompt = f"<template error: {exc}>"
    template_ok = gg_prompt == hf_prompt
    if not template_ok:
        details.append(f"chat prompt differs:\n  transformers: {hf_prompt!r}\n  gguf:         {gg_prompt!r}")

    ids = tokenizer(hf_prompt, add_special_tokens=False).input_ids
    gg_ids = llm.tokenize(hf_prompt.encode("utf-8"), add_bos=False, special=True)
    probe_hf = tokenizer(PROBE_TEXT).input_ids  # with the tokenizer's own BOS/EOS rules
    probe_gg = llm.tokenize(PROBE_TEXT.encode("utf-8"), add_bos=True, special=False)
    ids_ok = list(gg_ids) == list(ids) and list(probe_gg) == list(probe_hf)
    if not ids_ok:
        details.append(
            f"token ids differ: prompt {ids[:24]} vs {list(gg_ids)[:24]}; "
            f"probe {probe_hf[:24]} vs {list(probe_gg)[:24]}"
        )

    ref_tokens, ref_logits = hf_greedy(model, ids, n_tokens)
    own = llama_greedy(llm, ids, n_tokens)
    prefix = next((i for i, (a, b) in enumerate(zip(ref_tokens, own, strict=True)) if a != b), n_tokens)
    forced = llama_forced_logits(llm, ids + ref_tokens, len(ids))
    ref_arg, own_arg = np.argmax(ref_logits, axis=-1), np.argmax(forced, axis=-1)
    agree = float(np.mean(own_arg == ref_arg))
    rows = np.arange(len(ref_arg))
    margins = ref_logits[rows, ref_arg] - ref_logits[rows, own_arg]  # 0 where they agree
    max_diff = float(np.max(np.abs(forced - ref_logits)))
    margin = None
    if prefix < n_tokens:
        # Same context up to here, so transformers' logits at `prefix` rank both choices.
        margin = float(ref_logits[prefix, ref_tokens[prefix]] - ref_logits[prefix, own[prefix]])
        details.append(
            f"greedy tokens differ from position {prefix} (transformers' margin {margin:.4f}): {ref_tokens} vs {own}"
        )
    result = CheckResult(
        template_ok,
        ids_ok,
        prefix,
        n_tokens,
        agree,
        max_diff,
        exact_required=gguf_type in EXACT_TYPES,
        details=details,
        divergence_margin=margin,
        worst_disagreement_margin=float(margins.max()),
    )
    log.info("%s", result.summary())
    return result
