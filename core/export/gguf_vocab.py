"""The tokenizer half of a GGUF file: tokens, their types, merges, pre-tokenizer, special ids, template.

Reads a Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json + chat template) and
writes the `tokenizer.*` keys llama.cpp needs to tokenize and chat exactly like transformers
(STACK.md pitfalls 2, 3, 4, 6, 7).  Two tokenizer kinds: byte-level BPE (llama.cpp's "gpt2") and
BPE with byte fallback, SentencePiece style (llama.cpp's "llama").  Knows nothing about weights.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gguf

from .result import ExportError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

# Pre-tokenizer regexes as tokenizer.json spells them -> llama.cpp's name for that pre-tokenizer.
_LLAMA3_RE = (
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
)
_QWEN2_RE = _LLAMA3_RE.replace("\\p{N}{1,3}", "\\p{N}")
KNOWN_SPLIT_REGEXES = {_LLAMA3_RE: "llama-bpe", _QWEN2_RE: "qwen2"}


@dataclass
class Vocab:
    model: str  # "gpt2" or "llama"
    pre: str
    tokens: list[str]
    types: list[int]
    scores: list[float] | None
    merges: list[str]
    special_ids: dict[str, int] = field(default_factory=dict)
    add_bos: bool = False
    add_eos: bool = False
    add_space_prefix: bool | None = None
    chat_template: str | None = None

    def write(self, w: gguf.GGUFWriter) -> None:
        w.add_tokenizer_model(self.model)
        w.add_tokenizer_pre(self.pre)
        w.add_token_list(self.tokens)
        w.add_token_types(self.types)
        if self.scores is not None:
            w.add_token_scores(self.scores)
        if self.merges:
            w.add_token_merges(self.merges)
        for kind, tid in self.special_ids.items():
            getattr(w, f"add_{kind}_token_id")(tid)
        w.add_add_bos_token(self.add_bos)
        w.add_add_eos_token(self.add_eos)
        if self.add_space_prefix is not None:
            w.add_add_space_prefix(self.add_space_prefix)
        if self.chat_template:
            w.add_chat_template(self.chat_template)
        else:
            # Without it llama-cpp-python falls back to llama-2's format (pitfall 6).
            log.warning(
                "the tokenizer has no chat template; the GGUF will chat in llama.cpp's default format"
            )


def detect_pre(tokenizer_json: dict[str, Any]) -> str | None:
    """llama.cpp's pre-tokenizer name for a byte-level BPE tokenizer.json, or None if not recognised."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    splits = [p["pattern"].get("Regex") for p in parts if p.get("type") == "Split" and "pattern" in p]
    if splits:
        return KNOWN_SPLIT_REGEXES.get(splits[0]) if len(splits) == 1 else None
    byte_level = [p for p in parts if p.get("type") == "ByteLevel"]
    if len(byte_level) == 1 and byte_level[0].get("use_regex", True):
        if kinds == ["ByteLevel"]:
            return "gpt-2"
        digits = [p for p in parts if p.get("type") == "Digits"]
        if kinds == ["Digits", "ByteLevel"] and digits[0].get("individual_digits"):
            return "smollm"  # GPT-2's regex after splitting every digit (SmolLM's tokenizer)
    return None


def _merges(model: dict[str, Any]) -> list[str]:
    merges = model.get("merges") or []
    if merges and isinstance(merges[0], list):
        # transformers 5 stores pairs; llama.cpp wants "a b" with spaces inside a part as U+0120.
        return [" ".join(part.replace(" ", "\u0120") for part in pair) for pair in merges]
    return list(merges)


