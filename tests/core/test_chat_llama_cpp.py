"""The llama.cpp chat engine on the embedded SmolLM2 GGUF: template from the file, streaming, end
tokens, Stop, token limit, system prompt and history trimming.  llama.cpp runs in a child process;
`tests/core/test_native_crash.py` kills it."""

from __future__ import annotations

import importlib.util

import pytest

from tunesmith.core.chat import ChatSettings

if importlib.util.find_spec("llama_cpp") is None:  # found, never loaded here: it runs in a child
    pytest.skip("llama-cpp-python is not installed", allow_module_level=True)

# (SmolLM2's Q4_1 file answers "What is the capital of France?" wrongly in llama.cpp, though the
# same weights in F16 or in transformers say Paris: 4-bit arithmetic, not the engine.)
QUESTION = [{"role": "user", "content": "What is 2+2?"}]
GREEDY = ChatSettings(temperature=0.0, max_new_tokens=40, context_length=512)


@pytest.fixture(scope="module")
def chat():
    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat
    from tunesmith.core.models.sources import embedded_gguf_path

    session = LlamaCppChat(embedded_gguf_path(), n_ctx=512)
    yield session
    session.close()


def test_answers_with_the_gguf_template_and_stops_at_the_end_token(chat):
    pieces = list(chat.stream(QUESTION, GREEDY, lambda: False))
    text = "".join(pieces)
    assert "4" in text
    assert len(pieces) > 1  # streamed, not one blob
    assert "<|im_end|>" not in text and "<|im_start|>" not in text
    assert len(chat.tokenize(text)) < GREEDY.max_new_tokens  # ended by itself


def test_prompt_uses_the_template_stored_in_the_file(chat):
    ids = chat.prompt_tokens(QUESTION)
    prompt = chat.detokenize(ids)
    # SmolLM2's own template adds its default system turn: proof that the file's template was used.
    assert prompt.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_stop_ends_the_stream_at_once(chat):
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    pieces = list(chat.stream(QUESTION, GREEDY, should_stop))
    assert len(pieces) == 2


def test_token_limit_and_system_prompt(chat):
    settings = ChatSettings(
        system_prompt="Always answer in French.", temperature=0.0, max_new_tokens=3, context_length=512
    )
    text = "".join(chat.stream(QUESTION, settings, lambda: False))
    assert 0 < len(chat.tokenize(text)) <= 4
    prompt = chat.detokenize(chat.prompt_tokens([{"role": "system", "content": "S!"}, *QUESTION]))
    assert "<|im_start|>system\nS!<|im_end|>" in prompt


def test_long_history_is_trimmed_to_the_context(chat):
    long = [{"role": "user", "content": "word " * 100}, {"role": "assistant", "content": "ok"}] * 3
    settings = ChatSettings(temperature=0.0, max_new_tokens=8, context_length=256)  # reopens at 256
    text = "".join(chat.stream([*long, *QUESTION], settings, lambda: False))
    assert text and chat.n_ctx == 256  # no context overflow


def test_sampling_settings_are_accepted(chat):
    settings = ChatSettings(temperature=0.9, top_p=0.8, max_new_tokens=6, context_length=512)
    assert "".join(chat.stream(QUESTION, settings, lambda: False))
