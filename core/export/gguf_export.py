"""GGUF exports of a run: the merged model in one GGUF type, or the adapter as a GGUF adapter.

Orchestrates the steps (refuse early, merge, write, quantize, check, rename, Modelfile) and leaves
the craft to the modules that know it: `gguf_writer`, `gguf_lora`, `quantize`, `verify`, `ollama`.
A failed check is an error: the file is removed and the message says what differed.  A check that
could not finish because llama.cpp crashed (in its child process) proves nothing either way: the
file is kept under its final name with its Modelfile, marked by a `<name>.unverified.txt` beside it,
and `ExportUnverified` says so (the CLI exits non-zero, the app shows the words).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import gguf

from tunesmith.core.native import NativeCrash

from .gguf_arch import arch_for_config
from .quantize import K_QUANTS, llama_cpp_available, quantize_gguf, require_llama_cpp
from .result import CheckResult, ExportError, ExportResult, ExportUnverified, ProgressFn, report
from .runs import RunInfo, commit_output, reserve_output

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


def _base_config(run: RunInfo) -> PretrainedConfig:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(run.base_model_dir()))


def gguf_string(path: Path, key: str) -> str | None:
    """A string value from a GGUF's metadata (None when absent or unreadable)."""
    try:
        field = gguf.GGUFReader(str(path)).fields.get(key)
        return None if field is None else str(field.contents())
    except Exception:  # an unreadable source only loses a hint
        return None


def _check(
    path: Path,
    model: PreTrainedModel,
    tok: PreTrainedTokenizerBase,
    gguf_type: str,
    lora_path: Path | None = None,
) -> CheckResult | None:
    if not llama_cpp_available():
        log.warning("llama-cpp-python is not installed: the GGUF was written but not checked")
        return None
    from .verify import verify_gguf

    result = verify_gguf(path, model, tok, gguf_type, lora_path=lora_path)
    if not result.passed:
        (lora_path or path).unlink(missing_ok=True)
        raise ExportError(
            "the exported GGUF does not behave like the trained model, so it was not kept.\n"
            + result.summary()
            + "\n"
            + "\n".join(result.details)
        )
    return result


def unverified_marker(path: Path) -> Path:
    """The sidecar that marks an exported file as not checked (model.gguf -> model.unverified.txt)."""
    return path.with_suffix(".unverified.txt")


def _unverified(result: ExportResult, crash: NativeCrash) -> ExportUnverified:
    """Mark the kept file as unverified (sidecar + result field) and build the error that reports it."""
    marker = unverified_marker(result.path)
    result.unverified = str(crash)
    marker.write_text(
        f"NOT VERIFIED: {result.path.name} was exported but could not be checked against the trained model.\n"
        f"The file may well be fine; nothing showed it wrong, but nothing showed it right.\n\n{crash}\n",
        encoding="utf-8",
    )
    result.extra_files.append(marker)
    log.error("export kept unverified: %s", result.path)
    return ExportUnverified(
        f"The export could not be checked. {crash}\n"
        f"The file is kept at {result.path} (with its Modelfile), marked unverified by {marker.name}.",
        result,
    )


def _modelfile_target(out: Path, overwrite: bool) -> Path:
    path = out.with_suffix(".Modelfile")
    if path.exists() and not overwrite:
        raise ExportError(f"{path} already exists; choose another --output or pass --overwrite")
    return path


