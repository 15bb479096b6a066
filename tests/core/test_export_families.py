"""Every supported family converts to GGUF and behaves like transformers in llama.cpp (F16).

For each family a tiny random model and a tiny BPE tokenizer are built here (seconds, no download);
the GGUF must give transformers' greedy tokens, the same token ids and the same chat prompt.  The
configs exercise what is easy to get silently wrong: llama3 rope scaling, grouped-query heads, a
head size unlike hidden/heads, q/k norms, biases, Gemma's norm shift, soft-capping and local rope.
"""

from __future__ import annotations

import pytest
import torch

from tunesmith.core.export.gguf_vocab import _LLAMA3_RE, _QWEN2_RE

pytest.importorskip("llama_cpp")

CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 2024 and 12345 apples don't fall far.",
    "Hello world! def f(x):\n    return x**2  # squares\n\tTabs and  double  spaces.",
    "User: what is the capital of France? Assistant: Paris is the capital of France.",
] * 4
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_tokenizer(out_dir, regex: str | None):
    """A byte-level BPE of ~400 tokens; `regex` is the Split pattern (None = GPT-2's built-in one)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    if regex is None:
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tk.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(regex), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    tk.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tk.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHATML
    tok.save_pretrained(str(out_dir))
    return tok


GEMMA_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ m['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def tiny_spm_tokenizer(out_dir):
    """A SentencePiece-style BPE (byte fallback, spaces as U+2581, BOS added), like Gemma's tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    trainer = trainers.BpeTrainer(vocab_size=300, show_progress=False)
    draft = Tokenizer(models.BPE())
    draft.normalizer = normalizers.Replace(" ", "\u2581")
    draft.train_from_iterator(CORPUS, trainer)
    learned = sorted(draft.get_vocab().items(), key=lambda kv: kv[1])
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    # ids: specials, the 256 byte tokens, then the learned pieces in their merge order.
    names = specials + [f"<0x{i:02X}>" for i in range(256)] + [t for t, _ in learned]
    vocab = {t: i for i, t in enumerate(names)}
    merges = [tuple(m.split(" ")) for m in _merges_of(draft)]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True, unk_token="<unk>"))
    tk.normalizer = normalizers.Replace(" ", "\u2581")
    tk.decoder = decoders.Sequence(
        [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    )
    tk.add_special_tokens(specials)
    tk.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    tok.chat_template = GEMMA_TEMPLATE
    tok.save_pretrained(str(out_dir))
    return tok


def _merges_of(tk) -> list[str]:
    import json

    merges = json.loads(tk.to_str())["model"]["merges"]
    return [" ".join(m) if isinstance(m, list) else m for m in merges]


def _common(vocab: int) -> dict:
    return dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-6,
    )


def family_config(family: str, vocab: int):
    import transformers as tf

    c = _common(vocab)
    if family == "llama":
        rope = {
            "rope_type": "llama3",
            "rope_theta": 500000.0,
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        }
        return tf.LlamaConfig(**c, rope_parameters=rope, tie_word_embeddings=False), tf.LlamaForCausalLM
    if family == "mistral":
        return tf.MistralConfig(**c, sliding_window=None, tie_word_embeddings=False), tf.MistralForCausalLM
    if family == "qwen2":
        return tf.Qwen2Config(**c, tie_word_embeddings=True), tf.Qwen2ForCausalLM
    if family == "qwen3":
        return tf.Qwen3Config(**c, head_dim=32, tie_word_embeddings=True), tf.Qwen3ForCausalLM
    if family == "gemma2":
        cfg = tf.Gemma2Config(
            **c,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=128,
            attn_logit_softcapping=50.0,
            final_logit_softcapping=30.0,
        )
        return cfg, tf.Gemma2ForCausalLM
    if family == "gemma3":
        c["num_hidden_layers"] = 6  # five local (sliding, rope 10k) layers, then one global
        cfg = tf.Gemma3TextConfig(**c, head_dim=16, query_pre_attn_scalar=16, sliding_window=128)
        return cfg, tf.Gemma3ForCausalLM
    raise KeyError(family)


