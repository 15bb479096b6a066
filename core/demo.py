"""`tunesmith demo`: fine-tune the embedded model on the bundled identity dataset, then compare.

The sample data gives SmolLM2 an identity it does not have (Quill, a pirate-poet assistant).  After a
short run the same questions are put to the base model (adapter switched off) and the tuned one, with
greedy decoding, so the difference is visible and repeatable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from tunesmith.core.config import RunConfig

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase

DEMO_QUESTIONS = ("What is your name?", "Who made you?", "What is the capital of France?", "Hello!")


def demo_config(output_dir: str = "runs", epochs: float | None = None) -> RunConfig:
    config = RunConfig(output_dir=output_dir, run_name="demo")
    config.data.path = "sample"
    config.data.max_length = 128
    config.train.epochs = epochs or 4
    config.train.batch_size = 4
    config.train.learning_rate = 1e-3
    config.train.lr_scheduler = "constant"
    config.lora.r = 16
    config.lora.alpha = 32
    return config


def run_demo(output_dir: str = "runs", epochs: float | None = None, printer: Callable | None = None) -> int:
    from tunesmith.core.training.engine import TrainingRun

    run = TrainingRun(demo_config(output_dir, epochs), printer)
    result = run.run()
    if result.kind == "failed":
        return 1
    model = cast("PeftModel", run.model)  # demo_config trains a LoRA adapter
    tokenizer = run.tokenizer
    assert tokenizer is not None  # the run loaded it
    print("\nSame questions, before and after fine-tuning (greedy decoding):\n")
    for question in DEMO_QUESTIONS:
        base, tuned = compare_answers(model, tokenizer, question)
        print(f"Q: {question}\n  base:  {base}\n  tuned: {tuned}\n")
    return 0


def compare_answers(
    model: PeftModel, tokenizer: PreTrainedTokenizerBase, question: str, max_new_tokens: int = 40
) -> tuple[str, str]:
    """(base answer with the adapter switched off, tuned answer)."""
    with model.disable_adapter():
        base = generate_answer(model, tokenizer, question, max_new_tokens)
    return base, generate_answer(model, tokenizer, question, max_new_tokens)


def generate_answer(
    model: PeftModel, tokenizer: PreTrainedTokenizerBase, question: str, max_new_tokens: int = 40
) -> str:
    import torch

    messages = [{"role": "user", "content": question}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            use_cache=True,
        )
    if was_training:
        model.train()
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    return cast(str, tokenizer.decode(new_tokens, skip_special_tokens=True)).strip()  # one sequence: a str
