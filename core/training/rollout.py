"""GRPO rollouts through Tunesmith's fast sampler instead of transformers' generate.

TRL's GRPOTrainer (no vLLM) makes its completions with `unwrapped_model.generate(input_ids=...,
attention_mask=..., generation_config=...)`, where the unwrapped model is the trainer's (peft) model.
`install_fast_rollout` puts a `generate` on that model instance which maps the generation config onto
`tunesmith.kernels.decode` (temperature, top-k, top-p, min-p, greedy, EOS ids, pad id, max/min new
tokens) and runs the KV-cached sampler; anything else it is given (repetition penalty, beams, bad
words, logits processors, streamers, extra inputs...) goes to the stock generate, unchanged.  The
output is what generate returns (prompt + completion ids, pad after EOS), so TRL's code after the call
is untouched.  This module knows the generation config's field names and the trainer's `model`; the
kernels know neither.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

# Tests set this to run the fast path on the CPU (under TRITON_INTERPRET=1); otherwise it needs our
# kernels patched into a model on a CUDA GPU.
FORCE_ON_CPU = False

# Generation settings the sampler does not apply: each must hold one of its neutral values.
_NEUTRAL: dict[str, tuple] = {
    "num_beams": (None, 1),
    "num_beam_groups": (None, 1),
    "num_return_sequences": (None, 1),
    "penalty_alpha": (None,),
    "repetition_penalty": (None, 1.0),
    "encoder_repetition_penalty": (None, 1.0),
    "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0),
    "bad_words_ids": (None,),
    "force_words_ids": (None,),
    "constraints": (None,),
    "sequence_bias": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "typical_p": (None, 1.0),
    "epsilon_cutoff": (None, 0.0),
    "eta_cutoff": (None, 0.0),
    "guidance_scale": (None, 1.0),
    "top_h": (None,),
    "diversity_penalty": (None, 0.0),
    "exponential_decay_length_penalty": (None,),
    "watermarking_config": (None,),
    "stop_strings": (None,),
    "max_time": (None,),
    "prompt_lookup_num_tokens": (None,),
    "assistant_early_exit": (None,),
    "dola_layers": (None,),
    "token_healing": (None, False),
    "output_scores": (None, False),
    "output_logits": (None, False),
    "output_attentions": (None, False),
    "output_hidden_states": (None, False),
    "return_dict_in_generate": (None, False),
}
# generate() keyword arguments the fast path accepts besides input_ids / attention_mask / generation_config
_HARMLESS_KWARGS = {"use_cache", "synced_gpus", "disable_compile"}


def unsupported_setting(cfg: Any) -> str | None:
    """The first generation setting the fast sampler does not apply, or None."""
    for name, neutral in _NEUTRAL.items():
        value = getattr(cfg, name, None)
        if value in ([], ()):
            value = None
        if value not in neutral:
            return f"generation setting {name}={value!r}"
    if getattr(cfg, "max_new_tokens", None) is None and getattr(cfg, "max_length", None) is None:
        return "no max_new_tokens"
    return None


def _ids(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if hasattr(value, "tolist"):
        value = value.tolist()
    return tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))


def sampler_arguments(cfg: Any, prompt_len: int) -> dict[str, Any]:
    """FastGenerator.generate keyword arguments for a (supported) generation config."""
    from tunesmith.kernels.decode import Sampling

    sample = bool(cfg.do_sample)
    sampling = Sampling(
        do_sample=sample,
        temperature=float(cfg.temperature) if sample and cfg.temperature is not None else 1.0,
        top_k=int(cfg.top_k or 0) if sample else 0,
        top_p=float(cfg.top_p) if sample and cfg.top_p is not None else 1.0,
        min_p=float(cfg.min_p) if sample and cfg.min_p is not None else None,
    )
    eos = _ids(cfg.eos_token_id)
    max_new = cfg.max_new_tokens if cfg.max_new_tokens is not None else cfg.max_length - prompt_len
    min_new = max(int(cfg.min_new_tokens or 0), int(cfg.min_length or 0) - prompt_len, 0)
    return {
        "max_new_tokens": int(max_new),
        "sampling": sampling,
        "eos_token_ids": eos,
        "pad_token_id": cfg.pad_token_id,
        "min_new_tokens": min_new,
    }


def _effective_config(model: Any, generation_config: Any, kwargs: dict[str, Any]) -> Any:
    """The config generate() itself would use: the passed one over the model's (as transformers merges)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        cfg, _ = inner._prepare_generation_config(generation_config, **kwargs)
        return cfg
    except Exception:  # another transformers version: take the passed config as it is
        return generation_config if generation_config is not None else inner.generation_config


