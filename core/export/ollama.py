"""An Ollama Modelfile beside an exported GGUF: FROM, ADAPTER, TEMPLATE, stop tokens and SYSTEM.

Ollama templates are Go templates, not Jinja, so the chat template is recognised by its markers
(ChatML, Llama 3, Gemma, Mistral [INST]) and the matching Go template written.  An unrecognised
template is left out: Ollama then uses the template it detects from the GGUF's own metadata.
Knows Ollama's Modelfile syntax; nothing about weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

log = logging.getLogger(__name__)

_CHATML = (
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)
_LLAMA3 = (
    "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n"
)
_GEMMA = (
    "{{- range $i, $m := .Messages }}<start_of_turn>"
    '{{ if eq $m.Role "assistant" }}model{{ else }}{{ $m.Role }}{{ end }}\n'
    "{{ if and (eq $i 0) $.System }}{{ $.System }}\n\n{{ end }}{{ $m.Content }}<end_of_turn>\n{{ end }}"
    "<start_of_turn>model\n"
)
_MISTRAL = (
    "{{- range .Messages }}"
    '{{ if eq .Role "user" }}[INST] {{ if $.System }}{{ $.System }}\n\n{{ end }}{{ .Content }}[/INST]'
    "{{ else }}{{ .Content }}</s>{{ end }}{{ end }}"
)

# marker in the Jinja template -> (Go template, stop strings)
KNOWN_TEMPLATES = [
    ("<|im_start|>", _CHATML, ["<|im_end|>", "<|im_start|>"]),
    ("<|start_header_id|>", _LLAMA3, ["<|eot_id|>", "<|start_header_id|>"]),
    ("<start_of_turn>", _GEMMA, ["<end_of_turn>", "<start_of_turn>"]),
    ("[INST]", _MISTRAL, ["[INST]", "</s>"]),
]


def modelfile_text(
    gguf_name: str,
    chat_template: str | None,
    eos_token: str | None = None,
    system_prompt: str | None = None,
    adapter_name: str | None = None,
) -> str:
    """The Modelfile text; paths are relative to the Modelfile's folder."""
    lines = [f"FROM {_local(gguf_name)}"]
    if adapter_name:
        lines.append(f"ADAPTER {_local(adapter_name)}")
    stops: list[str] = []
    for marker, template, template_stops in KNOWN_TEMPLATES:
        if chat_template and marker in chat_template:
            lines.append(f'TEMPLATE """{template}"""')
            stops = list(template_stops)
            break
    else:
        log.info("chat template not recognised: the Modelfile relies on Ollama's detection from the GGUF")
    if eos_token and eos_token not in stops:
        stops.append(eos_token)
    lines += [f'PARAMETER stop "{_escape(s)}"' for s in stops]
    if system_prompt:
        lines.append(f'SYSTEM """{system_prompt.replace(chr(34) * 3, chr(39) * 3)}"""')
    return "\n".join(lines) + "\n"


def default_system_prompt(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The system turn a ChatML template adds by itself when the chat has none (SmolLM2 does).

    Ollama's Go template cannot express "add this when absent", so the Modelfile's SYSTEM carries
    it: the model then sees the prompt it was trained with.
    """
    try:
        messages = [{"role": "user", "content": "x"}]
        text = cast(str, tokenizer.apply_chat_template(messages, tokenize=False))  # tokenize=False: text
    except Exception:
        return None
    head = "<|im_start|>system\n"
    if not text.startswith(head) or "<|im_end|>" not in text:
        return None
    return text[len(head) : text.index("<|im_end|>")] or None


def write_modelfile(
    gguf_path: Path,
    chat_template: str | None,
    eos_token: str | None = None,
    system_prompt: str | None = None,
    adapter_path: Path | None = None,
    path: Path | None = None,
) -> Path:
    """Write the Modelfile (default `<gguf stem>.Modelfile` beside the GGUF) and return its path."""
    path = path or gguf_path.with_suffix(".Modelfile")
    text = modelfile_text(
        _ref(gguf_path, path),
        chat_template,
        eos_token,
        system_prompt,
        _ref(adapter_path, path) if adapter_path else None,
    )
    path.write_text(text, encoding="utf-8")
    return path


def _ref(target: Path, modelfile: Path) -> str:
    # Ollama resolves relative paths from the Modelfile's folder; files elsewhere get absolute paths.
    if target.resolve().parent == modelfile.resolve().parent:
        return target.name
    return str(target.resolve())


def _local(name: str) -> str:
    return name if Path(name).is_absolute() else f"./{name}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
