"""The `tunesmith` command: the desktop app, or the headless CLI.

`tunesmith` or `tunesmith gui` opens the app (`gui --screenshots DIR` renders every tab to PNG and
exits); any other first argument goes to `tunesmith.core.cli.main`.  Nothing heavy is imported here:
Qt is imported only for the app, torch and the engine only when first needed, so the window is quick.
"""

from __future__ import annotations

import argparse
import sys
import time

LAUNCHED_AT = time.perf_counter()  # the console script imports this module first thing


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tunesmith` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] not in ("gui",) and not args[0].startswith("--screenshots"):
        from tunesmith.core.cli import main as cli_main

        return int(cli_main(args) or 0)
    if args and args[0] == "gui":
        args = args[1:]
    parser = argparse.ArgumentParser(prog="tunesmith gui", description="Open the Tunesmith desktop app.")
    parser.add_argument("--screenshots", metavar="DIR", help="render every tab to PNG files in DIR and exit")
    parser.add_argument("--steps", type=int, default=8, help="training steps for the screenshot run")
    parser.add_argument(
        "--startup-time",
        action="store_true",
        help="print the seconds from launch to the shown window, then exit (recorded in bench/HISTORY.md)",
    )
    options = parser.parse_args(args)
    from tunesmith.desktop.app import run_app

    return run_app(
        screenshots_dir=options.screenshots,
        screenshot_steps=options.steps,
        startup_time_from=LAUNCHED_AT if options.startup_time else None,
    )


if __name__ == "__main__":
    sys.exit(main())