def build_vocab(tokenizer_dir: Path, n_vocab: int, default_pre: str, source_pre: str | None = None) -> Vocab:
    """Read the tokenizer in `tokenizer_dir` and pad it to the model's `n_vocab` embedding rows."""
    from transformers import AutoTokenizer

    path = Path(tokenizer_dir) / "tokenizer.json"
    if not path.is_file():
        raise ExportError(f"{tokenizer_dir} has no tokenizer.json (a fast tokenizer is needed for GGUF)")
    tj = json.loads(path.read_text(encoding="utf-8"))
    model = tj.get("model") or {}
    if model.get("type") != "BPE":
        raise ExportError(f"tokenizer type {model.get('type')!r} is not supported for GGUF (BPE only)")
    spm_like = bool(model.get("byte_fallback"))
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))

    vocab: dict[str, int] = model["vocab"]
    added = {int(t["id"]): t for t in tj.get("added_tokens", [])}
    size = max([-1, *vocab.values(), *added.keys()]) + 1
    if size > n_vocab:
        raise ExportError(f"the tokenizer has {size} tokens but the model only {n_vocab} embedding rows")
    # Ids the tokenizer does not use are padding rows of the embedding: UNUSED, not NORMAL (pitfall 4).
    tokens = [f"[PAD{i}]" for i in range(n_vocab)]
    types = [gguf.TokenType.UNUSED] * n_vocab
    for text, tid in vocab.items():
        # The byte-level strings of tokenizer.json (e.g. "Ġthe"), never decoded text.
        tokens[tid] = text
        is_byte = spm_like and len(text) == 6 and text.startswith("<0x") and text.endswith(">")
        types[tid] = gguf.TokenType.BYTE if is_byte else gguf.TokenType.NORMAL
    for tid, t in added.items():
        # Added tokens may also sit in the base vocab (SmolLM2): the added entry decides the type.
        tokens[tid] = t["content"]
        types[tid] = gguf.TokenType.CONTROL if t.get("special") else gguf.TokenType.USER_DEFINED
    if spm_like and tok.unk_token_id is not None:
        types[tok.unk_token_id] = gguf.TokenType.UNKNOWN

    probe = tok("a").input_ids
    v = Vocab(
        model="llama" if spm_like else "gpt2",
        pre=_choose_pre(tj, spm_like, default_pre, source_pre),
        tokens=tokens,
        types=[int(t) for t in types],
        # SentencePiece-style BPE in llama.cpp merges the highest-scoring pair first; tokenizer.json
        # orders its vocab by merge rank, so a score falling with the id reproduces that order.
        scores=[-float(i) for i in range(n_vocab)] if spm_like else None,
        merges=[] if spm_like else _merges(model),
        special_ids=_special_ids(tok),
        add_bos=tok.bos_token_id is not None and probe[:1] == [tok.bos_token_id],
        add_eos=tok.eos_token_id is not None and probe[-1:] == [tok.eos_token_id],
        add_space_prefix=_add_space_prefix(tj) if spm_like else None,
        chat_template=tok.chat_template if isinstance(tok.chat_template, str) else None,
    )
    return v


def _choose_pre(tj: dict[str, Any], spm_like: bool, default_pre: str, source_pre: str | None) -> str:
    # A missing or wrong pre-tokenizer is silent (pitfall 2).  A specific pre-tokenizer recognised in
    # tokenizer.json is what transformers trained with, so it wins; a generic one ("gpt-2", or none)
    # yields to the source GGUF's value (transformers' GGUF loader drops e.g. SmolLM's digit split),
    # then to the family's usual one.  The post-export check compares tokenization either way.
    if spm_like:
        return "default"
    detected = detect_pre(tj)
    if detected not in (None, "gpt-2"):
        if source_pre and source_pre != detected:
            log.warning(
                "tokenizer.json says pre-tokenizer %r, the source GGUF %r: using %r",
                detected,
                source_pre,
                detected,
            )
        return detected
    if source_pre:
        return source_pre
    if detected is None:
        log.warning("pre-tokenizer not recognised; using the family default %r", default_pre)
        return default_pre
    return detected


def _special_ids(tok: PreTrainedTokenizerBase) -> dict[str, int]:
    ids = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "unk": tok.unk_token_id, "pad": tok.pad_token_id}
    return {k: int(v) for k, v in ids.items() if v is not None}


def _add_space_prefix(tj: dict[str, Any]) -> bool:
    text = json.dumps([tj.get("normalizer"), tj.get("pre_tokenizer")])
    return '"Prepend"' in text or '"prepend_scheme": "always"' in text or '"prepend_scheme": "first"' in text
