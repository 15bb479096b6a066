"""How the GGUF check judges (verify.judge + CheckResult), on made-up logits: no model, no llama.cpp.

The verdict must survive llama.cpp builds (a near tie may fall either way) and still fail a wrong
file (disagreements where transformers was sure, different token ids, a different template).
"""

from __future__ import annotations

import numpy as np

from tunesmith.core.export.result import NEAR_TIE
from tunesmith.core.export.verify import judge

PROMPT, IDS, PROBE = "<prompt>", [1, 2, 3], [4, 5]
VOCAB, N = 8, 6


def _reference() -> tuple[list[int], np.ndarray]:
    """transformers' greedy tokens and logits: token t+1 wins position t by a margin of 2."""
    logits = np.zeros((N, VOCAB), dtype=np.float32)
    tokens = []
    for pos in range(N):
        logits[pos, pos + 1] = 2.0
        tokens.append(pos + 1)
    return tokens, logits


def _seen(forced: np.ndarray, greedy: list[int], **changes) -> dict:
    seen = {
        "prompt": PROMPT,
        "prompt_ids": IDS,
        "probe_ids": PROBE,
        "greedy": greedy,
        "forced_logits": forced,
    }
    return {**seen, **changes}


def test_identical_logits_pass():
    tokens, logits = _reference()
    check = judge(_seen(logits.copy(), tokens), PROMPT, IDS, PROBE, tokens, logits, "f16")
    assert check.passed and check.argmax_agreement == 1.0 and check.disagreement_margins == []
    assert check.greedy_prefix_match == N and not check.near_tie
    assert "next-token agreement 6/6" in check.summary()
    assert check.verdict() == "matches the trained model exactly: 100% of next-token choices agree (6 of 6)"


def test_a_near_tie_broken_the_other_way_is_excused_even_when_greedy_then_diverges():
    tokens, logits = _reference()
    logits[2, 7] = 2.0 - NEAR_TIE / 2  # transformers barely prefers token 3 over token 7 here
    forced = logits.copy()
    forced[2, 7] = 2.0 + 0.01  # llama.cpp's arithmetic tips it the other way
    greedy = tokens[:2] + [7, 0, 0, 0]  # and its free-running continuation goes elsewhere
    check = judge(_seen(forced, greedy), PROMPT, IDS, PROBE, tokens, logits, "f16")
    assert check.passed and check.near_tie and check.near_ties == 1
    assert check.greedy_prefix_match == 2 and check.argmax_agreement == 5 / 6
    assert "1 near tie excused" in check.summary()
    # In words: the check passed, and the free-running text that went elsewhere after 2 tokens is not
    # presented as a failure beside it.
    assert check.verdict() == (
        "matches the trained model: 83% of next-token choices agree (5 of 6); the 1 that differs was a "
        "near tie, where the trained model itself was undecided"
    )
    assert "the same for its first 2 of 6 tokens (not judged" in check.summary()
    assert "passed" not in check.summary() and "identical" not in check.summary()


def test_a_disagreement_where_transformers_was_sure_fails_exact_types():
    tokens, logits = _reference()
    forced = logits.copy()
    forced[4, 0] = 5.0  # llama.cpp picks token 0 where transformers' margin is 2
    check = judge(_seen(forced, tokens), PROMPT, IDS, PROBE, tokens, logits, "bf16")
    assert not check.passed and check.worst_disagreement_margin == 2.0
    assert check.summary().startswith(
        "check: does not behave like the trained model: 83% of next-token choices agree (5 of 6), and it "
        "chose differently where the trained model was sure (margin 2.000, above the 0.1 of a near tie)"
    )
    assert "position 4" in "\n".join(check.details)
    # The same file as Q8_0: quantization noise is reported, not failed, while most positions agree.
    quantized = judge(_seen(forced, tokens), PROMPT, IDS, PROBE, tokens, logits, "q8_0")
    assert quantized.passed
    assert quantized.verdict() == (
        "matches the trained model well: 83% of next-token choices agree (5 of 6) "
        "(compression makes small differences expected)"
    )


def test_different_ids_or_template_fail_whatever_the_logits():
    tokens, logits = _reference()
    wrong_ids = _seen(logits.copy(), tokens, prompt_ids=[1, 2, 99])
    assert not judge(wrong_ids, PROMPT, IDS, PROBE, tokens, logits, "f16").passed
    wrong_template = _seen(logits.copy(), tokens, prompt="<other prompt>")
    check = judge(wrong_template, PROMPT, IDS, PROBE, tokens, logits, "q4_k_m")
    assert not check.passed and "chat prompt differs" in check.details[0]
    assert check.verdict() == (
        "does not behave like the trained model: the chat template stored in the file writes the prompt "
        "differently"
    )


def test_a_quantized_file_that_disagrees_almost_everywhere_fails():
    tokens, logits = _reference()
    forced = np.zeros_like(logits)
    forced[:, 0] = 1.0  # always token 0: a broken layout, not quantization noise
    check = judge(_seen(forced, [0] * N), PROMPT, IDS, PROBE, tokens, logits, "q4_k_m")
    assert not check.passed
    assert check.verdict() == (
        "does not behave like the trained model: only 0% of next-token choices agree (0 of 6), far too few "
        "to blame on compression (the file is broken)"
    )
