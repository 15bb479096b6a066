"""`tunesmith --self-test`: prove an installation works end to end, in about a minute on a CPU.

Four stages, each through the same public API the app uses: load the embedded demo model, run two
real training steps (`TrainingRun`), export the run to a small Q8_0 GGUF (`export_run`, with its
check against the trained model), and answer one chat message from that GGUF (`LlamaCppChat`).  A
short report follows; the return value is the process exit status (0 = every stage passed).  A failed
stage stops the test and names itself with a plain message, so a user can paste one line into a bug
report.  Everything is written to a temporary folder (or `workdir`); nothing touches the user's runs.
Knows the engine's public API only; no Qt.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LogFn = Callable[[str], None]

# Small enough for a 2-core CPU, real enough to exercise TRL and peft.
STEPS = 2
MAX_LENGTH = 64
QUESTION = "What is the capital of France?"


class StageFailed(RuntimeError):
    """A stage could not complete; the message is for a person."""


@dataclass
class Stage:
    name: str
    seconds: float
    detail: str


def run_self_test(workdir: Path | None = None, log: LogFn = print) -> int:
    """Run every stage, print a report through `log`, return 0 when all passed (1 otherwise)."""
    # The self-test must work on a machine that never saw the network (and must not wait for it), and
    # library progress bars (tqdm honours TQDM_DISABLE) would break up the report.
    quiet = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    with _environment(quiet):
        if workdir is not None:
            Path(workdir).mkdir(parents=True, exist_ok=True)
            return _run_all(Path(workdir), log)
        with tempfile.TemporaryDirectory(prefix="tunesmith-self-test-") as tmp:
            return _run_all(Path(tmp), log)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set variables that are not set yet, and restore the environment afterwards (tests share it)."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _run_all(workdir: Path, log: LogFn) -> int:
    log(f"Tunesmith self-test (working in {workdir})")
    stages: list[Stage] = []
    context: dict[str, Any] = {"workdir": workdir, "log": log}
    steps: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("machine", _stage_machine),
        ("load model", _stage_model),
        ("train", _stage_train),
        ("export GGUF", _stage_export),
        ("chat", _stage_chat),
    ]
    for name, fn in steps:
        start = time.monotonic()
        try:
            detail = fn(context)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear line
            message = str(exc) if isinstance(exc, StageFailed) else f"{type(exc).__name__}: {exc}"
            log(f"  FAILED  {name}: {message}")
            log(
                f"Self-test FAILED at stage '{name}' after {_total(stages) + time.monotonic() - start:.1f} s."
            )
            return 1
        stages.append(Stage(name, time.monotonic() - start, detail))
        log(f"  ok      {name:<12} {stages[-1].seconds:6.1f} s  {detail}")
    log(f"Self-test passed: {len(stages)} stages in {_total(stages):.1f} s.")
    return 0


def _total(stages: list[Stage]) -> float:
    return sum(s.seconds for s in stages)


# ------------------------------------------------------------------------------------------ stages
def _stage_machine(ctx: dict[str, Any]) -> str:
    """What the machine is, and whether Tunesmith's kernels can be built here (a note, never a failure)."""
    from tunesmith.core.capabilities import kernel_build_problem
    from tunesmith.core.hardware import detect_hardware

    hardware = detect_hardware()
    ctx["hardware"] = hardware
    first = hardware.summary().splitlines()[0]
    problem = kernel_build_problem() if hardware.has_gpu else None
    return f"{first}" + (f" — note: {problem}" if problem else "")


def _stage_model(ctx: dict[str, Any]) -> str:
    """The embedded GGUF is present and converts (once, cached) to the folder training loads."""
    from tunesmith.core.models.sources import embedded_gguf_path, embedded_model_dir

    gguf = embedded_gguf_path()
    folder = embedded_model_dir()
    if not (folder / "config.json").is_file():
        raise StageFailed(f"the embedded model did not convert ({folder} has no config.json)")
    return f"{gguf.name} ({gguf.stat().st_size / 1e6:.0f} MB)"


def _stage_train(ctx: dict[str, Any]) -> str:
    """Two optimizer steps of LoRA SFT on the bundled sample, through the real engine."""
    from tunesmith.core.config import RunConfig
    from tunesmith.core.events import Event, Failed, LogLine, StepMetrics
    from tunesmith.core.training.engine import TrainingRun

    log: LogFn = ctx["log"]
    config = RunConfig(output_dir=str(ctx["workdir"] / "runs"), run_name="self-test")
    config.data.max_length = MAX_LENGTH
    config.lora.r = 4
    config.lora.alpha = 8
    config.train.max_steps = STEPS
    config.train.batch_size = 2
    config.train.learning_rate = 1e-3
    config.train.lr_scheduler = "constant"
    losses: list[float] = []

    def on_event(event: Event) -> None:
        if isinstance(event, StepMetrics):
            losses.append(event.loss)
            log(f"          step {event.step}/{event.total_steps}: loss {event.loss:.3f}")
        elif isinstance(event, LogLine) and event.level == "warning":
            log(f"          note: {event.message}")

    result = TrainingRun(config, on_event).run()
    if isinstance(result, Failed):
        raise StageFailed(f"{result.message} {result.hint}".strip())
    if result.step != STEPS or len(losses) != STEPS:
        raise StageFailed(f"training stopped at step {result.step} of {STEPS}")
    ctx["run_dir"] = Path(result.run_dir)
    return f"{STEPS} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}"


def _stage_export(ctx: dict[str, Any]) -> str:
    """The run as a Q8_0 GGUF; export_run raises ExportError itself when its check fails."""
    from tunesmith.core.export import export_run

    result = export_run(ctx["run_dir"], "gguf", quant="q8_0")
    path = Path(result.path)
    if not path.is_file() or path.stat().st_size == 0:
        raise StageFailed(f"the export reported {path}, but no file is there")
    ctx["gguf"] = path
    check = f", check {'passed' if result.check.passed else 'FAILED'}" if result.check else ""
    return f"{path.name} ({path.stat().st_size / 1e6:.0f} MB{check})"


def _stage_chat(ctx: dict[str, Any]) -> str:
    """One greedy answer from the exported GGUF through llama.cpp."""
    from tunesmith.core.chat import ChatSettings, LlamaCppChat
    from tunesmith.core.chat.session import never

    settings = ChatSettings(temperature=0.0, max_new_tokens=24, context_length=512)
    chat = LlamaCppChat(ctx["gguf"], n_ctx=settings.context_length)
    try:
        answer = "".join(chat.stream([{"role": "user", "content": QUESTION}], settings, never)).strip()
    finally:
        chat.close()
    if not answer:
        raise StageFailed("the exported model gave an empty answer")
    short = " ".join(answer.split())
    return f"Q: {QUESTION} A: {short[:70]}{'...' if len(short) > 70 else ''}"
