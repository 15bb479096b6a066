"""A reward model for GRPO: a local sequence-classification model whose one output scores an answer.

People who want PPO want to train against a reward model they have (TRL removed its PPOTrainer:
BENCHMARKS.md, "PPO").  TRL's GRPOTrainer takes such a model as one of its reward functions: it renders
prompt + completion with the reward model's own tokenizer and chat template, pads on the right, and
takes `logits[:, 0]` at the last real token as the score (trl/trainer/grpo_trainer.py,
`_calculate_rewards`).  This module checks the folder before anything loads (`check_reward_model_folder`:
files only, no torch), loads it read-only (`load_reward_model`), and says in the run's log where it
landed and what memory it holds (`reward_model_notes`).  It knows transformers' file layout, not TRL's
training loop: TRL moves the model to the trainer's device (the GPU when the policy is on one).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunesmith.core.config import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SETTING = "train.reward_model"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
_WHAT_IT_IS = (
    "a reward model is a sequence-classification model with one output (num_labels 1), e.g. saved from "
    "AutoModelForSequenceClassification, with its tokenizer and safetensors weights"
)

_NO_TEMPLATE = (
    "its tokenizer has no chat template: the prompts are conversations, rendered with the reward model's "
    "own template before it scores them; save the tokenizer with its chat template"
)


def _refuse(path: Path, problem: str) -> ConfigError:
    return ConfigError("{" + SETTING + "}: " + f"{path}: {problem}", (SETTING,))


def check_reward_model_folder(folder: str | Path) -> Path:
    """The folder, when it holds a reward model; ConfigError naming the setting and the path if not."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise _refuse(path, "no such folder (a reward model is a local model folder)")
    if not (path / "config.json").is_file():
        raise _refuse(path, f"not a model folder (it has no config.json); {_WHAT_IT_IS}")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(path, f"config.json cannot be read ({exc})") from None
    architectures = config.get("architectures") or []
    # A model with its own code (trust_remote_code) names its class in auto_map instead.
    remote = (config.get("auto_map") or {}).get("AutoModelForSequenceClassification")
    if not remote and not any(str(name).endswith("ForSequenceClassification") for name in architectures):
        kind = ", ".join(map(str, architectures)) or "no architecture named in config.json"
        causal = " (a language model that writes text, not one that scores it)" if "CausalLM" in kind else ""
        raise _refuse(path, f"not a reward model: it is {kind}{causal}; {_WHAT_IT_IS}")
    labels = len(config["id2label"]) if config.get("id2label") else config.get("num_labels", 2)
    if labels != 1:
        raise _refuse(
            path,
            f"a classifier with {labels} outputs (num_labels {labels}), not a reward model: GRPO needs one "
            "score per answer (num_labels 1)",
        )
    if not any(path.glob("*.safetensors")):
        raise _refuse(
            path, "no .safetensors weights (only safetensors are loaded: other weight formats can run code)"
        )
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise _refuse(
            path,
            "no tokenizer (tokenizer.json): save the tokenizer the reward model was trained with beside it",
        )
    if not _has_chat_template(path):
        raise _refuse(path, _NO_TEMPLATE)
    return path


def _has_chat_template(path: Path) -> bool:
    """transformers 5 saves the template as chat_template.jinja; older saves put it in tokenizer_config."""
    if (path / "chat_template.jinja").is_file():
        return True
    try:
        return bool(
            json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
        )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False


def reward_model_bytes(folder: str | Path, itemsize: int) -> int:
    """The memory its weights take at `itemsize` bytes a value (it loads in the run's compute dtype), from
    the safetensors headers alone (no tensor is read); 0 when they cannot be read (the checks say why)."""
    values = 0
    for weights in Path(folder).expanduser().glob("*.safetensors"):
        try:
            with weights.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > 1 << 28:  # not a header: a damaged file
                    return 0
                header = json.loads(handle.read(length))
        except (OSError, struct.error, ValueError):
            return 0
        values += sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    return values * itemsize


@dataclass(frozen=True)
class RewardModel:
    """The loaded model and the tokenizer TRL renders the answers with (its `reward_processing_classes`)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase


def load_reward_model(folder: str | Path, trust_remote_code: bool, dtype: Any = None) -> RewardModel:
    """Load the reward model read-only (eval mode, no gradients), on the CPU: TRL's trainer moves it to
    its own device.  `dtype`: the policy's compute dtype on a GPU (bf16 halves its memory), else fp32."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = check_reward_model_folder(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), use_safetensors=True, trust_remote_code=trust_remote_code, dtype=dtype
        )
    except Exception as exc:  # noqa: BLE001 - transformers' many load errors, worded with the path
        raise _refuse(path, f"the reward model could not be loaded: {exc}") from None
    if getattr(tokenizer, "chat_template", None) is None:
        raise _refuse(path, _NO_TEMPLATE)
    if tokenizer.pad_token is None:  # TRL pads the batch; the score is read at the last real token
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    model.eval().requires_grad_(False)
    return RewardModel(model, tokenizer)


def reward_model_notes(trainer: Any) -> list[str]:
    """Where each reward model of a GRPO trainer lives and the memory its weights take, for the log."""
    from transformers import PreTrainedModel

    notes = []
    for function in getattr(trainer, "reward_funcs", []):
        model = getattr(function, "module", function)  # unwrapped when accelerate wrapped it
        if isinstance(model, PreTrainedModel):
            parameters = list(model.parameters())
            size = sum(p.numel() * p.element_size() for p in parameters)
            count = sum(p.numel() for p in parameters)
            first = parameters[0]
            notes.append(
                f"Reward model {model.config._name_or_path}: {count / 1e6:.1f} M parameters, "
                f"{size / 2**20:.1f} MiB ({str(first.dtype).removeprefix('torch.')}) on {first.device}, "
                "read-only; its score is the reward "
                f"'{Path(str(model.config._name_or_path)).name}'"
            )
    return notes
