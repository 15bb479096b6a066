"""The small pure pieces of export: q/k permutation, LoRA alpha, pre-tokenizer detection, Modelfile,
history trimming.  No model, no llama.cpp."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.core.chat.session import ChatSettings, fit_history, with_system
from tunesmith.core.export.gguf_arch import permute_for_llama
from tunesmith.core.export.gguf_lora import effective_alpha
from tunesmith.core.export.gguf_vocab import _LLAMA3_RE, _QWEN2_RE, detect_pre
from tunesmith.core.export.ollama import modelfile_text
from tunesmith.core.export.result import ExportError


def test_permutation_interleaves_rotate_half_pairs():
    # One head of 4 rows: HF pairs (0, 2) and (1, 3) rotate together; llama.cpp wants them adjacent.
    w = np.arange(8, dtype=np.float32).reshape(8, 1)  # 2 heads x 4 rows
    out = permute_for_llama(w, n_heads=2)[:, 0].tolist()
    assert out == [0, 2, 1, 3, 4, 6, 5, 7]
    assert permute_for_llama(np.arange(8.0), 2).tolist() == out  # biases too


def test_effective_alpha_folds_rslora_into_alpha_over_r():
    assert effective_alpha({"r": 8, "lora_alpha": 16}) == 16
    assert effective_alpha({"r": 16, "lora_alpha": 16, "use_rslora": True}) == pytest.approx(64)
    with pytest.raises(ExportError, match="per-layer"):
        effective_alpha({"r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 4}})


def _split(regex):
    return {
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated"},
                {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False},
            ],
        }
    }


def test_pre_tokenizer_detection():
    assert detect_pre(_split(_LLAMA3_RE)) == "llama-bpe"
    assert detect_pre(_split(_QWEN2_RE)) == "qwen2"
    assert detect_pre(_split("\\s+")) is None
    assert detect_pre({"pre_tokenizer": {"type": "ByteLevel", "use_regex": True}}) == "gpt-2"
    smollm = {
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                {"type": "ByteLevel", "use_regex": True},
            ],
        }
    }
    assert detect_pre(smollm) == "smollm"


def test_modelfile_chatml_with_system_and_adapter():
    text = modelfile_text(
        "m.gguf",
        "{{ '<|im_start|>' }}",
        eos_token="<|im_end|>",
        system_prompt="Be brief.",
        adapter_name="a.gguf",
    )
    assert text.splitlines()[:2] == ["FROM ./m.gguf", "ADAPTER ./a.gguf"]
    assert "<|im_start|>assistant\n" in text and 'PARAMETER stop "<|im_end|>"' in text
    assert text.count('PARAMETER stop "<|im_end|>"') == 1
    assert 'SYSTEM """Be brief."""' in text


def test_modelfile_unknown_template_leaves_template_to_ollama():
    text = modelfile_text("m.gguf", "{{ messages }}", eos_token="</s>")
    assert "TEMPLATE" not in text and 'PARAMETER stop "</s>"' in text


def test_history_is_trimmed_oldest_first_keeping_system_and_last():
    msgs = with_system(
        [
            {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "u2"},
        ],
        ChatSettings(system_prompt="sys"),
    )
    assert msgs[0] == {"role": "system", "content": "sys"}
    kept = fit_history(msgs, lambda m: 10 * len(m), budget=25)
    assert [m["content"] for m in kept] == ["sys", "u2"]
