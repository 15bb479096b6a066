"""`NativeHost`: start the llama.cpp child process, send it requests, and notice when it dies.

One host is one child process serving one object (a chat model, a check) or one-shot functions
(quantizing).  Calls are synchronous and one at a time (a lock guards the pipe).  When the child dies
— a native crash, a signal from outside, the system running out of memory — the call in progress
raises `NativeCrash` with the exit signal and the child's log file, and the host is ready to start a
fresh child on the next call; whoever owns the host decides what to reopen.  An error that llama.cpp
or our child code *raises* (a missing file, an adapter that does not fit) comes back as itself.

The child is `python -m tunesmith.core.native.host`, or `Tunesmith --llama-host` in the frozen
bundle (installer/entry.py hands that argument to the host).  Knows processes; not llama.cpp.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from tunesmith.core.paths import log_dir

from . import protocol
from .crash import REINSTALL, NativeCrash

log = logging.getLogger(__name__)

HOST_MODULE = "tunesmith.core.native.host"
FROZEN_FLAG = "--llama-host"
KEEP_LOGS = 30  # the newest child logs kept in log_dir(); older ones are removed when a child starts
DEFAULT_ADVICE = f"try again; if it happens again, {REINSTALL}."
_counter = itertools.count(1)


def host_command(task: str) -> list[str]:
    """The command line that starts a child (the bundle's own executable when frozen)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG, task]
    # -P: do not put the current folder first on the child's path (it may be a checkout whose
    # top-level `kernels/` would shadow other packages); Python 3.11+.
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe_path, "-m", HOST_MODULE, task]


def new_log_path() -> Path:
    """A fresh log file name for one child, after pruning the oldest child logs."""
    folder = log_dir()
    old = sorted(folder.glob("llama-*.log"), key=lambda p: p.stat().st_mtime)
    for path in old[: max(0, len(old) - KEEP_LOGS + 1)]:
        path.unlink(missing_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return folder / f"llama-{stamp}-{os.getpid()}-{next(_counter)}.log"


class NativeHost:
    """A llama.cpp child process; `task` (words: "answering with x.gguf") names the work in crash messages."""

    def __init__(self, task: str, advice: str = DEFAULT_ADVICE) -> None:
        self.task = task
        self.advice = advice
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()

    # -- the process -----------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The child's process id (None before the first call and after a crash)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """Whether a child is running (one that died while idle is noticed here, not only mid-call)."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start a child unless one is running (calls do this themselves)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                log.warning(
                    "llama.cpp host %d had ended (status %s); starting another",
                    self._proc.pid,
                    self._proc.returncode,
                )
                _end(self._proc, wait=0)
                self._proc = None
            if self._proc is not None:
                return
            self.log_path = new_log_path()
            with open(self.log_path, "ab") as log_file:
                self._proc = subprocess.Popen(
                    host_command(self.task),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
                    close_fds=True,
                )
            log.info("llama.cpp host %d started for %s (log %s)", self._proc.pid, self.task, self.log_path)

    def close(self) -> None:
        """Ask the child to end (it closes what it serves), wait briefly, then make sure it is gone."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is None:
                return
            try:
                stdin, stdout = _pipes(proc)
                protocol.send(stdin, ("exit", "", (), {}))
                protocol.receive(stdout)
            except (OSError, EOFError, protocol.ProtocolError):
                pass  # already gone: nothing to ask
            _end(proc, wait=10)

    def __del__(self) -> None:
        # A host dropped without close() (an engine the app let go): Popen keeps itself alive to be
        # reaped later, pipes open, so close the child's stdin here; it sees the end and exits.
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def __enter__(self) -> NativeHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------------
    def new(self, factory: str, *args: Any, **kwargs: Any) -> None:
        """Make the object the child serves: `factory` is "tunesmith.core.native.module:Class"."""
        self._request("new", factory, args, kwargs)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of the served object and return its (pickled) result."""
        return self._request("call", method, args, kwargs)

    def run(self, function: str, *args: Any, **kwargs: Any) -> Any:
        """Call "tunesmith.core.native.module:function" in the child and return its result."""
        return self._request("run", function, args, kwargs)

    def _request(self, op: str, target: str, args: tuple, kwargs: dict) -> Any:
        with self._lock:
            self.start()
            proc = self._proc
            assert proc is not None
            try:
                stdin, stdout = _pipes(proc)
                protocol.send(stdin, (op, target, args, kwargs))
                answer = protocol.receive(stdout)
            except (OSError, EOFError, protocol.ProtocolError) as exc:
                raise self._crashed(exc) from None
        if answer[0] == "error":
            log.debug("the llama.cpp host raised:\n%s", answer[2])
            raise answer[1]
        return answer[1]

    def _crashed(self, cause: BaseException) -> NativeCrash:
        """Collect the dead (or broken) child's exit status; the next call starts a new child."""
        proc, self._proc = self._proc, None
        assert proc is not None
        returncode = _end(proc, wait=10)
        crash = NativeCrash(self.task, returncode, self.log_path, self.advice)
        log.error("%s (%s: %s)", crash, type(cause).__name__, cause)
        return crash


def _pipes(proc: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    """The child's stdin and stdout (start() opens both as pipes)."""
    assert proc.stdin is not None and proc.stdout is not None
    return proc.stdin, proc.stdout


def _end(proc: subprocess.Popen, wait: float) -> int | None:
    """Wait for `proc` to exit (killing it when it will not) and close its pipes; its exit status."""
    returncode: int | None
    try:
        returncode = proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        returncode = None  # it did not die by itself: "stopped answering"
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
    return returncode
