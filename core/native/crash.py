"""`NativeCrash`: the llama.cpp child process died, told in words a person can act on.

A native crash in llama.cpp (a bad instruction for this CPU, a fault in a quantized matmul) kills
the process it runs in.  Tunesmith runs llama.cpp in a child process (`client.NativeHost`), so such
a crash arrives here as an exit status instead of taking the app down.  This module turns that
status into a message: what was being done, how the process ended (signal name on Linux/macOS,
the NTSTATUS name on Windows), where its log is, and what to try.  Knows exit codes; nothing else.
"""

from __future__ import annotations

import signal
from pathlib import Path

REINSTALL = "reinstall llama.cpp with `bash installer/llama_cpp.sh .venv/bin/python`"

# Windows reports a crashed process by its NTSTATUS code as an unsigned exit code.
_WINDOWS_CODES = {
    0xC0000005: ("ACCESS_VIOLATION", "it read or wrote memory it does not own"),
    0xC000001D: ("ILLEGAL_INSTRUCTION", "it used a CPU instruction this processor does not have"),
    0xC00000FD: ("STACK_OVERFLOW", "it ran out of stack"),
    0xC0000409: ("STACK_BUFFER_OVERRUN", "it detected a corrupted stack"),
    0xC0000374: ("HEAP_CORRUPTION", "it corrupted its memory"),
}
# Plain words for the signals a native library dies of.
_SIGNAL_WORDS = {
    "SIGSEGV": "a segmentation fault: it touched memory it does not own",
    "SIGILL": "an illegal instruction: it used a CPU instruction this processor does not have",
    "SIGBUS": "a bus error: a bad memory access",
    "SIGFPE": "an arithmetic fault",
    "SIGABRT": "it aborted itself after detecting an error",
    "SIGKILL": "it was killed, often by the system when memory runs out",
}


def exit_name(returncode: int | None) -> str | None:
    """SIGSEGV, ACCESS_VIOLATION, ... for a crash's exit status; None for a plain exit code."""
    if returncode is None:
        return None
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    if returncode in _WINDOWS_CODES:
        return _WINDOWS_CODES[returncode][0]
    return None


def describe_exit(returncode: int | None) -> str:
    """How the process ended, in words (always names the signal or code)."""
    if returncode is None:
        return "it stopped answering and was ended"
    name = exit_name(returncode)
    if returncode < 0:
        words = _SIGNAL_WORDS.get(name or "", "a fatal signal")
        return f"it was killed by signal {name} ({words})"
    if name is not None:
        return f"it crashed with {name} ({_WINDOWS_CODES[returncode][1]})"
    return f"it exited with code {returncode}"


class NativeCrash(RuntimeError):
    """The llama.cpp child process died while doing `task`; str() is the whole message for a person."""

    hint = ""  # the message already says what to try; the app adds nothing after it

    def __init__(self, task: str, returncode: int | None, log_path: Path | None, advice: str) -> None:
        self.task = task
        self.returncode = returncode
        self.signal_name = exit_name(returncode)
        self.log_path = log_path
        self.advice = advice
        super().__init__(self._message())

    def _message(self) -> str:
        advice = self.advice
        if self.signal_name in ("SIGILL", "ILLEGAL_INSTRUCTION") and REINSTALL not in advice:
            advice = f"{advice} The installed llama.cpp was built for another CPU: {REINSTALL}."
        log = f" Its log is {self.log_path}." if self.log_path else ""
        return (
            f"llama.cpp stopped unexpectedly while {self.task}: {describe_exit(self.returncode)}. "
            f"Tunesmith itself is still running.{log} What to try: {advice}"
        )

    def __reduce__(self):  # keep the fields when pickled (an error may cross processes)
        return (type(self), (self.task, self.returncode, self.log_path, self.advice))