REGEX = {"llama": _LLAMA3_RE, "mistral": _LLAMA3_RE, "qwen2": _QWEN2_RE, "qwen3": _QWEN2_RE}


@pytest.mark.parametrize(
    ("family", "tokenizer"),
    [
        ("llama", "bpe"),
        ("mistral", "bpe"),
        ("qwen2", "bpe"),
        ("qwen3", "bpe"),
        ("gemma2", "bpe"),
        ("gemma3", "bpe"),
        ("gemma2", "spm"),
        ("gemma3", "spm"),
    ],
)
def test_family_converts_and_matches_transformers(family, tokenizer, tmp_path):
    from tunesmith.core.export.gguf_writer import write_gguf
    from tunesmith.core.export.verify import verify_gguf

    if tokenizer == "spm":
        tok = tiny_spm_tokenizer(tmp_path)
    else:
        tok = tiny_tokenizer(tmp_path, REGEX.get(family))
    cfg, cls = family_config(family, len(tok) + 5)  # +5: padding rows must become UNUSED tokens
    cfg.architectures = [cls.__name__]
    torch.manual_seed(0)
    model = cls(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # larger weights than the default init: decisive argmaxes
            p.normal_(0, 0.1) if p.dim() > 1 else p.uniform_(0.5, 1.5)
    # The reference sees the weights as F16 stores them, so only arithmetic differs.
    model = model.half().float()
    path = write_gguf(model.state_dict(), model.config, tmp_path, tmp_path / f"{family}.gguf", "f16")
    check = verify_gguf(path, model, tok, "f16")
    print(f"\n{family} ({tokenizer}): {check.summary()}")
    assert check.template_match and check.token_ids_match, check.details
    # Identical greedy tokens; a random model may hit a near tie (margin below the arithmetic noise).
    assert check.passed, check.details
    assert check.greedy_prefix_match == 16 or check.near_tie, check.details


def _tiny_pair(family: str, folder):
    tok = tiny_tokenizer(folder, REGEX.get(family))
    cfg, cls = family_config(family, len(tok) + 5)
    cfg.architectures = [cls.__name__]
    torch.manual_seed(0)
    model = cls(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.1) if p.dim() > 1 else p.uniform_(0.5, 1.5)
    return model.half().float(), tok


@pytest.mark.parametrize(
    ("family", "mistake"),
    [
        ("llama", "no q/k permutation"),
        ("llama", "no rope_freqs"),
        ("gemma2", "no norm shift"),
        ("qwen2", "special tokens typed NORMAL"),
        ("qwen2", "no chat template"),
    ],
)
def test_the_check_catches_silent_mistakes(family, mistake, tmp_path, monkeypatch):
    """Files that load and talk but wrongly (STACK.md pitfalls) must fail the post-export check."""
    import dataclasses

    from tunesmith.core.export import gguf_writer
    from tunesmith.core.export.verify import verify_gguf

    real = gguf_writer.arch_for_config
    if mistake == "no q/k permutation":
        monkeypatch.setattr(
            gguf_writer, "arch_for_config", lambda c: dataclasses.replace(real(c), permute_qk=False)
        )
    elif mistake == "no norm shift":
        monkeypatch.setattr(
            gguf_writer, "arch_for_config", lambda c: dataclasses.replace(real(c), norm_shift=0.0)
        )
    elif mistake == "no rope_freqs":
        monkeypatch.setattr(gguf_writer, "llama3_rope_factors", lambda c: None)
    else:
        real_vocab = gguf_writer.build_vocab

        def broken_vocab(*args, **kwargs):
            vocab = real_vocab(*args, **kwargs)
            if mistake == "no chat template":
                vocab.chat_template = None
            else:
                vocab.types = [1 if t == 3 else t for t in vocab.types]  # CONTROL -> NORMAL
            return vocab

        monkeypatch.setattr(gguf_writer, "build_vocab", broken_vocab)
    model, tok = _tiny_pair(family, tmp_path)
    path = gguf_writer.write_gguf(model.state_dict(), model.config, tmp_path, tmp_path / "bad.gguf", "f16")
    check = verify_gguf(path, model, tok, "f16")
    print(f"\n{family} with {mistake}: {check.summary()}")
    assert not check.passed
