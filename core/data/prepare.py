"""Turn a checked dataset into tokenized train/eval sets for the SFT trainer.

Each conversation or text row is rendered with the chat template and tokenized with its trained-token
mask (labels of -100 elsewhere); a row longer than max_length is cut, split or left out as
`data.too_long` says (core.data.long_rows, counted), then the rows are split into train and eval by ratio
with a fixed seed.  Rows keep their own length: nothing is padded to max_length here.  Preference and prompt-only rows are handed to TRL as canonical dicts instead
(`preference_rows`); this module does not know about trainers.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunesmith.core.config import DataConfig
from tunesmith.core.data.long_rows import fit_to_length
from tunesmith.core.data.stats import LengthStats, length_stats
from tunesmith.core.data.validation import DatasetFile

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    train: Dataset  # with input_ids, attention_mask, labels
    eval: Dataset | None
    truncated_rows: int  # rows cut at max_length (data.too_long "cut")
    stats: LengthStats
    tokens_total: int
    split_rows: int = 0  # rows split into pieces that fit ("split")
    dropped_rows: int = 0  # rows left out ("drop")


def split_indices(n: int, eval_ratio: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic train/eval split: the same seed always holds out the same rows."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_eval = int(round(n * eval_ratio))
    if eval_ratio > 0 and n_eval == 0 and n >= 2:
        n_eval = 1
    return sorted(order[n_eval:]), sorted(order[:n_eval])


def prepare_sft(
    dataset: DatasetFile, tokenizer: PreTrainedTokenizerBase, cfg: DataConfig, seed: int
) -> PreparedData:
    from datasets import Dataset

    if dataset.format in ("preference", "prompt"):
        raise ValueError(
            f"{dataset.path} holds {dataset.format} data, which SFT cannot learn from: "
            "use DPO/ORPO for preference pairs and GRPO for prompt-only data."
        )
    rows, lengths = [], []
    outcomes = {"cut": 0, "split": 0, "drop": 0}
    for record in dataset.records:
        fitted = fit_to_length(
            record.example, tokenizer, cfg.max_length, cfg.too_long, cfg.assistant_only_loss
        )
        lengths.append(fitted.num_tokens)
        if fitted.outcome in outcomes:
            outcomes[fitted.outcome] += 1
        for rendered in fitted.pieces:
            if not any(rendered.trained):
                log.warning(
                    "%s:%d: nothing left to train on after truncation; skipped", dataset.path, record.line
                )
                continue
            rows.append(
                {
                    "input_ids": rendered.input_ids,
                    "attention_mask": [1] * len(rendered.input_ids),
                    "labels": rendered.labels,
                }
            )
    truncated = outcomes["cut"]
    if not rows and outcomes["drop"]:
        raise ValueError(
            f"{dataset.path}: every row is longer than max_length {cfg.max_length} and 'Rows too long' "
            "leaves them out: raise the max length, or cut or split them (--too-long cut|split)."
        )
    if truncated:
        log.info(
            "%d of %d rows were longer than max_length %d and were truncated",
            truncated,
            len(lengths),
            cfg.max_length,
        )
    train_idx, eval_idx = split_indices(len(rows), cfg.eval_ratio, seed)
    train = Dataset.from_list([rows[i] for i in train_idx])
    evaluation = Dataset.from_list([rows[i] for i in eval_idx]) if eval_idx else None
    return PreparedData(
        train=train,
        eval=evaluation,
        truncated_rows=truncated,
        stats=length_stats(lengths, cfg.max_length, cfg.too_long),
        tokens_total=sum(len(r["input_ids"]) for r in rows),
        split_rows=outcomes["split"],
        dropped_rows=outcomes["drop"],
    )


def preference_rows(dataset: DatasetFile, cfg: DataConfig, seed: int) -> tuple[Dataset, Dataset | None]:
    """Canonical preference / prompt-only rows as train and eval `datasets.Dataset`s for TRL."""
    from datasets import Dataset

    rows = [dict(r.example) for r in dataset.records]
    for row in rows:
        if row.get("answer") is None and "answer" in row:
            row["answer"] = ""
    train_idx, eval_idx = split_indices(len(rows), cfg.eval_ratio, seed)
    train = Dataset.from_list([rows[i] for i in train_idx])
    evaluation = Dataset.from_list([rows[i] for i in eval_idx]) if eval_idx else None
    return train, evaluation


def prompt_token_count(prompt: str | list[dict], tokenizer: PreTrainedTokenizerBase) -> int:
    """Tokens the model reads for a prompt: plain text as is, a message list through the chat template."""
    if isinstance(prompt, str):
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    # a BatchEncoding (transformers 5) or a list of ids (older versions)
    ids: Any = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)
    return len(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)


def within_prompt_limit(
    rows: Dataset | None, tokenizer: PreTrainedTokenizerBase, limit: int
) -> tuple[Dataset | None, int]:
    """The rows whose prompt fits in `limit` tokens, and how many were left out.

    Why leave them out rather than cut them: a prompt cut from the left loses its instructions and one
    cut from the right loses its question, so the rewards would score answers to a prompt nobody wrote.
    """
    if rows is None or limit <= 0:
        return rows, 0
    kept = rows.filter(lambda row: prompt_token_count(row["prompt"], tokenizer) <= limit)
    return kept, len(rows) - len(kept)
