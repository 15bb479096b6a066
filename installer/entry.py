"""The frozen app's entry point: PyInstaller starts here and hands over to the `tunesmith` command.

Kept tiny on purpose: everything the installed console script does (`tunesmith.desktop.launcher.main`:
the app with no arguments, the CLI — `--self-test` included — with any) happens the same way in the
bundle.  `multiprocessing.freeze_support()` lets datasets/torch worker processes start from the bundle.
A bundle has no `python -m`, so the llama.cpp child process (`tunesmith.core.native`) is this same
executable started as `Tunesmith --llama-host TASK`; that argument goes straight to the host, before
anything else is imported.
"""

import multiprocessing
import sys

LLAMA_HOST_FLAG = "--llama-host"  # tunesmith.core.native.client.FROZEN_FLAG

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == LLAMA_HOST_FLAG:
        from tunesmith.core.native.host import main as llama_host_main

        sys.exit(llama_host_main(sys.argv[2:]))
    multiprocessing.freeze_support()
    from tunesmith.desktop.launcher import main

    sys.exit(main())
