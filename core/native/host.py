"""The child process that runs llama.cpp for Tunesmith: `python -m tunesmith.core.native.host`.

It reads requests from its stdin and answers on what was its stdout, one at a time, until the
parent closes the pipe.  llama.cpp prints to the C-level stdout/stderr whatever Python does, so the
protocol's stdout is moved to a fresh descriptor first and descriptors 1 and 2 both go to the log
file the parent opened as our stderr: nothing llama.cpp prints can reach the protocol, and a crash's
last words (faulthandler's traceback included) are in the log.

Requests are (op, target, args, kwargs):
- ("new", "module:Class", ...)   make the one object this process serves (closing the previous one);
- ("call", "method", ...)        call a method of that object;
- ("run", "module:function", ...) call a function (one-shot work such as quantizing);
- ("exit", "", (), {})           close the object and end.
Answers are ("ok", value) or ("error", exception, traceback text).  Targets must live in
`tunesmith.core.native`, the only package that touches llama.cpp.  Knows the protocol; not llama.cpp.
"""

from __future__ import annotations

import faulthandler
import importlib
import logging
import os
import pickle
import sys
import traceback
from typing import Any, BinaryIO

from . import protocol

log = logging.getLogger("tunesmith.llama_host")

PACKAGE = "tunesmith.core.native."


def main(argv: list[str] | None = None) -> int:
    """Entry point of the child (also reached as `Tunesmith --llama-host` in the frozen app)."""
    requests, answers = _take_protocol_fds()
    faulthandler.enable(file=sys.stderr, all_threads=True)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = sys.argv[1:] if argv is None else argv
    log.info("llama.cpp host %d started (%s)", os.getpid(), " ".join(args) or "no task named")
    serve(requests, answers)
    log.info("llama.cpp host %d done", os.getpid())
    return 0


def _take_protocol_fds() -> tuple[BinaryIO, BinaryIO]:
    """The protocol's pipes on new descriptors; fd 0 on the null device, fds 1 and 2 on the log."""
    requests_fd, answers_fd = os.dup(0), os.dup(1)
    if sys.platform == "win32":
        import msvcrt

        for fd in (requests_fd, answers_fd):
            msvcrt.setmode(fd, os.O_BINARY)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)  # the parent gave us the log file as stderr
    sys.stdout = sys.stderr
    return os.fdopen(requests_fd, "rb"), os.fdopen(answers_fd, "wb")


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer requests until the parent closes the pipe or asks us to exit."""
    served: Any = None
    try:
        while True:
            try:
                op, target, args, kwargs = protocol.receive(requests)
            except (protocol.PeerGone, protocol.ProtocolError):
                return  # the parent is gone, or the pipe is out of step: nothing more to answer
            except Exception as exc:  # noqa: BLE001 - a whole message that would not unpickle
                protocol.send(answers, ("error", _portable(exc), traceback.format_exc()))
                continue
            if op == "exit":
                protocol.send(answers, ("ok", None))
                return
            try:
                if op == "new":
                    _close(served)
                    served = None
                    served = _resolve(target)(*args, **kwargs)
                    value = None
                elif op == "call":
                    value = getattr(served, target)(*args, **kwargs)
                elif op == "run":
                    value = _resolve(target)(*args, **kwargs)
                else:
                    raise ValueError(f"unknown request {op!r}")
                answer: tuple = ("ok", value)
            except Exception as exc:  # noqa: BLE001 - every error goes back to the parent
                log.exception("%s %s failed", op, target)
                answer = ("error", _portable(exc), traceback.format_exc())
            protocol.send(answers, answer)
    finally:
        _close(served)


def _resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    if not module.startswith(PACKAGE):
        raise ValueError(f"{target!r} is not in {PACKAGE.rstrip('.')}")
    return getattr(importlib.import_module(module), name)


def _close(served: Any) -> None:
    if served is not None and hasattr(served, "close"):
        served.close()


def _portable(exc: Exception) -> Exception:
    """The exception itself when the parent can unpickle it, else a RuntimeError with its words.

    The parent never imports llama_cpp (nor our modules that do), so their exception classes travel
    as words only.
    """
    module = type(exc).__module__
    known = module == "builtins" or (
        module.startswith("tunesmith.") and not module.startswith(PACKAGE + "llama_")
    )
    try:
        if known:
            pickle.loads(pickle.dumps(exc))
            return exc
    except Exception:  # noqa: BLE001 - any unpicklable exception
        pass
    return RuntimeError(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
