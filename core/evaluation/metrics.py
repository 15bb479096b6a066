"""Scores of an answer against a reference, and the Wilson interval of a win rate.

Exact match and token F1 are computed the way SQuAD's official evaluation script does (lower case,
punctuation and the articles a/an/the removed, whitespace collapsed; F1 over the bag of tokens), so
the numbers mean what they mean elsewhere.  ROUGE-L comes from Google's `rouge-score` package (the
F-measure of the longest common subsequence).  Pure functions: no model, no files.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised answers are the same, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall over the normalised answers (SQuAD's F1)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)  # both empty: a match; one empty: nothing in common
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    # imports nltk: only when a score is asked for (the package ships no type information)
    from rouge_score import rouge_scorer  # type: ignore[import-untyped]

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of words, Porter-stemmed)."""
    return float(_rouge_scorer().score(reference, prediction)["rougeL"].fmeasure)


@dataclass(frozen=True)
class Scores:
    exact_match: float
    token_f1: float
    rouge_l: float

    def to_dict(self) -> dict[str, float]:
        return {"exact_match": self.exact_match, "token_f1": self.token_f1, "rouge_l": self.rouge_l}


def score_answer(prediction: str, reference: str) -> Scores:
    return Scores(
        exact_match(prediction, reference), token_f1(prediction, reference), rouge_l(prediction, reference)
    )


def mean_scores(scores: list[Scores]) -> Scores | None:
    """The mean of each score (None when no answer had a reference)."""
    if not scores:
        return None
    n = len(scores)
    return Scores(
        sum(s.exact_match for s in scores) / n,
        sum(s.token_f1 for s in scores) / n,
        sum(s.rouge_l for s in scores) / n,
    )


def wilson_interval(successes: float, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% for z=1.96) of a proportion successes/trials.

    Why Wilson and not p ± z·sqrt(p(1-p)/n): with the few verdicts a local judge gives (tens), the
    normal approximation leaves [0, 1] and collapses to a point at 0% or 100%; Wilson stays inside and
    keeps a sensible width.  A tie counts as half a success, so `successes` may be fractional.
    """
    if trials <= 0:
        raise ValueError("a win rate needs at least one verdict")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes {successes} must lie between 0 and trials {trials}")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
