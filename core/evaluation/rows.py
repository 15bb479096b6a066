"""Which rows a report scores: the run's held-out split (rebuilt exactly as training made it), its
training rows, and the prompts to answer.

Training never writes its eval split to the run folder; it is rebuilt here from config.yaml: the same
dataset file, read and checked the same way, SFT rows without a trained token after truncation left
out *before* the split (as `prepare_sft` does), then `split_indices(n, eval_ratio, seed)`, which always
holds out the same rows for the same seed.  A run with no split (eval_ratio 0) needs a file the user
names (`--split`).  Each row becomes an `EvalRow`: the conversation to score, and where it ends in an
answer, the prompt and that answer as the reference.  Knows datasets and the chat template; no model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.core.config import RunConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from tunesmith.core.data.validation import DatasetFile, Record


class EvalSetupError(ValueError):
    """The report cannot start as asked: the words say what to give instead."""


@dataclass(frozen=True)
class EvalRow:
    where: str  # FILE:LINE, for the report
    example: dict[str, Any]  # canonical conversation or text example, what the loss is measured on
    prompt: list[dict] | None  # the messages before the last answer (None for plain text)
    reference: str | None  # the last answer, when there is one


@dataclass
class EvalRows:
    held_out: list[EvalRow]
    training: list[EvalRow]
    prompts: list[EvalRow]  # to be answered by base and tuned
    held_out_source: str  # in words: "the run's eval split (4 of 32 rows, seed 42)" or the --split file
    prompts_source: str
    dataset_summary: str


def to_eval_row(record: Record, path: str) -> EvalRow:
    """A canonical record as a row to score: conversation, preference (prompt + chosen) or prompt-only."""
    ex = record.example
    where = f"{Path(path).name}:{record.line}"
    if "messages" in ex:
        messages = list(ex["messages"])
        if messages and messages[-1].get("role") == "assistant":
            return EvalRow(where, ex, messages[:-1], str(messages[-1]["content"]))
        return EvalRow(where, ex, messages, None)
    if "chosen" in ex:  # preference: the chosen answer is what the run was taught to prefer
        messages = list(ex["prompt"]) + list(ex["chosen"])
        return EvalRow(where, {"messages": messages}, list(ex["prompt"]), str(ex["chosen"][-1]["content"]))
    if "prompt" in ex:
        answer = ex.get("answer")
        if answer:
            messages = list(ex["prompt"]) + [{"role": "assistant", "content": str(answer)}]
            return EvalRow(where, {"messages": messages}, list(ex["prompt"]), str(answer))
        return EvalRow(where, {}, list(ex["prompt"]), None)
    return EvalRow(where, ex, None, None)  # plain text: a loss, no question to answer


def run_split(
    config: RunConfig, tokenizer: PreTrainedTokenizerBase
) -> tuple[list[EvalRow], list[EvalRow], DatasetFile]:
    """(training rows, held-out rows, the dataset) as the run split them."""
    from tunesmith.core.data import apply_template, load_dataset_file, require_clean
    from tunesmith.core.data.prepare import split_indices
    from tunesmith.core.data.templates import render_example
    from tunesmith.core.training.preflight import data_path

    path = data_path(config)
    if not path.is_file() and config.data.path != "sample":
        raise EvalSetupError(
            f"the run's dataset {path} is gone; give the held-out rows with --split FILE "
            "(or put the file back where it was)"
        )
    dataset = require_clean(
        load_dataset_file(path, config.data.format, config.data.columns), config.data.skip_invalid
    )
    apply_template(tokenizer, config.data.template)
    records = list(dataset.records)
    if config.train.method == "sft":
        # prepare_sft leaves out rows with nothing to train on after truncation, before it splits
        records = [
            r
            for r in records
            if any(
                render_example(
                    r.example, tokenizer, config.data.max_length, config.data.assistant_only_loss
                ).trained
            )
        ]
    train_idx, eval_idx = split_indices(len(records), config.data.eval_ratio, config.train.seed)
    train = [to_eval_row(records[i], dataset.path) for i in train_idx]
    held = [to_eval_row(records[i], dataset.path) for i in eval_idx]
    return train, held, dataset


def file_rows(path: str | Path, fmt: str = "auto") -> tuple[list[EvalRow], DatasetFile]:
    """Every usable row of a file the user named (bad rows are left out and listed by the caller)."""
    from tunesmith.core.data import load_dataset_file

    found = Path(path).expanduser()
    if not found.is_file():
        raise EvalSetupError(f"{found}: no such file")
    dataset = load_dataset_file(found, fmt)
    return [to_eval_row(r, dataset.path) for r in dataset.records], dataset


NO_SPLIT = (
    "this run kept no rows aside (its evaluation split was 0): name a file of held-out rows "
    "with --split FILE (the same format as the training data, rows the run did not train on)"
)


def choose_rows(
    config: RunConfig,
    tokenizer: PreTrainedTokenizerBase,
    split_file: str | None = None,
    prompts_file: str | None = None,
    limit: int | None = None,
    training_cap: int = 64,
) -> EvalRows:
    """The rows of one report.  `limit` caps each part; training rows are capped at `training_cap`
    anyway (enough to see over-fitting next to the held-out loss, without scoring a whole dataset)."""
    train, held, dataset = run_split(config, tokenizer)
    held_source = (
        f"the run's eval split ({len(held)} of {len(held) + len(train)} rows, seed {config.train.seed})"
    )
    if split_file:
        held, split_data = file_rows(split_file)
        held_source = f"{Path(split_file).name} ({split_data.summary()})"
    elif not held:
        raise EvalSetupError(NO_SPLIT)
    held = [row for row in held if row.example]
    if prompts_file:
        prompts, prompt_data = file_rows(prompts_file, "prompt")
        prompts_source = f"{Path(prompts_file).name} ({prompt_data.summary()})"
    else:
        prompts, prompts_source = [r for r in held if r.prompt], "the held-out rows' questions"
    cap = limit if limit and limit > 0 else None
    return EvalRows(
        held_out=held[:cap],
        training=train[: min(cap or training_cap, training_cap)],
        prompts=[p for p in prompts if p.prompt][:cap],
        held_out_source=held_source,
        prompts_source=prompts_source,
        dataset_summary=f"{Path(dataset.path).name}: {dataset.summary()}",
    )
