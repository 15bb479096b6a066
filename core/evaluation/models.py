"""The two models a report compares — the base and the tuned one — loaded once from a run folder.

A LoRA run loads its base once and wraps it with the saved adapter: `side(tuned=False)` switches the
adapter off (peft's `disable_adapter`), so base and tuned share the same weights in memory and differ
only by the adapter, exactly as trained.  A base trained in 4 bits is taken through the same NF4 round
trip the training saw (as export's merge does).  A full fine-tune saved a whole model in adapter/: then
two models are loaded.  Weights are fp32 on the CPU (exact), bf16/fp16 on a GPU.  Knows transformers and
peft; not the rows or the scores.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.core.config import RunConfig

from .rows import EvalSetupError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)


@dataclass
class ModelPair:
    model: Any  # the PeftModel (LoRA run) or the tuned full model
    tokenizer: PreTrainedTokenizerBase
    base: Any | None = None  # only for a full fine-tune: the base, loaded on its own
    lora: bool = True

    @contextlib.contextmanager
    def side(self, tuned: bool) -> Iterator[Any]:
        """The model answering as the tuned one, or as the base (adapter off), for the `with` block."""
        if tuned:
            yield self.model
        elif self.lora:
            with self.model.disable_adapter():
                yield self.model
        else:
            yield self.base

    @property
    def device(self) -> Any:
        return self.model.device


def open_run_folder(run_dir: str | Path) -> tuple[Path, RunConfig]:
    """The run folder and its config, or EvalSetupError saying what is missing."""
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise EvalSetupError(f"{path}: no such run folder")
    if not (path / "config.yaml").is_file():
        raise EvalSetupError(f"{path} has no config.yaml, so it is not a Tunesmith run folder")
    adapter = path / "adapter"
    if not ((adapter / "adapter_config.json").is_file() or (adapter / "config.json").is_file()):
        raise EvalSetupError(
            f"{path} has no trained model (adapter/): the run did not finish. Resume it or train again, "
            "then evaluate."
        )
    return path.resolve(), RunConfig.from_yaml(path / "config.yaml")


def load_pair(run_dir: Path, config: RunConfig) -> ModelPair:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunesmith.core.export.runs import RunInfo

    adapter = run_dir / "adapter"
    run = RunInfo(run_dir, config, adapter)
    dtype, device = _dtype_and_device()
    tokenizer = AutoTokenizer.from_pretrained(str(run.tokenizer_dir()))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = AutoModelForCausalLM.from_pretrained(str(run.base_model_dir()), dtype=dtype)
    if run.trained_precision() == "4bit":
        from tunesmith.core.export.merged import nf4_round_trip

        nf4_round_trip(base)  # the weights the adapter learned against
    if (adapter / "adapter_config.json").is_file():
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(base, str(adapter))
        except Exception as exc:
            raise EvalSetupError(f"the adapter in {adapter} does not fit the base model: {exc}") from exc
        pair = ModelPair(model.to(device), tokenizer)
    else:
        tuned = AutoModelForCausalLM.from_pretrained(str(adapter), dtype=dtype)
        # functools.wraps on PreTrainedModel.to hides from mypy that the method binds self
        pair = ModelPair(tuned.to(device), tokenizer, base=base.to(device), lora=False)  # type: ignore[arg-type]
    for m in (pair.model, pair.base):
        if m is not None:
            m.eval()
            m.requires_grad_(False)
    log.info("evaluating %s on %s in %s", run_dir.name, device, dtype)
    torch.manual_seed(config.train.seed)
    return pair


def _dtype_and_device() -> tuple[Any, str]:
    import torch

    if torch.cuda.is_available():
        return (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16), "cuda"
    return torch.float32, "cpu"
