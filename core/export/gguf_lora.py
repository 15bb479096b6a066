"""Write a peft LoRA adapter as a GGUF adapter that llama.cpp (and Ollama's ADAPTER) applies to the base GGUF.

llama.cpp computes W x + scale * B (A x) with scale = alpha / r times the user's scale, so the
effective alpha is written (rsLoRA's alpha / sqrt(r) folded in).  For the llama graph the B matrices
of q/k are permuted like the base q/k weights (STACK.md pitfall 10 and 1).  Knows peft's tensor
names; needs the base model's config, not its weights.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gguf
import numpy as np
import torch
from safetensors.torch import load_file

from .gguf_arch import arch_for_config, permute_for_llama
from .result import ExportError, ProgressFn, report

if TYPE_CHECKING:
    from transformers import PretrainedConfig

log = logging.getLogger(__name__)


def effective_alpha(adapter_cfg: dict[str, Any]) -> float:
    """The alpha llama.cpp needs so that alpha / r equals peft's scaling."""
    if adapter_cfg.get("rank_pattern") or adapter_cfg.get("alpha_pattern"):
        raise ExportError("adapters with per-layer ranks or alphas cannot be written as a GGUF adapter")
    r, alpha = int(adapter_cfg["r"]), float(adapter_cfg["lora_alpha"])
    scaling = alpha / math.sqrt(r) if adapter_cfg.get("use_rslora") else alpha / r
    return scaling * r


def write_lora_gguf(
    adapter_dir: Path, base_config: PretrainedConfig, out_path: Path, on_progress: ProgressFn | None = None
) -> Path:
    """Convert `adapter_dir` (peft save_pretrained output) to a GGUF adapter at `out_path`."""
    spec = arch_for_config(base_config)
    adapter_cfg = json.loads((Path(adapter_dir) / "adapter_config.json").read_text(encoding="utf-8"))
    if adapter_cfg.get("peft_type", "LORA") != "LORA" or adapter_cfg.get("use_dora"):
        raise ExportError("only plain LoRA adapters can be written as GGUF (not DoRA or other peft types)")
    alpha = effective_alpha(adapter_cfg)
    weights = load_file(str(Path(adapter_dir) / "adapter_model.safetensors"))
    names = gguf.get_tensor_name_map(spec.arch, int(base_config.num_hidden_layers))
    n_head = int(base_config.num_attention_heads)
    n_kv = int(getattr(base_config, "num_key_value_heads", None) or n_head)

    w = gguf.GGUFWriter(str(out_path), spec.name)
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    pairs = sorted(k for k in weights if ".lora_A." in k)
    for i, key_a in enumerate(pairs):
        key_b = key_a.replace(".lora_A.", ".lora_B.")
        module = key_a.split(".lora_A.")[0].removeprefix("base_model.model.")
        name = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if name is None or key_b not in weights:
            raise ExportError(f"LoRA on {module!r} cannot be written as a GGUF adapter")
        a = _f32(weights[key_a])  # [r, in]
        b = _f32(weights[key_b])  # [out, r]
        if spec.permute_qk and module.endswith("q_proj"):
            b = permute_for_llama(b, n_head)
        elif spec.permute_qk and module.endswith("k_proj"):
            b = permute_for_llama(b, n_kv)
        w.add_tensor(name + ".lora_a", a)
        w.add_tensor(name + ".lora_b", b)
        report(on_progress, 0.8 * (i + 1) / len(pairs), f"converting {module}")
    if not pairs:
        raise ExportError(f"{adapter_dir} holds no LoRA weights")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    log.info("wrote LoRA adapter GGUF %s (%d modules, alpha %.3g)", out_path, len(pairs), alpha)
    return Path(out_path)


def _f32(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to(torch.float32).cpu().numpy())
