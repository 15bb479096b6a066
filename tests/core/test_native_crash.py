"""llama.cpp runs in a child process, and a dead child is a worded error, never a dead Tunesmith.

Real processes and real signals, no mocks: the child is killed with SIGSEGV (what a fault inside
llama.cpp delivers) while it answers or quantizes, and the parent must say what happened (the signal,
the child's log, what to try) and carry on: the next message opens the model in a new child.  The
helpers `llama_hosts` and `HostKiller` are shared with the app's and the CLI's crash tests.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from tunesmith.core.chat import ChatSettings
from tunesmith.core.native import NativeCrash
from tunesmith.core.native.client import HOST_MODULE
from tunesmith.core.native.crash import describe_exit, exit_name

HAS_LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_llama = pytest.mark.skipif(not HAS_LLAMA, reason="llama-cpp-python is not installed")

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
GREEDY = ChatSettings(temperature=0.0, max_new_tokens=40, context_length=512)


# -- helpers shared with the app's and the CLI's crash tests ---------------------------------------
def llama_hosts(root_pid: int | None = None) -> list[psutil.Process]:
    """The llama.cpp child processes under `root_pid` (this process by default)."""
    found = []
    for proc in psutil.Process(root_pid or os.getpid()).children(recursive=True):
        try:
            if HOST_MODULE in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue  # it ended while we looked
    return found


class HostKiller(threading.Thread):
    """Sends `sig` to the first new llama.cpp child of `root_pid` for which `ready(process)` holds.

    Children already running when it is made (engines of earlier tests not yet collected) are left
    alone.  Polls every few milliseconds, so "as soon as it appears" means within milliseconds of its
    start.  `killed` is the process it signalled (None if none came within `timeout` seconds).
    """

    def __init__(
        self,
        root_pid: int | None = None,
        sig: int = signal.SIGSEGV,
        ready: Callable[[psutil.Process], bool] = lambda proc: True,
        timeout: float = 300.0,
    ) -> None:
        super().__init__(daemon=True)
        self.root_pid, self.sig, self.ready, self.timeout = root_pid or os.getpid(), sig, ready, timeout
        self.killed: psutil.Process | None = None
        self.earlier = {proc.pid for proc in llama_hosts(self.root_pid)}

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and psutil.pid_exists(self.root_pid):
            for proc in llama_hosts(self.root_pid):
                if proc.pid in self.earlier:
                    continue
                try:
                    if self.ready(proc):
                        proc.send_signal(self.sig)
                        self.killed = proc
                        return
                except psutil.Error:
                    continue
            time.sleep(0.002)


# -- the words -------------------------------------------------------------------------------------
def test_exit_statuses_are_named_in_words():
    assert exit_name(-signal.SIGSEGV) == "SIGSEGV" and "segmentation fault" in describe_exit(-11)
    assert exit_name(-signal.SIGILL) == "SIGILL" and "instruction" in describe_exit(-4)
    assert exit_name(0xC0000005) == "ACCESS_VIOLATION" and "ACCESS_VIOLATION" in describe_exit(0xC0000005)
    assert exit_name(3) is None and describe_exit(3) == "it exited with code 3"
    assert "stopped answering" in describe_exit(None)
    crash = NativeCrash("checking x.gguf", -signal.SIGILL, Path("/logs/llama-1.log"), "export as F16.")
    message = str(crash)
    assert message.startswith("llama.cpp stopped unexpectedly while checking x.gguf: ")
    assert "SIGILL" in message and "/logs/llama-1.log" in message and "export as F16." in message
    assert "installer/llama_cpp.sh" in message  # an illegal instruction: built for another CPU


def test_only_core_native_imports_llama_cpp():
    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for folder in ("core", "desktop", "kernels")
        for path in (root / folder).rglob("*.py")
        if path.parent != root / "core" / "native"
        and any(
            line.strip().startswith(("import llama_cpp", "from llama_cpp"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == [], "llama.cpp must run in the child process (tunesmith.core.native)"


def test_the_bundle_entry_hands_llama_host_to_the_host(tmp_path):
    """installer/entry.py --llama-host (how the frozen app starts its child) serves the protocol."""
    from tunesmith.core.native import protocol

    entry = Path(__file__).resolve().parents[2] / "installer" / "entry.py"
    with open(tmp_path / "host.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(entry), "--llama-host", "a test"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    try:
        protocol.send(proc.stdin, ("run", "tunesmith.core.native.crash:exit_name", (-11,), {}))
        assert protocol.receive(proc.stdout) == ("ok", "SIGSEGV")
        protocol.send(proc.stdin, ("run", "os:getcwd", (), {}))  # only tunesmith.core.native is served
        status, error, _ = protocol.receive(proc.stdout)
        assert status == "error" and isinstance(error, ValueError)
        protocol.send(proc.stdin, ("exit", "", (), {}))
        assert protocol.receive(proc.stdout) == ("ok", None)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert "started (a test)" in (tmp_path / "host.log").read_text()


# -- chat ------------------------------------------------------------------------------------------
@needs_llama
def test_a_chat_child_killed_mid_answer_is_a_worded_error_and_the_next_message_works(tmp_path, monkeypatch):
    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat
    from tunesmith.core.models.sources import embedded_gguf_path

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    chat = LlamaCppChat(embedded_gguf_path(), n_ctx=512)
    try:
        first = chat.pid
        answer = chat.stream(STORY, GREEDY, lambda: False)
        assert next(answer) and next(answer)  # it is answering
        os.kill(first, signal.SIGSEGV)
        with pytest.raises(NativeCrash) as caught:
            for _ in answer:
                pass
        crash = caught.value
        message = str(crash)
        assert crash.signal_name == "SIGSEGV" and crash.returncode == -signal.SIGSEGV
        assert "killed by signal SIGSEGV" in message and "while answering with" in message
        assert crash.log_path.parent == tmp_path / ".app" / "logs" and crash.log_path.is_file()
        assert str(crash.log_path) in message and "What to try: send the message again" in message
        assert "Segmentation fault" in crash.log_path.read_text()  # faulthandler's last words, in the log
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE

        text = "".join(chat.stream(QUESTION, GREEDY, lambda: False))  # a new child, the model reopened
        assert "4" in text
        second = chat.pid
        assert second not in (None, first) and chat.loads == 2
    finally:
        chat.close()
    assert chat.pid is None and second not in [p.pid for p in llama_hosts()], "close() ends the child"


@needs_llama
def test_a_child_that_died_while_idle_is_replaced_quietly(tmp_path, monkeypatch):
    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat
    from tunesmith.core.models.sources import embedded_gguf_path

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    chat = LlamaCppChat(embedded_gguf_path(), n_ctx=512)
    try:
        first = chat.pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while chat.alive and time.monotonic() < deadline:  # gone once its threads have all ended
            time.sleep(0.01)
        assert not chat.alive
        assert "4" in "".join(chat.stream(QUESTION, GREEDY, lambda: False))
        assert chat.pid != first
    finally:
        chat.close()


@needs_llama
def test_a_chat_dropped_without_close_ends_its_child(tmp_path, monkeypatch):
    import gc

    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat
    from tunesmith.core.models.sources import embedded_gguf_path

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    chat = LlamaCppChat(embedded_gguf_path(), n_ctx=256)
    child = psutil.Process(chat.pid)
    del chat
    gc.collect()
    deadline = time.monotonic() + 30
    while child.is_running() and child.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, "the child outlived its chat"


@needs_llama
def test_errors_raised_in_the_child_come_back_as_themselves(tmp_path):
    from tunesmith.core.chat.llama_cpp_chat import LlamaCppChat
    from tunesmith.core.models.sources import embedded_gguf_path

    before = {p.pid for p in llama_hosts()}
    with pytest.raises(FileNotFoundError, match="no such LoRA adapter GGUF"):
        LlamaCppChat(embedded_gguf_path(), lora_path=tmp_path / "missing.gguf", n_ctx=256)
    assert {p.pid for p in llama_hosts()} <= before, "a failed open leaves no child behind"


@needs_llama
def test_this_process_never_loads_llama_cpp(tmp_path):
    code = (
        "import sys\n"
        "from tunesmith.core.chat import ChatSettings, LlamaCppChat\n"
        "from tunesmith.core.models.sources import embedded_gguf_path\n"
        "chat = LlamaCppChat(embedded_gguf_path(), n_ctx=256)\n"
        "s = ChatSettings(temperature=0.0, max_new_tokens=4, context_length=256)\n"
        "print(''.join(chat.stream([{'role': 'user', 'content': 'Hi'}], s, lambda: False)))\n"
        "chat.close()\n"
        "assert 'llama_cpp' not in sys.modules, 'llama_cpp was imported by the parent'\n"
    )
    env = {**os.environ, "TUNESMITH_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr


@needs_llama
def test_cli_chat_whose_llama_cpp_is_killed_exits_1_with_the_words(tmp_path, monkeypatch, capsys):
    import argparse

    from tunesmith.core.export.cli_commands import add_chat_parser
    from tunesmith.core.models.sources import embedded_gguf_path

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    parser = argparse.ArgumentParser(prog="tunesmith")
    add_chat_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["chat", str(embedded_gguf_path()), "--prompt", "Hi", "--ctx", "256"])
    killer = HostKiller(timeout=60)
    killer.start()
    code = args.handler(args)
    killer.join()
    err = capsys.readouterr().err
    assert killer.killed is not None and code == 1
    assert "llama.cpp stopped unexpectedly while opening" in err and "SIGSEGV" in err
    assert "Traceback" not in err


# -- quantizing ------------------------------------------------------------------------------------
@needs_llama
@pytest.mark.slow
def test_a_quantizer_killed_midway_leaves_no_partial_file_and_says_so(tmp_path, monkeypatch):
    from tunesmith.core.export.base_gguf import converted_base_gguf
    from tunesmith.core.export.quantize import quantize_gguf
    from tunesmith.core.export.result import ExportError

    monkeypatch.setenv("TUNESMITH_HOME", str(tmp_path))
    f16 = converted_base_gguf("demo")  # the demo model as F16 (cached between test sessions)
    out = tmp_path / "demo-q4_k_m.gguf"
    # Killed once llama.cpp has started writing the output: a real half-written file to clean up.
    killer = HostKiller(ready=lambda proc: out.exists() and out.stat().st_size > 0, timeout=120)
    killer.start()
    with pytest.raises(ExportError) as caught:
        quantize_gguf(f16, out, "q4_k_m")
    killer.join()
    assert killer.killed is not None, "the quantizer finished before it could be killed"
    message = str(caught.value)
    assert "SIGSEGV" in message and "while quantizing" in message and "Its log is" in message
    assert "No Q4_K_M file was kept" in message and "export as Q8_0 or F16" in message
    assert not out.exists()
    assert isinstance(caught.value.__cause__, NativeCrash)
