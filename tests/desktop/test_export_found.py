"""Exports you can find (issue 21, point 11), through the real window and the real export.

File ▸ Export model… on a run folder of the embedded model (its adapter saved untrained: seconds, no
training) as a Q8_0 GGUF, checked by llama.cpp: the progress shows in the banner while it runs; the
finished banner names the file, gives the check's verdict in words ("matches the trained model
closely: 100% of next-token choices agree (16 of 16)", never "check passed" beside "greedy tokens 2/16
identical") and offers Open folder and Copy path.  A second export replaces the finished banner with
its own progress at once.  With no file manager, Open folder says so and offers the path to copy.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QTimer, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QApplication

if importlib.util.find_spec("llama_cpp") is None:  # the GGUF check runs llama.cpp in a child process
    pytest.skip(
        "llama-cpp-python is an optional extra (pip install tunesmith[chat])", allow_module_level=True
    )

pytestmark = pytest.mark.slow

TIMEOUT = 300_000

_spec = importlib.util.spec_from_file_location(
    "test_export_crash", Path(__file__).parent / "test_export_crash.py"
)
_crash = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_crash)
untrained_run = _crash.untrained_run  # a run folder of the demo model with an untrained adapter


class FileManager(QObject):
    """Stands in for the desktop's file manager: Qt hands it the file:// URLs that openUrl opens."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.opened.append(url)


class NoFileManager:
    """A desktop where no file manager can be started (QDesktopServices.openUrl returns False)."""

    @staticmethod
    def openUrl(url: QUrl) -> bool:  # noqa: N802 - Qt's name
        return False


def export_through_the_dialog(window, fmt: str, quant: str | None) -> None:
    """File ▸ Export model…, pick the format (and type), press Export."""

    def choose() -> None:
        dialog = QApplication.activeModalWidget()
        dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(fmt))
        if quant:
            dialog.quant_combo.setCurrentIndex(dialog.quant_combo.findData(quant))
        dialog.accept()

    QTimer.singleShot(0, choose)
    window.actions["export"].trigger()


def test_an_export_shows_its_progress_then_where_it_is_and_what_the_check_found(
    untrained_run, window, qtbot, tmp_path, monkeypatch
):
    controller, banner = window.controller, window.banner
    controller.training.last_run_dir = str(untrained_run)
    seen: list[tuple[str, bool, int]] = []  # the banner at each progress report, after the window's slot
    controller.sig_export_progress.connect(
        lambda *_: seen.append((banner.text(), banner.progress.isVisibleTo(banner), banner.progress.value()))
    )

    with qtbot.waitSignal(controller.sig_export_done, timeout=TIMEOUT) as done:
        export_through_the_dialog(window, "gguf", "q8_0")
    result = done.args[0]
    assert result.path.is_file() and result.path.parent == untrained_run / "exports"

    # While it ran, the banner said what was exported and how far it was.
    assert len(seen) >= 2 and all("Exporting the GGUF file (Q8_0)…" in text for text, _, _ in seen)
    assert all(visible for _, visible, _ in seen)
    assert [value for _, _, value in seen] == sorted(value for _, _, value in seen)

    # Finished: the file, the check in words, and the buttons to find it.
    shown = banner.text()
    print(f"\nthe finished banner: {shown}")
    assert "Export finished: GGUF file (Q8_0)." in shown and result.path.name in shown
    verdict = re.search(
        r"Check: matches the trained model (closely|well|roughly|exactly): (\d+)% of next-token", shown
    )
    assert verdict and int(verdict[2]) >= 50, shown
    # The CLI prints the same verdict (ExportResult.summary(), what `tunesmith export` prints).
    assert (
        f"Check: {result.check.verdict()}." in shown
        and f"check: {result.check.verdict()}" in result.summary()
    )
    assert "passed" not in shown and "identical" not in shown and not banner.progress.isVisibleTo(banner)
    assert "greedy" in banner._details, "the measurements stay one click away, under Details"

    banner.button("Copy path").click()
    assert QGuiApplication.clipboard().text() == str(result.path)
    assert banner.isVisible() and banner.button("Path copied ✓") is not None

    manager = FileManager()
    QDesktopServices.setUrlHandler("file", manager, "open")
    try:
        banner.button("Open folder").click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert manager.opened == [QUrl.fromLocalFile(str(result.path.parent))]
    assert banner.button("Chat with this model") is not None

    # A second export: its progress replaces the finished banner at once (no stale "finished").
    with qtbot.waitSignal(controller.sig_export_done, timeout=TIMEOUT) as again:
        controller.export("lora", None, None)
        assert "Exporting the LoRA adapter…" in banner.text() and "finished" not in banner.text()
        assert banner.progress.isVisibleTo(banner)
    assert "Export finished: LoRA adapter." in banner.text()
    assert banner.button("Chat with this model") is None  # an adapter folder is not a chat model

    # No file manager on this desktop: said in words, with the path to copy (an adapter is a folder).
    adapter = again.args[0].path
    assert adapter.is_dir()
    monkeypatch.setattr("tunesmith.desktop.main_window.QDesktopServices", NoFileManager)
    banner.button("Open folder").click()
    shown = banner.text()
    assert "No file manager could be opened" in shown and str(adapter) in shown
    assert banner.property("level") == "warning"
    banner.button("Copy path").click()
    assert QGuiApplication.clipboard().text() == str(adapter)
