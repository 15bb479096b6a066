"""The frozen app's entry point: PyInstaller starts here and hands over to the `tunesmith` command.

Kept tiny on purpose: everything the installed console script does (`tunesmith.desktop.launcher.main`:
the app with no arguments, the CLI — `--self-test` included — with any) happens the same way in the
bundle.  `multiprocessing.freeze_support()` lets datasets/torch worker processes start from the bundle.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from tunesmith.desktop.launcher import main

    sys.exit(main())
