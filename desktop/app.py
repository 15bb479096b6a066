"""Create the QApplication and the main window, and run the event loop.

Sets the organisation/app names (used by QSettings), the style, logging and the exception hook.
With `screenshots_dir`, renders every tab to PNG instead of waiting for the user.  Once the window has
closed, lets running work finish within a bound (`desktop.shutdown`).
"""

from __future__ import annotations

import logging
import os
import sys
import time

_T0 = time.perf_counter()
log = logging.getLogger(__name__)


def make_application():
    """The QApplication (reused if one exists), named and styled."""
    from PySide6.QtWidgets import QApplication

    from tunesmith.desktop.theme import APPLICATION, ORGANIZATION, setup_application

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Tunesmith")
    setup_application(app)
    return app


def run_app(
    screenshots_dir: str | None = None, screenshot_steps: int = 8, startup_time_from: float | None = None
) -> int:
    """Open the main window and run until it closes; returns the exit status.

    With `startup_time_from` (a perf_counter value), print the seconds until the window is painted and exit.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app = make_application()
    from tunesmith.desktop.errors import install_excepthook, setup_logging
    from tunesmith.desktop.main_window import MainWindow

    log_file = setup_logging()
    install_excepthook()
    settings = None
    if screenshots_dir:  # a fresh, throwaway settings file: the user's settings are not touched
        import tempfile

        from PySide6.QtCore import QSettings

        settings = QSettings(os.path.join(tempfile.mkdtemp(), "screenshots.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings)
    window.autostart = startup_time_from is None
    window.welcome_on_first_start = not screenshots_dir
    window.show()
    log.info("window shown %.2f s after launch (log: %s)", time.perf_counter() - _T0, log_file)
    if startup_time_from is not None:
        app.processEvents()  # the first paint
        print(
            f"window shown {time.perf_counter() - startup_time_from:.2f} s after launch; "
            f"torch imported: {'torch' in sys.modules}"
        )
        return 0
    if screenshots_dir:
        from tunesmith.desktop.screenshots import take_screenshots

        return take_screenshots(window, screenshots_dir, steps=screenshot_steps)
    status = app.exec()
    from tunesmith.desktop.shutdown import finish_work, hard_exit

    if not finish_work(window.controller):
        hard_exit(status)  # a thread still runs: tearing it down would abort, and nothing waits on it
    return status
