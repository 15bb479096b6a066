"""Chat conversations with one model, or two side by side, streamed from a worker thread.

`ChatSession` keeps one message history per side ("tuned", "run", "base", "gguf", "adapter",
"base-gguf"), holds the chat engines the controller gives it (with what each was loaded from, its
`origins`), and runs a `ChatWorker` on a QThread for each message.  Side by side, both sides answer
the same conversation: a side that joins midway is given the other side's history first (`join`).
Signals carry the streamed pieces to the Chat tab.  It also remembers the LoRA adapter choice
(`LoraChoice`) shared by the "adapter" and "base-gguf" sides, which answer from one base GGUF.
It knows nothing of widgets or of how engines are loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from tunesmith.desktop.logic.chat_models import LoraChoice
from tunesmith.desktop.workers.chat import ChatWorker
from tunesmith.desktop.workers.training import start_worker_thread


class ChatSession(QObject):
    """Signals: the ChatWorker's (sig_begin, sig_token, sig_end, sig_failed) and sig_busy(bool)."""

    sig_begin = Signal(str)
    sig_token = Signal(str, str)
    sig_end = Signal(str, bool)
    sig_failed = Signal(str, dict)
    sig_busy = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.engines: dict[str, Any] = {}
        self.origins: dict[str, str] = {}  # what each engine was loaded from (a path, a model source)
        self.histories: dict[str, list[dict]] = {}
        self._answers: dict[str, list[str]] = {}
        self._worker: ChatWorker | None = None
        self._thread: QThread | None = None
        self.lora = LoraChoice()

    def set_engine(self, side: str, engine: Any, origin: str = "") -> None:
        """Use `engine` (loaded from `origin`) for `side` from now on.  The side's conversation is kept:
        the Chat tab restarts it (`restart`) when the model it shows changes, not when one reloads."""
        self.engines[side] = engine
        self.origins[side] = origin
        self.histories.setdefault(side, [])

    def drop_engines(self) -> None:
        """Forget every engine (e.g. before a new training run) and the last trained model's conversation;
        the other conversations go on with the same models once they are loaded again."""
        self.engines.clear()
        self.origins.clear()
        self.lora.switch = None  # the base GGUF closes once the last answer using it has ended
        self.histories["tuned"] = []

    def restart(self, side: str) -> None:
        """Start `side`'s conversation over (its model changed)."""
        self.histories[side] = []

    def join(self, side: str, main: str) -> bool:
        """Make `side` answer the same conversation as `main` (comparing midway): when their user turns
        differ, `side` takes a copy of `main`'s history, answers included.  True if it was copied."""
        conversation = self.histories.setdefault(main, [])
        if _user_turns(self.histories.get(side, [])) == _user_turns(conversation):
            return False
        self.histories[side] = [dict(message) for message in conversation]
        return True

    def set_adapter_file(self, path: str, run_dir: str | None) -> None:
        """Chat with the base GGUF + this LoRA adapter GGUF from now on (a run's gguf-lora export)."""
        lora = self.lora
        # No lock here: a background job may hold it for seconds while the base GGUF loads.
        if lora.switch is not None and run_dir != lora.run_dir:
            lora.switch = None  # another run may have another base model
            self.engines.pop("base-gguf", None)
        lora.path, lora.run_dir = path, run_dir
        if lora.switch is not None:  # same base: only the adapter changes, nothing reloads
            lora.switch.adapter_path = Path(path)
        self.engines.pop("adapter", None)
        self.histories["adapter"] = []

    def set_adapter_options(self, enabled: bool, scale: float) -> None:
        """Adapter on/off and its scale; the next answer of the "adapter" side uses them (no reload)."""
        self.lora.enabled, self.lora.scale = bool(enabled), float(scale)
        switch = self.lora.switch
        if switch is not None:
            switch.enabled, switch.scale = self.lora.enabled, self.lora.scale

    def clear(self) -> None:
        """Start the conversations over."""
        for side in self.histories:
            self.histories[side] = []

    def is_busy(self) -> bool:
        return self._thread is not None

    def send(self, text: str, sides: list[str], settings: Any) -> None:
        """Append the user's message to each side's history and stream each side's answer."""
        if self.is_busy():
            raise RuntimeError("Still answering the last message.")
        missing = [side for side in sides if side not in self.engines]
        if missing:
            raise RuntimeError(f"No model loaded for: {', '.join(missing)}")
        messages: dict[str, list[dict]] = {}
        for side in sides:
            self.histories.setdefault(side, []).append({"role": "user", "content": text})
            messages[side] = list(self.histories[side])  # the engine adds the system prompt
            self._answers[side] = []
        worker = ChatWorker([(side, self.engines[side]) for side in sides], messages, settings)
        worker.sig_begin.connect(self.sig_begin)
        worker.sig_token.connect(self._on_token)
        worker.sig_end.connect(self._on_end)
        worker.sig_failed.connect(self._on_failed)
        self._worker = worker
        self._thread = start_worker_thread(worker, "tunesmith-chat", self._on_thread_finished)
        self.sig_busy.emit(True)

    def stop(self) -> None:
        """Stop the answer being generated."""
        if self._worker is not None:
            self._worker.stop()

    def stop_and_wait(self, timeout_ms: int = 30_000) -> bool:
        """Stop generating and wait for the worker thread to end (on quit); True if it ended."""
        self.stop()
        return self._thread.wait(timeout_ms) if self._thread is not None else True

    def _on_token(self, side: str, piece: str) -> None:
        self._answers.setdefault(side, []).append(piece)
        self.sig_token.emit(side, piece)

    def _on_end(self, side: str, stopped: bool) -> None:
        self.histories[side].append({"role": "assistant", "content": "".join(self._answers.get(side, []))})
        self.sig_end.emit(side, stopped)

    def _on_failed(self, side: str, data: dict) -> None:
        if self.histories.get(side) and self.histories[side][-1]["role"] == "user":
            self.histories[side].pop()  # a failed turn is not part of the conversation
        self.sig_failed.emit(side, data)

    def _on_thread_finished(self) -> None:
        thread = self._thread
        self._worker = None
        self._thread = None
        if thread is not None:
            thread.wait()
        self.sig_busy.emit(False)


def _user_turns(history: list[dict]) -> list[str]:
    return [message["content"] for message in history if message["role"] == "user"]
