"""The check after every GGUF export: does the file behave like the trained model in transformers?

Three comparisons against the merged transformers model: the chat template stored in the GGUF renders
the same prompt text; llama.cpp's tokenizer gives the same ids (chat prompt and a probe with digits,
contractions, code and newlines); and llama.cpp's next-token choices agree with transformers' along
transformers' own greedy continuation of a fixed prompt (teacher forcing: both models see the same
tokens at every position, so one near-tie cannot send the rest of the comparison down another path).
`CheckResult` judges: for F16/BF16/F32 every disagreement must be a near tie in transformers' logits;
for quantized types the agreement rate is reported.

transformers runs here; llama.cpp runs in a child process (`core/native/llama_check.py`), so a crash
of llama.cpp raises `NativeCrash` here instead of ending the export.  Runs on the CPU.  Knows
transformers and the child's request; knows nothing about how the file was written.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from tunesmith.core.native import NativeHost
from tunesmith.core.native.crash import REINSTALL

from .quantize import require_llama_cpp
from .result import CheckResult

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

CHECK_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "Name three colours."},
    {"role": "assistant", "content": "Red, green and blue."},
    {"role": "user", "content": "What is the capital of France?"},
]
PROBE_TEXT = "Café ✓ Hello world! It's 2024: 12345 apples, don't\n\tdef f(x):\n        return x**2  # ok?"
EXACT_TYPES = ("f32", "f16", "bf16")
MEASURE = "tunesmith.core.native.llama_check:measure"
CHECK_ADVICE = f"export as F16 (the safest type for this llama.cpp), or {REINSTALL}."
CHECK_ADVICE_EXACT = f"{REINSTALL}, then export again."


def render_hf(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]]) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return cast(str, text)  # tokenize=False: the text


def check_messages(tokenizer: PreTrainedTokenizerBase) -> list[dict[str, str]]:
    """The fixed conversation, without the system turn for templates that refuse one."""
    try:
        render_hf(tokenizer, CHECK_MESSAGES)
        return CHECK_MESSAGES
    except Exception:
        return [m for m in CHECK_MESSAGES if m["role"] != "system"]


def hf_greedy(model: PreTrainedModel, ids: list[int], n: int) -> tuple[list[int], np.ndarray]:
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
    return out, np.stack(rows)  # rows: [n, vocab]


def verify_gguf(
    gguf_path: Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    gguf_type: str,
    n_tokens: int = 16,
    lora_path: Path | None = None,
) -> CheckResult:
    """Compare `gguf_path` (optionally with a LoRA GGUF) against `model` + `tokenizer` in transformers.

    Raises `NativeCrash` when llama.cpp dies during the check (the file is then unverified, not wrong).
    """
    require_llama_cpp("The GGUF check")
    messages = check_messages(tokenizer)
    hf_prompt = render_hf(tokenizer, messages)
    ids = tokenizer(hf_prompt, add_special_tokens=False).input_ids
    probe_hf = tokenizer(PROBE_TEXT).input_ids  # with the tokenizer's own BOS/EOS rules
    ref_tokens, ref_logits = hf_greedy(model, ids, n_tokens)
    name = Path(lora_path or gguf_path).name
    advice = CHECK_ADVICE_EXACT if gguf_type in EXACT_TYPES else CHECK_ADVICE
    with NativeHost(f"checking {name} against the trained model", advice) as host:
        seen = host.run(
            MEASURE,
            Path(gguf_path).absolute(),
            Path(lora_path).absolute() if lora_path else None,
            messages,
            hf_prompt,
            PROBE_TEXT,
            list(ids),
            ref_tokens,
        )
    return judge(seen, hf_prompt, list(ids), list(probe_hf), ref_tokens, ref_logits, gguf_type)


def judge(
    seen: dict[str, Any],
    hf_prompt: str,
    ids: list[int],
    probe_hf: list[int],
    ref_tokens: list[int],
    ref_logits: np.ndarray,
    gguf_type: str,
) -> CheckResult:
    """Compare llama.cpp's measurements (`llama_check.measure`) with transformers' and build the result."""
    details: list[str] = []
    template_ok = seen["prompt"] == hf_prompt
    if not template_ok:
        details.append(
            f"chat prompt differs:\n  transformers: {hf_prompt!r}\n  gguf:         {seen['prompt']!r}"
        )
    ids_ok = seen["prompt_ids"] == ids and seen["probe_ids"] == probe_hf
    if not ids_ok:
        details.append(
            f"token ids differ: prompt {ids[:24]} vs {seen['prompt_ids'][:24]}; "
            f"probe {probe_hf[:24]} vs {seen['probe_ids'][:24]}"
        )
    n_tokens, own, forced = len(ref_tokens), seen["greedy"], seen["forced_logits"]  # forced: [n, vocab]
    ref_arg, own_arg = np.argmax(ref_logits, axis=-1), np.argmax(forced, axis=-1)
    rows = np.arange(n_tokens)
    # transformers' own margin between its choice and llama.cpp's at each position (0 where they agree).
    margins = ref_logits[rows, ref_arg] - ref_logits[rows, own_arg]
    disagreements = [(int(i), float(margins[i])) for i in np.flatnonzero(own_arg != ref_arg)]
    for i, m in disagreements:
        details.append(
            f"position {i}: transformers chose {int(ref_arg[i])}, llama.cpp {int(own_arg[i])} (margin {m:.4f})"
        )
    prefix = next((i for i, (a, b) in enumerate(zip(ref_tokens, own, strict=True)) if a != b), n_tokens)
    divergence = None
    if prefix < n_tokens:
        # Same context up to here, so transformers' logits at `prefix` rank both choices.
        divergence = float(ref_logits[prefix, ref_tokens[prefix]] - ref_logits[prefix, own[prefix]])
    result = CheckResult(
        template_ok,
        ids_ok,
        prefix,
        n_tokens,
        float(np.mean(own_arg == ref_arg)),
        float(np.max(np.abs(forced - ref_logits))),
        exact_required=gguf_type in EXACT_TYPES,
        details=details,
        divergence_margin=divergence,
        worst_disagreement_margin=max((m for _, m in disagreements), default=0.0),
        disagreement_margins=[m for _, m in disagreements],
    )
    log.info("%s", result.summary())
    return result