class FastRollout:
    """The `generate` installed on the model: the fast sampler when it can, else the stock one."""

    def __init__(self, model: Any, stock: Any):
        from tunesmith.kernels.decode import FastGenerator

        self.model = model
        self.stock = stock
        # between rollouts GRPO trains: the KV cache and the graph give their memory back to it
        self.generator = FastGenerator(model, keep_buffers=False)
        self.calls = {"fast": 0, "stock": 0}
        self._said: set[str] = set()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        reason, run = self._plan(args, kwargs)
        if reason:
            if reason not in self._said:
                self._said.add(reason)
                log.info("GRPO rollouts: transformers generate for this call (%s)", reason)
            self.calls["stock"] += 1
            return self.stock(*args, **kwargs)
        try:
            out = run()
        except Exception as exc:  # a rollout must not stop training: say so once, then generate stock
            key = f"{type(exc).__name__}: {exc}"
            if key not in self._said:
                self._said.add(key)
                log.warning("GRPO rollouts: the fast sampler failed (%s); transformers generate instead", key)
            self.calls["stock"] += 1
            return self.stock(*args, **kwargs)
        self.calls["fast"] += 1
        return out

    def _plan(self, args, kwargs):
        import torch

        if args:
            return "positional arguments", None
        rest = {
            k: v for k, v in kwargs.items() if k not in ("input_ids", "attention_mask", "generation_config")
        }
        ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
        if ids is None or set(rest) - _HARMLESS_KWARGS:
            return f"arguments {sorted(set(rest) - _HARMLESS_KWARGS) or ['no input_ids']}", None
        cfg = _effective_config(self.model, kwargs.get("generation_config"), {})
        reason = unsupported_setting(cfg)
        if reason:
            return reason, None
        run_kw = sampler_arguments(cfg, ids.shape[1])
        reason = self.generator.unsupported(ids.shape[1] + run_kw["max_new_tokens"])
        if reason:
            return reason, None

        def run():
            with torch.no_grad():
                return self.generator.generate(ids, mask, **run_kw)

        return None, run


def _wanted(loaded: Any) -> str | None:
    """None when the fast path should run here, else why not."""
    if FORCE_ON_CPU:
        return None
    report = getattr(loaded, "kernel_report", None)
    if loaded.device != "cuda":
        return "no CUDA GPU"
    if report is None or not report.patched:
        return "Tunesmith's kernels are not in this model"
    return None


def install_fast_rollout(trainer: Any, loaded: Any, enabled: bool = True) -> str:
    """Route the GRPO trainer's rollouts through the fast sampler when possible; returns the log line."""
    model = trainer.model
    reason = "train.fast_rollout is off" if not enabled else _wanted(loaded)
    if reason is None:
        from tunesmith.kernels.decode import FastGenerator

        reason = FastGenerator(model).unsupported()
    if reason is not None:
        line = f"GRPO rollouts: transformers generate ({reason})"
    else:
        stock = model.generate
        fast = FastRollout(model, stock)
        object.__setattr__(model, "generate", fast)
        line = "GRPO rollouts: Tunesmith's fast KV-cached sampler (tunesmith.kernels.decode)"
    log.info(line)
    return line


def installed_rollout(trainer: Any) -> FastRollout | None:
    """The fast sampler installed on the trainer's model, if any (its call counts tell which path ran)."""
    fast = trainer.model.__dict__.get("generate")
    return fast if isinstance(fast, FastRollout) else None


def remove_fast_rollout(trainer: Any) -> None:
    """Put the stock generate back (the instance attribute goes; the class method answers again)."""
    model = trainer.model
    if isinstance(model.__dict__.get("generate"), FastRollout):
        del model.__dict__["generate"]


__all__ = [
    "FastRollout",
    "install_fast_rollout",
    "installed_rollout",
    "remove_fast_rollout",
    "sampler_arguments",
]
