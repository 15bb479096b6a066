"""The QThread bridge for chat generation: streamed text pieces out as Qt signals.

`ChatWorker` takes one or more (side, engine) pairs and the same message history, and streams each
engine's answer in turn (one after the other: two models generating at once would only fight over the
CPU).  An engine is any object with the core chat contract,
`stream(messages, settings, should_stop) -> Iterator[str]`.  The worker knows nothing of widgets.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot


class ChatWorker(QObject):
    """Streams answers on a QThread.

    Signals (plain data):
        sig_begin(str):          side ("tuned", "base", "gguf") starts answering
        sig_token(str, str):     side, the next piece of text
        sig_end(str, bool):      side, whether it was stopped early
        sig_failed(str, dict):   side, {"message", "hint", "details"}
        sig_done():              always last
    """

    sig_begin = Signal(str)
    sig_token = Signal(str, str)
    sig_end = Signal(str, bool)
    sig_failed = Signal(str, dict)
    sig_done = Signal()

    def __init__(self, engines: list[tuple[str, Any]], messages: dict[str, list[dict]], settings: Any):
        super().__init__()
        self._engines = engines
        self._messages = messages
        self._settings = settings
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop generating after the current piece.  Thread-safe."""
        self._stop.set()

    def should_stop(self) -> bool:
        return self._stop.is_set()

    @Slot()
    def run(self) -> None:
        try:
            for side, engine in self._engines:
                if self._stop.is_set():
                    break
                self._stream_one(side, engine)
        finally:
            self.sig_done.emit()

    def _stream_one(self, side: str, engine: Any) -> None:
        self.sig_begin.emit(side)
        try:
            for piece in engine.stream(self._messages[side], self._settings, self.should_stop):
                if piece:
                    self.sig_token.emit(side, piece)
                if self._stop.is_set():
                    break
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash
            self.sig_failed.emit(
                side,
                {
                    "message": f"The model could not answer: {exc}",
                    "hint": getattr(exc, "hint", "") or "See the log for details.",
                    "details": traceback.format_exc(),
                },
            )
            return
        self.sig_end.emit(side, self._stop.is_set())
