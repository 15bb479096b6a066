"""The report's pure logic, without a model: answer scores, the Wilson interval, the judge's replies,
the forgetting verdict's thresholds and the PNG charts."""

import struct
import zlib

import numpy as np
import pytest

from tunesmith.core.evaluation.forgetting import verdict
from tunesmith.core.evaluation.judge import JudgeResult, Verdict, parse_verdict
from tunesmith.core.evaluation.metrics import (
    exact_match,
    mean_scores,
    normalize_answer,
    rouge_l,
    score_answer,
    token_f1,
    wilson_interval,
)
from tunesmith.core.evaluation.perplexity import LossResult
from tunesmith.core.evaluation.plots import Series, bar_chart, line_chart


def test_answer_scores_follow_squad_and_rouge():
    assert normalize_answer("The  Paris, of course!") == "paris of course"
    assert exact_match("Paris.", "paris") == 1.0 and exact_match("Paris, matey", "Paris") == 0.0
    # F1: prediction "paris matey" vs reference "paris": precision 1/2, recall 1 -> 2/3
    assert token_f1("Paris, matey!", "Paris") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("anything", "") == 0.0 and token_f1("a", "Rome") == 0.0
    # ROUGE-L: LCS "i am quill" (3 of 4 and 3 of 3 words) -> F = 2*(3/4)*(1)/(3/4+1) = 6/7
    assert rouge_l("I am Quill", "I am called Quill") == pytest.approx(6 / 7)
    scores = [score_answer("Rome", "Rome"), score_answer("Paris", "Rome")]
    means = mean_scores(scores)
    assert means is not None and means.exact_match == 0.5 and means.rouge_l == 0.5
    assert mean_scores([]) is None


def test_wilson_interval_matches_the_textbook_values():
    # 8 of 10: Wilson 95% interval (0.490, 0.943) (Newcombe 1998, method 3)
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 5)[0] == 0.0 and 0 < wilson_interval(0, 5)[1] < 0.5
    assert wilson_interval(5, 5)[1] == 1.0
    with pytest.raises(ValueError):
        wilson_interval(1, 0)
    with pytest.raises(ValueError):
        wilson_interval(6, 5)


def test_judge_replies_are_read_or_counted_as_unreadable():
    assert parse_verdict("Verdict: B - it names Quill as the reference does") == (
        "B",
        "it names Quill as the reference does",
    )
    assert parse_verdict("**Verdict:** tie — both are fine")[0] == "tie"
    assert parse_verdict("A. The first answer is correct.")[0] == "A"
    assert parse_verdict("I think both answers are interesting.")[0] is None
    assert parse_verdict("")[0] is None
    result = JudgeResult(
        "judge.gguf",
        [
            Verdict("x:1", False, "tuned", ""),
            Verdict("x:1", True, "tie", ""),
            Verdict("x:2", False, "base", ""),
            Verdict("x:2", True, "unparsable", "?"),
        ],
    )
    rate = result.win_rate()
    assert rate is not None and rate[0] == pytest.approx(1.5 / 3)  # a tie counts half; unreadable left out
    assert result.to_dict()["unparsable"] == 1 and result.readable == 3
    assert JudgeResult("j", [Verdict("x", False, "unparsable", "")]).win_rate() is None


def _loss(ppl: float) -> LossResult:
    return LossResult(float(np.log(ppl)), ppl, 100, 1)


def test_forgetting_verdict_thresholds():
    assert verdict(_loss(10), _loss(10.3)).level == "kept"
    assert verdict(_loss(10), _loss(11)).level == "slightly worse"
    marked = verdict(_loss(10), _loss(12.5))
    assert marked.level == "markedly worse" and "markedly worse" in marked.words and "+25%" in marked.words
    assert verdict(_loss(10), _loss(9)).level == "better"


def _decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_len])
    rows = [raw[r * (3 * width + 1) + 1 : (r + 1) * (3 * width + 1)] for r in range(height)]
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(height, width, 3)


def test_charts_are_valid_pngs_with_the_data_drawn():
    png, x_range, y_range = line_chart([Series([1, 2, 3], [4.0, 2.0, 1.0], (255, 0, 0))], 200, 100)
    pixels = _decode_png(png)
    assert pixels.shape == (100, 200, 3) and x_range[0] < 1 and y_range[1] > 4
    assert ((pixels == (255, 0, 0)).all(axis=2)).sum() > 100  # the line is there
    png, top = bar_chart([[1.0, 3.0]], [(0, 0, 255), (0, 255, 0)], 100, 100)
    pixels = _decode_png(png)
    blue, green = ((pixels == c).all(axis=2).sum() for c in ((0, 0, 255), (0, 255, 0)))
    assert green > 2.5 * blue > 0 and top > 3
