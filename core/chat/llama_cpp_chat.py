"""Chat with a GGUF file through llama.cpp, which runs in a child process (`tunesmith.core.native`).

`LlamaCppChat` is the parent's handle: the same constructor, methods and attributes as when llama.cpp
ran in this process, but the model lives in a child (`core/native/llama_chat.py` holds the engine:
the GGUF's own chat template, one token sampled per request, LoRA adapters switched on the open
context).  A native crash there ends only the child: the call in progress raises `NativeCrash`
(what happened, the signal, the child's log, what to try), and the next call starts a new child,
reopens the model and re-applies the adapter.  Stop (`should_stop`) is checked before every token,
as before.  Knows the child's requests; not llama-cpp-python, not Qt.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from tunesmith.core.native import NativeCrash, NativeHost, llama_cpp_installed
from tunesmith.core.native.crash import REINSTALL

from .session import ChatSettings

log = logging.getLogger(__name__)

ENGINE = "tunesmith.core.native.llama_chat:LlamaChatEngine"
ADVICE = (
    "send the message again: a new llama.cpp process starts and reopens the model. "
    f"If it crashes again, try another GGUF type (F16 is the safest), or {REINSTALL}."
)


def gpu_offload_available() -> bool:
    """Whether the installed llama.cpp can put layers on a GPU (asked in a short-lived child)."""
    with NativeHost("checking llama.cpp's GPU support") as host:
        return bool(host.run("tunesmith.core.native.llama_chat:gpu_offload_available"))


class LlamaCppChat:
    def __init__(
        self,
        gguf_path: str | os.PathLike[str],
        lora_path: str | os.PathLike[str] | None = None,
        lora_scale: float = 1.0,
        n_ctx: int = 2048,
        n_threads: int | None = None,
    ) -> None:
        self.gguf_path = Path(gguf_path)
        if not self.gguf_path.is_file():
            raise FileNotFoundError(f"{self.gguf_path}: no such GGUF file")
        if not llama_cpp_installed():
            raise ImportError(
                "chatting with a GGUF needs llama-cpp-python, which is not installed: "
                "pip install 'tunesmith[chat]' (it compiles llama.cpp, a few minutes)"
            )
        self.lora_path = Path(lora_path) if lora_path else None
        self.lora_scale = float(lora_scale)
        self.n_ctx = int(n_ctx)
        self.n_threads = n_threads
        self.gpu = False
        self.loads = 0  # how many times the model was (re)opened: after a crash, or a new context length
        self._host = NativeHost(f"opening {self.gguf_path.name}", ADVICE)
        self._open_model = False
        try:
            self._open()
        except BaseException:
            self._host.close()
            raise

    # -- the child -------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The process id of the child running llama.cpp (None while none runs)."""
        return self._host.pid

    @property
    def alive(self) -> bool:
        """Whether the child is running (after a crash the next call starts another)."""
        return self._host.alive

    @property
    def log_path(self) -> Path | None:
        """The current (or last) child's log file."""
        return self._host.log_path

    def _open(self) -> None:
        """Load the model in the child (starting one if needed); a bad adapter leaves the base open."""
        self._open_model = False
        self._host.task = f"opening {self.gguf_path.name}"
        try:
            self._host.new(
                ENGINE,
                _absolute(self.gguf_path),
                _absolute(self.lora_path),
                self.lora_scale,
                self.n_ctx,
                self.n_threads,
            )
        except NativeCrash:
            raise
        except Exception:
            if self.lora_path is None:
                raise
            self.lora_path = None  # as when llama.cpp ran here: the base alone stays usable
            self._host.new(
                ENGINE, _absolute(self.gguf_path), None, self.lora_scale, self.n_ctx, self.n_threads
            )
            self._opened()
            raise
        self._opened()

    def _opened(self) -> None:
        self._open_model = True
        self.loads += 1
        self.gpu = bool(self._host.call("info")["gpu"])

    def _ready(self, task: str) -> None:
        """A child with the model open (a new one after a crash), its work named `task` for messages."""
        if not (self._host.alive and self._open_model):
            self._open()
        self._host.task = task

    # -- adapter ---------------------------------------------------------------------------------
    def set_adapter(self, lora_path: str | os.PathLike[str] | None, lora_scale: float = 1.0) -> None:
        """Switch the LoRA adapter on (with a scale) or off (None or scale 0), keeping the base loaded."""
        new_path = Path(lora_path) if lora_path else None
        if new_path == self.lora_path and float(lora_scale) == self.lora_scale:
            return
        self.lora_path, self.lora_scale = new_path, float(lora_scale)
        if not (self._host.alive and self._open_model):
            self._open()  # a new child opens straight with the new choice
            return
        self._host.task = f"applying the LoRA adapter {new_path.name if new_path else '(off)'}"
        try:
            self._host.call("set_adapter", _absolute(new_path), self.lora_scale)
        except NativeCrash:
            raise  # the choice stays; the next call reopens with it
        except Exception:
            self.lora_path = None  # the child left the base alone, usable
            raise

    @property
    def adapter_active(self) -> bool:
        """Whether answers currently go through the adapter."""
        return self.lora_path is not None and self.lora_scale != 0

    # -- chatting --------------------------------------------------------------------------------
    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        """The token ids the GGUF's template gives for `messages` (plus the generation prompt)."""
        self._ready(f"reading the prompt with {self.gguf_path.name}")
        return self._host.call("prompt_tokens", messages)

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        """The GGUF's token ids for `text` (no BOS added)."""
        self._ready(f"tokenizing with {self.gguf_path.name}")
        return self._host.call("tokenize", text, special)

    def detokenize(self, ids: list[int], special: bool = True) -> str:
        """The text of token ids (special tokens spelled out when `special`)."""
        self._ready(f"decoding tokens with {self.gguf_path.name}")
        return self._host.call("detokenize", list(ids), special)

    def stream(
        self, messages: list[dict], settings: ChatSettings, should_stop: Callable[[], bool]
    ) -> Iterator[str]:
        """Yield the answer piece by piece; NativeCrash if llama.cpp dies meanwhile."""
        if settings.context_length != self.n_ctx:
            self.n_ctx = int(settings.context_length)
            if self._host.alive and self._open_model:
                self._host.task = f"reopening {self.gguf_path.name} with a context of {self.n_ctx}"
                self._open_model = False  # until the reopen succeeds
                self._host.call("open", self.n_ctx)
                self._open_model = True
                self.loads += 1
        self._ready(f"answering with {self.gguf_path.name}")
        self._host.call("begin", messages, settings)
        while not should_stop():
            text, done = self._host.call("step")  # one token per round trip: Stop is checked per token
            if text:
                yield text
            if done:
                break
        tail = self._host.call("finish")
        if tail:
            yield tail

    def close(self) -> None:
        """End the child (it frees the adapters and the model)."""
        self._open_model = False
        self._host.close()


def _absolute(path: Path | None) -> Path | None:
    # The child resolves nothing against the parent's folder: give it absolute paths.
    return None if path is None else path.expanduser().absolute()
