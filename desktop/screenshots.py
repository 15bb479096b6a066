"""`tunesmith gui --screenshots DIR`: render every tab to PNG, with a finished short run in the Train
tab and a streamed answer in the Chat tab, then exit.  Uses the real engine on the embedded model;
the run goes to a temporary folder and the user's remembered settings are neither read nor changed.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication

from tunesmith.core.events import Finished

log = logging.getLogger(__name__)


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    """Process events until `predicate()` is true or the time is up; returns the predicate's value."""
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)
    QApplication.processEvents()
    return predicate()


def grab_tab(window, index: int, path: Path) -> None:
    """Show tab `index`, let it paint, and save the whole window to `path`."""
    window.tabs.setCurrentIndex(index)
    window.train_tab.plots.flush()
    wait_for(lambda: False, 0.3)
    window.grab().save(str(path))
    log.info("saved %s", path)


def take_screenshots(window, out_dir: str, steps: int = 8, timeout_s: float = 900) -> int:
    """Drive the window through the journey and save dataset.png, train.png, chat.png; returns 0 on success."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    controller = window.controller
    window.resize(1280, 860)
    wait_for(lambda: controller.dataset is not None and controller.hardware is not None, timeout_s)
    grab_tab(window, 0, out / "dataset.png")

    config = controller.config
    config.train.max_steps = steps
    config.train.batch_size = 2
    config.data.max_length = 128
    config.output_dir = tempfile.mkdtemp(prefix="tunesmith-screenshots-")
    window.train_tab.load_from_config()
    window.train_tab.start()
    wait_for(
        lambda: controller.training.last_result is not None and not controller.training.is_running(),
        timeout_s,
    )
    grab_tab(window, 1, out / "train.png")
    result = controller.training.last_result
    status = 0 if isinstance(result, Finished) and result.adapter_dir else 1

    window.tabs.setCurrentIndex(2)
    if status == 0:
        window.chat_tab.max_tokens.setValue(40)
        window.chat_tab.compare_check.setChecked(True)
        window.chat_tab.input_edit.setPlainText("What is your name?")
        window.chat_tab.send()
        wait_for(lambda: not window.chat_tab.send_button.isEnabled(), 5)
        wait_for(lambda: window.chat_tab.send_button.isEnabled(), timeout_s)
    grab_tab(window, 2, out / "chat.png")
    window.close()
    return status
