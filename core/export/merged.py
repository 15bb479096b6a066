"""Build the tuned model as plain weights: base + LoRA merged, and save it as a 16-bit HF folder.

When the run trained on a 4-bit (NF4) base, the adapter learned against the *dequantized 4-bit*
weights, so the base is taken through the same NF4 round trip before merging; merging into the
original weights would give a model that was never trained, and merging into 4-bit storage would
re-quantize the sum.  Knows peft and bitsandbytes; knows nothing about GGUF.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .result import ExportError, ProgressFn, report
from .runs import RunInfo, commit_output, reserve_output

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "f16": torch.float16, "fp32": torch.float32}


def merge_dtype(base_dir: Path) -> torch.dtype:
    """fp32 (exact merge, exact check) when it fits comfortably in RAM, else bf16 (half the memory)."""
    import psutil

    fp32_bytes = 0
    for f in Path(base_dir).glob("*.safetensors"):
        # 16-bit files double in fp32; an fp32 file stays the same size.
        fp32_bytes += f.stat().st_size * (1 if _is_fp32(f) else 2)
    if fp32_bytes < 0.5 * psutil.virtual_memory().available:
        return torch.float32
    log.info("the model is large for this machine's free memory: merging in bf16")
    return torch.bfloat16


def _is_fp32(path: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
        return bool(keys) and f.get_slice(keys[0]).get_dtype() == "F32"


def load_merged_model(
    run: RunInfo, dtype: torch.dtype | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """(merged transformers model in eval mode, tokenizer) for a run, on the CPU.

    `dtype` None picks fp32 when it fits in memory (see `merge_dtype`).
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = run.base_model_dir()
    dtype = dtype or merge_dtype(base_dir)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=dtype)
    precision = run.trained_precision()
    if precision == "4bit":
        nf4_round_trip(base)
    elif precision == "8bit":
        log.warning("the run trained on an 8-bit base; merging into the full-precision base weights")
    try:
        model = PeftModel.from_pretrained(base, str(run.adapter_dir))
    except Exception as exc:
        raise ExportError(f"the adapter in {run.adapter_dir} does not fit the base model: {exc}") from exc
    model = model.merge_and_unload()
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(run.tokenizer_dir()))
    return model, tokenizer


def nf4_round_trip(model: torch.nn.Module) -> None:
    """Replace each Linear weight bitsandbytes would quantize by dequant(nf4(w)), as training saw it.

    Matches the training loader: NF4, double quantization, blocksize 64, from bf16 weights; lm_head
    stays in full precision (transformers never quantizes it).
    """
    import bitsandbytes.functional as bnbf

    with torch.no_grad():
        for name, module in model.named_modules():
            if not isinstance(module, torch.nn.Linear) or name.endswith("lm_head"):
                continue
            w = module.weight.data
            q, state = bnbf.quantize_4bit(
                w.to(torch.bfloat16), blocksize=64, compress_statistics=True, quant_type="nf4"
            )
            module.weight.data = bnbf.dequantize_4bit(q, state).to(w.dtype).reshape(w.shape)
    log.info("base weights taken through the NF4 round trip used in training before merging")


def export_merged(
    run: RunInfo,
    output: Path,
    dtype: str = "bf16",
    overwrite: bool = False,
    on_progress: ProgressFn | None = None,
) -> Path:
    """Save base+adapter merged as a Hugging Face folder of `dtype` safetensors, with the tokenizer."""
    if dtype not in DTYPES:
        raise ExportError(f"merged dtype must be one of {', '.join(DTYPES)}")
    tmp = reserve_output(output, overwrite)
    report(on_progress, 0.05, "loading the base model and the adapter")
    # Merge in fp32 where memory allows (exact sum), then cast once to the 16-bit storage type.
    model, tokenizer = load_merged_model(run)
    report(on_progress, 0.6, "saving the merged weights")
    # functools.wraps on PreTrainedModel.to hides from mypy that the method binds self
    model = model.to(DTYPES[dtype])  # type: ignore[arg-type]
    model.save_pretrained(str(tmp), safe_serialization=True)
    tokenizer.save_pretrained(str(tmp))
    report(on_progress, 1.0, "merged folder written")
    return commit_output(tmp, output)
