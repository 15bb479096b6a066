"""The transformers chat engine (for the model just trained): streams from a worker thread, stops on
the end token and on Stop, and raises generation errors in the caller's thread."""

from __future__ import annotations

import threading

import pytest
import torch

from tunesmith.core.chat import ChatSettings

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def chat(demo_model_dir, demo_tokenizer):
    from transformers import AutoModelForCausalLM

    from tunesmith.core.chat.transformers_chat import TransformersChat

    model = AutoModelForCausalLM.from_pretrained(str(demo_model_dir), dtype=torch.float32).eval()
    return TransformersChat(model, demo_tokenizer)


def test_streams_an_answer_and_ends_by_itself(chat):
    settings = ChatSettings(temperature=0.0, max_new_tokens=40, context_length=512)
    pieces = list(chat.stream(QUESTION, settings, lambda: False))
    text = "".join(pieces)
    assert "Paris" in text and len(pieces) > 1
    assert "<|im_end|>" not in text
    assert threading.active_count() < 10  # the worker thread is gone


def test_stop_ends_generation(chat):
    settings = ChatSettings(temperature=0.0, max_new_tokens=200, context_length=512)
    stop = {"now": False}
    pieces = []
    for piece in chat.stream(
        [{"role": "user", "content": "Write a long story about a dragon."}], settings, lambda: stop["now"]
    ):
        pieces.append(piece)
        stop["now"] = len(pieces) >= 3
    assert len(pieces) == 3


def test_generation_errors_reach_the_caller(chat, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(chat.model, "generate", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        list(chat.stream(QUESTION, ChatSettings(max_new_tokens=5), lambda: False))
