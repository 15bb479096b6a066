"""Runtime hook: runs inside the frozen app before any of Tunesmith's code.

The bundle is installed read-only (/opt/tunesmith, Program Files): Python must not try to write
__pycache__ folders beside the few modules kept as .py files (Triton's JIT, our kernels), or a later
uninstall finds folders it did not install and leaves them behind.
"""

import sys

sys.dont_write_bytecode = True