def export_gguf(
    run: RunInfo,
    out: Path,
    quant: str,
    overwrite: bool = False,
    on_progress: ProgressFn | None = None,
    check: bool = True,
    system_prompt: str | None = None,
) -> ExportResult:
    """Merged model -> GGUF of type `quant` at `out`, checked, with a Modelfile beside it."""
    from .gguf_writer import write_gguf
    from .merged import load_merged_model
    from .ollama import default_system_prompt, write_modelfile

    arch_for_config(_base_config(run))  # refuse unsupported architectures before any heavy work
    if quant in K_QUANTS:
        require_llama_cpp(f"{quant.upper()} export")
    modelfile = _modelfile_target(out, overwrite)
    tmp = reserve_output(out, overwrite)
    report(on_progress, 0.02, "loading and merging the model")
    model, tok = load_merged_model(run)
    source = run.source_gguf()
    pre = gguf_string(source, "tokenizer.ggml.pre") if source else None

    def step(lo: float, hi: float) -> ProgressFn:
        return lambda f, msg: report(on_progress, lo + (hi - lo) * f, msg)

    crash: NativeCrash | None = None  # llama.cpp died during the check: the file is kept unverified
    try:
        if quant in K_QUANTS:
            f16 = tmp.with_name(tmp.name + ".f16")
            write_gguf(
                model.state_dict(),
                model.config,
                run.tokenizer_dir(),
                f16,
                "f16",
                pre,
                run.run_dir.name,
                step(0.1, 0.6),
            )
            report(on_progress, 0.6, f"quantizing to {quant.upper()} with llama.cpp")
            quantize_gguf(f16, tmp, quant)
            f16.unlink(missing_ok=True)
        else:
            write_gguf(
                model.state_dict(),
                model.config,
                run.tokenizer_dir(),
                tmp,
                quant,
                pre,
                run.run_dir.name,
                step(0.1, 0.75),
            )
        report(on_progress, 0.8, "checking the GGUF against the trained model")
        try:
            result_check = _check(tmp, model, tok, quant) if check else None
        except NativeCrash as exc:
            crash, result_check = exc, None
    except BaseException:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".f16").unlink(missing_ok=True)
        raise
    path = commit_output(tmp, out)
    mf = write_modelfile(
        path,
        tok.chat_template if isinstance(tok.chat_template, str) else None,
        tok.eos_token,
        system_prompt or default_system_prompt(tok),
        path=modelfile,
    )
    result = ExportResult("gguf", path, quant, [mf], result_check)
    if crash is not None:
        raise _unverified(result, crash)
    unverified_marker(path).unlink(missing_ok=True)  # from an earlier export to this name
    return result


def export_lora_gguf(
    run: RunInfo,
    out: Path,
    overwrite: bool = False,
    on_progress: ProgressFn | None = None,
    check: bool = True,
    system_prompt: str | None = None,
) -> ExportResult:
    """The adapter as a GGUF adapter at `out`, checked on the base GGUF, with a Modelfile (FROM + ADAPTER)."""
    from .gguf_lora import write_lora_gguf
    from .merged import load_merged_model
    from .ollama import default_system_prompt, write_modelfile

    config = _base_config(run)
    arch_for_config(config)
    modelfile = _modelfile_target(out, overwrite)
    tmp = reserve_output(out, overwrite)
    report(on_progress, 0.05, "finding the base GGUF")
    base_gguf, base_type = base_gguf_for(run, on_progress)
    report(on_progress, 0.4, "converting the adapter")
    try:
        write_lora_gguf(run.adapter_dir, config, tmp)
        result_check, crash = None, None
        if check:
            report(on_progress, 0.6, "checking base + adapter against the merged model")
            model, tok = load_merged_model(run)
            try:
                result_check = _check(base_gguf, model, tok, base_type, lora_path=tmp)
            except NativeCrash as exc:
                crash = exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    path = commit_output(tmp, out)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(run.tokenizer_dir()))
    mf = write_modelfile(
        base_gguf,
        tok.chat_template if isinstance(tok.chat_template, str) else None,
        tok.eos_token,
        system_prompt or default_system_prompt(tok),
        adapter_path=path,
        path=modelfile,
    )
    result = ExportResult("gguf-lora", path, None, [mf], result_check, info={"base_gguf": str(base_gguf)})
    if crash is not None:
        raise _unverified(result, crash)
    unverified_marker(path).unlink(missing_ok=True)  # from an earlier export to this name
    return result


def base_gguf_for(run: RunInfo, on_progress: ProgressFn | None = None) -> tuple[Path, str]:
    """(GGUF of the untuned base model, its type): the user's source GGUF, else an F16 conversion made once.

    The embedded demo model is converted too: its bundled Q4_1 file talks nonsense in llama.cpp (STACK.md),
    and the F16 conversion holds exactly the weights the adapter was trained on.
    """
    source = run.source_gguf()
    if source is not None and run.config.model.source != "demo":
        return source, "source"
    from .base_gguf import converted_base_gguf

    step = lambda f, m: report(on_progress, 0.05 + 0.3 * f, m)  # noqa: E731
    return converted_base_gguf(run.config.model.source, run.tokenizer_dir(), "f16", step), "f16"
