"""Base and tuned answers to the same prompts, side by side, scored against references.

Decoding is greedy (always the most likely token) with the seed fixed before each answer, so a report
made twice from the same run shows the same answers.  Each answer stops at the model's end token or
after `max_new_tokens`.  Knows transformers' generate; the scores are metrics.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from .metrics import Scores, mean_scores, score_answer
from .rows import EvalRow

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from .models import ModelPair


@dataclass
class AnswerPair:
    where: str
    prompt: list[dict]
    reference: str | None
    base: str = ""
    tuned: str = ""
    base_scores: Scores | None = None
    tuned_scores: Scores | None = None

    @property
    def question(self) -> str:
        """The last user turn, for display."""
        users = [m["content"] for m in self.prompt if m.get("role") == "user"]
        return str(users[-1]) if users else str(self.prompt[-1]["content"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "prompt": self.prompt,
            "reference": self.reference,
            "base": self.base,
            "tuned": self.tuned,
            "base_scores": self.base_scores.to_dict() if self.base_scores else None,
            "tuned_scores": self.tuned_scores.to_dict() if self.tuned_scores else None,
        }


@dataclass
class AnswersResult:
    pairs: list[AnswerPair] = field(default_factory=list)

    def means(self) -> dict[str, dict[str, float] | None]:
        base = mean_scores([p.base_scores for p in self.pairs if p.base_scores])
        tuned = mean_scores([p.tuned_scores for p in self.pairs if p.tuned_scores])
        return {"base": base.to_dict() if base else None, "tuned": tuned.to_dict() if tuned else None}


def greedy_answer(
    model: Any, tokenizer: PreTrainedTokenizerBase, messages: list[dict], max_new_tokens: int, seed: int
) -> str:
    import torch

    torch.manual_seed(seed)
    prompt = cast(str, tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    return cast(str, tokenizer.decode(new_tokens, skip_special_tokens=True)).strip()


def answer_prompts(
    pair: ModelPair,
    prompts: list[EvalRow],
    max_new_tokens: int,
    seed: int,
    tick: Callable[[], None],
) -> AnswersResult:
    """Both sides' answers to each prompt; `tick` after each answer (it raises to cancel)."""
    result = AnswersResult([AnswerPair(p.where, list(p.prompt or []), p.reference) for p in prompts])
    for tuned in (False, True):  # one side at a time: the adapter is switched twice, not per prompt
        with pair.side(tuned) as model:
            for item in result.pairs:
                text = greedy_answer(model, pair.tokenizer, item.prompt, max_new_tokens, seed)
                scores = score_answer(text, item.reference) if item.reference is not None else None
                if tuned:
                    item.tuned, item.tuned_scores = text, scores
                else:
                    item.base, item.base_scores = text, scores
                tick()
    return result
