"""Start the real app cold, in this fresh interpreter, and print what its window says once every
background probe has finished (JSON on the last line of stdout).

Run by test_first_start.py as a child process: transformers misbehaves only on a program's first
imports, so the start-up must happen in an interpreter that has imported nothing heavy yet.  The
caller points HOME, TUNESMITH_HOME, TUNESMITH_CACHE and the XDG folders at empty temporary folders;
argv[1] is the folder for QSettings.  With TUNESMITH_SLOW_IMPORTS=1, every transformers (trl, peft) submodule
takes a little longer to import, which widens the window in which two threads importing at once can
trip over each other (it makes a race that exists show up every time; it cannot create one).
"""

from __future__ import annotations

import importlib.abc
import json
import os
import re
import sys
import time


class _SlowImports(importlib.abc.MetaPathFinder):
    """Delays the loading of transformers', trl's and peft's submodules by a few milliseconds each."""

    def find_spec(self, fullname, path, target=None):
        if fullname.startswith(("transformers.", "trl.", "peft.")):
            time.sleep(0.005)
        return None  # the real finders do the import


def main(settings_dir: str, timeout_s: float = 600.0) -> dict:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication, QLabel

    from tunesmith.desktop.app import make_application
    from tunesmith.desktop.main_window import MainWindow
    from tunesmith.desktop.workers.background import pending_jobs

    app = make_application()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, settings_dir)
    window = MainWindow()
    controller = window.controller
    seen: set[str] = set()
    controller.sig_hardware.connect(lambda _hw: seen.add("hardware"))
    controller.sig_capabilities.connect(lambda _caps: seen.add("capabilities"))
    controller.sig_dataset_busy.connect(lambda busy: None if busy else seen.add("dataset"))
    controller.sig_vram.connect(lambda _estimate: seen.add("vram"))
    controller.sig_vram_text.connect(lambda _text: seen.add("vram"))
    window.show()
    began = time.monotonic()
    idle_since = None
    wanted = {"hardware", "capabilities", "dataset", "vram"}
    while time.monotonic() - began < timeout_s:
        app.processEvents()
        time.sleep(0.02)
        if wanted <= seen and pending_jobs() == 0:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 2.0:  # no job started another in 2 s: all done
                break
        else:
            idle_since = None
    texts = [_plain(label.text()) for label in window.findChildren(QLabel) if label.text()]
    texts.append(window.statusBar().currentMessage())
    if window.banner.isVisible():
        texts.append(window.banner.text())
    texts.append(window.welcome.text())
    result = {
        "finished": sorted(seen),
        "pending_jobs": pending_jobs(),
        "seconds": round(time.monotonic() - began, 1),
        "texts": [t for t in texts if t],
    }
    window.close()
    QApplication.processEvents()
    return result


def _plain(text: str) -> str:
    return re.sub(r"<[^>]+>", " ", text)


if __name__ == "__main__":
    if os.environ.get("TUNESMITH_SLOW_IMPORTS") == "1":
        sys.meta_path.insert(0, _SlowImports())
    print(json.dumps(main(sys.argv[1])), flush=True)
