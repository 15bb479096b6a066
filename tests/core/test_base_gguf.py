"""The base GGUF for chat (`core.export.base_gguf`): where it goes, that it is made once, and that a
failed write leaves nothing behind and says what to do.  The successful conversion and its answers
are covered by tests/desktop/test_chat_adapter.py (base GGUF == what the Chat tab's base side says)."""

from __future__ import annotations

import pytest

from tunesmith.core.export import ExportError, base_gguf


def test_only_exact_types_are_offered():
    with pytest.raises(ExportError, match="f16 or q8_0"):
        base_gguf.converted_base_gguf("demo", out_type="q4_k_m")


def test_a_missing_run_is_a_plain_message(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        base_gguf.run_base_gguf(tmp_path / "no-such-run")


def test_an_existing_file_in_the_cache_is_reused_not_rewritten(tmp_path, monkeypatch, demo_model_dir):
    monkeypatch.setattr(base_gguf, "cache_dir", lambda: tmp_path)
    key = base_gguf._key(demo_model_dir, demo_model_dir, "q8_0")
    made = tmp_path / "gguf" / f"{base_gguf._stem(demo_model_dir)}-base-{key}-q8_0.gguf"
    made.parent.mkdir()
    made.write_bytes(b"made earlier")
    assert base_gguf.converted_base_gguf("demo", out_type="q8_0") == made
    assert made.read_bytes() == b"made earlier"


def test_a_full_disk_leaves_no_partial_file_and_says_what_to_do(tmp_path, monkeypatch, demo_model_dir):
    from tunesmith.core.export import gguf_writer

    def full_disk(state, config, tokenizer_dir, out_path, *args, **kwargs):
        out_path.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(base_gguf, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(gguf_writer, "write_gguf", full_disk)
    with pytest.raises(ExportError, match="No space left on device.*Free some disk space"):
        base_gguf.converted_base_gguf("demo")
    assert list((tmp_path / "gguf").iterdir()) == [], "no partial or broken file is left in the cache"
